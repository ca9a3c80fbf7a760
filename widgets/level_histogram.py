"""Search hits over time as bars stacked by level, with a cursor to zoom into some of them.

Focused, left and right move the cursor over the bars, space marks where a range starts,
and Enter asks to zoom into the marked bars (or the one under the cursor): the screen
narrows its time range to them on `Zoom`. A click moves the cursor too. The levels have the
log feed's colours; times read in the zone the screen shows (widgets/zones.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import ClassVar

from rich.style import Style
from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Label

from backend.schemas import Level
from backend.store.query import Bucket
from widgets.formatting import compact_count
from widgets.stacks import STACK_ORDER, column_spans, merged, stack
from widgets.zones import Zone

_LEGEND = " ".join(
    f"[${colour}]■[/] {level.value}"
    for level, colour in (
        (Level.INFO, "text-success"),
        (Level.WARN, "text-warning"),
        (Level.ERROR, "text-error"),
        (Level.FATAL, "error"),
    )
)
"""The levels in the colours of the bars (and of the log feed)."""
_MOVE = Binding.Group("Move")
_SPAN_UNITS = ((86400, "d"), (3600, "h"), (60, "m"), (1, "s"))


class LevelBars(Widget):
    """The bars, on all rows but the last; the last is their axis, which shows the cursor
    (`▲`, while focused) and the marked range (`━`)."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "level-bars--info",
        "level-bars--warn",
        "level-bars--error",
        "level-bars--fatal",
        "level-bars--axis",
        "level-bars--selected",
        "level-bars--cursor",
    }
    DEFAULT_CSS = """
    LevelBars {
        height: 3;
        & > .level-bars--info { color: $text-success; }
        & > .level-bars--warn { color: $text-warning; }
        & > .level-bars--error { color: $text-error; }
        & > .level-bars--fatal { color: $error; }
        & > .level-bars--axis { color: $foreground 30%; }
        & > .level-bars--selected { color: $accent; background: $accent 15%; }
        & > .level-bars--cursor { color: $accent; text-style: bold; }
    }
    """

    class Pointed(Message):
        """A click on the bar at `index`."""

        def __init__(self, index: int) -> None:
            super().__init__()
            self.index = index

    def __init__(self) -> None:
        super().__init__()
        self.bars: Sequence[Mapping[Level, int]] = ()
        self.cursor: int | None = None
        self.selection: range | None = None

    def render(self) -> Text:
        width, rows = self.size.width, max(0, self.size.height - 1)
        spans = column_spans(len(self.bars), width) or [range(0)] * width
        chosen = set(self.selection or ())
        selected = [not chosen.isdisjoint(span) for span in spans]
        pointed = [self.cursor in span for span in spans]
        # Whole styles: their colours are blended with the background, as the CSS says.
        colours = {
            level: self.get_component_rich_style(f"level-bars--{level.lower()}")
            for level in STACK_ORDER
        }
        axis, highlight, cursor = (
            self.get_component_rich_style(f"level-bars--{name}")
            for name in ("axis", "selected", "cursor")
        )
        text = Text(no_wrap=True, overflow="crop", end="")
        for line in stack(self.bars, width, rows):
            for column, cell in enumerate(line):
                style = colours[cell.lower] if cell.lower else self.rich_style
                if cell.upper is not None:
                    style += Style(bgcolor=colours[cell.upper].color)
                elif selected[column]:
                    style += Style(bgcolor=highlight.bgcolor)
                text.append(cell.glyph, style)
            text.append("\n")
        for column in range(width):
            if pointed[column]:
                text.append("▲", cursor)
            elif selected[column]:
                text.append("━", highlight)
            else:
                text.append("─", axis)
        return text

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        spans = column_spans(len(self.bars), self.size.width)
        if offset is not None and 0 <= offset.x < len(spans):
            self.post_message(self.Pointed(spans[offset.x].start))


