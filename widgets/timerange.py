"""The search screen's time ranges: presets relative to now, or a typed since and until.

A typed time is a clock time today (`10:15`), a date and time, ISO 8601, `now`, or a span
back from now (`now-15m` or `15m`, read by backend/moments.py); one without a zone is read
in the zone the screen shows (widgets/zones.py).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from backend.moments import MomentError, read_moment
from widgets.zones import Zone

PRESETS: dict[str, timedelta | None] = {
    "5m": timedelta(minutes=5),
    "15m": timedelta(minutes=15),
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "all": None,
}
PRESET_LABELS: dict[str, str] = {
    "5m": "Last 5 min",
    "15m": "Last 15 min",
    "1h": "Last 1 h",
    "24h": "Last 24 h",
    "all": "Any time",
    "custom": "Custom",
}


class TimeRangeError(ValueError):
    """A typed time that cannot be read; the message shows what is accepted."""


def parse_moment(text: str, now: datetime, zone: Zone = Zone.UTC) -> datetime | None:
    """A typed time: `2026-11-24 10:15[:30]`, ISO 8601, `10:15[:30]` for today, `now`,
    `now-15m` or `15m` (s, m, h, d); without a zone, in `zone`.

    Empty means open-ended (None).
    """
    value = text.strip()
    if not value:
        return None
    try:
        if len(value) <= 8 and ":" in value:
            clock = datetime.strptime(value, "%H:%M:%S" if value.count(":") == 2 else "%H:%M")
            return zone.show(now).replace(
                hour=clock.hour, minute=clock.minute, second=clock.second, microsecond=0
            )
        moment = datetime.fromisoformat(value)
    except ValueError:
        try:
            return read_moment(value, now)
        except MomentError:
            raise TimeRangeError(
                f"cannot read {value!r}: use 2026-11-24 10:15, 10:15:30 (today), ISO 8601 "
                f"({zone.value} unless it says otherwise), now, or a span back from now: "
                "now-15m or 15m (s, m, h, d)"
            ) from None
    return moment if moment.tzinfo else zone.read(moment)


def resolve(
    preset: str, since_text: str, until_text: str, now: datetime, zone: Zone = Zone.UTC
) -> tuple[datetime | None, datetime | None]:
    """The (since, until) a range stands for at `now`."""
    if preset != "custom":
        span = PRESETS[preset]
        return (now - span if span is not None else None), None
    since = parse_moment(since_text, now, zone)
    until = parse_moment(until_text, now, zone)
    if since is not None and until is not None and since >= until:
        raise TimeRangeError("`since` must be before `until`")
    return since, until
