"""Times on the search screen: typed in UTC or local time, relative to now, shown in either."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest

from widgets.timerange import TimeRangeError, parse_moment, resolve
from widgets.zones import Zone

NOW = datetime(2026, 11, 24, 10, 16, 0, tzinfo=UTC)
KOLKATA = timezone(timedelta(hours=5, minutes=30))


@pytest.fixture
def in_kolkata(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The machine's local time is UTC+05:30 (no daylight saving there)."""
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("now", NOW),
        ("now-15m", NOW - timedelta(minutes=15)),
        ("now - 2h", NOW - timedelta(hours=2)),
        ("15m", NOW - timedelta(minutes=15)),
        ("1d", NOW - timedelta(days=1)),
        ("", None),
    ],
)
def test_relative_times_count_back_from_now_in_any_zone(
    in_kolkata: None, text: str, expected: datetime | None
) -> None:
    for zone in Zone:
        assert parse_moment(text, NOW, zone) == expected


def test_a_time_without_a_zone_is_read_in_the_zone_shown(in_kolkata: None) -> None:
    assert parse_moment("10:15", NOW, Zone.UTC) == NOW.replace(minute=15)
    assert parse_moment("15:45", NOW, Zone.LOCAL) == NOW.replace(minute=15)
    assert parse_moment("2026-11-24 15:45:30", NOW, Zone.LOCAL) == NOW.replace(minute=15, second=30)
    assert parse_moment("2026-11-24T10:15:00Z", NOW, Zone.LOCAL) == NOW.replace(minute=15)
    assert resolve("custom", "now-1h", "15:45", NOW, Zone.LOCAL) == (
        NOW - timedelta(hours=1),
        NOW.replace(minute=15),
    )
    assert resolve("5m", "", "", NOW) == (NOW - timedelta(minutes=5), None)


def test_an_unreadable_time_says_what_is_accepted() -> None:
    with pytest.raises(TimeRangeError, match="now-15m") as caught:
        parse_moment("yesterday", NOW)
    assert "cannot read 'yesterday'" in str(caught.value)
    with pytest.raises(TimeRangeError, match="before"):
        resolve("custom", "now-5m", "now-10m", NOW)


def test_times_show_and_type_back_in_either_zone(in_kolkata: None) -> None:
    moment = NOW.replace(second=30, microsecond=250_000)
    assert Zone.UTC.day_time("2026-11-24T10:15:30.123Z") == "11-24 10:15:30"
    assert Zone.LOCAL.day_time("2026-11-24T10:15:30.123Z") == "11-24 15:45:30"
    assert Zone.LOCAL.show(NOW).utcoffset() == KOLKATA.utcoffset(None)
    assert Zone.UTC.typed(moment) == "2026-11-24 10:16:30.250"
    assert Zone.LOCAL.typed(NOW) == "2026-11-24 15:46:00"
    for zone in Zone:
        assert parse_moment(zone.typed(moment), NOW, zone) == moment
    assert Zone.UTC.label(NOW) == "UTC"
    assert Zone.LOCAL.label(NOW) == "local UTC+05:30"
    assert Zone.UTC.toggled() is Zone.LOCAL and Zone.LOCAL.toggled() is Zone.UTC
