"""Times typed on the command line: ISO 8601, now, and spans back from now."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from backend.moments import MomentError, read_moment

NOW = datetime(2026, 11, 24, 10, 15, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "moment"),
    [
        ("now", NOW),
        (" NOW ", NOW),
        ("now-15m", NOW - timedelta(minutes=15)),
        ("now - 2h", NOW - timedelta(hours=2)),
        ("15m", NOW - timedelta(minutes=15)),
        ("30s", NOW - timedelta(seconds=30)),
        ("1d", NOW - timedelta(days=1)),
        ("2026-11-24T09:00:00Z", datetime(2026, 11, 24, 9, tzinfo=UTC)),
        ("2026-11-24T09:00:00.250Z", datetime(2026, 11, 24, 9, 0, 0, 250_000, tzinfo=UTC)),
        ("2026-11-24 09:00", datetime(2026, 11, 24, 9, tzinfo=UTC)),
        ("2026-11-24", datetime(2026, 11, 24, tzinfo=UTC)),
        (
            "2026-11-24T11:00:00+02:00",
            datetime(2026, 11, 24, 11, tzinfo=timezone(timedelta(hours=2))),
        ),
    ],
)
def test_each_form_is_read(text: str, moment: datetime) -> None:
    assert read_moment(text, NOW) == moment


@pytest.mark.parametrize("text", ["yesterday", "now-15", "now+5m", "15 minutes", "", "999999999d"])
def test_what_cannot_be_read_says_what_can(text: str) -> None:
    with pytest.raises(MomentError, match=r"ISO 8601 .* now-15m or 15m"):
        read_moment(text, NOW)