class LevelHistogram(Vertical):
    """`LevelBars` over a line with the first and last times, the legend (or, focused, what
    the cursor is on) and the largest bar's count."""

    can_focus = True
    DEFAULT_CSS = """
    LevelHistogram {
        height: auto;
        &:focus { background: $boost; }
        #hist-axis { height: 1; }
        #hist-axis Label { width: auto; color: $text-muted; padding: 0 1; }
        #hist-axis #hist-info { width: 1fr; color: $foreground; content-align: center middle; }
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("left", "move(-1)", "Earlier bar", id="histogram.left", group=_MOVE),
        Binding("right", "move(1)", "Later bar", id="histogram.right", group=_MOVE),
        Binding("home", "edge(0)", "First bar", id="histogram.first", show=False),
        Binding("end", "edge(-1)", "Last bar", id="histogram.last", show=False),
        Binding(
            "space",
            "mark",
            "Mark",
            id="histogram.mark",
            tooltip="Mark the bar a range to zoom into starts at (again: unmark)",
        ),
        Binding(
            "enter",
            "zoom",
            "Zoom in",
            id="histogram.zoom",
            tooltip="Narrow the time range to the marked bars, or the bar under the cursor",
        ),
    ]

    class Zoom(Message):
        """Search the time from `start` up to (not including) `end`."""

        def __init__(self, start: datetime, end: datetime) -> None:
            super().__init__()
            self.start = start
            self.end = end

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._buckets: list[Bucket] = []
        self._zone = Zone.UTC
        self._mark: int | None = None
        self._cursor = 0

    def compose(self) -> ComposeResult:
        yield LevelBars()
        with Horizontal(id="hist-axis"):
            yield Label("", id="hist-start")
            yield Label(_LEGEND, id="hist-info")
            yield Label("", id="hist-end")
            yield Label("no hits", id="hist-max")

    @property
    def buckets(self) -> list[Bucket]:
        return self._buckets

    @property
    def cursor(self) -> int:
        return self._cursor

    @property
    def selection(self) -> range:
        """The bars Enter zooms into."""
        mark = self._cursor if self._mark is None else self._mark
        return range(min(mark, self._cursor), max(mark, self._cursor) + 1)

    def show(self, buckets: list[Bucket], zone: Zone) -> None:
        """New bars; the cursor and mark stay if the bars are the same times (another page)."""
        same = [b.start for b in buckets] == [b.start for b in self._buckets]
        self._buckets, self._zone = buckets, zone
        if not same:
            self._cursor, self._mark = max(0, len(buckets) - 1), None
        self._redraw()

    # Actions

    def action_move(self, step: int) -> None:
        self._point(self._cursor + step)

    def action_edge(self, index: int) -> None:
        self._point(index % len(self._buckets) if self._buckets else 0)

    def action_mark(self) -> None:
        self._mark = None if self._mark is not None else self._cursor
        self._redraw()

    def action_zoom(self) -> None:
        if not self._buckets:
            return
        chosen = self.selection
        first, last = self._buckets[chosen.start], self._buckets[chosen.stop - 1]
        self._mark = None
        self._redraw()
        self.post_message(self.Zoom(first.start, last.end))

    @on(LevelBars.Pointed)
    def _pointed(self, event: LevelBars.Pointed) -> None:
        self.focus()
        self._point(event.index)

    def _point(self, index: int) -> None:
        self._cursor = max(0, min(index, len(self._buckets) - 1))
        self._redraw()

    # Drawing

    def on_focus(self) -> None:
        self._redraw()

    def on_blur(self) -> None:
        self._redraw()

    def _redraw(self) -> None:
        bars = self.query_one(LevelBars)
        bars.bars = [bucket.levels for bucket in self._buckets]
        bars.cursor = self._cursor if self.has_focus and self._buckets else None
        bars.selection = self.selection if self._mark is not None else None
        bars.refresh()
        start, end, most = (
            self.query_one(name, Label) for name in ("#hist-start", "#hist-end", "#hist-max")
        )
        info = self.query_one("#hist-info", Label)
        if not self._buckets:
            for label in (start, end):
                label.update("")
            most.update("no hits")
            info.update(_LEGEND)
            return
        first, last = self._buckets[0], self._buckets[-1]
        start.update(self._time(first.start))
        end.update(self._time(last.end))
        width = _span_text(first.end - first.start)
        most.update(f"max {compact_count(max(b.count for b in self._buckets))}/{width}")
        info.update(self._info() if self.has_focus or self._mark is not None else _LEGEND)

    def _info(self) -> str:
        chosen = [self._buckets[index] for index in self.selection]
        levels = merged([bucket.levels for bucket in chosen], range(len(chosen)))
        hits = sum(levels.values())
        parts = [f"{self._time(chosen[0].start)} → {self._time(chosen[-1].end)}"]
        if len(chosen) > 1:
            parts.append(f"{len(chosen)} bars")
        parts.append(f"{hits:,} hits")
        parts += [
            f"{levels[level]:,} {level.value}" for level in reversed(STACK_ORDER) if level in levels
        ]
        if self._mark is not None:
            parts.append("Enter zooms")
        return " · ".join(parts)

    def _time(self, moment: datetime) -> str:
        days = {self._zone.show(b.start).date() for b in (self._buckets[0], self._buckets[-1])}
        return self._zone.show(moment).strftime("%m-%d %H:%M" if len(days) > 1 else "%H:%M:%S")


def _span_text(span: timedelta) -> str:
    """`30s`, `5m`, `1h`, `1d`: how long one bar is."""
    seconds = int(span.total_seconds())
    for size, unit in _SPAN_UNITS:
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{span.total_seconds():g}s"
