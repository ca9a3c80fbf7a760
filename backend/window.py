"""The span of time a log may claim: from the oldest day the store keeps to a little ahead.

Judged at the door (the accumulator's router, against its clock at arrival), so that what
it acknowledges is what the store keeps: a log dated before the retention would be deleted
at the next retention pass, and one dated years ahead would make a day (a table, an index)
of its own that retention never reaches and the store's cap would keep over today's logs.
The indexer judges again, as a safety net for records that reached the topic another way.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from backend.config import Settings
from backend.schemas import iso_millis


class TimeWindow:
    """Days from `retention_days` back (as retention counts them) to `max_skew_s` ahead."""

    def __init__(self, retention_days: int, max_skew_s: float) -> None:
        self._retention = timedelta(days=retention_days)
        self._retention_days = retention_days
        self._skew = timedelta(seconds=max_skew_s)

    @classmethod
    def of(cls, settings: Settings) -> TimeWindow:
        return cls(settings.retention_days, settings.max_skew_s)

    def refusal(self, timestamp: str, now: datetime) -> str | None:
        """Why a (valid) `timestamp` is outside the window at `now` (UTC), or None."""
        moment = datetime.fromisoformat(timestamp)
        if moment - now > self._skew:
            return (
                f"timestamp too far ahead: {timestamp!r} is more than {span(self._skew)} "
                f"ahead of {iso_millis(now)} (LOGDECK_MAX_SKEW)"
            )
        oldest = (now - self._retention).date()
        if moment.astimezone(UTC).date() < oldest:
            return (
                f"timestamp older than retention: {timestamp!r} is before {oldest}, the oldest "
                f"day kept ({self._retention_days} days, LOGDECK_RETENTION_DAYS)"
            )
        return None

    def at(self, now: datetime) -> WindowAt:
        """The window at `now`, for judging many timestamps against one clock reading."""
        return WindowAt(self, now)


_CENTURY = timedelta(days=36_525)


class WindowAt:
    """`TimeWindow.refusal` at one moment, cheaper for the usual timestamps.

    Those of the usual form (`2026-11-24T10:15:30.123Z`: fixed width and UTC, so their
    text sorts as their time) are inside when their text lies between the oldest day kept
    and the latest moment allowed (to the millisecond, as theirs); the rest, and any that
    text says are outside, are judged by `TimeWindow.refusal`, which says why.
    """

    def __init__(self, window: TimeWindow, now: datetime) -> None:
        self._window = window
        self._now = now
        self._oldest_day = (now - window._retention).date().isoformat()
        # Cut to the millisecond: a timestamp in milliseconds is later than `now + skew`
        # exactly when it is later than that cut. A skew of centuries (a way of saying "no
        # limit") would run past the calendar here: those before a century ahead are inside.
        self._latest = iso_millis(now + min(window._skew, _CENTURY))

    def refusal(self, timestamp: str) -> str | None:
        """Why a (valid) `timestamp` is outside the window, or None."""
        if (
            len(timestamp) == 24
            and timestamp[4:20:3] == "--T::."
            and timestamp[23] == "Z"
            and self._oldest_day <= timestamp <= self._latest
        ):
            return None
        return self._window.refusal(timestamp, self._now)


def span(length: timedelta) -> str:
    """`1 day`, `3 days`, `6 h`, `15 min` or `90 s`: the largest unit that divides it."""
    seconds = int(length.total_seconds())
    if seconds and seconds % 86_400 == 0:
        days = seconds // 86_400
        return f"{days} day" if days == 1 else f"{days} days"
    for unit, size in (("h", 3600), ("min", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{length.total_seconds():g} s"
