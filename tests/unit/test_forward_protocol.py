"""ForwardDecoder on every Forward protocol mode, on hostile input, and on real client bytes;
ForwardServer's limits and the accumulator flags that set them."""

from __future__ import annotations

import asyncio
import gzip
import socket
import struct
import time
from typing import Any

import fluent.asyncsender
import fluent.sender
import msgpack
import pytest

from backend.bus import Delivery
from backend.forward.protocol import (
    DEFAULT_MAX_FRAME_BYTES,
    ForwardDecoder,
    Frame,
    StreamError,
    ack_for,
    pack_event_time,
)
from backend.forward.server import ForwardServer
from launch.cli import build_parser

RECORD = {"message_type": "HEARTBEAT", "node_id": "payment-01", "status": "UP"}


def pack(value: Any) -> bytes:
    packed: bytes = msgpack.packb(value)
    return packed


def entries_blob(*entries: Any) -> bytes:
    return b"".join(pack(entry) for entry in entries)


def decode(data: bytes, **kwargs: Any) -> list[Frame | StreamError]:
    return ForwardDecoder(**kwargs).feed(data)


def only_frame(data: bytes, **kwargs: Any) -> Frame:
    [frame] = decode(data, **kwargs)
    assert isinstance(frame, Frame)
    return frame


@pytest.mark.parametrize(
    ("time", "expected"),
    [
        (1_700_000_000, 1_700_000_000.0),
        (1_700_000_000.25, 1_700_000_000.25),
        (pack_event_time(1_700_000_000.123456789), 1_700_000_000.123456789),
    ],
    ids=["int", "float", "EventTime"],
)
def test_message_mode_takes_every_time_form(time: Any, expected: float) -> None:
    frame = only_frame(pack(["logdeck.heartbeat", time, RECORD]))
    assert frame.mode == "Message"
    assert frame.tag == "logdeck.heartbeat"
    assert frame.entries[0].record == RECORD
    assert frame.entries[0].time == pytest.approx(expected, abs=1e-6)
    assert frame.chunk is None and not frame.rejected


def test_event_time_keeps_nanoseconds() -> None:
    ext = msgpack.ExtType(0, struct.pack(">II", 10, 5))
    frame = only_frame(pack(["t", [[ext, RECORD]]]))
    assert frame.entries[0].time == pytest.approx(10.000000005, abs=1e-12)


def test_pack_event_time_round_trips_and_carries_into_seconds() -> None:
    assert pack_event_time(12.5) == msgpack.ExtType(0, struct.pack(">II", 12, 500_000_000))
    # A fraction that rounds up to a whole second must carry, not wrap back to .0.
    assert pack_event_time(5.9999999999) == msgpack.ExtType(0, struct.pack(">II", 6, 0))


def test_nil_time_means_now_in_message_and_forward_mode_as_in_fluentd() -> None:
    """Fluentd's in_forward stamps a nil time with the time of arrival; Python's
    fluent-logger sends one from `emit_with_time(label, None, record)`."""
    packet = fluent.sender.FluentSender("logdeck")._make_packet("log", None, RECORD)
    before = time.time()
    message = only_frame(packet)
    forward = only_frame(pack(["t", [[None, {"a": 1}], [2, {"b": 2}]], {"chunk": "f1"}]))
    after = time.time()
    assert (message.mode, message.tag, message.entries[0].record) == (
        "Message",
        "logdeck.log",
        RECORD,
    )
    assert before <= message.entries[0].time <= after and not message.rejected
    assert (forward.mode, forward.chunk, not forward.rejected) == ("Forward", "f1", True)
    assert [e.record for e in forward.entries] == [{"a": 1}, {"b": 2}]
    assert before <= forward.entries[0].time <= after and forward.entries[1].time == 2.0


def test_message_mode_option_gives_the_chunk() -> None:
    frame = only_frame(pack(["t", 1, RECORD, {"chunk": "abc=="}]))
    assert frame.mode == "Message"
    assert frame.chunk == "abc=="


