"""Times as the store keeps them: epoch milliseconds, and UTC days numbered like 20261124.

Logs are filed by the UTC day of their own timestamps (a table per day, as Elasticsearch has
an index per day), and ordered by their millisecond, which must fit in a rowid (see
schema.py): these are the conversions, the hot one (`Stamps.read`) kept cheap.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Final

DAY_MS: Final = 86_400_000
EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_MILLIS: Final = 1 << 42  # rowids stay below 2**62 (until the year 2109)


class Stamps:
    """Epoch milliseconds and UTC day of timestamps; `...T10:15:30.123Z` costs a few slices."""

    def __init__(self) -> None:
        self._minutes: dict[str, tuple[int, int]] = {}

    def read(self, stamp: str) -> tuple[int, int]:
        if len(stamp) == 24 and stamp[23] == "Z" and stamp[19] == "." and stamp[16] == ":":
            minute = self._minutes.get(stamp[:16])
            if minute is None:
                minute = self._minute(stamp[:16])
            if minute is not None:
                seconds, millis = stamp[17:19], stamp[20:23]
                if seconds.isdigit() and millis.isdigit() and seconds < "60":
                    return minute[0] + int(seconds) * 1000 + int(millis), minute[1]
        ms = to_millis(datetime.fromisoformat(stamp).astimezone(UTC))
        return self._check(ms, stamp), day_number((EPOCH + timedelta(milliseconds=ms)).date())

    def _minute(self, head: str) -> tuple[int, int] | None:
        """`2026-11-24T10:15` as its first millisecond and day; None if it is not that shape."""
        try:
            moment = datetime.strptime(head, "%Y-%m-%dT%H:%M").replace(tzinfo=UTC)
        except ValueError:
            return None
        found = self._minutes[head] = (self._check(to_millis(moment), head), day_number(moment))
        return found

    @staticmethod
    def _check(ms: int, stamp: str) -> int:
        if not 0 <= ms < _MAX_MILLIS - DAY_MS:
            raise ValueError(
                f"timestamp {stamp!r} is outside 1970-2108, which the embedded store cannot order"
            )
        return ms


def day_number(day: date) -> int:
    return day.year * 10000 + day.month * 100 + day.day


def to_millis(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(milliseconds=1)


def query_millis(moment: datetime) -> int:
    """Like `iso_millis` in the Elasticsearch query: a naive time is local time."""
    return to_millis(moment.astimezone(UTC))


def day_bounds(day: int) -> tuple[int, int]:
    """The day's first millisecond, and the first after it."""
    start = to_millis(datetime(day // 10000, day // 100 % 100, day % 100, tzinfo=UTC))
    return start, start + DAY_MS


def day_name(day: int) -> str:
    """The day as the name of its Elasticsearch index, which retention reports."""
    return f"logs-{day // 10000:04d}.{day // 100 % 100:02d}.{day % 100:02d}"
