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
from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer

from backend.observe.base import Observer
from backend.schemas import Alert, AlertKind, Matcher, MatcherName, NodeStatus, Silence
from backend.silences.matching import matchers_for
from backend.silences.quiet import Quiet
from console.screens.alert_detail import AlertDetailScreen
from console.screens.detail import DetailScreen
from console.screens.note import NoteScreen
from console.screens.silence import SilenceScreen
from console.screens.silences import SilencesScreen
from widgets.alert_queue import AlertAction, AlertQueue
from widgets.filters import LogFilter
from widgets.health_bar import HealthBar, TroubleBanner
from widgets.log_feed import LogFeed
from widgets.log_view import LogView
from widgets.messages import (
    AlertsChanged,
    HistoryNote,
    LogsArrived,
    NodesChanged,
    SilencesChanged,
)
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


SILENCE_BINDINGS: list[BindingType] = [
    Binding(
        "z",
        "silence_alert",
        "Silence",
        id="alerts.silence",
        show=False,
        tooltip="Silence the selected alert (matchers pre-filled, editable)",
    ),
    Binding(
        "M",
        "maintenance",
        "Maintenance",
        id="nodes.maintenance",
        show=False,
        tooltip="Put the highlighted node in maintenance for a while (no NODE_DOWN)",
    ),
    Binding(
        "delete",
        "forget_node",
        "Forget",
        id="nodes.forget",
        show=False,
        tooltip="Forget the highlighted DOWN node: the monitor drops it from the registry",
    ),
    Binding(
        "S",
        "silences",
        "Silences",
        id="app.silences",
        show=False,
        tooltip="List the silences; expire one",
    ),
]
"""Silencing an alert, a node's maintenance and forgetting it, and the silences list."""


PANE_BINDINGS: list[BindingType] = [
    Binding(
        "plus",
        "toggle_maximize",
        "Zoom",
        id="main.maximize",
        tooltip="Maximise the focused pane to the whole screen, or restore it",
    ),
    Binding(
        "escape",
        "minimize",
        "Restore",
        id="main.restore",
        show=False,
        tooltip="Restore the maximised pane",
    ),
]
"""Maximising a pane, for small terminals. Escape restores only when nothing under it
takes Escape: a prompt open in the maximised feed closes first."""