def test_message_with_a_record_that_is_not_a_map_is_rejected() -> None:
    frame = only_frame(pack(["t", 1, "not a map"]))
    assert not frame.entries
    assert "map" in frame.rejected[0].reason


def test_forward_mode() -> None:
    data = pack(["logdeck.log", [[1, {"a": 1}], [pack_event_time(2.5), {"b": 2}]], {"chunk": "c1"}])
    frame = only_frame(data)
    assert frame.mode == "Forward"
    assert [e.record for e in frame.entries] == [{"a": 1}, {"b": 2}]
    assert [e.time for e in frame.entries] == [1.0, 2.5]
    assert frame.chunk == "c1"


def test_forward_mode_rejects_a_bad_entry_and_keeps_the_good_ones() -> None:
    data = pack(["t", [[1, {"a": 1}], [2, "not a map"], ["soon", {"c": 3}], [4, {"d": 4}]]])
    frame = only_frame(data)
    assert [e.record for e in frame.entries] == [{"a": 1}, {"d": 4}]
    assert len(frame.rejected) == 2
    assert all("[time, record]" in r.reason for r in frame.rejected)
    assert msgpack.unpackb(frame.rejected[0].raw) == [2, "not a map"]


def test_packed_forward_mode() -> None:
    blob = entries_blob([1, {"a": 1}], [pack_event_time(2.0), {"b": 2}])
    frame = only_frame(pack(["t", blob, {"chunk": "p1", "size": 2}]))
    assert frame.mode == "PackedForward"
    assert [e.record for e in frame.entries] == [{"a": 1}, {"b": 2}]
    assert frame.chunk == "p1"


def test_packed_forward_with_truncated_entries_keeps_what_precedes() -> None:
    whole, partial = entries_blob([1, {"a": 1}]), entries_blob([2, {"b": 2}])[:-3]
    frame = only_frame(pack(["t", whole + partial, {"chunk": "c"}]))
    assert [e.record for e in frame.entries] == [{"a": 1}]
    [rejected] = frame.rejected
    assert rejected.reason == f"packed entries end {len(partial)} bytes into an entry"
    assert rejected.raw == partial


def test_compressed_packed_forward_gzip() -> None:
    blob = entries_blob([1, {"a": 1}], [2, {"b": 2}])
    data = pack(["t", gzip.compress(blob), {"compressed": "gzip", "chunk": "g1"}])
    frame = only_frame(data)
    assert frame.mode == "CompressedPackedForward"
    assert [e.record for e in frame.entries] == [{"a": 1}, {"b": 2}]
    assert frame.chunk == "g1"


def test_compressed_packed_forward_reads_every_gzip_member() -> None:
    members = gzip.compress(entries_blob([1, {"a": 1}])) + gzip.compress(
        entries_blob([2, {"b": 2}], [3, {"c": 3}])
    )
    frame = only_frame(pack(["t", members, {"compressed": "gzip"}]))
    assert [e.record for e in frame.entries] == [{"a": 1}, {"b": 2}, {"c": 3}]


@pytest.mark.parametrize("compressed", ["text", "zstd", "", None, 1])
def test_only_gzip_means_compressed_as_in_fluentd(compressed: object) -> None:
    """Node's fluent-logger sends `compressed: "text"` with plain PackedForward entries."""
    blob = entries_blob([1, {"a": 1}], [2, {"b": 2}])
    frame = only_frame(pack(["t", blob, {"compressed": compressed, "chunk": "n1"}]))
    assert frame.mode == "PackedForward"
    assert [e.record for e in frame.entries] == [{"a": 1}, {"b": 2}]
    assert not frame.rejected
    assert frame.chunk == "n1"


@pytest.mark.parametrize(
    ("body", "option", "reason"),
    [
        (b"not gzip at all", {"compressed": "gzip"}, "invalid gzip"),
        (gzip.compress(entries_blob([1, {"a": 1}]))[:-10], {"compressed": "gzip"}, "truncated"),
    ],
    ids=["garbage", "truncated"],
)
def test_bad_compression_rejects_the_frame_and_the_stream_goes_on(
    body: bytes, option: dict[str, str], reason: str
) -> None:
    decoder = ForwardDecoder()
    bad, good = decoder.feed(pack(["t", body, option]) + pack(["t", 1, RECORD]))
    assert isinstance(bad, Frame) and isinstance(good, Frame)
    assert not bad.entries and reason in bad.rejected[0].reason
    assert good.entries[0].record == RECORD


