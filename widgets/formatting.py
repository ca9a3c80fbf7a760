"""How times, ages and counts read on screen. All times are shown in UTC, as logged."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def parse_time(timestamp: str) -> datetime | None:
    """An ISO 8601 timestamp as an aware datetime, or None if it is not one."""
    try:
        moment = datetime.fromisoformat(timestamp)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def clock_time(moment: datetime) -> str:
    """`10:15:03` in UTC."""
    return moment.astimezone(UTC).strftime("%H:%M:%S")


def log_time(timestamp: str) -> str:
    """`10:15:30.123` from `2026-11-24T10:15:30.123Z` without parsing the usual shape."""
    if len(timestamp) >= 23 and timestamp[10] == "T" and timestamp[19] == ".":
        return timestamp[11:23]
    moment = parse_time(timestamp)
    if moment is None:
        return timestamp[:12]
    return moment.astimezone(UTC).strftime("%H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


def day_time(timestamp: str) -> str:
    """`11-24 10:15:30` for results that may span days."""
    moment = parse_time(timestamp)
    if moment is None:
        return timestamp[:14]
    return moment.astimezone(UTC).strftime("%m-%d %H:%M:%S")


def age(delta: timedelta) -> str:
    """`4s`, `2m05s`, `1h02m`, `3d04h`: compact and stable in width as it ticks."""
    seconds = max(0, int(delta.total_seconds()))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"


def compact_count(count: int) -> str:
    """`950`, `1.2k`, `12k`, `3.4M`."""
    if count < 1000:
        return str(count)
    for divisor, suffix in ((1_000_000, "M"), (1_000, "k")):
        if count >= divisor:
            value = count / divisor
            return f"{value:.1f}{suffix}" if value < 10 else f"{value:.0f}{suffix}"
    return str(count)
