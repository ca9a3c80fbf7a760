"""The window of timestamps the store keeps: its settings, and the day a log is stored on."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from backend.config import Settings, duration_s
from backend.schemas import iso_millis
from backend.store.elasticsearch import daily_index
from backend.window import TimeWindow, span


def test_the_skew_comes_from_logdeck_max_skew_with_a_unit(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings.from_env().max_skew_s == 86_400
    monkeypatch.setenv("LOGDECK_MAX_SKEW", "2h")
    assert Settings.from_env().max_skew_s == 7200
    assert [duration_s(text) for text in ("90", "90s", "15m", "1D")] == [90, 90, 900, 86_400]
    for bad in ("soon", "-1h", "nan", "inf", ""):
        with pytest.raises(ValueError, match="not a span of time"):
            duration_s(bad)


def test_the_edges_are_the_oldest_day_kept_and_the_skew() -> None:
    window = TimeWindow(retention_days=7, max_skew_s=3600)
    now = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
    assert window.refusal("2026-11-17T00:00:00.000Z", now) is None
    assert window.refusal("2026-11-17T00:30:00+01:00", now) is not None  # 11-16 in UTC
    assert window.refusal("2026-11-24T11:00:00.000Z", now) is None
    assert window.refusal("2026-11-24T11:00:00.001Z", now) is not None
    assert [span(timedelta(seconds=s)) for s in (86_400, 259_200, 5400, 7200, 90)] == [
        "1 day",
        "3 days",
        "90 min",
        "2 h",
        "90 s",
    ]


@pytest.mark.parametrize("skew", [3600, 3600.0007, 0.0004])
@pytest.mark.parametrize("micros", [0, 500, 999_999])
def test_the_window_at_one_moment_judges_every_edge_as_the_window(skew: float, micros: int) -> None:
    """`at` compares usual timestamps as text: it must agree to the millisecond, with a
    clock and a skew between two milliseconds too, and leave the other forms to `refusal`."""
    window = TimeWindow(retention_days=7, max_skew_s=skew)
    now = datetime(2026, 11, 24, 10, 0, tzinfo=UTC) + timedelta(microseconds=micros)
    latest, oldest = now + timedelta(seconds=skew), datetime(2026, 11, 17, tzinfo=UTC)
    stamps = [
        iso_millis(edge + timedelta(milliseconds=step))
        for edge in (latest, oldest)
        for step in range(-3, 4)
    ]
    stamps += [stamp.replace(".", ",") for stamp in stamps]
    stamps += ["2026-11-17T00:30:00+01:00", "2026-11-24T11:00:00+00:00", "2026-11-24T10:00Z"]
    at = window.at(now)
    assert [at.refusal(stamp) for stamp in stamps] == [
        window.refusal(stamp, now) for stamp in stamps
    ]
    assert any(at.refusal(stamp) is None for stamp in stamps)
    assert any(at.refusal(stamp) is not None for stamp in stamps)


def test_a_skew_past_the_calendar_means_no_limit_ahead() -> None:
    window = TimeWindow(retention_days=7, max_skew_s=8e13)
    now = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
    assert window.at(now).refusal("2099-12-31T23:59:59.999Z") is None
    assert window.refusal("2099-12-31T23:59:59.999Z", now) is None


@pytest.fixture
def tokyo(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_a_log_with_an_offset_goes_to_the_index_of_its_utc_day(tokyo: None) -> None:
    """As the embedded store and the window count days; the indexer's local zone was used."""
    assert daily_index("p-", "2026-11-24T02:00:00.000+05:30") == "p-2026.11.23"
