"""The console's pure helpers: feed following, time ranges, names, rates, formatting."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from backend.schemas import Level
from tests.console.fake_observer import NOW, make_log, sample_nodes
from widgets.bars import bar_line
from widgets.feeds import Backoff, FeedState, Follower
from widgets.formatting import age, compact_count, log_time
from widgets.names import KnownNames, split_names
from widgets.rates import NodeRates, RateHistory
from widgets.timerange import TimeRangeError, parse_moment, resolve


async def test_follower_reports_failures_backs_off_and_recovers() -> None:
    opened: list[int] = []
    delivered: list[tuple[list[int], bool]] = []
    reports: list[FeedState] = []
    sleeps: list[float] = []

    async def feed() -> AsyncIterator[list[int]]:
        opened.append(1)
        if len(opened) <= 3:
            raise ConnectionError("down")
        yield [1, 2]
        yield [3]
        raise asyncio.CancelledError

    async def sleep(delay: float) -> None:
        sleeps.append(delay)

    follower = Follower(
        "logs feed",
        feed,
        lambda batch, first: delivered.append((batch, first)),
        reports.append,
        lambda: NOW,
        Backoff(first=1, factor=2, limit=3),
        sleep,
    )
    with pytest.raises(asyncio.CancelledError):
        await follower.run()
    assert sleeps == [1, 2, 3]
    assert delivered == [([1, 2], True), ([3], False)]
    assert [report.ok for report in reports] == [False, False, False, True]
    assert reports[0].detail == "ConnectionError: down; retrying in 1 s"
    assert {report.since for report in reports[:3]} == {NOW}


def test_time_ranges() -> None:
    assert resolve("15m", "", "", NOW) == (NOW - timedelta(minutes=15), None)
    assert resolve("all", "", "", NOW) == (None, None)
    assert resolve("custom", "10:00", "", NOW) == (NOW.replace(minute=0), None)
    assert parse_moment("2026-11-24T10:15:30Z", NOW) == NOW.replace(minute=15, second=30)
    assert parse_moment("2026-11-24 09:00", NOW) == NOW.replace(hour=9, minute=0)
    with pytest.raises(TimeRangeError, match="before"):
        resolve("custom", "10:10", "10:00", NOW)
    with pytest.raises(TimeRangeError, match="cannot read"):
        parse_moment("soon", NOW)


def test_known_names_classify_what_was_typed() -> None:
    names = KnownNames()
    names.learn_nodes(sample_nodes())
    names.learn_logs([make_log(1, NOW, node_id="billing-9")])
    assert names.all()[:2] == ["auth", "billing"]
    services, nodes, unknown = names.classify("payments, auth-0 node:new-1 svc:new x")
    assert (services, nodes, unknown) == ({"payments", "new"}, {"auth-0", "new-1"}, ["x"])
    assert split_names(" a,b  a ,c ") == ["a", "b", "c"]


def test_rates_slide_over_the_last_minute() -> None:
    rates = NodeRates()
    rates.add(
        [make_log(1, NOW, node_id="a"), make_log(2, NOW, node_id="a", level=Level.FATAL)], NOW
    )
    rates.add([make_log(3, NOW, node_id="a")], NOW + timedelta(seconds=30))
    assert rates.per_minute("a", NOW + timedelta(seconds=30)) == (3, 1)
    assert rates.per_minute("a", NOW + timedelta(seconds=60)) == (1, 0)
    assert rates.per_minute("b", NOW) == (0, 0)

    history = RateHistory(seconds=5)
    history.add(10, NOW - timedelta(seconds=1))
    history.add(4, NOW)
    assert history.series(NOW) == [0, 0, 0, 10, 4]
    assert history.series(NOW + timedelta(seconds=10)) == [0] * 5


def test_bars_scale_from_zero_and_fit_the_width() -> None:
    assert bar_line([5, 5, 5], 3) == "███"
    assert bar_line([0, 4, 8], 3) == " ▄█"
    assert bar_line([1, 8], 4) == "▁▁██"
    assert bar_line([1, 2, 3, 8, 0, 0], 3) == "▂█ "
    assert bar_line([], 2) == "  " and bar_line([0, 0], 2) == "  "


def test_formatting() -> None:
    assert age(timedelta(seconds=4)) == "4s"
    assert age(timedelta(seconds=125)) == "2m05s"
    assert age(timedelta(hours=1, minutes=2)) == "1h02m"
    assert age(timedelta(days=3, hours=4)) == "3d04h"
    assert age(timedelta(seconds=-3)) == "0s"
    assert [compact_count(n) for n in (950, 1234, 12_345, 3_400_000)] == [
        "950",
        "1.2k",
        "12k",
        "3.4M",
    ]
    assert log_time("2026-11-24T10:15:30.123Z") == "10:15:30.123"
    assert log_time("2026-11-24T10:15:30+00:00") == "10:15:30.000"
