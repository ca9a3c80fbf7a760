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


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"log_level": "WARN", "response_time_ms": float("nan")}, "`response_time_ms` must be"),
        ({"log_level": "WARN", "response_time_ms": float("inf")}, "`response_time_ms` must be"),
        ({"response_time_ms": float("-inf")}, "`response_time_ms` must be a finite number"),
        ({"threshold_limit_ms": float("nan")}, "`threshold_limit_ms` must be a finite number"),
        ({"response_time_ms": 1e39}, "`response_time_ms` must be"),
        ({"timestamp": "0001-01-01T00:00:00.000Z"}, "outside 1970-2099"),
        ({"timestamp": "9999-12-31T23:59:59.999Z"}, "outside 1970-2099"),
        ({"timestamp": "9999-12-31T23:59:59-01:00"}, "outside 1970-2099"),
        ({"timestamp": "0001-01-01T00:00:00+01:00"}, "outside 1970-2099"),
        ({"timestamp": "1969-12-31T23:59:59.999Z"}, "outside 1970-2099"),
        ({"timestamp": "2026-11-24 10:15:30Z"}, "not ISO 8601"),
        ({"timestamp": "2026-02-30T10:15:30.123Z"}, "not ISO 8601"),
        ({"timestamp": "2026-11-24T10:15:60.123Z"}, "not ISO 8601"),
        ({"timestamp": "20261124T101530Z"}, "not ISO 8601"),
        ({"timestamp": "2026-W48-2T10:15Z"}, "not ISO 8601"),
        ({"timestamp": "2026-11-24T10:15:30.1234567891Z"}, "not ISO 8601"),
        ({"timestamp": "2026-11-24T10:15:30+23:59"}, "offset"),
        ({"log_id": "x" * 513}, "`log_id` is 513 bytes"),
        ({"node_id": "é" * 300}, "`node_id` is 600 bytes"),
        ({"service_name": "s" * 40_000}, "`service_name` is 40000 bytes"),
        (
            {"log_level": "ERROR", "error_details": {"error_code": "E" * 600, "error_message": ""}},
            "`error_code` is 600 bytes",
        ),
    ],
)
def test_what_a_store_cannot_hold_is_refused_with_a_reason(
    change: dict[str, Any], reason: str
) -> None:
    """Each of these passed here once and was refused by a store (or written as null)."""
    with pytest.raises(InvalidRecord) as caught:
        validate_record(make_log() | change)
    assert reason in str(caught.value)


@pytest.mark.parametrize(
    "change",
    [
        {"timestamp": "2026-11-24T10Z"},
        {"timestamp": "2026-11-24T10:15Z"},
        {"timestamp": "2026-11-24T10:15:30,123+05:30"},
        {"timestamp": "2026-11-24T10:15:30.123456789-0800"},
        {"timestamp": "1970-01-01T00:00:00.000Z"},
        {"timestamp": "2099-12-31T23:59:59.999Z"},
        {"response_time_ms": 3.4e38, "threshold_limit_ms": -0.0},
        {"response_time_ms": 2**64 - 1},
        {"log_id": "x" * 512, "node_id": "n" * 512, "message": "", "service_name": "\x1b[31m"},
        {"message": "nul \x00 bell \x07 line\u2028sep " + "w" * 100_000},
    ],
)
def test_values_at_the_edges_that_the_stores_hold_pass_and_round_trip(
    change: dict[str, Any],
) -> None:
    message = validate_record(make_log() | change)
    assert decode_as(encode(message), Log) == message
