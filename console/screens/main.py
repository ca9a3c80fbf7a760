"""The main screen: nodes and alerts side by side above the live log feed.

It receives the app's flushed batches as messages and hands each to the widgets that
show it; alert actions go to the observer from a worker, so a slow backend never
blocks the screen.
"""

from __future__ import annotations

import getpass
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Footer

from backend.observe.base import Observer
from backend.schemas import Alert
from console.screens.alert_detail import AlertDetailScreen
from console.screens.detail import DetailScreen
from console.screens.note import NoteScreen
from widgets.alert_queue import AlertAction, AlertQueue
from widgets.filters import LogFilter
from widgets.health_bar import HealthBar, TroubleBanner
from widgets.log_feed import LogFeed
from widgets.log_view import LogView
from widgets.messages import AlertsChanged, LogsArrived, NodesChanged
from widgets.names import KnownNames
from widgets.node_table import NodeTable

_DONE = {
    "acknowledge": "Acknowledged",
    "acknowledge_noted": "Acknowledged",
    "unacknowledge": "Un-acknowledged",
    "resolve": "Resolved",
    "annotate": "Noted",
}


def current_user() -> str:
    """Who acknowledges: the OS user, as `getpass` finds it (or `unknown` in odd sandboxes)."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"


class MainScreen(Screen[None]):
    """Nodes, alerts and the live feed, with the health header and key footer."""

    def __init__(
        self,
        observer: Observer,
        names: KnownNames,
        *,
        clock: Callable[[], datetime],
        read_only: bool,
        capacity: int,
    ) -> None:
        super().__init__()
        self._observer = observer
        self._names = names
        self._clock = clock
        self._read_only = read_only
        self._capacity = capacity

    def compose(self) -> ComposeResult:
        yield HealthBar()
        yield TroubleBanner()
        with Horizontal(id="top"):
            yield NodeTable(clock=self._clock, id="nodes")
            yield AlertQueue(clock=self._clock, read_only=self._read_only, id="alerts")
        yield LogFeed(self._names, capacity=self._capacity, id="feed")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.watch(self.feed, "filter", self._show_feed_node)
        self.feed.view.focus()

    @property
    def feed(self) -> LogFeed:
        return self.query_one(LogFeed)

    @property
    def nodes(self) -> NodeTable:
        return self.query_one(NodeTable)

    @property
    def alerts(self) -> AlertQueue:
        return self.query_one(AlertQueue)

    @on(LogsArrived)
    def _logs_arrived(self, message: LogsArrived) -> None:
        self.feed.add_logs(message.logs, message.dropped)
        self.nodes.count_logs(message.logs)

    @on(NodesChanged)
    def _nodes_changed(self, message: NodesChanged) -> None:
        self.nodes.update_nodes(message.entries)

    @on(AlertsChanged)
    def _alerts_changed(self, message: AlertsChanged) -> None:
        self.alerts.update_alerts(message.alerts, initial=message.initial)
        detail = self.app.screen
        if isinstance(detail, AlertDetailScreen):
            for alert in message.alerts:
                if alert.alert_id == detail.alert.alert_id:
                    detail.show_alert(alert)

    @on(NodeTable.NodeChosen)
    def _node_chosen(self, message: NodeTable.NodeChosen) -> None:
        self.feed.toggle_node(message.node_id)

    def _show_feed_node(self, log_filter: LogFilter) -> None:
        only = next(iter(log_filter.nodes)) if len(log_filter.nodes) == 1 else None
        self.nodes.show_feed_node(only)

    @on(LogView.EntryChosen)
    def _entry_chosen(self, message: LogView.EntryChosen) -> None:
        self.app.push_screen(DetailScreen(message.log))

    @on(AlertQueue.AlertChosen)
    def _alert_chosen(self, message: AlertQueue.AlertChosen) -> None:
        self.app.push_screen(
            AlertDetailScreen(
                message.alert,
                self._observer,
                act=self.request_action,
                show_in_feed=self._show_alert_in_feed,
                read_only=self._read_only,
            )
        )

    def _show_alert_in_feed(self, alert: Alert) -> None:
        services = {alert.service_name} if alert.service_name else set()
        nodes = {alert.node_id} if alert.node_id else set()
        self.feed.filter = replace(
            self.feed.filter, services=frozenset(services), nodes=frozenset(nodes)
        )
        self.feed.view.focus()

    @on(AlertQueue.ActionRequested)
    def _alert_action(self, message: AlertQueue.ActionRequested) -> None:
        self.request_action(message.alert, message.action)

    def request_action(self, alert: Alert, action: AlertAction) -> None:
        """Do `action` to `alert`, asking for the note first where it takes one."""
        if self._read_only:
            self.notify("read-only: alerts cannot be changed", severity="warning")
            return
        if action not in ("acknowledge_noted", "annotate"):
            self._act(alert, action, None)
            return
        title = f"Note on {alert.summary[:60]}"
        hint = "Enter saves · Escape cancels"
        if action == "acknowledge_noted":
            title, hint = f"Acknowledge {alert.summary[:60]}", "Enter acknowledges · Escape cancels"

        def noted(note: str | None) -> None:
            if note is None or (action == "annotate" and not note):
                return
            self._act(alert, action, note or None)

        self.app.push_screen(NoteScreen(title, hint), noted)

    @work(group="alert-actions", exit_on_error=False)
    async def _act(self, alert: Alert, action: AlertAction, note: str | None) -> None:
        by = current_user()
        try:
            if action == "acknowledge_noted" and note:
                await self._observer.acknowledge(alert, by, note)
            elif action in ("acknowledge", "acknowledge_noted"):
                await self._observer.acknowledge(alert, by)
            elif action == "annotate":
                await self._observer.annotate(alert, by, note or "")
            elif action == "unacknowledge":
                await self._observer.unacknowledge(alert, by)
            else:
                await self._observer.resolve(alert, by)
        except Exception as error:  # the backend's failure is news for the user, not a crash
            self.notify(f"{action} failed: {error}", title="Alert", severity="error")
            return
        self.notify(f"{_DONE[action]}: {alert.summary}", title="Alert")
