"""The order logs were logged in: a key that sorts them by their timestamp.

Timestamps usually come in one shape (`2026-11-24T10:15:30.123Z`), whose text sorts as
the moments do, so the key is the text itself and costs nothing. Any other ISO 8601 form
(an offset, more digits) is turned into that shape first.
"""

from __future__ import annotations

from backend.schemas import Log, iso_millis
from widgets.formatting import parse_time


def time_key(log: Log) -> str:
    """`log`'s timestamp as UTC text with milliseconds, which sorts in time order."""
    stamp = log.timestamp
    if len(stamp) == 24 and stamp[10] == "T" and stamp[19] == "." and stamp[23] == "Z":
        return stamp
    moment = parse_time(stamp)
    return stamp if moment is None else iso_millis(moment)
