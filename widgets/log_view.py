"""The live tail: a virtual list of log entries that draws only the rows on screen.

Built like toolong's view rather than on `Log`: entries stay typed (the detail screen
needs every field), each visible row is formatted on demand and cached, and there is a
cursor to pick an entry. Entries are kept in timestamp order: a late one is put in its
place, and while paused the view moves with it so the rows on screen stay put. Following is
a reactive: scrolling or moving up pauses it, new entries are then counted instead of
scrolled to, and End resumes. A paused reader's entries are never dropped: the view grows
(up to ten times its capacity) rather than lose the row being read or any after it, and
the newest entries that still do not fit are skipped and counted.

A highlight marks what a regex matches in every row without hiding any, and keys move the
cursor to the next or previous marked entry, or ERROR-or-worse one, as lnav's do.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.cache import LRUCache
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.scrollbar import ScrollTo
from textual.strip import Strip

from backend.schemas import Level, Log
from widgets.formatting import log_time, parse_time
from widgets.ring import Ring
from widgets.time_order import time_key

_CONTROL = {code: "�" for code in range(32)} | {ord("\t"): " ", ord("\n"): "⏎"}
_NAME_WIDTH_LIMIT = 18
COMPACT_BELOW = 100
"""Narrower than this, rows drop the milliseconds."""
PAUSED_CAPACITY_FACTOR = 10
"""While paused the view holds up to this many times its capacity: everything from the
reader's row on is kept until then, and only what is past it is skipped (and counted)."""


def _clean(text: str, limit: int) -> str:
    """At most `limit` characters with control characters made visible and harmless."""
    return text[:limit].translate(_CONTROL)


def _column(text: str, width: int) -> str:
    """`text` in a column `width` characters wide, cut with `…` if it is longer."""
    if len(text) > width:
        return _clean(text, width - 1) + "…"
    return _clean(text, width).ljust(width)


