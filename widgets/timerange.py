"""The search screen's time ranges: presets relative to now, or a typed since and until."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

PRESETS: dict[str, timedelta | None] = {
    "15m": timedelta(minutes=15),
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "all": None,
}
PRESET_LABELS: dict[str, str] = {
    "15m": "Last 15 min",
    "1h": "Last 1 h",
    "24h": "Last 24 h",
    "all": "Any time",
    "custom": "Custom",
}


class TimeRangeError(ValueError):
    """A typed time that cannot be read; the message shows what is accepted."""


def parse_moment(text: str, now: datetime) -> datetime | None:
    """A typed time in UTC: `2026-11-24 10:15[:30]`, ISO 8601, or `10:15[:30]` for today.

    Empty means open-ended (None).
    """
    value = text.strip()
    if not value:
        return None
    try:
        if len(value) <= 8 and ":" in value:
            clock = datetime.strptime(value, "%H:%M:%S" if value.count(":") == 2 else "%H:%M")
            return now.astimezone(UTC).replace(
                hour=clock.hour, minute=clock.minute, second=clock.second, microsecond=0
            )
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise TimeRangeError(
            f"cannot read {value!r}: use 2026-11-24 10:15, 10:15:30 (today) or ISO 8601 (UTC)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


_AGO = re.compile(r"(\d+)\s*([smhd])")
_AGO_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_since(text: str, now: datetime) -> datetime | None:
    """A moment typed as a span back from `now` (`30s`, `15m`, `2h`, `1d`), or as
    `parse_moment` reads one; empty is None."""
    match = _AGO.fullmatch(text.strip().lower())
    if match is not None:
        amount, unit = match.groups()
        return now - timedelta(**{_AGO_UNITS[unit]: int(amount)})
    try:
        return parse_moment(text, now)
    except TimeRangeError as error:
        raise TimeRangeError(f"{error}, or a span back from now: 30s, 15m, 2h, 1d") from None


def resolve(
    preset: str, since_text: str, until_text: str, now: datetime
) -> tuple[datetime | None, datetime | None]:
    """The (since, until) a range stands for at `now`."""
    if preset != "custom":
        span = PRESETS[preset]
        return (now - span if span is not None else None), None
    since = parse_moment(since_text, now)
    until = parse_moment(until_text, now)
    if since is not None and until is not None and since >= until:
        raise TimeRangeError("`since` must be before `until`")
    return since, until
