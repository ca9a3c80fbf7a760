"""The log feed pane: the live tail, its filters and their chips, the highlight, and the
paused indicator.

It keeps two bounded buffers: the ring of every recent entry, and the view of entries
that pass the filter, both in timestamp order (logs of several nodes arrive out of it,
and a late one goes to its place). New entries are filtered as they arrive; a new filter
re-filters the ring at once, on the event loop: 10,000 entries take a few milliseconds,
where a worker thread competing with the live feed for the GIL took a hundred and more
under load, and nothing can arrive in between, so no entry is lost or shown twice.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.reactive import reactive
from textual.widgets import Static

from backend.schemas import Level, Log, encode
from widgets.filter_chips import FilterChips
from widgets.filters import LEVELS, FilterError, LogFilter, compile_mark
from widgets.formatting import clock_time, compact_count, parse_time
from widgets.log_view import LogView
from widgets.names import KnownNames
from widgets.prompt import FilterPrompt
from widgets.ring import Ring
from widgets.suggest import NamesSuggester
from widgets.time_order import time_key
from widgets.timerange import TimeRangeError, parse_moment

DEFAULT_CAPACITY = 10_000


class LogFeed(Vertical):
    """Live logs with level, service/node and text filters."""

    ALLOW_MAXIMIZE = True
    """Maximising the rows (the focused view) takes the whole pane: title, paused bar, prompt."""

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
        Binding(
            "slash",
            "edit_text",
            "Filter",
            id="feed.text",
            tooltip="Filter by regex and field terms (code:PAY-500 response_time_ms>1000)",
        ),
        Binding(
            "h",
            "edit_mark",
            "Highlight",
            id="feed.highlight",
            show=False,
            tooltip="Mark a text or regex in every row; n / N jump between the marked entries",
        ),
        Binding("x", "clear_filters", "Clear filters", id="feed.clear", show=False),
        Binding(
            "t",
            "go_to_time",
            "Go to time",
            id="feed.time",
            show=False,
            tooltip="Pause at the first entry at or after a time (UTC)",
        ),
        Binding(
            "e",
            "export",
            "Export",
            id="feed.export",
            show=False,
            tooltip="Write the entries shown to a JSON-lines file here",
        ),
    ]

    filter: reactive[LogFilter] = reactive(LogFilter(), init=False)

    def __init__(
        self, names: KnownNames, *, capacity: int = DEFAULT_CAPACITY, id: str | None = None
    ) -> None:
        super().__init__(id=id)
        self._names = names
        self._ring: Ring[Log] = Ring(capacity)
        self._refused = 0
        self._history = ""
        self._view = LogView(capacity, id="log-view")

    def compose(self) -> ComposeResult:
        yield FilterChips(id="feed-chips")
        yield self._view
        yield Static(id="paused")
        yield FilterPrompt(done_focus=self._view, id="filter-prompt")

    def on_mount(self) -> None:
        self.watch(self._view, "follow", self._show_state)
        self.watch(self._view, "unseen", self._show_state)
        self.watch(self._view, "skipped", self._show_state)
        self._show_state()

    @property
    def view(self) -> LogView:
        return self._view

    @property
    def ring(self) -> Ring[Log]:
        return self._ring

    def add_logs(self, logs: list[Log], refused: int = 0) -> None:
        """Take a batch: keep it in the ring and show what passes the filter, both in
        the order the entries were logged, whatever order they arrived in."""
        self._refused += refused
        self._view.skip(refused)
        self._ring.merge(logs, time_key)
        self._view.append(self.filter.select(logs))
        self._show_state()

    def show_history(self, state: str) -> None:
        """Say in the subtitle how the history from the store came (or did not)."""
        self._history = state
        self._show_state()

    # Filters

    def watch_filter(self, log_filter: LogFilter) -> None:
        self._view.replace(log_filter.select(self._ring))
        self.query_one(FilterChips).show(log_filter.fields.terms)
        self._show_state()

    @on(FilterChips.Changed)
    def _chip_removed(self, event: FilterChips.Changed) -> None:
        event.stop()
        self.filter = self.filter.with_fields(event.chips.terms)

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
            "Filter:",
            self.filter.text,
            placeholder="regex (lower case: any case, !regex hides), code:PAY-500 service:Pay*",
            check=self._check_typed,
        )

    def _check_typed(self, value: str) -> str | None:
        try:
            self.filter.with_typed(value)
        except FilterError as error:
            return str(error)
        return None

    def action_edit_mark(self) -> None:
        mark = self._view.mark
        self.query_one(FilterPrompt).open(
            "mark",
            "Highlight:",
            mark.pattern if mark is not None else "",
            placeholder="regex to mark (lower case: any case); n / N next / previous, [ ] errors",
            check=_check_mark,
        )

    def set_mark(self, text: str) -> None:
        """Highlight what `text` (a regex, smart case) matches; empty clears it."""
        self._view.set_mark(compile_mark(text))
        self._show_state()

    def action_go_to_time(self) -> None:
        self.query_one(FilterPrompt).open(
            "time",
            "Go to:",
            "",
            placeholder="10:15[:30] on the newest entry's day, or 2026-11-24 10:15 (UTC)",
            check=self._check_time,
        )

    def _newest_time(self) -> datetime:
        entries = self._view.entries
        newest = parse_time(entries[-1].timestamp) if entries else None
        return newest or datetime.now(UTC)

    def _check_time(self, value: str) -> str | None:
        try:
            parse_moment(value, self._newest_time())
        except TimeRangeError as error:
            return str(error)
        return None

    def _go_to(self, value: str) -> None:
        moment = parse_moment(value, self._newest_time())
        if moment is None:
            return
        if not self._view.go_to(moment):
            self.notify(
                f"no entry at or after {clock_time(moment)} in the feed", severity="warning"
            )

    def action_export(self) -> None:
        entries = list(self._view.entries)
        if not entries:
            self.notify("nothing to export: the feed shows no entries", severity="warning")
            return
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        self._export(Path.cwd() / f"logdeck-feed-{stamp}.jsonl", entries)

    @work(thread=True, group="export")
    def _export(self, path: Path, entries: list[Log]) -> None:
        """Written off the event loop: ten thousand entries take a moment to encode."""
        try:
            path.write_bytes(b"".join(encode(entry) + b"\n" for entry in entries))
        except OSError as error:
            self.app.call_from_thread(
                self.notify, f"export failed: {error.strerror}: {path}", severity="error"
            )
            return
        self.app.call_from_thread(self.notify, f"{len(entries):,} entries written to {path}")

    def _check_names(self, value: str) -> str | None:
        unknown = self._names.classify(value)[2]
        if unknown:
            return f"unknown: {', '.join(unknown)} (say service:NAME or node:NAME)"
        return None

    @on(FilterPrompt.Applied)
    def _prompt_applied(self, message: FilterPrompt.Applied) -> None:
        if message.mode == "text":
            self.filter = self.filter.with_typed(message.value)
        elif message.mode == "mark":
            self.set_mark(message.value)
        elif message.mode == "time":
            self._go_to(message.value)
        else:
            services, nodes, _ = self._names.classify(message.value)
            self.filter = self.filter.with_names(services, nodes)

    # Title, subtitle and the paused bar

    def _show_state(self) -> None:
        view = self._view
        self.set_class(not view.follow, "-paused")
        state = "▶ following" if view.follow else "‖ paused"
        self.border_title = f"Logs {state}"
        parts = [f"filter: {self.filter.describe()}"] if self.filter.active else []
        parts.append(f"{compact_count(len(view.entries))} shown")
        if view.mark is not None:
            parts.append(f"highlight /{view.mark.pattern}/ (n N)")
        if self._history:
            parts.append(self._history)
        dropped = self._ring.dropped + self._refused
        if dropped:
            parts.append(f"{compact_count(dropped)} dropped")
        self.border_subtitle = " · ".join(parts)
        if not view.follow:
            new = f"+{view.unseen:,} new lines" if view.unseen else "no new lines"
            skipped = f" · {view.skipped:,} skipped" if view.skipped else ""
            self.query_one("#paused", Static).update(
                f"‖ Paused · {new}{skipped} · End or Space to follow"
            )


def _check_mark(value: str) -> str | None:
    try:
        compile_mark(value)
    except FilterError as error:
        return str(error)
    return None