class MainScreen(Screen[None]):
    """Nodes, alerts and the live feed, with the health header and key footer."""

    ALLOW_IN_MAXIMIZED_VIEW = "#header, Footer"
    ESCAPE_TO_MINIMIZE = False  # the `main.restore` binding does it, after the prompts
    BINDINGS: ClassVar[list[BindingType]] = [*SILENCE_BINDINGS, *PANE_BINDINGS]

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
        self._quiet = Quiet()

    def action_toggle_maximize(self) -> None:
        """Maximise the pane that has the focus (the whole feed for its rows), or restore it."""
        if self.maximized is not None:
            self.minimize()
        elif self.focused is not None:
            self.maximize(self.focused)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Escape restores a maximised pane, and is left alone otherwise."""
        return not (action == "minimize" and self.maximized is None)

    def compose(self) -> ComposeResult:
        with Vertical(id="header"):
            yield HealthBar()
            yield TroubleBanner()
        with Horizontal(id="top"):
            yield NodeTable(clock=self._clock, id="nodes")
            yield AlertQueue(clock=self._clock, read_only=self._read_only, id="alerts")
        yield LogFeed(self._names, capacity=self._capacity, id="feed")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.set_interval(1.0, self._show_quiet)
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
        self.nodes.count_logs(message.logs[message.stored :])

    @on(HistoryNote)
    def _history_note(self, message: HistoryNote) -> None:
        self.feed.show_history(message.text)

    @on(NodesChanged)
    def _nodes_changed(self, message: NodesChanged) -> None:
        self.nodes.update_nodes(message.entries)

    @on(AlertsChanged)
    def _alerts_changed(self, message: AlertsChanged) -> None:
        self.alerts.update_alerts(message.alerts, initial=message.initial)
        for alert in message.alerts:
            self._quiet.take_alert(alert)
        self._show_quiet()
        detail = self.app.screen
        if isinstance(detail, AlertDetailScreen):
            for alert in message.alerts:
                if alert.alert_id == detail.alert.alert_id:
                    detail.show_alert(alert)

    @on(SilencesChanged)
    def _silences_changed(self, message: SilencesChanged) -> None:
        for silence in message.silences:
            self._quiet.book.put(silence)
        self._show_quiet()

    def _show_quiet(self) -> None:
        """Mark the alerts that notify nobody, and why, and the nodes in maintenance or
        flapping; also every second, since silences start and end with the clock."""
        now = self._clock()
        quiet: dict[str, str] = {}
        for alert in self.alerts.alerts.values():
            hush = self._quiet.reason(alert, now)
            if hush is not None:
                quiet[alert.alert_id] = hush.kind
        self.alerts.set_quiet(quiet)
        marks = {
            alert.node_id: "flapping"
            for alert in self.alerts.alerts.values()
            if alert.kind is AlertKind.FLAPPING and alert.node_id
        }
        marks.update(dict.fromkeys(self._quiet.book.maintenance(now), "maintenance"))
        self.nodes.set_marks(marks)

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

    def action_silence_alert(self) -> None:
        """Ask for a silence of the selected alert, starting from its own matchers."""
        if self._read_only:
            self.notify("read-only: silences cannot be added", severity="warning")
            return
        alert = self.alerts.selected_alert()
        if alert is None:
            self.notify("no alert selected", severity="warning")
            return
        dialog = SilenceScreen(
            f"Silence {alert.summary[:60]}",
            matchers_for(alert),
            list(self.alerts.alerts.values()),
            by=current_user(),
            clock=self._clock,
        )
        self.app.push_screen(dialog, self._silence_chosen)

    def _silence_chosen(self, silence: Silence | None) -> None:
        if silence is not None:
            self._add_silence(silence)

    @work(group="alert-actions", exit_on_error=False)
    async def _add_silence(self, silence: Silence) -> None:
        try:
            await self._observer.add_silence(silence)
        except Exception as error:  # the backend's failure is news for the user, not a crash
            self.notify(f"silencing failed: {error}", title="Silence", severity="error")
            return
        self.notify(f"Silenced until {silence.ends_at} ({silence.silence_id})", title="Silence")

    def action_maintenance(self) -> None:
        """Ask how long the highlighted node is in maintenance; end it from the silences."""
        if self._read_only:
            self.notify("read-only: silences cannot be added", severity="warning")
            return
        entry = self.nodes.highlighted()
        if entry is None:
            self.notify("no node selected", severity="warning")
            return
        node = entry.node_id
        dialog = SilenceScreen(
            f"Maintenance of node {node}",
            [Matcher(name=MatcherName.NODE, value=node)],
            list(self.alerts.alerts.values()),
            by=current_user(),
            clock=self._clock,
            maintenance=True,
            comment="maintenance",
        )
        self.app.push_screen(dialog, self._silence_chosen)

    def action_forget_node(self) -> None:
        """Ask the monitor to retire the highlighted node, if it is DOWN (one that is UP
        would only come back with its next heartbeat)."""
        if self._read_only:
            self.notify("read-only: nodes cannot be forgotten", severity="warning")
            return
        entry = self.nodes.highlighted()
        if entry is None:
            self.notify("no node selected", severity="warning")
            return
        if entry.status is not NodeStatus.DOWN:
            self.notify(
                f"node {entry.node_id} is UP: only a DOWN node can be forgotten",
                title="Forget",
                severity="warning",
            )
            return
        self._forget(entry.node_id)

    @work(group="node-actions", exit_on_error=False)
    async def _forget(self, node_id: str) -> None:
        try:
            await self._observer.forget_node(node_id, current_user())
        except Exception as error:  # the backend's failure is news for the user, not a crash
            self.notify(f"forgetting failed: {error}", title="Forget", severity="error")
            return
        self.notify(f"Asked the monitor to forget node {node_id}", title="Forget")

    def action_silences(self) -> None:
        self.app.push_screen(
            SilencesScreen(self._observer, clock=self._clock, read_only=self._read_only)
        )
