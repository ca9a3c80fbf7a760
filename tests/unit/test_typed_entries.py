"""PackedForward entries read straight into typed messages route exactly as maps would.

The accumulator's decoder reads packed records into `Message` in one pass when a whole
frame fits, and falls back to maps validated later otherwise. Every frame here goes both
ways (with `record_type` and without) and must give the same Kafka records, byte for byte:
valid ones in each shape and time form, every kind of invalid record, keys msgspec would
skip unread, window edges and broken packing.
"""

from __future__ import annotations

import asyncio
import gzip
import struct
from typing import Any

import msgpack
import msgspec
import pytest

import backend.accumulator
from backend.accumulator import Router
from backend.config import Settings
from backend.forward.protocol import ForwardDecoder, Frame, StreamError, pack_event_time
from backend.frame_routing import FrameRouting
from backend.schemas import NOT_UTF8, DeadLetter, Message, decode_as, encode

SETTINGS = Settings(namespace="typed", retention_days=7, max_skew_s=86_400)
NOW = "2026-12-05T12:00:00.000Z"
STAMP = "2026-12-05T11:59:59.123Z"
EVENT_TIME = pack_event_time(1_764_936_000.25)


def log(level: str = "INFO", **changes: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "message_type": "LOG",
        "log_id": "log-1",
        "node_id": "node-1",
        "log_level": level,
        "message": "hello",
        "service_name": "PaymentService",
        "timestamp": STAMP,
    }
    if level == "WARN":
        record |= {"response_time_ms": 900.5, "threshold_limit_ms": 800}
    if level in ("ERROR", "FATAL"):
        record["error_details"] = {"error_code": "PAY-502", "error_message": "bad gateway"}
    return record | changes


HEARTBEAT = {"message_type": "HEARTBEAT", "node_id": "node-2", "status": "UP", "timestamp": STAMP}
REGISTRATION = {
    "message_type": "REGISTRATION",
    "node_id": "node-3",
    "service_name": "OrderService",
    "timestamp": STAMP,
}
VALID = [log(), log("WARN"), log("ERROR"), log("FATAL"), HEARTBEAT, REGISTRATION]

RECORDS: list[Any] = [
    log(response_time_ms=5),
    log("WARN", response_time_ms=float("nan")),
    log(log_level="info"),
    log(message_type="NOPE"),
    {"no": "message_type"},
    log(node_id=""),
    log(node_id="n" * 600),
    log(log_id=5),
    log(timestamp=b"bytes"),
    log("ERROR", error_details=None),
    log(response_time_ms=True),
    log(extra={"nested": [1, {"b": None}]}),
    {1: "an integer key", **log()},
    log(message="m" * 1_100_000),  # over a Kafka record
    log(message="ünïcödé ✓"),
    log(threshold_limit_ms=2**64 - 1),
    HEARTBEAT | {"status": "SIDEWAYS"},
    REGISTRATION | {"status": "DOWN"},
    REGISTRATION | {"status": None},
    "not a map",
    [1, 2],
    None,
    # Around the window at NOW: 7 days kept, a day of skew.
    log(timestamp="2026-12-06T12:00:00.000Z"),
    log(timestamp="2026-12-06T12:00:00.001Z"),
    log(timestamp="2026-12-06T12:00:00,001Z"),
    log(timestamp="2026-12-06T12:00:00.000+00:00"),
    log(timestamp="2026-11-28T00:00:00.000Z"),
    log(timestamp="2026-11-27T23:59:59.999Z"),
    log(timestamp="2026-11-28T00:30:00+01:00"),
    log(timestamp="2026-02-30T00:00:00.000Z"),
    log(timestamp="2020-01-01T00:00:00.000Z"),
]


def pack(value: Any) -> bytes:
    packed: bytes = msgpack.packb(value)
    return packed


def with_key(record: dict[str, Any], key: bytes, value: bytes) -> bytes:
    """`record` packed with one more key and value, given as msgpack bytes."""
    items = b"".join(pack(k) + pack(v) for k, v in record.items())
    return bytes([0x80 | len(record) + 1]) + items + key + value


def replaced(record: dict[str, Any], name: str, value: bytes) -> bytes:
    """`record` packed with the value of `name` given as msgpack bytes."""
    items = b"".join(pack(k) + (value if k == name else pack(v)) for k, v in record.items())
    return bytes([0x80 | len(record)]) + items


