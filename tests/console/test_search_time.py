"""Time on the search screen: preset keys, relative since and until, UTC or local time, the
histogram stacked by level, and zooming into bars picked with the keyboard (or a click)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from textual.widgets import DataTable, Input, Label, Select

from console.app import help_sections
from console.keymap import binding_ids
from console.screens import SearchScreen
from tests.console.fake_observer import NOW, burst, make_app, sample_observer, screen_lines, settle
from tests.console.test_search import choose, open_search
from widgets.level_histogram import LevelBars, LevelHistogram
from widgets.stacks import STACK_ORDER
from widgets.zones import Zone

WIDE = (200, 48)
MS = timedelta(milliseconds=1)


@pytest.fixture
def in_kolkata(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The machine's local time is UTC+05:30."""
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def field(screen: SearchScreen, name: str) -> str:
    return screen.query_one(name, Input).value


def label(screen: SearchScreen, name: str) -> str:
    return str(screen.query_one(name, Label).render())


def footer(app: object) -> str:
    return screen_lines(app)[-1]  # type: ignore[arg-type]


async def test_preset_keys_search_the_last_minutes_from_the_box() -> None:
    observer = sample_observer()
    app = make_app(observer)
    async with app.run_test(size=WIDE) as pilot:
        screen = await open_search(pilot)
        assert "f6 f7 f8 f9 Last 5m/15m/1h/24h" in footer(app)
        for key, span, preset in (
            ("f6", timedelta(minutes=5), "5m"),
            ("f8", timedelta(hours=1), "1h"),
            ("f9", timedelta(hours=24), "24h"),
            ("f7", timedelta(minutes=15), "15m"),
        ):
            await burst(pilot, *"pay", key)
            await settle(pilot, "search")
            query = observer.queries[-1]
            assert (query.since, query.until, query.text) == (NOW - span, None, "pay")
            assert screen.query_one("#range", Select).value == preset
            assert screen.query_one("#q", Input).has_focus
            await burst(pilot, "ctrl+u")
        assert {"search.last_5m", "search.last_24h", "search.zone", "search.zoom_out"} <= (
            binding_ids(b for _, bindings in help_sections() for b in bindings)
        )


async def test_since_and_until_take_times_relative_to_now() -> None:
    observer = sample_observer()
    app = make_app(observer)
    async with app.run_test(size=WIDE) as pilot:
        screen = await open_search(pilot)
        await choose(pilot, "#range", "Custom")
        await burst(pilot, *"now-30m", "tab", *"now - 2m", "enter")
        await settle(pilot, "search")
        query = observer.queries[-1]
        assert (query.since, query.until) == (
            NOW - timedelta(minutes=30),
            NOW - timedelta(minutes=2),
        )
        assert screen.result is not None and screen.result.total == 120 - 48  # 2.5 s apart

        await burst(pilot, "ctrl+u", *"now-45m", "enter")
        await settle(pilot, "search")
        assert "`since` must be before `until`" in str(screen.query_one("#search-status").render())


async def test_times_show_in_utc_or_local_time_and_typed_ones_keep_their_moment(
    in_kolkata: None,
) -> None:
    observer = sample_observer()
    app = make_app(observer)
    async with app.run_test(size=WIDE) as pilot:
        screen = await open_search(pilot)
        table = screen.query_one("#results", DataTable)
        assert label(screen, "#zone") == "times in UTC" and screen.zone is Zone.UTC
        assert str(table.get_row_at(0)[0]) == "11-24 10:16:00"
        assert label(screen, "#hist-start") == "10:11:00"

        await choose(pilot, "#range", "Custom")
        await burst(pilot, *"10:14", "tab", *"now", "enter")
        await settle(pilot, "search")
        asked = len(observer.queries)
        since = observer.queries[-1].since
        assert since == NOW.replace(minute=14)

        await burst(pilot, "ctrl+t")
        await settle(pilot, "search")
        assert label(screen, "#zone") == "times in local UTC+05:30"
        assert screen.zone is Zone.LOCAL and len(observer.queries) == asked
        assert str(table.get_row_at(0)[0]) == "11-24 15:46:00"
        assert label(screen, "#hist-start") == "15:44:00"
        assert (field(screen, "#since"), field(screen, "#until")) == ("2026-11-24 15:44:00", "now")

        await burst(pilot, "f5")  # what the fields say now still means the same moments
        await settle(pilot, "search")
        assert (observer.queries[-1].since, observer.queries[-1].until) == (since, NOW)
        await burst(pilot, "shift+tab", "ctrl+u", *"15:45", "enter")  # typed in local time
        await settle(pilot, "search")
        assert observer.queries[-1].since == NOW.replace(minute=15)

        await burst(pilot, "ctrl+t")
        await settle(pilot, "search")
        assert label(screen, "#zone") == "times in UTC"
        assert field(screen, "#since") == "2026-11-24 10:15:00"
        assert str(table.get_row_at(0)[0]) == "11-24 10:16:00"


