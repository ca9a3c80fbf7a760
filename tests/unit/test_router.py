"""The accumulator's routing: by message_type to topics, keyed by node, the rest dead-lettered."""

from __future__ import annotations

import msgspec

from backend.accumulator import Router
from backend.config import Settings
from backend.forward.protocol import Entry, Frame, Rejected, StreamError
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
