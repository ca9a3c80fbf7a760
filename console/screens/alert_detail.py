"""One alert in full: what it is, how often it happened, who did what, and its latest logs.

The logs and the occurrence bars come from the store, in a worker, so a slow search never
holds the screen; the alert itself is kept current by the main screen (`show_alert`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Footer, Label, Static

from backend.observe.base import Observer
from backend.schemas import Alert, AlertKind, Level, Log
from backend.store.query import LogQuery
from console.screens.detail import DetailScreen
from widgets.alert_queue import AlertAction
from widgets.formatting import day_time, parse_time
from widgets.histogram import HitHistogram
from widgets.log_view import message_text

RECENT_LOGS = 20
_MARGIN = timedelta(minutes=1)


def alert_logs_query(alert: Alert) -> LogQuery:
    """The stored logs behind `alert`, over its lifetime and a minute either side.

    A rule's alert: its service's logs (of its node while one node fired it), narrowed to
    the error code a LOG_LEVEL fingerprint ends with, or to WARN for a THRESHOLD. A
    NODE_DOWN: what the node logged before it went quiet.
    """
    first, last = parse_time(alert.first_seen), parse_time(alert.last_seen)
    since = first - _MARGIN if first else None
    until = last + _MARGIN if last else None
    nodes = frozenset({alert.node_id}) if alert.node_id else frozenset()
    if alert.kind is AlertKind.NODE_DOWN:
        since = first - timedelta(minutes=10) if first else None
        return LogQuery(nodes=nodes, since=since, until=until, page_size=RECENT_LOGS)
    services = frozenset({alert.service_name}) if alert.service_name else frozenset()
    text, levels = "", frozenset[Level]()
    if alert.kind is AlertKind.LOG_LEVEL and alert.fingerprint.count(":") >= 2:
        text = f'"{alert.fingerprint.rsplit(":", 1)[1]}"'
    elif alert.kind is AlertKind.THRESHOLD:
        levels = frozenset({Level.WARN})
    return LogQuery(
        text=text,
        levels=levels,
        services=services,
        nodes=nodes,
        since=since,
        until=until,
        page_size=RECENT_LOGS,
    )


class AlertDetailScreen(ModalScreen[None]):
    """The alert's fields, occurrences over time, history and notes, and latest logs."""

    DEFAULT_CSS = """
    AlertDetailScreen {
        align: center middle;
        #alert-detail {
            width: 95%;
            max-width: 130;
            height: 1fr;
            border: round $border;
            background: $surface;
            padding: 0 1;
        }
        #alert-fields { height: auto; }
        .section { color: $text-primary; text-style: bold; }
        #alert-history { height: auto; max-height: 6; }
        #alert-logs { height: 1fr; }
        #alert-logs-status { color: $text-muted; }
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "dismiss", "Close", id="alert_detail.close"),
        Binding("n", "act('annotate')", "Note", id="alert_detail.note"),
        Binding("A", "act('acknowledge_noted')", "Ack with note", id="alert_detail.ack_note"),
        Binding("f", "show_in_feed", "Show in feed", id="alert_detail.feed"),
    ]

    def __init__(
        self,
        alert: Alert,
        observer: Observer,
        *,
        act: Callable[[Alert, AlertAction], None],
        show_in_feed: Callable[[Alert], None],
        read_only: bool = False,
    ) -> None:
        super().__init__()
        self._read_only = read_only
        self._alert = alert
        self._observer = observer
        self._act = act
        self._show_in_feed = show_in_feed
        self._logs: list[Log] = []

    @property
    def alert(self) -> Alert:
        return self._alert

    def compose(self) -> ComposeResult:
        with Vertical(id="alert-detail"):
            yield Static(id="alert-fields")
            yield Label("Occurrences (matching logs in the store)", classes="section")
            yield HitHistogram(id="alert-histogram")
            yield Label("History", classes="section")
            yield DataTable[Text](id="alert-history", cursor_type="none", zebra_stripes=True)
            yield Label("Latest logs", classes="section")
            yield Static("Searching…", id="alert-logs-status")
            yield DataTable[Text](id="alert-logs", cursor_type="row")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        history = self.query_one("#alert-history", DataTable)
        for key, label in (("at", "When"), ("event", "What"), ("by", "Who"), ("note", "Note")):
            history.add_column(label, key=key)
        logs = self.query_one("#alert-logs", DataTable)
        for key, label in (("time", "Time"), ("level", "Level"), ("node", "Node")):
            logs.add_column(label, key=key)
        logs.add_column("Message", key="message")
        self.show_alert(self._alert)
        logs.focus()
        self._search(alert_logs_query(self._alert))

    def show_alert(self, alert: Alert) -> None:
        """Show `alert`'s latest state (the main screen calls it as changes arrive)."""
        self._alert = alert
        frame = self.query_one("#alert-detail")
        frame.border_title = f"{alert.severity.value} · {alert.state.value} · {alert.kind.value}"
        self.query_one("#alert-fields", Static).update(self._fields(alert))
        history = self.query_one("#alert-history", DataTable)
        history.clear()
        for event in reversed(alert.history):
            history.add_row(
                Text(day_time(event.at)),
                Text(event.event.value),
                Text(event.by or "system"),
                Text(event.note or ""),
            )
        if not alert.history:
            history.add_row(Text("—"), Text("no history kept"), Text(""), Text(""))

    @staticmethod
    def _fields(alert: Alert) -> Text:
        """Few lines, so the logs keep room at 80x24."""
        rows = [
            [("", alert.summary)],
            [
                ("Service ", alert.service_name or "—"),
                ("  Node ", alert.node_id or "—"),
                ("  Count ", f"{alert.count:,}"),
            ],
            [("Seen ", f"{day_time(alert.first_seen)} → {day_time(alert.last_seen)}")],
            [("Fingerprint ", alert.fingerprint)],
        ]
        if alert.acked_by:
            acked = f"{alert.acked_by} at {day_time(alert.acked_at or '')}"
            rows[2].append(("  Acked by ", acked))
        if alert.resolved_at:
            rows[2].append(("  Resolved ", day_time(alert.resolved_at)))
        text = Text()
        for index, row in enumerate(rows):
            if index:
                text.append("\n")
            for name, value in row:
                text.append(name, style="bold")
                text.append(value)
        return text

    @work(exclusive=True, group="alert-logs", exit_on_error=False)
    async def _search(self, query: LogQuery) -> None:
        status = self.query_one("#alert-logs-status", Static)
        try:
            result = await self._observer.search(query)
        except Exception as error:  # shown: the store may be down while alerts still flow
            status.update(f"Search failed: {type(error).__name__}: {error}")
            return
        self._logs = result.logs
        self.query_one(HitHistogram).show(result.histogram)
        table = self.query_one("#alert-logs", DataTable)
        table.clear()
        for index, log in enumerate(result.logs):
            table.add_row(
                Text(day_time(log.timestamp)),
                Text(log.log_level.value),
                Text(log.node_id),
                Text(message_text(log)[:200]),
                key=str(index),
            )
        shown = len(result.logs)
        status.update(f"{result.total:,} matching logs in the store; the latest {shown} below")

    @on(DataTable.RowSelected, "#alert-logs")
    def _open_log(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value is not None and int(event.row_key.value) < len(self._logs):
            self.app.push_screen(DetailScreen(self._logs[int(event.row_key.value)]))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """A read-only console offers no note and no acknowledgement."""
        return not (action == "act" and self._read_only)

    def action_act(self, action: AlertAction) -> None:
        self._act(self._alert, action)

    def action_show_in_feed(self) -> None:
        self._show_in_feed(self._alert)
        self.dismiss()
