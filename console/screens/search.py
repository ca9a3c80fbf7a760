"""Search of stored logs: text, field filters, level, service, node and time range, page by
page, with the hits over time stacked by level.

The text box takes the filter language of backend/logfilter: its field terms and comparisons
(`level:ERROR`, `service:Pay*`, `response_time_ms>1000`, `-node:x`) become chips under it,
each removable, and what is left (words, "phrases", `simple_query_string`'s operators) is
searched as before. The time range is a preset (F6 to F9), or a typed since and until
(`now-15m` too); Enter on the histogram zooms into the bars picked with its cursor and F4
zooms back out; Ctrl+T shows the times in UTC or in local time. Each query runs in an
exclusive worker, so a new one cancels the one still running; whatever goes wrong (a bad
term or time, a backend error) is shown on the screen.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Label, Select, Static

from backend.logfilter import Expression, ExpressionError, split_fields
from backend.observe.base import Observer
from backend.schemas import Level, Log
from backend.store.query import LogQuery, SearchResult
from console.screens.detail import DetailScreen
from widgets.cells import theme_style
from widgets.filter_chips import FilterChip, FilterChips
from widgets.filters import LEVELS
from widgets.health_bar import HealthBar, TroubleBanner
from widgets.level_histogram import LevelHistogram
from widgets.log_view import message_text
from widgets.names import KnownNames, split_names
from widgets.suggest import NamesSuggester
from widgets.timerange import PRESET_LABELS, TimeRangeError, parse_moment, resolve
from widgets.zones import Zone

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
_LAST = Binding.Group("Last 5m/15m/1h/24h")
_MILLISECOND = timedelta(milliseconds=1)


class SearchScreen(Screen[None]):
    """A query form, the hits over time, and one page of results, newest first."""

    DEFAULT_CSS = """
    SearchScreen {
        #chips { margin-left: 5; }
        #q-error { display: none; color: $text-error; padding-left: 5; }
        #q-error.-shown { display: block; }
        #zone { width: auto; color: $text-muted; }
        #histogram LevelBars { height: 3; }
        &.-tall #histogram LevelBars { height: 5; }
        Footer.-compact FooterLabel { margin-right: 1; }
        Footer.-compact FooterKey.-command-palette { margin-right: 0; }
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="search.back"),
        Binding("f5", "run", "Search", id="search.run"),
        Binding("pagedown", "page(1)", "Next page", id="search.next", priority=True),
        Binding("pageup", "page(-1)", "Previous page", id="search.prev", priority=True),
        Binding("n", "page(1)", "Next page", id="search.next_key", show=False),
        Binding("p", "page(-1)", "Previous page", id="search.prev_key", show=False),
        Binding("f6", "preset('5m')", "Last 5 min", id="search.last_5m", group=_LAST),
        Binding("f7", "preset('15m')", "Last 15 min", id="search.last_15m", group=_LAST),
        Binding("f8", "preset('1h')", "Last 1 h", id="search.last_1h", group=_LAST),
        Binding("f9", "preset('24h')", "Last 24 h", id="search.last_24h", group=_LAST),
        Binding(
            "f3",
            "histogram",
            "Bars",
            id="search.histogram",
            tooltip="To the histogram: ← → move, space marks, Enter zooms in",
        ),
        Binding(
            "f4",
            "zoom_out",
            "Zoom out",
            id="search.zoom_out",
            tooltip="Back to the time range before the last zoom",
        ),
        Binding(
            "ctrl+t",
            "toggle_zone",
            "UTC/local",
            id="search.zone",
            tooltip="Show times, and read typed ones, in UTC or in local time",
        ),
    ]
    ALL_BINDINGS: ClassVar[list[BindingType]] = [
        *BINDINGS,
        *FilterChip.BINDINGS,
        *LevelHistogram.BINDINGS,
    ]
    """The keys of the screen and of its widgets, for the help screen and the key map."""

    def __init__(
        self, observer: Observer, names: KnownNames, *, clock: Callable[[], datetime]
    ) -> None:
        super().__init__()
        self._observer = observer
        self._names = names
        self._clock = clock
        self._query: LogQuery | None = None
        self._result: SearchResult | None = None
        self._zone = Zone.UTC
        self._zooms: list[tuple[str, str, str]] = []  # the ranges zoomed from: preset, since, until

    @property
    def current_query(self) -> LogQuery | None:
        """The query whose results are on screen (or being fetched)."""
        return self._query

    @property
    def result(self) -> SearchResult | None:
        return self._result

    @property
    def zone(self) -> Zone:
        return self._zone

    def compose(self) -> ComposeResult:
        suggester = NamesSuggester(self._names.all)
        yield HealthBar()
        yield TroubleBanner()
        with Vertical(id="search-form") as form:
            form.border_title = "Search stored logs"
            with Horizontal(classes="form-row"):
                yield Label("Text", classes="form-label")
                yield Input(
                    placeholder='words, "phrases", level:ERROR service:Pay* '
                    "response_time_ms>1000 -node:x (Enter searches)",
                    id="q",
                    compact=True,
                    select_on_focus=False,  # back from a chip, typing goes on, replaces nothing
                )
            yield FilterChips(id="chips")
            yield Static("", id="q-error")
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
                yield Input(
                    placeholder="since (now-1h, 10:15, 2026-11-24 10:15)", id="since", compact=True
                )
                yield Input(placeholder="until (empty: now)", id="until", compact=True)
                yield Label("", id="zone")
        yield Static("", id="search-status")
        yield LevelHistogram(id="histogram")
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
        self._show_zone()
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
        """The query the form describes, its chips and the field terms still in the box;
        `TimeRangeError` if a typed time is unreadable, `ExpressionError` if a term is."""
        level = self.query_one("#level", Select).value
        preset = self.query_one("#range", Select).value
        since, until = resolve(
            str(preset),
            self.query_one("#since", Input).value,
            self.query_one("#until", Input).value,
            self._clock(),
            self._zone,
        )
        typed, text = split_fields(self.query_one("#q", Input).value)
        chips = self.query_one(FilterChips).terms
        return LogQuery(
            text=text.strip(),
            levels=LEVEL_CHOICES.get(str(level), frozenset()),
            services=frozenset(split_names(self.query_one("#service", Input).value)),
            nodes=frozenset(split_names(self.query_one("#node", Input).value)),
            expression=Expression((*chips, *(term for term in typed.terms if term not in chips))),
            since=since,
            until=until,
            page=page,
        )

    def action_run(self) -> None:
        """Search what the form says, once the field terms typed in the box are chips."""
        if not self._take_filters():
            return
        try:
            query = self.build_query()
        except TimeRangeError as error:
            self._status(str(error), "text-error")
            return
        self._start(query)

    def _take_filters(self) -> bool:
        """Move the box's field terms to the chips; False (and the parser's message under
        the box) if one cannot be read."""
        box = self.query_one("#q", Input)
        shown = self.query_one("#q-error", Static)
        try:
            typed, text = split_fields(box.value)
        except ExpressionError as error:
            shown.update(Text(str(error)))
            shown.add_class("-shown")
            return False
        shown.remove_class("-shown")
        if typed.terms:
            self.query_one(FilterChips).add(typed.terms)
            box.value = text
            box.cursor_position = len(text)
        return True

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

    # Time: presets, zoom, zone

    def action_preset(self, preset: str) -> None:
        self._zooms.clear()
        self._set_range(preset)
        self.action_run()

    def action_histogram(self) -> None:
        self.set_focus(self.query_one(LevelHistogram))

    def action_zoom_out(self) -> None:
        if self._zooms:
            self._set_range(*self._zooms.pop())
            self.action_run()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Offer zooming out only when zoomed in."""
        return bool(self._zooms) if action == "zoom_out" else True

    @on(LevelHistogram.Zoom)
    def _zoom(self, event: LevelHistogram.Zoom) -> None:
        select = self.query_one("#range", Select)
        since, until = (self.query_one(name, Input).value for name in ("#since", "#until"))
        self._zooms.append((str(select.value), since, until))
        # `until` is inclusive in both stores: stop a millisecond before the next bar.
        zone = self._zone
        self._set_range("custom", zone.typed(event.start), zone.typed(event.end - _MILLISECOND))
        self.action_run()

    def _set_range(self, preset: str, since: str | None = None, until: str | None = None) -> None:
        """Show a range in the form without the change starting a search of its own."""
        with self.prevent(Select.Changed):
            self.query_one("#range", Select).value = preset
        self._custom_range(preset == "custom")
        for name, text in (("#since", since), ("#until", until)):
            if text is not None:
                self.query_one(name, Input).value = text
        self.refresh_bindings()

    def action_toggle_zone(self) -> None:
        """Show times in the other zone; typed times keep the moments they stood for."""
        old, self._zone = self._zone, self._zone.toggled()
        now = self._clock()
        for name in ("#since", "#until"):
            field = self.query_one(name, Input)
            try:
                moment = parse_moment(field.value, now, old)
                moved = moment != parse_moment(field.value, now, self._zone)
            except TimeRangeError:
                continue
            if moment is not None and moved:
                field.value = self._zone.typed(moment)
        self._show_zone()
        if self._result is not None:
            table = self.query_one("#results", DataTable)
            for index, log in enumerate(self._result.logs):
                table.update_cell(str(index), "time", Text(self._zone.day_time(log.timestamp)))
            self.query_one(LevelHistogram).show(self._result.buckets, self._zone)

    def _show_zone(self) -> None:
        label = self.query_one("#zone", Label)
        label.update(f"times in {self._zone.label(self._clock())}")
        label.tooltip = "Ctrl+T: UTC or local time"

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
        self.query_one(LevelHistogram).show(result.buckets, self._zone)
        self._status(self._summary(result, query), note=result.note)

    def _cells(self, log: Log) -> list[Text]:
        colour = theme_style(self.app, _LEVEL_COLOURS[log.log_level], bold=True)
        return [
            Text(self._zone.day_time(log.timestamp)),
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

    @on(FilterChips.Changed)
    def _filters_changed(self) -> None:
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
        except (TimeRangeError, ExpressionError):
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