CRAFTED = [
    replaced(log(), "message", b"\xa2\xff\xfe"),  # not UTF-8
    with_key(log(), b"\xa3\xff\xfex", pack(1)),  # a key that is not UTF-8 and names no field
    with_key(log(), pack("junk"), b"\xa2\xff\xfe"),  # a value not UTF-8 in an unknown field
    with_key(log(), pack("node_id"), pack("twice")),  # a key twice: the last one counts
    replaced(log("WARN"), "response_time_ms", b"\xca" + struct.pack(">f", 1.1)),  # float32
    replaced(log(), "message", b"\xd9\x05hello"),  # str8 where a fixstr would do
    replaced(log(), "message", pack(b"binary")),
    with_key(log(), pack("ext"), pack(msgpack.ExtType(5, b"xy"))),
    with_key(log(), pack("deep"), b"\x91" * 1000 + b"\xc0"),  # deeper than msgspec reads
    with_key(log(), pack("deep"), b"\x91" * 1020 + b"\xc0"),
    with_key(log(), pack("deep"), b"\x91" * 5000 + b"\xc0"),  # deeper than msgpack reads
    pack(dict(reversed(log().items()))),  # the tag last
    b"\xde\x00\x07" + pack(log())[1:],  # map 16 and map 32 where a fixmap would do
    b"\xdf\x00\x00\x00\x07" + pack(log())[1:],
    b"\xde\x00\x08" + pack(log())[1:] + pack("extra") + pack(1),
]
TIMES = [
    EVENT_TIME,
    1_764_936_000,
    1_764_936_000.5,
    None,
    True,
    "1764936000",
    msgpack.ExtType(0, b"1234"),
    msgpack.ExtType(3, b"12345678"),
]


def entry(at: Any, record: bytes) -> bytes:
    return b"\x92" + pack(at) + record


def frame(*entries: bytes, **option: Any) -> bytes:
    """A PackedForward frame whose option gives the count of entries, as clients do."""
    option = {"chunk": "c1", "size": len(entries), **option}
    return pack(["logdeck.log", b"".join(entries), option])


WRONG_SIZES = [0, 5, 7, -1, True, "6", None, 2**64 - 1]


GOOD = [entry(EVENT_TIME, pack(record)) for record in VALID]
FRAMES = [
    frame(*GOOD * 50),
    frame(*[entry(1_764_936_000, pack(record)) for record in VALID]),
    *[frame(entry(at, pack(log())), GOOD[4]) for at in TIMES],
    *[frame(entry(EVENT_TIME, pack(record)), *GOOD[:2]) for record in RECORDS],
    *[frame(entry(EVENT_TIME, record), *GOOD[:2]) for record in CRAFTED],
    *[frame(entry(EVENT_TIME, record)) for record in CRAFTED],
    frame(*GOOD, entry(EVENT_TIME, pack(log()))[:-3]),  # the last entry cut short
    frame(*GOOD, b"\xc1"),  # not msgpack
    frame(*GOOD, pack(5), pack([EVENT_TIME]), pack([EVENT_TIME, log(), 3])),
    frame(*GOOD * 100),  # past max_entries
    frame(*GOOD * 100, size=500),
    *[frame(*GOOD, size=size) for size in WRONG_SIZES],
    frame(*[entry(EVENT_TIME, pack(log(timestamp="2020-01-01T00:00:00.000Z")))] * 300),
    frame(*[entry(EVENT_TIME, pack(log(node_id=5)))] * 300),
    pack(["logdeck.log", gzip.compress(b"".join(GOOD)), {"compressed": "gzip"}]),
    pack(["logdeck.log", b"".join(GOOD), {"compressed": "text"}]),
    pack(["logdeck.log", b"".join(GOOD)]),
    pack(["logdeck.log", b""]),
    pack(["logdeck.log", [[EVENT_TIME, log()], [None, HEARTBEAT], [1, "x"]]]),
    pack(["logdeck.log", EVENT_TIME, log(), {"chunk": "c2"}]),
]

Routed = list[tuple[str, bytes | None, bytes, tuple[tuple[str, bytes], ...]]]


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """One arrival time, so both ways stamp the same headers and judge the same window."""
    monkeypatch.setattr(backend.accumulator, "now_iso", lambda: NOW)


