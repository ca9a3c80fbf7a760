"""The window of timestamps the store keeps: its settings, and the day a log is stored on."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from backend.config import Settings, duration_s
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
