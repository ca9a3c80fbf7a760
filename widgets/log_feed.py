"""The log feed pane: the live tail, its filters, and the paused indicator.

It keeps two bounded buffers: the ring of every recent entry, and the view of entries
that pass the filter. New entries are filtered as they arrive; a new filter re-filters
the ring in a thread, off the event loop, and entries that arrive meanwhile are caught
up by sequence number, so none is lost or shown twice.
"""

from __future__ import annotations

from dataclasses import replace
from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Static

from backend.schemas import Level, Log
from widgets.filters import LEVELS, FilterError, LogFilter, compile_text
from widgets.formatting import compact_count
from widgets.log_view import LogView
from widgets.names import KnownNames
from widgets.prompt import FilterPrompt
from widgets.ring import Ring
from widgets.suggest import NamesSuggester

DEFAULT_CAPACITY = 10_000


class LogFeed(Vertical):
    """Live logs with level, service/node and text filters."""

    DEFAULT_CSS = """
    LogFeed {
        #paused {
            display: none;
            height: 1;
            background: $warning-muted;
            color: $text-warning;
            text-style: bold;
            padding: 0 1;
        }
        &.-paused #paused { display: block; }
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        *(
            Binding(
                str(number),
                f"toggle_level('{level}')",
                f"Toggle {level}",
                tooltip=f"Toggle {level} (no level picked: every level)",
                id=f"feed.level.{level.lower()}",
                show=False,
            )
            for number, level in enumerate(LEVELS, start=1)
        ),
        Binding(
            "m",
            "cycle_min_level",
            "Min level",
            id="feed.min_level",
            show=False,
            tooltip="Minimum level: WARN, ERROR, FATAL, then all again",
        ),
        Binding(
            "s",
            "pick_names",
            "Service/node",
            id="feed.names",
            tooltip="Filter by services and nodes (Tab completes)",
        ),
        Binding("slash", "edit_text", "Text", id="feed.text", tooltip="Filter by text or regex"),
        Binding("x", "clear_filters", "Clear filters", id="feed.clear", show=False),
    ]

    filter: reactive[LogFilter] = reactive(LogFilter(), init=False)

    class Refiltered(Message):
        """The ring re-filtered in a thread: matches among the first `end` entries."""

        def __init__(self, log_filter: LogFilter, end: int, matches: list[Log]) -> None:
            super().__init__()
            self.filter = log_filter
            self.end = end
            self.matches = matches

    def __init__(
        self, names: KnownNames, *, capacity: int = DEFAULT_CAPACITY, id: str | None = None
    ) -> None:
        super().__init__(id=id)
        self._names = names
        self._ring: Ring[Log] = Ring(capacity)
        self._refused = 0
        self._view = LogView(capacity, id="log-view")

    def compose(self) -> ComposeResult:
        yield self._view
        yield Static(id="paused")
        yield FilterPrompt(id="filter-prompt")

    def on_mount(self) -> None:
        self.watch(self._view, "follow", self._show_state)
        self.watch(self._view, "unseen", self._show_state)
        self._show_state()

    @property
    def view(self) -> LogView:
        return self._view

    @property
    def ring(self) -> Ring[Log]:
        return self._ring

    def add_logs(self, logs: list[Log], refused: int = 0) -> None:
        """Take a batch: keep it in the ring and show what passes the filter."""
        self._refused += refused
        self._ring.extend(logs)
        self._view.append(self.filter.select(logs))
        self._show_state()

    # Filters

    def watch_filter(self, log_filter: LogFilter) -> None:
        end, entries = self._ring.snapshot()
        self._refilter(log_filter, end, entries)
        self._show_state()

    @work(thread=True, exclusive=True, group="refilter")
    def _refilter(self, log_filter: LogFilter, end: int, entries: list[Log]) -> None:
        self.post_message(self.Refiltered(log_filter, end, log_filter.select(entries)))

    @on(Refiltered)
    def _apply_refiltered(self, message: Refiltered) -> None:
        if message.filter is not self.filter:
            return  # a newer filter is on its way
        late = message.filter.select(self._ring.since(message.end))
        self._view.replace(message.matches + late)
        self._show_state()

    def toggle_node(self, node: str) -> None:
        self.filter = self.filter.toggle_node(node)

    def action_toggle_level(self, level: str) -> None:
        self.filter = self.filter.toggle_level(Level(level))

    def set_min_level(self, level: Level | None) -> None:
        """Show `level` and above, whatever single levels were picked."""
        self.filter = replace(self.filter, levels=frozenset(), min_level=level)

    def action_cycle_min_level(self) -> None:
        self.filter = self.filter.cycle_min_level()

    def action_clear_filters(self) -> None:
        self.filter = LogFilter()

    def action_pick_names(self) -> None:
        current = sorted(self.filter.services) + sorted(self.filter.nodes)
        self.query_one(FilterPrompt).open(
            "names",
            "Service/node:",
            ", ".join(current),
            placeholder="names, comma separated (Tab completes, empty shows all)",
            check=self._check_names,
            suggester=NamesSuggester(self._names.all),
        )

    def action_edit_text(self) -> None:
        self.query_one(FilterPrompt).open(
            "text",
            "Text:",
            self.filter.text,
            placeholder="regex, lower case ignores case, !regex hides matches",
            check=_check_text,
        )

    def _check_names(self, value: str) -> str | None:
        unknown = self._names.classify(value)[2]
        if unknown:
            return f"unknown: {', '.join(unknown)} (say service:NAME or node:NAME)"
        return None

    @on(FilterPrompt.Applied)
    def _prompt_applied(self, message: FilterPrompt.Applied) -> None:
        if message.mode == "text":
            self.filter = self.filter.with_text(message.value)
        else:
            services, nodes, _ = self._names.classify(message.value)
            self.filter = self.filter.with_names(services, nodes)

    @on(FilterPrompt.Closed)
    def _prompt_closed(self) -> None:
        self._view.focus()

    # Title, subtitle and the paused bar

    def _show_state(self) -> None:
        view = self._view
        self.set_class(not view.follow, "-paused")
        state = "▶ following" if view.follow else "‖ paused"
        self.border_title = f"Logs {state}"
        parts = [f"filter: {self.filter.describe()}"] if self.filter.active else []
        parts.append(f"{compact_count(len(view.entries))} shown")
        dropped = self._ring.dropped + self._refused
        if dropped:
            parts.append(f"{compact_count(dropped)} dropped")
        self.border_subtitle = " · ".join(parts)
        if not view.follow:
            new = f"+{view.unseen:,} new lines" if view.unseen else "no new lines"
            self.query_one("#paused", Static).update(f"‖ Paused · {new} · End or Space to follow")


def _check_text(value: str) -> str | None:
    try:
        compile_text(value)
    except FilterError as error:
        return str(error)
    return None