def decoded(data: bytes, typed: bool) -> list[Frame | StreamError]:
    decoder = ForwardDecoder(
        max_entries=500, clock=lambda: 1.0, record_type=Message if typed else None
    )
    return decoder.feed(data)


def routed(items: list[Frame | StreamError]) -> Routed:
    routing = FrameRouting(Router(SETTINGS, "typed:1"), SETTINGS.topics.deadletter)
    records = asyncio.run(routing.route(items, "peer:1"))
    return [(r.topic, r.key, r.value, r.headers) for r in records]


def typed_entries(items: list[Frame | StreamError]) -> int:
    return sum(
        entry.raw is not None for item in items if isinstance(item, Frame) for entry in item.entries
    )


@pytest.mark.parametrize("data", FRAMES, ids=lambda data: f"{len(data)}B")
def test_a_frame_routes_the_same_read_typed_or_as_maps(data: bytes) -> None:
    assert routed(decoded(data, typed=True)) == routed(decoded(data, typed=False))


def test_frames_of_valid_records_are_read_typed_and_the_rest_as_maps() -> None:
    assert typed_entries(decoded(FRAMES[0], typed=True)) == 300
    assert typed_entries(decoded(FRAMES[1], typed=True)) == 6
    assert typed_entries(decoded(FRAMES[0], typed=False)) == 0
    for record in CRAFTED[-3:-1]:  # maps with wide headers
        assert typed_entries(decoded(frame(entry(EVENT_TIME, record)), typed=True)) == 1
    # One record that does not fit sends the whole frame the plain way.
    for record in (log(log_level="info"), {"no": "message_type"}, "not a map"):
        items = decoded(frame(*GOOD, entry(EVENT_TIME, pack(record))), typed=True)
        assert typed_entries(items) == 0
    for at in (None, True, "1764936000"):
        assert typed_entries(decoded(frame(entry(at, pack(log()))), typed=True)) == 0
    # A wrong count sends the frame the plain way; what is no count is not used at all.
    typed = [typed_entries(decoded(frame(*GOOD, size=size), typed=True)) for size in WRONG_SIZES]
    assert typed == [0, 0, 0] + [6] * 5


def test_typed_records_carry_the_values_and_times_sent() -> None:
    [item] = decoded(frame(*GOOD, entry(1_764_936_000, pack(HEARTBEAT))), typed=True)
    assert isinstance(item, Frame)
    assert [entry.time for entry in item.entries] == [1_764_936_000.25] * 6 + [1_764_936_000.0]
    assert [encode(entry.record) for entry in item.entries] == [
        encode(msgspec.convert(record, Message)) for record in [*VALID, HEARTBEAT]
    ]


def test_a_key_that_is_not_utf8_is_refused_though_it_names_no_field() -> None:
    """msgspec skips such a key unread: the frame must go the plain way, which refuses it."""
    items = decoded(frame(entry(EVENT_TIME, CRAFTED[1])), typed=True)
    assert typed_entries(items) == 0
    [(topic, _, value, _)] = routed(items)
    assert topic == SETTINGS.topics.deadletter
    assert decode_as(value, DeadLetter).reason == NOT_UTF8


def test_a_refused_typed_record_is_dead_lettered_as_the_map_sent() -> None:
    old = log(timestamp="2020-01-01T00:00:00.000Z", extra_field="kept")
    items = decoded(frame(entry(EVENT_TIME, pack(old))), typed=True)
    assert typed_entries(items) == 0  # an unknown key: the plain way
    items = decoded(frame(entry(EVENT_TIME, pack(log(timestamp=old["timestamp"])))), typed=True)
    assert typed_entries(items) == 1
    [(topic, _, value, _)] = routed(items)
    letter = decode_as(value, DeadLetter)
    assert topic == SETTINGS.topics.deadletter and "older than retention" in letter.reason
    assert letter.raw == pack(log(timestamp=old["timestamp"]))


def test_a_record_type_whose_defaults_could_hide_a_key_is_refused() -> None:
    class Counted(msgspec.Struct):
        count: int = 0

    with pytest.raises(ValueError, match="default to None"):
        ForwardDecoder(record_type=Counted)
