"""The live feed reads in the order entries were logged, not the order they arrived.

Logs of several nodes reach the console out of timestamp order (partitions, batching,
a node that reconnects): a late one goes to its place among the rows, and a reader who
paused keeps the entry under the cursor where it was on screen.
"""

from __future__ import annotations

import re
from datetime import timedelta

from backend.schemas import Level, Log
from console.app import LogdeckApp
from tests.console.fake_observer import (
    NOW,
    FakeObserver,
    make_app,
    make_log,
    pane_lines,
    sample_logs,
    settle,
)

SIZE = (120, 40)
_TIME = re.compile(r"^\d\d:\d\d:\d\d\.\d{3}")


def shown_times(app: LogdeckApp) -> list[str]:
    """The times of the feed's rows on screen, top to bottom."""
    lines = pane_lines(app, app.main.feed.view)
    return [match.group() for line in lines if (match := _TIME.match(line))]


def at(milliseconds: int) -> Log:
    """A log `milliseconds` after NOW, named by that offset."""
    return make_log(milliseconds, NOW + timedelta(milliseconds=milliseconds))


async def test_one_batch_out_of_order_reads_in_time_order() -> None:
    observer = FakeObserver(clock=lambda: NOW)
    app = make_app(observer)
    async with app.run_test(size=SIZE) as pilot:
        await observer.subscribed("logs")
        observer.push_logs([at(54), at(42), at(48), at(60)])
        await settle(pilot)
        view = app.main.feed.view
        assert [log.log_id for log in view.entries] == [
            "log-000042",
            "log-000048",
            "log-000054",
            "log-000060",
        ]
        assert shown_times(app) == ["10:16:00.042", "10:16:00.048", "10:16:00.054", "10:16:00.060"]


async def test_a_late_batch_goes_to_its_place_and_stays_there_when_filters_change() -> None:
    observer = FakeObserver(clock=lambda: NOW)
    app = make_app(observer)
    async with app.run_test(size=SIZE) as pilot:
        await observer.subscribed("logs")
        early = sample_logs(40)
        observer.push_logs(early)
        await settle(pilot)
        late = [
            at(1_000),
            make_log(2, NOW - timedelta(milliseconds=3_700), level=Level.ERROR),
            make_log(3, NOW - timedelta(seconds=61), level=Level.WARN),
        ]
        observer.push_logs(late)
        await settle(pilot)
        feed = app.main.feed
        view = feed.view
        stamps = [log.timestamp for log in view.entries]
        assert stamps == sorted(stamps) and len(stamps) == 43
        assert view.entries[-1] is late[0]
        assert view.selected() is late[0] and view.follow
        times = shown_times(app)
        assert times == sorted(times) and "10:15:56.300" in times

        await pilot.press("3")  # ERROR only: the view is rebuilt from the ring
        await settle(pilot)
        await pilot.press("3")
        await settle(pilot)
        stamps = [log.timestamp for log in view.entries]
        assert stamps == sorted(stamps) and len(stamps) == 43
        ring = [log.timestamp for log in feed.ring]
        assert ring == sorted(ring)


async def test_a_paused_reader_keeps_the_entry_under_the_cursor_in_its_row() -> None:
    observer = FakeObserver(clock=lambda: NOW)
    app = make_app(observer)
    async with app.run_test(size=SIZE) as pilot:
        await observer.subscribed("logs")
        logs = sample_logs(100)
        observer.push_logs(logs)
        await settle(pilot)
        view = app.main.feed.view
        await pilot.press("up", "up", "up")
        chosen = logs[-3]
        assert view.selected() is chosen
        row = shown_times(app).index("10:15:55.000")

        late = [
            make_log(500, NOW - timedelta(milliseconds=30_100)),  # above the cursor, on screen
            make_log(501, NOW - timedelta(milliseconds=5_001)),  # right above the cursor
            make_log(502, NOW - timedelta(milliseconds=200_100)),  # above the screen
            make_log(503, NOW - timedelta(milliseconds=1_000)),  # below the cursor
            at(500),  # new
        ]
        observer.push_logs(late)
        await settle(pilot)
        assert view.selected() is chosen and not view.follow
        assert shown_times(app).index("10:15:55.000") == row
        stamps = [log.timestamp for log in view.entries]
        assert stamps == sorted(stamps) and len(stamps) == 105
        assert view.unseen == 5

        observer.push_logs([make_log(600, NOW - timedelta(milliseconds=4_000))])
        await settle(pilot)
        assert view.selected() is chosen
        assert shown_times(app).index("10:15:55.000") == row

        await pilot.press("end")
        await pilot.pause()
        assert view.follow and view.selected() is late[-1]
