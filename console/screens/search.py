"""Search of stored logs: text, level, service, node and time range, page by page.

Each query runs in an exclusive worker, so a new one cancels the one still running;
whatever goes wrong (a bad time, a backend error) is shown on the screen.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Label, Select, Static

from backend.observe.base import Observer
from backend.schemas import Level, Log
from backend.store.query import LogQuery, SearchResult
from console.screens.detail import DetailScreen
from widgets.cells import theme_style
from widgets.filters import LEVELS
from widgets.formatting import day_time
from widgets.health_bar import HealthBar, TroubleBanner
from widgets.histogram import HitHistogram
from widgets.log_view import message_text
from widgets.names import KnownNames, split_names
from widgets.suggest import NamesSuggester
from widgets.timerange import PRESET_LABELS, TimeRangeError, resolve

LEVEL_CHOICES: dict[str, frozenset[Level]] = {
    "any": frozenset(),
    **{level.value: frozenset({level}) for level in LEVELS},
    **{
        f">={level.value}": frozenset(other for other in LEVELS if other.rank >= level.rank)
        for level in LEVELS[1:3]
    },
}
LEVEL_LABELS = {"any": "Any level", ">=WARN": "≥ WARN", ">=ERROR": "≥ ERROR"}
_LEVEL_COLOURS = {
    Level.INFO: "text-success",
    Level.WARN: "text-warning",
    Level.ERROR: "text-error",
    Level.FATAL: "text-error",
}


class SearchScreen(Screen[None]):
    """A query form, the hits over time, and one page of results, newest first."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="search.back"),
        Binding("f5", "run", "Search", id="search.run"),
        Binding("pagedown", "page(1)", "Next page", id="search.next", priority=True),
        Binding("pageup", "page(-1)", "Previous page", id="search.prev", priority=True),
        Binding("n", "page(1)", "Next page", id="search.next_key", show=False),
        Binding("p", "page(-1)", "Previous page", id="search.prev_key", show=False),
    ]

    def __init__(
        self, observer: Observer, names: KnownNames, *, clock: Callable[[], datetime]
    ) -> None:
        super().__init__()
        self._observer = observer
        self._names = names
        self._clock = clock
        self._query: LogQuery | None = None
        self._result: SearchResult | None = None

    @property
    def current_query(self) -> LogQuery | None:
        """The query whose results are on screen (or being fetched)."""
        return self._query

    @property
    def result(self) -> SearchResult | None:
        return self._result

    def compose(self) -> ComposeResult:
        suggester = NamesSuggester(self._names.all)
        yield HealthBar()
        yield TroubleBanner()
        with Vertical(id="search-form") as form:
            form.border_title = "Search stored logs"
            with Horizontal(classes="form-row"):
                yield Label("Text", classes="form-label")
                yield Input(placeholder="words or phrase (Enter searches)", id="q", compact=True)
            with Horizontal(classes="form-row"):
                yield Select(
                    [(LEVEL_LABELS.get(key, key), key) for key in LEVEL_CHOICES],
                    value="any",
                    allow_blank=False,
                    compact=True,
                    id="level",
                )
                yield Input(placeholder="services", suggester=suggester, id="service", compact=True)
                yield Input(placeholder="nodes", suggester=suggester, id="node", compact=True)
            with Horizontal(classes="form-row"):
                yield Select(
                    [(label, key) for key, label in PRESET_LABELS.items()],
                    value="15m",
                    allow_blank=False,
                    compact=True,
                    id="range",
                )
                yield Input(placeholder="since (10:15, 2026-11-24 10:15)", id="since", compact=True)
                yield Input(placeholder="until (empty: now)", id="until", compact=True)
        yield Static("", id="search-status")
        yield HitHistogram(id="histogram")
        yield DataTable[Text](id="results", cursor_type="row")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        table = self.query_one("#results", DataTable)
        for key, label in (
            ("time", "Time"),
            ("level", "Level"),
            ("node", "Node"),
            ("service", "Service"),
            ("message", "Message"),
        ):
            table.add_column(label, key=key)
        self._custom_range(False)
        self.focus_query()
        self.action_run()

    def focus_query(self) -> None:
        """The text field takes the keys now, not once the app gets round to it."""
        self.set_focus(self.query_one("#q", Input))

    def _custom_range(self, custom: bool) -> None:
        for name in ("#since", "#until"):
            self.query_one(name, Input).disabled = not custom

    # Building and running the query

    def build_query(self, page: int = 0) -> LogQuery:
        """The query the form describes; `TimeRangeError` if a typed time is unreadable."""
        level = self.query_one("#level", Select).value
        preset = self.query_one("#range", Select).value
        since, until = resolve(
            str(preset),
            self.query_one("#since", Input).value,
            self.query_one("#until", Input).value,
            self._clock(),
        )
        return LogQuery(
            text=self.query_one("#q", Input).value.strip(),
            levels=LEVEL_CHOICES.get(str(level), frozenset()),
            services=frozenset(split_names(self.query_one("#service", Input).value)),
            nodes=frozenset(split_names(self.query_one("#node", Input).value)),
            since=since,
            until=until,
            page=page,
        )

    def action_run(self) -> None:
        try:
            query = self.build_query()
        except TimeRangeError as error:
            self._status(str(error), "text-error")
            return
        self._start(query)

    def action_page(self, step: int) -> None:
        if self._query is None or self._result is None:
            return
        page = self._query.page + step
        if page < 0 or page >= self._pages(self._result, self._query):
            self._status(self._summary(self._result, self._query) + " · no more pages")
            return
        self._start(replace(self._query, page=page))

    def action_back(self) -> None:
        self.app.pop_screen()

    def _start(self, query: LogQuery) -> None:
        self._query = query
        self._status("Searching…")
        self.query_one("#results", DataTable).loading = True
        self._search(query)

    @work(exclusive=True, group="search", exit_on_error=False)
    async def _search(self, query: LogQuery) -> None:
        try:
            result = await self._observer.search(query)
        except Exception as error:  # shown on the screen: the user can fix the query or wait
            if query is self._query:
                self.query_one("#results", DataTable).loading = False
                self._status(f"Search failed: {type(error).__name__}: {error}", "text-error")
            return
        if query is self._query:
            self._show(query, result)

    # Showing results

    def _show(self, query: LogQuery, result: SearchResult) -> None:
        self._result = result
        table = self.query_one("#results", DataTable)
        table.loading = False
        table.clear()
        for index, log in enumerate(result.logs):
            table.add_row(*self._cells(log), key=str(index))
        self.query_one(HitHistogram).show(result.histogram)
        self._status(self._summary(result, query), note=result.note)

    def _cells(self, log: Log) -> list[Text]:
        colour = theme_style(self.app, _LEVEL_COLOURS[log.log_level], bold=True)
        return [
            Text(day_time(log.timestamp)),
            Text(log.log_level.value, style=colour),
            Text(log.node_id),
            Text(log.service_name),
            Text(message_text(log)[:200]),
        ]

    @staticmethod
    def _pages(result: SearchResult, query: LogQuery) -> int:
        return max(1, -(-result.total // query.page_size))

    def _summary(self, result: SearchResult, query: LogQuery) -> str:
        pages = self._pages(result, query)
        return f"{result.total:,} hits · page {query.page + 1} of {pages} · {result.took_ms:.0f} ms"

    def _status(self, text: str, variable: str = "", note: str | None = None) -> None:
        line = Text(text, style=theme_style(self.app, variable) if variable else "")
        if note:
            line.append(f"  ⓘ {note}", style=theme_style(self.app, "text-warning"))
        self.query_one("#search-status", Static).update(line)

    # Form events

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_run()

    @on(Select.Changed)
    def _select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "range":
            self._custom_range(event.value == "custom")
            if event.value == "custom":
                self.query_one("#since", Input).focus()
                return
        if self._query is None:
            return
        try:
            query = self.build_query()
        except TimeRangeError:
            return
        if query != replace(self._query, page=0):
            self._start(query)

    @on(DataTable.RowSelected, "#results")
    def _open(self, event: DataTable.RowSelected) -> None:
        if self._result is None or event.row_key.value is None:
            return
        index = int(event.row_key.value)
        if index < len(self._result.logs):
            self.app.push_screen(DetailScreen(self._result.logs[index]))