async def test_each_bar_is_stacked_by_level_in_the_feeds_colours() -> None:
    observer = sample_observer()
    app = make_app(observer)
    async with app.run_test(size=WIDE) as pilot:
        screen = await open_search(pilot)
        result = screen.result
        assert result is not None
        histogram = screen.query_one(LevelHistogram)
        assert histogram.buckets == result.buckets and len(result.buckets) == 11
        levels = Counter(log.log_level for log in observer.history)
        for level in STACK_ORDER:
            assert sum(bar.levels.get(level, 0) for bar in result.buckets) == levels[level]

        bars = screen.query_one(LevelBars)
        drawn = bars.render()
        colours = {span.style.color for span in drawn.spans if not isinstance(span.style, str)}
        colours |= {span.style.bgcolor for span in drawn.spans if not isinstance(span.style, str)}
        for level in STACK_ORDER:  # every level has hits: every level's colour is drawn
            style = bars.get_component_rich_style(f"level-bars--{level.lower()}")
            assert style.color in colours, level
        assert len(drawn.plain.splitlines()) == bars.size.height
        assert set(drawn.plain.splitlines()[-1]) == {"─"}  # the axis, no cursor unfocused
        assert "■ INFO ■ WARN ■ ERROR ■ FATAL" in label(screen, "#hist-info")


async def test_bars_picked_with_the_keyboard_zoom_in_and_f4_zooms_back_out() -> None:
    observer = sample_observer()
    app = make_app(observer)
    async with app.run_test(size=WIDE) as pilot:
        screen = await open_search(pilot)
        bars = screen.query_one(LevelHistogram).buckets
        last = len(bars) - 1
        assert screen.check_action("zoom_out", ()) is False
        assert "Zoom out" not in footer(app)

        await burst(pilot, "f3", "left", "left", "space", "left")
        histogram = screen.query_one(LevelHistogram)
        assert histogram.has_focus and histogram.selection == range(last - 3, last - 1)
        info = label(screen, "#hist-info")
        hits = sum(bar.count for bar in bars[last - 3 : last - 1])
        assert f"{bars[last - 3].start:%H:%M:%S} → {bars[last - 2].end:%H:%M:%S}" in info
        assert f"2 bars · {hits} hits" in info
        assert "▲" in screen.query_one(LevelBars).render().plain

        await burst(pilot, "enter")
        await settle(pilot, "search")
        query = observer.queries[-1]
        assert (query.since, query.until) == (bars[last - 3].start, bars[last - 2].end - MS)
        assert screen.query_one("#range", Select).value == "custom"
        assert field(screen, "#since") == f"{bars[last - 3].start:%Y-%m-%d %H:%M:%S}"
        assert field(screen, "#until").endswith(".999")
        result = screen.result
        assert result is not None and result.total == hits
        assert all(
            query.since <= datetime.fromisoformat(log.timestamp) <= query.until
            for log in result.logs
        )
        assert sum(bar.count for bar in result.buckets) == hits
        assert screen.check_action("zoom_out", ()) is True
        assert "f4 Zoom out" in footer(app)

        await burst(pilot, "enter")  # no mark: the bar under the cursor, the last one
        await settle(pilot, "search")
        inner = observer.queries[-1]
        assert inner.since == result.buckets[-1].start
        assert inner.until == result.buckets[-1].end - MS

        await burst(pilot, "f4")
        await settle(pilot, "search")
        assert observer.queries[-1] == query
        await burst(pilot, "f4")
        await settle(pilot, "search")
        assert (observer.queries[-1].since, observer.queries[-1].until) == (
            NOW - timedelta(minutes=15),
            None,
        )
        assert screen.query_one("#range", Select).value == "15m"
        assert screen.check_action("zoom_out", ()) is False


async def test_a_click_on_a_bar_puts_the_cursor_there() -> None:
    observer = sample_observer()
    app = make_app(observer)
    async with app.run_test(size=WIDE) as pilot:
        screen = await open_search(pilot)
        bars = screen.query_one(LevelBars)
        histogram = screen.query_one(LevelHistogram)
        await pilot.click(bars, offset=(1, 0))
        await settle(pilot, "search")
        assert histogram.has_focus and histogram.cursor == 0
        bars_before = histogram.buckets
        await burst(pilot, "end", "left", "enter")
        await settle(pilot, "search")
        query = observer.queries[-1]
        assert (query.since, query.until) == (bars_before[-2].start, bars_before[-2].end - MS)