def test_gzip_bomb_is_refused_beyond_the_frame_limit() -> None:
    bomb = gzip.compress(entries_blob([1, {"pad": "x" * 200_000}]))
    assert len(bomb) < 2_000
    decoder = ForwardDecoder(max_frame_bytes=64 * 1024)
    frame, after = decoder.feed(pack(["t", bomb, {"compressed": "gzip"}]) + pack(["t", 1, RECORD]))
    assert isinstance(frame, Frame) and not frame.entries
    assert "exceed" in frame.rejected[0].reason
    assert isinstance(after, Frame) and after.entries[0].record == RECORD
    assert not decoder.broken


STREAM = [
    pack(["a", 1, {"n": 1}]),
    pack(["b", [[pack_event_time(2.5), {"n": 2}], [3, {"n": 3}]], {"chunk": "x"}]),
    pack(["c", entries_blob([4, {"n": 4}], [5, {"n": 5}]), {"chunk": "y", "size": 2}]),
    pack(["d", gzip.compress(entries_blob([6, {"n": 6}])), {"compressed": "gzip"}]),
    pack(["e", 7.5, {"n": "ünïcödé" * 3}, {"chunk": "z"}]),
]
WHOLE = b"".join(STREAM)


def summary(items: list[Frame | StreamError]) -> list[tuple[str, str, list[Any], str | None]]:
    assert all(isinstance(item, Frame) for item in items)
    return [
        (f.mode, f.tag, [(e.time, e.record) for e in f.entries], f.chunk)
        for f in items
        if isinstance(f, Frame)
    ]


def test_several_frames_in_one_feed() -> None:
    frames = summary(decode(WHOLE))
    assert [mode for mode, *_ in frames] == [
        "Message",
        "Forward",
        "PackedForward",
        "CompressedPackedForward",
        "Message",
    ]
    assert [chunk for *_, chunk in frames] == [None, "x", "y", None, "z"]
    numbers = [record["n"] for *_, entries, _ in frames for _, record in entries]
    assert numbers[:6] == [1, 2, 3, 4, 5, 6]


def test_a_split_at_any_byte_gives_the_same_frames() -> None:
    expected = summary(decode(WHOLE))
    for cut in range(len(WHOLE) + 1):
        decoder = ForwardDecoder()
        got = decoder.feed(WHOLE[:cut]) + decoder.feed(WHOLE[cut:])
        assert summary(got) == expected, f"split at byte {cut}"


def test_byte_by_byte_feeding_gives_the_same_frames() -> None:
    decoder = ForwardDecoder()
    got: list[Frame | StreamError] = []
    for i in range(len(WHOLE)):
        got += decoder.feed(WHOLE[i : i + 1])
    assert summary(got) == summary(decode(WHOLE))


@pytest.mark.parametrize(
    "value",
    [{"tag": "t"}, 42, "just a string", ["t"], [1, 2, {"a": 1}], ["t", None], [1, 2, 3, 4, 5]],
    ids=["map", "int", "str", "too-short", "tag-not-str", "body-none", "too-long"],
)
def test_a_frame_of_the_wrong_shape_is_rejected_and_the_stream_goes_on(value: Any) -> None:
    decoder = ForwardDecoder()
    raw = pack(value)
    bad, good = decoder.feed(raw + pack(["t", 1, RECORD]))
    assert isinstance(bad, Frame) and bad.mode == "invalid" and not bad.entries
    assert bad.rejected[0].reason and bad.rejected[0].raw == raw
    assert isinstance(good, Frame) and good.entries[0].record == RECORD
    assert not decoder.broken


