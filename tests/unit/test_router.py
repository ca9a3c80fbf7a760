"""The accumulator's routing: by message_type to topics, keyed by node, the rest dead-lettered."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec

from backend.accumulator import Router
from backend.bus import Outgoing
from backend.config import Settings
from backend.forward.protocol import Entry, Frame, Rejected, StreamError
from backend.schemas import MAX_RECORD_BYTES, Log, decode_as, iso_millis, validate_record
from tests.records import make_log

SETTINGS = Settings(namespace="unit")


def test_records_go_to_the_topic_of_their_message_type_keyed_by_node() -> None:
    log = make_log("node-a", "ERROR")
    heartbeat = {
        "node_id": "node-b",
        "message_type": "HEARTBEAT",
        "status": "UP",
        "timestamp": log["timestamp"],
    }
    registration = {
        "node_id": "node-c",
        "message_type": "REGISTRATION",
        "service_name": "OrderService",
        "timestamp": log["timestamp"],
    }
    # The tag does not decide the route: each record's message_type does.
    frame = Frame("Forward", "logdeck.log", [Entry(1.0, r) for r in (log, heartbeat, registration)])
    router = Router(SETTINGS, "test:1")
    out = router.route([frame], "127.0.0.1:5000")
    assert [(o.topic, o.key) for o in out] == [
        ("unit.logs", b"node-a"),
        ("unit.heartbeats", b"node-b"),
        ("unit.registrations", b"node-c"),
    ]
    assert msgspec.json.decode(out[0].value) == log
    headers = dict(out[0].headers)
    assert headers["tag"] == b"logdeck.log" and headers["ingested_at"].endswith(b"Z")


def test_invalid_records_and_frames_become_dead_letters_with_reason_and_raw_bytes() -> None:
    bad = make_log("node-a", "DEBUG")
    frame = Frame(
        "Message",
        "logdeck.log",
        [Entry(1.0, bad)],
        [Rejected("entry is not [time, record]", b"\x01")],
    )
    router = Router(SETTINGS, "test:1")
    out = router.route([frame, StreamError("invalid msgpack: boom", b"\xc1")], "peer:1")
    assert {o.topic for o in out} == {"unit.deadletter"}
    letters = [msgspec.json.decode(o.value) for o in out]
    assert [letter["reason"] for letter in letters] == [
        "entry is not [time, record]",
        "Invalid enum value 'DEBUG' - at `$.log_level`",
        "invalid msgpack: boom",
    ]
    assert letters[1]["node_id"] == "node-a" and out[1].key == b"node-a"
    assert all(letter["raw"] and letter["peer"] == "peer:1" for letter in letters)
    assert router.counts["unit.deadletter"] == 3


def test_keys_and_enum_values_that_are_not_utf8_are_dead_lettered_not_raised() -> None:
    """Found by the atheris fuzzer: msgspec raised UnicodeEncodeError past the router."""
    router = Router(Settings(), "acc:24224")
    bad_key = {**make_log("n-1", "INFO"), "\udcff": 1}
    bad_level = {**make_log("n-1", "INFO"), "log_level": "\udcff"}
    frame = Frame("Message", "logdeck.log", [Entry(0.0, bad_key), Entry(0.0, bad_level)])
    out = router.route([frame], "peer")
    assert [record.topic for record in out] == ["logdeck.deadletter"] * 2
    reasons = [msgspec.json.decode(record.value)["reason"] for record in out]
    assert reasons == ["record has strings that are not valid UTF-8"] * 2


def _letters(out: list[Outgoing]) -> list[str]:
    return [msgspec.json.decode(o.value)["reason"] for o in out if o.topic == "unit.deadletter"]


def test_timestamps_outside_the_window_are_dead_lettered_with_the_reason() -> None:
    """Each log dated on a day of its own made a day table (and an index) that retention
    never reached: a day ahead and the retention back are what the store keeps."""
    now = datetime.now(UTC)
    dated = {
        "2099": make_log(timestamp="2099-06-01T00:00:00.000Z"),
        "ahead": make_log(timestamp=iso_millis(now + timedelta(days=1, minutes=5))),
        "old": make_log(timestamp=iso_millis(now - timedelta(days=9))),
        "near": make_log(timestamp=iso_millis(now + timedelta(hours=23))),
        "kept": make_log(timestamp=iso_millis(now - timedelta(days=6))),
    }
    heartbeat = {
        "node_id": "n",
        "message_type": "HEARTBEAT",
        "status": "UP",
        "timestamp": "2099-06-01T00:00:00Z",
    }
    entries = [Entry(0.0, r) for r in (*dated.values(), heartbeat)]
    out = Router(SETTINGS, "test:1").route([Frame("Forward", "t", entries)], "peer")
    stored = [msgspec.json.decode(o.value)["log_id"] for o in out if o.topic == "unit.logs"]
    assert stored == [dated["near"]["log_id"], dated["kept"]["log_id"]]
    reasons = _letters(out)
    assert len(reasons) == 4
    assert all(r.startswith("timestamp too far ahead:") for r in (*reasons[:2], reasons[3]))
    assert "more than 1 day ahead of" in reasons[0] and "LOGDECK_MAX_SKEW" in reasons[0]
    oldest = (now - timedelta(days=7)).date().isoformat()
    assert reasons[2].startswith("timestamp older than retention:")
    assert f"before {oldest}, the oldest day kept (7 days" in reasons[2]


def test_the_window_follows_the_settings() -> None:
    settings = Settings(namespace="unit", retention_days=30, max_skew_s=3600)
    now = datetime.now(UTC)
    logs = [
        make_log(timestamp=iso_millis(now - timedelta(days=20))),
        make_log(timestamp=iso_millis(now + timedelta(hours=2))),
    ]
    out = Router(settings, "test:1").route(
        [Frame("Forward", "t", [Entry(0.0, r) for r in logs])], "peer"
    )
    assert [o.topic for o in out] == ["unit.logs", "unit.deadletter"]
    assert "more than 1 h ahead of" in _letters(out)[0]


def test_what_the_router_publishes_the_indexer_decodes_as_the_same_log() -> None:
    """The record the accumulator acknowledges is the record the indexer stores."""
    edge = make_log(
        level="WARN", response_time_ms=3.4e38, threshold_limit_ms=0, message="\x00\x1b\u2028"
    )
    [record] = Router(SETTINGS, "t").route([Frame("Forward", "t", [Entry(0.0, edge)])], "p")
    assert record.topic == "unit.logs"
    assert msgspec.json.decode(record.value) == edge
    assert decode_as(record.value, Log) == validate_record(edge)


def test_a_record_larger_than_kafka_takes_is_dead_lettered_not_resent_forever() -> None:
    """Kafka refused a 1.5 MB log (MessageSizeTooLarge) on every resend: its chunk, and the
    chunks after it, were never acknowledged."""
    big = make_log(message="m" * 1_500_000)
    small = make_log(message="m" * 900_000)
    frame = Frame("Forward", "t", [Entry(0.0, big), Entry(0.0, small)])
    out = Router(SETTINGS, "t").route([frame], "p")
    assert [o.topic for o in out] == ["unit.deadletter", "unit.logs"]
    assert _letters(out)[0].startswith("record is 1500")
    assert "(JSON, key and headers); at most 1000000 fit a Kafka record" in _letters(out)[0]


def test_every_record_the_router_makes_fits_kafka_whatever_the_client_sent() -> None:
    """A huge tag rode along as a header, and a huge value came back in the reason (msgspec
    quotes it) or as the key: Kafka refused such a record, or its dead letter, forever."""
    huge = "z" * 2_000_000
    bad_level = make_log(node_id=huge, level=huge)
    frames = [
        Frame("Forward", huge, [Entry(0.0, make_log())]),
        Frame("Forward", "t", [Entry(0.0, bad_level), Entry(0.0, make_log(timestamp=huge))]),
    ]
    out = Router(SETTINGS, "t").route(frames, "p" * 100_000)
    assert [o.topic for o in out] == ["unit.deadletter"] * 3
    for record in out:
        headers = sum(len(name) + len(value) for name, value in record.headers)
        assert len(record.value) + len(record.key or b"") + headers <= MAX_RECORD_BYTES
    assert _letters(out)[0].startswith("record is 20")
    assert _letters(out)[1].startswith("Invalid enum value 'zzz")
