"""The message shapes of DESIGN.md: what they accept, and the reason for each rejection."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from backend.schemas import (
    Heartbeat,
    InvalidRecord,
    Level,
    Log,
    NodeEntry,
    NodeStatus,
    Registration,
    decode_as,
    encode,
    iso_millis,
    now_iso,
    validate_record,
)
from tests.records import make_log

TS = "2026-11-24T10:15:30.123Z"


def test_registration_heartbeat_and_each_level_validate() -> None:
    registration = validate_record(
        {
            "node_id": "n1",
            "message_type": "REGISTRATION",
            "service_name": "PaymentService",
            "timestamp": TS,
        }
    )
    assert isinstance(registration, Registration)
    heartbeat = validate_record(
        {"node_id": "n1", "message_type": "HEARTBEAT", "status": "DOWN", "timestamp": TS}
    )
    assert heartbeat == Heartbeat("n1", NodeStatus.DOWN, TS)
    for level in Level:
        log = validate_record(make_log(level=level.value))
        assert isinstance(log, Log) and log.log_level is level


def test_seed_shapes_round_trip_field_for_field() -> None:
    record = make_log(level="ERROR")
    encoded = msgspec.json.decode(encode(validate_record(record)))
    assert encoded == record
    warn = make_log(level="WARN")
    assert msgspec.json.decode(encode(validate_record(warn))) == warn


def test_decode_as_reads_what_encode_wrote_and_names_what_does_not_fit() -> None:
    log = validate_record(make_log(level="FATAL"))
    assert decode_as(encode(log), Log) == log
    with pytest.raises(InvalidRecord, match="Expected `str`, got `int`"):
        decode_as(b'{"node_id": 1}', NodeEntry)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"log_id": None}, "Expected `str`, got `null` - at `$.log_id`"),
        ({"message": 7}, "Expected `str`, got `int` - at `$.message`"),
        ({"log_level": "DEBUG"}, "Invalid enum value 'DEBUG' - at `$.log_level`"),
        ({"message_type": "METRIC"}, "unknown message_type 'METRIC'"),
        ({"timestamp": "yesterday"}, "timestamp 'yesterday' is not ISO 8601"),
        ({"timestamp": "2026-11-24T10:15:30"}, "has no time zone"),
        ({"node_id": ""}, "`node_id` must not be empty"),
        ({"log_level": "WARN"}, "WARN log needs `response_time_ms` and `threshold_limit_ms`"),
        ({"log_level": "ERROR"}, "ERROR log needs `error_details`"),
        ({"log_level": "FATAL"}, "FATAL log needs `error_details`"),
        (
            {"response_time_ms": "slow", "log_level": "WARN", "threshold_limit_ms": 1},
            "at `$.response_time_ms`",
        ),
    ],
)
def test_each_rejection_says_precisely_why(change: dict[str, Any], reason: str) -> None:
    with pytest.raises(InvalidRecord) as caught:
        validate_record(make_log() | change)
    assert reason in str(caught.value)


def test_missing_field_and_non_map_are_named() -> None:
    record = make_log()
    del record["service_name"]
    with pytest.raises(InvalidRecord, match="missing required field `service_name`"):
        validate_record(record)
    with pytest.raises(InvalidRecord, match="record must be a map, got list"):
        validate_record(["not", "a", "map"])


def test_error_details_need_both_fields() -> None:
    with pytest.raises(InvalidRecord, match="error_message"):
        validate_record(make_log(level="ERROR", error_details={"error_code": "E1"}))


def test_timestamps_carry_milliseconds_and_z() -> None:
    stamp = now_iso()
    assert stamp.endswith("Z") and len(stamp) == len(TS)
    from datetime import datetime

    assert iso_millis(datetime.fromisoformat("2026-11-24T11:15:30.123999+01:00")) == TS


def test_level_rank_orders_severity() -> None:
    assert [level.rank for level in (Level.INFO, Level.WARN, Level.ERROR, Level.FATAL)] == [
        0,
        1,
        2,
        3,
    ]
