"""The feed's sort key: timestamps of any ISO 8601 shape sort in time order."""

from __future__ import annotations

from backend.schemas import Level, Log
from widgets.time_order import time_key


def _log(timestamp: str) -> Log:
    return Log(
        log_id=timestamp,
        node_id="payments-0",
        log_level=Level.INFO,
        message="request served",
        service_name="payments",
        timestamp=timestamp,
    )


def test_the_usual_shape_is_its_own_key() -> None:
    stamp = "2026-11-24T10:15:30.123Z"
    assert time_key(_log(stamp)) == stamp


def test_offsets_and_other_precisions_sort_by_the_moment() -> None:
    stamps = [
        "2026-11-24T12:15:30.200+02:00",  # 10:15:30.200 UTC
        "2026-11-24T10:15:30.1Z",
        "2026-11-24T10:15:30.150000+00:00",
        "2026-11-24T10:15:31Z",
    ]
    ordered = sorted((_log(stamp) for stamp in stamps), key=time_key)
    assert [log.timestamp for log in ordered] == [stamps[1], stamps[2], stamps[0], stamps[3]]
    assert time_key(_log(stamps[0])) == "2026-11-24T10:15:30.200Z"