def test_invalid_msgpack_breaks_the_stream_after_the_good_frames() -> None:
    decoder = ForwardDecoder()
    good = pack(["t", 1, RECORD])
    items = decoder.feed(good + b"\xc1garbage")
    assert isinstance(items[0], Frame) and items[0].entries[0].record == RECORD
    error = items[1]
    assert isinstance(error, StreamError)
    assert "invalid msgpack" in error.reason
    assert error.raw.startswith(b"\xc1")
    assert decoder.broken
    assert decoder.feed(good) == []


def test_a_frame_beyond_the_size_limit_breaks_the_stream() -> None:
    decoder = ForwardDecoder(max_frame_bytes=1024)
    big = pack(["t", 1, {"pad": "x" * 2000}])
    items = decoder.feed(big[:600]) + decoder.feed(big[600:])
    assert len(items) == 1 and isinstance(items[0], StreamError)
    assert "1024-byte limit" in items[0].reason
    assert decoder.broken


def test_many_small_frames_in_one_read_are_not_mistaken_for_one_big_frame() -> None:
    frame = pack(["t", 1, {"pad": "x" * 100}])
    decoder = ForwardDecoder(max_frame_bytes=256)
    items = decoder.feed(frame * 20)
    assert len(items) == 20 and all(isinstance(item, Frame) for item in items)
    assert not decoder.broken


def test_a_frame_of_exactly_the_limit_is_accepted() -> None:
    frame = pack(["t", 1, {"pad": "x" * 100}])
    items = decode(frame + frame, max_frame_bytes=len(frame))
    assert len(items) == 2 and all(isinstance(item, Frame) for item in items)


def test_invalid_utf8_does_not_crash_and_is_kept_recoverable() -> None:
    # fixarray(3), tag = fixstr b"\xff\xfe", time 1, record {"k": b"\xc3("} as str
    raw = b"\x93\xa2\xff\xfe\x01\x81\xa1k\xa2\xc3("
    frame = only_frame(raw)
    assert frame.tag.encode("utf-8", "surrogateescape") == b"\xff\xfe"
    value = frame.entries[0].record["k"]
    assert value.encode("utf-8", "surrogateescape") == b"\xc3("


def test_invalid_utf8_inside_packed_entries_does_not_crash() -> None:
    blob = b"\x92\x01\x81\xa1k\xa1\xff"  # [1, {"k": "\xff"}]
    frame = only_frame(pack(["t", blob]))
    assert frame.entries[0].record["k"].encode("utf-8", "surrogateescape") == b"\xff"


def test_ack_for_is_the_msgpack_ack_map() -> None:
    assert msgpack.unpackb(ack_for("Y2h1bms=")) == {"ack": "Y2h1bms="}


# -- the bytes real fluent-logger clients send ------------------------------------------


@pytest.mark.parametrize("nanos", [True, False], ids=["EventTime", "int-time"])
def test_fluent_logger_packets_decode(nanos: bool) -> None:
    sender = fluent.sender.FluentSender("logdeck", nanosecond_precision=nanos)
    event_time = fluent.sender.EventTime.from_unix_nano(1_700_000_000_123_456_789)
    timestamp = event_time if nanos else 1_700_000_000
    packet = sender._make_packet("log", timestamp, RECORD)
    frame = only_frame(packet)
    assert (frame.mode, frame.tag, frame.entries[0].record) == ("Message", "logdeck.log", RECORD)
    assert frame.entries[0].time == pytest.approx(1_700_000_000.123456789 if nanos else 1.7e9)
    assert frame.entries[0].time.is_integer() is not nanos


