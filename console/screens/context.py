"""The logs around one entry: what its node logged just before and just after, from the store.

As Kibana's surrounding documents: the same node, within ±`span` seconds of the entry (30 s
at first; `+` widens, `-` narrows), oldest first, the entry marked and under the cursor. A
window holding more than `MAX_CONTEXT` logs is narrowed until it fits, and says so.
"""

from __future__ import annotations

from datetime import timedelta
from typing import ClassVar, Final

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Footer, Static

from backend.observe.base import Observer
from backend.schemas import Log
from backend.store.query import LogQuery, SearchResult
from console.screens.detail import DetailScreen
from widgets.formatting import day_time, parse_time
from widgets.log_view import message_text

CONTEXT_SPAN_S: Final = 30.0
MAX_CONTEXT: Final = 500
_NARROWEST_S: Final = 0.5
_WIDEST_S: Final = 86_400.0


def context_query(log: Log, span_s: float) -> LogQuery | None:
    """The node's logs within `span_s` of `log`; None for an entry with no readable time."""
    at = parse_time(log.timestamp)
    if at is None:
        return None
    span = timedelta(seconds=span_s)
    return LogQuery(
        nodes=frozenset({log.node_id}), since=at - span, until=at + span, page_size=MAX_CONTEXT
    )


class ContextScreen(ModalScreen[None]):
    """The surrounding logs of one entry; Enter opens one of them in full."""

    DEFAULT_CSS = """
    ContextScreen {
        align: center middle;
        #context {
            width: 95%;
            max-width: 140;
            height: 1fr;
            border: round $border;
            background: $surface;
            padding: 0 1;
        }
        #context-status { color: $text-muted; height: 1; }
        #context-logs { height: 1fr; }
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "dismiss", "Close", id="context.close"),
        Binding("plus", "span(2.0)", "Wider", id="context.wider", tooltip="Twice the window"),
        Binding("minus", "span(0.5)", "Narrower", id="context.narrower", tooltip="Half the window"),
    ]

    def __init__(self, observer: Observer, log: Log, span_s: float = CONTEXT_SPAN_S) -> None:
        super().__init__()
        self._observer = observer
        self._log = log
        self._span_s = span_s
        self._logs: list[Log] = []

    @property
    def logs(self) -> list[Log]:
        """The logs shown, oldest first."""
        return self._logs

    def compose(self) -> ComposeResult:
        with Vertical(id="context") as frame:
            frame.border_title = f"Around {self._log.log_id} · node {self._log.node_id}"
            yield Static("Searching…", id="context-status")
            yield DataTable[Text](id="context-logs", cursor_type="row")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for key, label in (("mark", ""), ("time", "Time"), ("level", "Level")):
            table.add_column(label, key=key)
        table.add_column("Message", key="message")
        table.focus()
        self._search(self._span_s)

    def action_span(self, factor: float) -> None:
        span = min(max(self._span_s * factor, _NARROWEST_S), _WIDEST_S)
        if span != self._span_s:
            self._search(span)

    @work(exclusive=True, group="context", exit_on_error=False)
    async def _search(self, span_s: float) -> None:
        status = self.query_one("#context-status", Static)
        asked = span_s
        try:
            result = await self._fitting(span_s)
        except Exception as error:  # shown: the store may be down while the feed flows
            status.update(f"Search failed: {type(error).__name__}: {error}")
            return
        if result is None:
            status.update(f"{self._log.timestamp!r} is not a time: no context to show")
            return
        span_s, found = result
        self._span_s = span_s
        self._show(sorted(found.logs, key=lambda log: log.timestamp))
        note = f" (narrowed from ±{asked:g} s to fit {MAX_CONTEXT})" if span_s < asked else ""
        status.update(
            f"{len(self._logs):,} logs of node {self._log.node_id} within ±{span_s:g} s"
            f"{note} · + wider · - narrower · Enter opens one"
        )

    async def _fitting(self, span_s: float) -> tuple[float, SearchResult] | None:
        """The widest window up to `span_s` whose logs all fit in one page."""
        while True:
            query = context_query(self._log, span_s)
            if query is None:
                return None
            result = await self._observer.search(query)
            if result.total <= MAX_CONTEXT or span_s <= _NARROWEST_S:
                return span_s, result
            span_s = max(span_s / 2, _NARROWEST_S)

    def _show(self, logs: list[Log]) -> None:
        self._logs = logs
        table = self.query_one(DataTable)
        table.clear()
        focus = 0
        for index, log in enumerate(logs):
            here = log.log_id == self._log.log_id
            focus = index if here else focus
            table.add_row(
                Text("▶" if here else " ", style="bold"),
                Text(day_time(log.timestamp)),
                Text(log.log_level.value),
                Text(message_text(log)[:300], style="bold" if here else ""),
                key=str(index),
            )
        if logs:
            table.move_cursor(row=focus, animate=False, scroll=True)

    @on(DataTable.RowSelected, "#context-logs")
    def _open_log(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value is not None and int(event.row_key.value) < len(self._logs):
            self.app.push_screen(DetailScreen(self._logs[int(event.row_key.value)]))