def name_limit(width: int) -> int:
    """How wide the node and the service columns may grow in rows `width` cells wide:
    a seventh of it each, between 6 and 18, so the message keeps most of a narrow row."""
    return max(6, min(_NAME_WIDTH_LIMIT, width // 7))


def message_text(log: Log) -> str:
    """The message with what its level adds: timings for WARN, error details after it."""
    if log.error_details is not None:
        details = log.error_details
        return f"{log.message} · {details.error_code}: {details.error_message}"
    if log.response_time_ms is not None and log.threshold_limit_ms is not None:
        return f"{log.message} · {log.response_time_ms:g} ms > {log.threshold_limit_ms:g} ms"
    return log.message


class LogView(ScrollView, can_focus=True):
    """Log entries, newest at the bottom, coloured by level."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "log-view--time",
        "log-view--node",
        "log-view--service",
        "log-view--info",
        "log-view--warn",
        "log-view--error",
        "log-view--fatal",
        "log-view--error-message",
        "log-view--cursor",
        "log-view--match",
    }
    DEFAULT_CSS = """
    LogView {
        background: $surface;
        color: $foreground;
        overflow-x: hidden;
        overflow-y: scroll;
        & > .log-view--time { color: $text-muted; }
        & > .log-view--node { color: $text-secondary; }
        & > .log-view--service { color: $text-primary; }
        & > .log-view--info { color: $text-success; }
        & > .log-view--warn { color: $text-warning; text-style: bold; }
        & > .log-view--error { color: $text-error; text-style: bold; }
        & > .log-view--fatal { color: $error; background: $error-muted; text-style: bold reverse; }
        & > .log-view--error-message { color: $text-error; }
        & > .log-view--cursor { background: $block-cursor-blurred-background; }
        &:focus > .log-view--cursor {
            background: $block-cursor-background;
            color: $block-cursor-foreground;
        }
        & > .log-view--match { background: $warning; color: $background; text-style: bold; }
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "space",
            "toggle_follow",
            "Pause",
            id="feed.pause",
            tooltip="Pause or follow the live tail",
        ),
        Binding("end", "follow", "Follow", id="feed.follow", show=False),
        Binding("enter,o", "open", "Open", id="feed.open", tooltip="Show the entry as JSON"),
        Binding("up,k", "cursor_up", "Previous entry", id="feed.up", show=False),
        Binding("down,j", "cursor_down", "Next entry", id="feed.down", show=False),
        Binding("pageup", "page_up", "Page up", id="feed.page_up", show=False),
        Binding("pagedown", "page_down", "Page down", id="feed.page_down", show=False),
        Binding("home", "oldest", "Oldest entry", id="feed.oldest", show=False),
        Binding(
            "n",
            "next_match",
            "Next match",
            id="feed.next_match",
            show=False,
            tooltip="Move to the next entry the highlight marks (h sets it)",
        ),
        Binding(
            "N",
            "previous_match",
            "Previous match",
            id="feed.previous_match",
            show=False,
            tooltip="Move to the previous entry the highlight marks",
        ),
        Binding(
            "right_square_bracket",
            "next_problem",
            "Next error",
            id="feed.next_error",
            show=False,
            tooltip="Move to the next ERROR or FATAL entry",
        ),
        Binding(
            "left_square_bracket",
            "previous_problem",
            "Previous error",
            id="feed.previous_error",
            show=False,
            tooltip="Move to the previous ERROR or FATAL entry",
        ),
    ]

    follow: reactive[bool] = reactive(True)
    """Whether new entries scroll into view; False while the user reads back."""
    unseen: reactive[int] = reactive(0)
    """Entries that arrived since following paused."""
    skipped: reactive[int] = reactive(0)
    """Entries that arrived since following paused and could not be kept."""

    class EntryChosen(Message):
        """The user asked to see an entry in full."""

        def __init__(self, log: Log) -> None:
            super().__init__()
            self.log = log

    def __init__(self, capacity: int, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._capacity = capacity
        self._entries: Ring[Log] = Ring(capacity)
        self._cursor: int | None = None
        self._node_width = 4
        self._service_width = 4
        self._cache: LRUCache[tuple[int, int, bool], Strip] = LRUCache(1024)
        self._styles: dict[str, Style] = {}
        self._mark: re.Pattern[str] | None = None

    @property
    def mark(self) -> re.Pattern[str] | None:
        """What the highlight marks in every row, if anything."""
        return self._mark

    def set_mark(self, pattern: re.Pattern[str] | None) -> None:
        self._mark = pattern
        self._cache.clear()
        self.refresh()

    @property
    def entries(self) -> Ring[Log]:
        return self._entries

    def selected(self) -> Log | None:
        """The highlighted entry, or the newest one while following."""
        if not self._entries:
            return None
        index = len(self._entries) - 1 if self._cursor is None else self._cursor
        return self._entries[index]

    def append(self, logs: list[Log]) -> None:
        """Add entries that passed the filter in their place by time, keeping the reader's
        place while paused: the entry under the cursor stays in its row on screen."""
        if not logs:
            return
        self._fit_columns(logs)
        batch = sorted(logs, key=time_key)
        entries = self._entries
        anchor = None if self.follow else self._anchor()
        if anchor is not None:
            batch = self._room_for(batch, anchor)
            if not batch:
                self.unseen += len(logs)
                return
        late = bool(entries) and time_key(batch[0]) < time_key(entries[-1])
        above = 0
        if late and anchor is not None:
            above = bisect_left(batch, time_key(entries[anchor]), key=time_key)
        evicted = entries.merge(batch, time_key)
        if late:
            self._cache.clear()  # rows after the first late entry moved down
        self._resize()
        if self.follow:
            self.scroll_end(animate=False, immediate=True, x_axis=False)
        else:
            self.unseen += len(logs)
            if above != evicted:
                self._shift(above - evicted)
        self.refresh()

    def _room_for(self, batch: list[Log], anchor: int) -> list[Log]:
        """What of `batch` (in time order) a paused view can keep: room is made by letting
        go of entries above the reader's row, never the row itself or any after it; the
        newest entries that still do not fit are skipped, and counted."""
        over = len(self._entries) + len(batch) - self._entries.capacity - anchor
        if over <= 0:
            return batch
        skip = min(len(batch), over)
        self.skipped += skip
        return batch[: len(batch) - skip]

    def skip(self, count: int) -> None:
        """Count entries a paused reader will not see: the console could not keep them."""
        if not self.follow:
            self.skipped += count

    def replace(self, logs: list[Log]) -> None:
        """Show a new set of entries (after the filter changed), keeping the chosen one."""
        chosen = None if self.follow else self.selected()
        self._entries = Ring(self._entries.capacity)
        self._entries.extend(logs)
        self._cache.clear()
        self._fit_columns(logs)
        self._resize()
        if self.follow:
            self.scroll_end(animate=False, immediate=True, x_axis=False)
        else:
            self._cursor = self._index_of(chosen)
            self.unseen = 0
            self._show_cursor()
        self.refresh()

    def go_to(self, moment: datetime) -> bool:
        """Pause with the cursor on the first entry at or after `moment`; False if none is."""
        for index, log in enumerate(self._entries):
            logged = parse_time(log.timestamp)
            if logged is not None and logged >= moment:
                self.follow = False
                self._cursor = index
                self._cache.clear()
                self._show_cursor()
                self.refresh()
                return True
        return False

    def _index_of(self, log: Log | None) -> int | None:
        if not self._entries:
            return None
        if log is not None:
            for index in range(len(self._entries) - 1, -1, -1):
                if self._entries[index] is log:
                    return index
        return len(self._entries) - 1

    def _resize(self) -> None:
        self.virtual_size = Size(0, len(self._entries))

    def _fit_columns(self, logs: list[Log]) -> None:
        node = max((len(log.node_id) for log in logs), default=0)
        service = max((len(log.service_name) for log in logs), default=0)
        node, service = max(node, self._node_width), max(service, self._service_width)
        node, service = min(node, _NAME_WIDTH_LIMIT), min(service, _NAME_WIDTH_LIMIT)
        if (node, service) != (self._node_width, self._service_width):
            self._node_width, self._service_width = node, service
            self._cache.clear()

    def _anchor(self) -> int | None:
        """The row a paused reader holds on to: the cursor's, else the top one on screen."""
        if not self._entries:
            return None
        if self._cursor is not None:
            return self._cursor
        return min(self.scroll_offset.y, len(self._entries) - 1)

    def _shift(self, rows: int) -> None:
        """Entries came in above the reader's row (`rows` > 0) or left at the top (< 0):
        move the view and cursor with it, so the rows on screen stay put."""
        self._cache.clear()
        if self._cursor is not None:
            self._cursor = max(0, self._cursor + rows)
        self.scroll_to(y=max(0, self.scroll_offset.y + rows), animate=False, immediate=True)

    # Following and the cursor

    def watch_follow(self, follow: bool) -> None:
        if follow:
            self._cursor = None
            self.unseen = 0
            self.skipped = 0
            self._entries.resize(self._capacity)
            self._resize()
            self.scroll_end(animate=False, immediate=True, x_axis=False)
        else:
            self._entries.resize(self._capacity * PAUSED_CAPACITY_FACTOR)
            if self._cursor is None and self._entries:
                self._cursor = len(self._entries) - 1
        self._cache.clear()
        self.refresh()

    def on_resize(self) -> None:
        """A pane that grew or shrank (a banner, a maximised pane restored) still shows the
        newest entry while following, and the cursor's while paused."""
        if self.follow:
            self.scroll_end(animate=False, immediate=True, x_axis=False)
        else:
            self._show_cursor()

    def action_toggle_follow(self) -> None:
        self.follow = not self.follow

    def action_follow(self) -> None:
        self.follow = True

    def action_open(self) -> None:
        log = self.selected()
        if log is not None:
            self.post_message(self.EntryChosen(log))

    def _move_cursor(self, delta: int) -> None:
        if not self._entries:
            return
        if self.follow:
            self.follow = False  # the watcher puts the cursor on the newest entry
            delta = delta + 1 if delta < 0 else 0
        last = len(self._entries) - 1
        current = last if self._cursor is None else self._cursor
        self._cursor = max(0, min(last, current + delta))
        self._cache.clear()
        self._show_cursor()
        self.refresh()

    def _show_cursor(self) -> None:
        if self._cursor is None:
            return
        top = self.scroll_offset.y
        height = self.scrollable_content_region.height
        if self._cursor < top:
            self.scroll_to(y=self._cursor, animate=False, immediate=True)
        elif height and self._cursor >= top + height:
            self.scroll_to(y=self._cursor - height + 1, animate=False, immediate=True)

    def action_cursor_up(self) -> None:
        self._move_cursor(-1)

    def action_cursor_down(self) -> None:
        if not self.follow:
            self._move_cursor(1)

    def action_page_up(self) -> None:
        self._move_cursor(-max(1, self.scrollable_content_region.height - 1))

    def action_page_down(self) -> None:
        if not self.follow:
            self._move_cursor(max(1, self.scrollable_content_region.height - 1))

    def action_oldest(self) -> None:
        self._move_cursor(-len(self._entries))

    def action_next_match(self) -> None:
        self._jump(1, self._marked, "match")

    def action_previous_match(self) -> None:
        self._jump(-1, self._marked, "match")

    def action_next_problem(self) -> None:
        self._jump(1, _is_problem, "ERROR or FATAL")

    def action_previous_problem(self) -> None:
        self._jump(-1, _is_problem, "ERROR or FATAL")

    def _marked(self, log: Log) -> bool:
        mark = self._mark
        return mark is not None and any(mark.search(text) for text in row_texts(log))

    def _jump(self, step: int, test: Callable[[Log], bool], what: str) -> None:
        """Pause with the cursor on the nearest entry past it, `step` 1 later or -1 earlier,
        that passes `test`; while following the search starts after the newest entry."""
        if what == "match" and self._mark is None:
            self.notify("nothing highlighted: h marks a text or regex first", severity="warning")
            return
        entries = list(self._entries)
        index = (len(entries) if self._cursor is None else self._cursor) + step
        while 0 <= index < len(entries) and not test(entries[index]):
            index += step
        if not 0 <= index < len(entries):
            later = "later" if step > 0 else "earlier"
            self.notify(f"no {later} {what} in the feed", severity="warning", timeout=3)
            return
        self.follow = False
        self._cursor = index
        self._cache.clear()
        self._show_cursor()
        self.refresh()

    def on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        self.follow = False
        self.call_after_refresh(self._cursor_into_view)

    def on_mouse_scroll_down(self, event: events.MouseScrollDown) -> None:
        self.call_after_refresh(self._cursor_into_view)
        self.call_after_refresh(self._resume_at_end)

    def _cursor_into_view(self) -> None:
        """After the wheel moved the view, bring the cursor along so Enter opens a row on screen."""
        if self._cursor is None or not self._entries:
            return
        top = self.scroll_offset.y
        bottom = min(len(self._entries), top + self.scrollable_content_region.height) - 1
        cursor = max(top, min(bottom, self._cursor))
        if cursor != self._cursor:
            self._cursor = cursor
            self._cache.clear()
            self.refresh()

    def on_scroll_to(self, message: ScrollTo) -> None:
        """The scrollbar was dragged: reading back pauses, reaching the end follows."""
        if message.y is not None and message.y < self.max_scroll_y:
            self.follow = False
        else:
            self.call_after_refresh(self._resume_at_end)

    def _resume_at_end(self) -> None:
        if self.is_vertical_scroll_end:
            self.follow = True

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None or not self._entries:
            return
        index = self.scroll_offset.y + offset.y
        if index < len(self._entries):
            self.follow = False
            self._cursor = index
            self._cache.clear()
            self.refresh()
            if event.chain == 2:
                self.action_open()

    # Rendering

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles.clear()
        self._cache.clear()

    def _style(self, name: str) -> Style:
        style = self._styles.get(name)
        if style is None:
            style = self._styles[name] = self.get_component_rich_style(f"log-view--{name}")
        return style

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        index = self.scroll_offset.y + y
        if index >= len(self._entries):
            return Strip.blank(width, self.rich_style)
        selected = index == self._cursor
        key = (self._entries.first_seq + index, width, selected)
        strip = self._cache.get(key)
        if strip is None:
            strip = self._render_entry(self._entries[index], width, selected)
            self._cache[key] = strip
        return strip

    def _render_entry(self, log: Log, width: int, selected: bool) -> Strip:
        base = self.rich_style
        level = log.log_level
        level_style = self._style(level.lower())
        message_style = (
            self._style("error-message") if level in (Level.ERROR, Level.FATAL) else Style()
        )
        limit = name_limit(width)
        parts = [
            (log_time(log.timestamp)[: 8 if width < COMPACT_BELOW else 12], self._style("time")),
            (" ", Style()),
            (f"{level:<5}", level_style),
            (" ", Style()),
            (_column(log.node_id, min(self._node_width, limit)), self._style("node")),
            (" ", Style()),
            (_column(log.service_name, min(self._service_width, limit)), self._style("service")),
            (" ", Style()),
            (_clean(message_text(log), width * 2), message_style),
        ]
        cursor = self._style("cursor") if selected else Style()
        segments = [Segment(text, base + style + cursor) for text, style in parts]
        if self._mark is not None:
            segments = list(_marked(segments, self._mark, self._style("match")))
        return Strip(segments).crop_extend(0, width, base + cursor)


def row_texts(log: Log) -> tuple[str, str, str]:
    """What a row shows of an entry and a highlight can mark: node, service, message."""
    return log.node_id, log.service_name, message_text(log)


def _is_problem(log: Log) -> bool:
    return log.log_level.rank >= Level.ERROR.rank


def _marked(segments: list[Segment], mark: re.Pattern[str], style: Style) -> Iterator[Segment]:
    """The segments with what `mark` matches in the names and the message cut out and
    drawn in `style` (the time and the level are left alone)."""
    for number, segment in enumerate(segments):
        text = segment.text
        if number < 4 or not text.strip():
            yield segment
            continue
        start = 0
        for match in mark.finditer(text):
            if match.end() == match.start():
                continue
            if match.start() > start:
                yield Segment(text[start : match.start()], segment.style)
            yield Segment(match.group(), (segment.style or Style()) + style)
            start = match.end()
        if start < len(text):
            yield Segment(text[start:], segment.style)