class Collector:
    """A TCP server that keeps every byte it receives, never answering."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> Collector:
        self.server = await asyncio.start_server(self._read, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    @property
    def port(self) -> int:
        assert self.server is not None
        port: int = self.server.sockets[0].getsockname()[1]
        return port

    async def _read(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while chunk := await reader.read(65536):
            self.data += chunk
        writer.close()

    async def wait_for(self, count: int) -> list[Frame]:
        for _ in range(200):
            frames = [f for f in decode(bytes(self.data)) if isinstance(f, Frame)]
            if len(frames) >= count:
                return frames
            await asyncio.sleep(0.01)
        raise AssertionError(f"expected {count} frames, got {len(frames)}")


def _send_with(module: Any, port: int, nanos: bool) -> None:
    sender = module.FluentSender("logdeck", host="127.0.0.1", port=port, nanosecond_precision=nanos)
    try:
        for i in range(3):
            assert sender.emit("log", {**RECORD, "i": i, "text": "é ✓"})
        assert sender.emit("heartbeat", RECORD)
    finally:
        sender.close()


@pytest.mark.parametrize("module", [fluent.sender, fluent.asyncsender], ids=["sync", "async"])
@pytest.mark.parametrize("nanos", [True, False], ids=["EventTime", "int-time"])
async def test_real_fluent_logger_senders_over_tcp(module: Any, nanos: bool) -> None:
    async with Collector() as collector:
        await asyncio.to_thread(_send_with, module, collector.port, nanos)
        frames = await collector.wait_for(4)
    assert [f.tag for f in frames] == ["logdeck.log"] * 3 + ["logdeck.heartbeat"]
    assert [f.entries[0].record.get("i") for f in frames] == [0, 1, 2, None]
    assert frames[0].entries[0].record["text"] == "é ✓"
    for frame in frames:
        assert frame.mode == "Message" and not frame.rejected
    # EventTime carries the sub-second part; integer times do not.
    assert any(not f.entries[0].time.is_integer() for f in frames) is nanos


def test_fluent_logger_reports_a_refused_connection() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sender = fluent.sender.FluentSender("logdeck", host="127.0.0.1", port=port)
    assert sender.emit("log", RECORD) is False
    assert isinstance(sender.last_error, OSError)
    sender.close()


@pytest.mark.parametrize(
    "data",
    [b"\x93\xa1t\x01\x81\x91\x01\x01", b"\x93\xa1t\x01\x81\x81\x01\x01\x01"],
    ids=["array", "map"],
)
def test_a_map_keyed_by_an_array_or_a_map_breaks_the_stream_without_raising(data: bytes) -> None:
    decoder = ForwardDecoder()
    [error] = decoder.feed(data)
    assert isinstance(error, StreamError) and "unhashable" in error.reason
    assert error.raw == data and not error.too_large and decoder.broken


def test_a_map_keyed_by_an_array_inside_packed_entries_is_rejected() -> None:
    frame = only_frame(pack(["t", entries_blob([1, RECORD]) + b"\x92\x01\x81\x91\x01\x01"]))
    assert [e.record for e in frame.entries] == [RECORD]
    assert "unhashable" in frame.rejected[0].reason


class Sink:
    """A FrameSink whose deliveries complete after `delay` seconds."""

    def __init__(self, delay: float = 0.0) -> None:
        self.items: list[Frame | StreamError] = []
        self.delay = delay

    async def submit(
        self, items: list[Frame | StreamError], peer: str, access: object = None
    ) -> Delivery:
        self.items += items
        delivery: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().call_later(self.delay, delivery.set_result, None)
        return delivery


async def serve(sink: Sink, **limits: Any) -> ForwardServer:
    server = ForwardServer(sink, "127.0.0.1", 0, **limits)
    await server.start()
    return server


async def ask(port: int, chunk: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(pack(["t", 1, RECORD, {"chunk": chunk}]))
    assert await asyncio.wait_for(reader.read(100), 5) == ack_for(chunk)
    return reader, writer


async def test_a_frame_beyond_the_limit_closes_the_connection_with_the_flag_named(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sink = Sink()
    server = await serve(sink, max_frame_bytes=1024)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(pack(["t", 1, {"pad": "x" * 5000}]))
        assert await asyncio.wait_for(reader.read(), 5) == b""  # closed by the server
        local = writer.get_extra_info("sockname")
        writer.close()
        _, healthy = await ask(server.port, "after")  # the server goes on
        healthy.close()
    finally:
        await server.stop()
    [error] = sink.items[:1]
    assert isinstance(error, StreamError) and error.too_large
    assert (
        f"closing {local[0]}:{local[1]}: frame larger than the 1024-byte limit "
        "(--max-frame-bytes)" in caplog.messages
    )


async def test_connections_past_the_limit_are_refused_and_the_open_ones_go_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = await serve(Sink(), max_connections=2, max_connections_per_peer=2)
    try:
        _, first = await ask(server.port, "one")
        second_reader, second = await ask(server.port, "two")
        reader, third = await asyncio.open_connection("127.0.0.1", server.port)
        assert await asyncio.wait_for(reader.read(), 5) == b""
        assert any(
            "2 connections are open, the limit (--max-connections)" in m for m in caplog.messages
        )
        second.write(pack(["t", 1, RECORD, {"chunk": "again"}]))
        assert await asyncio.wait_for(second_reader.read(100), 5) == ack_for("again")
        for writer in (first, second, third):
            writer.close()
    finally:
        await server.stop()


async def test_a_silent_connection_is_closed_after_the_idle_timeout(
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = await serve(Sink(), idle_timeout=0.3)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        started = time.monotonic()
        assert await asyncio.wait_for(reader.read(), 5) == b""
        assert 0.25 < time.monotonic() - started < 3
        assert any(
            m.endswith("silent for 0.3 s, the limit (--idle-timeout)") for m in caplog.messages
        )
        writer.close()
    finally:
        await server.stop()


async def test_a_client_waiting_for_its_ack_is_not_idle() -> None:
    server = await serve(Sink(delay=1.0), idle_timeout=0.2)
    try:
        started = time.monotonic()
        _, writer = await ask(server.port, "slow")  # silent for 1 s, waiting on the bus
        assert time.monotonic() - started >= 0.9
        writer.close()
    finally:
        await server.stop()


@pytest.mark.parametrize(
    "limit",
    [{"max_frame_bytes": 0}, {"max_connections": 0}, {"idle_timeout": 0}, {"max_pending": 0}],
)
def test_limits_must_be_positive(limit: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="must be positive"):
        ForwardServer(Sink(), "127.0.0.1", 0, **limit)


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ([], (DEFAULT_MAX_FRAME_BYTES, 10_000, 300.0)),
        (
            ["--max-frame-bytes", "1024", "--max-connections", "5", "--idle-timeout", "2.5"],
            (1024, 5, 2.5),
        ),
    ],
)
def test_accumulator_limit_flags(flags: list[str], expected: tuple[int, int, float]) -> None:
    args = build_parser().parse_args(["accumulator", *flags])
    assert (args.max_frame_bytes, args.max_connections, args.idle_timeout) == expected


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--max-frame-bytes", "0"], "argument --max-frame-bytes: must be greater than 0, got 0"),
        (["--idle-timeout", "-1"], "argument --idle-timeout: must be greater than 0, got -1"),
        (["--max-connections", "many"], "argument --max-connections: 'many' is not a number"),
    ],
)
def test_accumulator_limit_flags_refuse_bad_values_clearly(
    flags: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["accumulator", *flags])
    assert message in capsys.readouterr().err


def test_a_stream_that_ends_in_the_middle_of_a_frame_is_reported_at_close() -> None:
    decoder = ForwardDecoder()
    good = pack(["t", 1, RECORD])
    [frame] = decoder.feed(good + good[:7])
    assert isinstance(frame, Frame)
    error = decoder.close()
    assert isinstance(error, StreamError)
    assert error.reason == "connection closed 7 bytes into a frame" and error.raw == good[:7]
    assert decoder.broken and decoder.feed(good) == []


def test_a_stream_that_ends_between_frames_closes_quietly() -> None:
    decoder = ForwardDecoder()
    decoder.feed(pack(["t", 1, RECORD]))
    assert decoder.close() is None


async def test_an_unfinished_frame_goes_to_the_sink_when_the_client_leaves() -> None:
    sink = Sink()
    server = await serve(sink)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(pack(["t", 1, RECORD])[:9])
        writer.write_eof()
        assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()
    finally:
        await server.stop()
    [error] = sink.items
    assert isinstance(error, StreamError) and "9 bytes into a frame" in error.reason
