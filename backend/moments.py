"""Moments typed on the command line: ISO 8601, `now`, or a span back from now.

`now-15m` and `15m` mean the same (units s, m, h, d), so a time range reads the way
Kibana's does; a time without a zone is UTC, as every timestamp logdeck stores.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Final

_SPAN: Final = re.compile(r"(?:now\s*-\s*)?(\d{1,9})\s*([smhd])")
_UNITS: Final = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


class MomentError(ValueError):
    """A moment that cannot be read; the message shows what is accepted."""


def read_moment(text: str, now: datetime) -> datetime:
    """The moment `text` names, relative ones counted back from `now`."""
    value = text.strip()
    lowered = value.lower()
    if lowered == "now":
        return now
    span = _SPAN.fullmatch(lowered)
    try:
        if span is not None:
            amount, unit = span.groups()
            return now - timedelta(**{_UNITS[unit]: int(amount)})
        moment = datetime.fromisoformat(value)
    except (ValueError, OverflowError):
        raise MomentError(
            f"cannot read the time {text!r}: use ISO 8601 (2026-11-24T10:15:00Z, UTC unless "
            "it says otherwise), now, or a span back from now: now-15m or 15m (s, m, h, d)"
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
