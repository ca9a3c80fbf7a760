"""What one hostile client may cost the accumulator: work per frame (entries, dead letters),
time to finish a frame and to take acks, connections per address, memory per connection
and in all, and acks for frames whose every record was refused."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import socket
import time
import tracemalloc
from typing import Any

import msgpack
import msgspec
import pytest

from backend.accumulator import Router
from backend.bus import Delivery
from backend.config import Settings
from backend.forward.protocol import ForwardDecoder, Frame, StreamError, ack_for
from backend.forward.server import ForwardServer
from backend.frame_routing import FrameRouting
from launch.cli import build_parser
from tests.records import make_log

SETTINGS = Settings(namespace="unit")
RECORD = {"message_type": "HEARTBEAT", "node_id": "payment-01", "status": "UP"}


def pack(value: Any) -> bytes:
    packed: bytes = msgpack.packb(value)
    return packed


def amplification(entries: int, chunk: str = "bomb") -> bytes:
    """A small CompressedPackedForward frame whose gzip holds `entries` times `[0, {}]`."""
    blob = gzip.compress(b"\x92\x00\x80" * entries, compresslevel=9)
    return pack(["logdeck.log", blob, {"compressed": "gzip", "chunk": chunk}])


# Item 1: the work a frame may cause.


def test_packed_entries_past_the_limit_are_rejected_as_one() -> None:
    [frame] = ForwardDecoder(max_entries=100).feed(amplification(1_000))
    assert isinstance(frame, Frame) and frame.chunk == "bomb"
    assert len(frame.entries) == 100
    [rest] = frame.rejected
    assert (
        rest.reason
        == "more than 100 entries in one frame: the 2700 bytes after the first 100 are not read"
    )
    assert len(rest.raw) == 2700


def test_gzip_entries_can_be_left_for_later_and_inflated_elsewhere() -> None:
    decoder = ForwardDecoder(max_entries=10)
    [frame] = decoder.feed(amplification(50), inflate=False)
    assert isinstance(frame, Frame) and frame.gzip is not None and not frame.entries
    decoder.inflate(frame)
    assert frame.gzip is None and len(frame.entries) == 10 and len(frame.rejected) == 1
    assert decoder.entries_capped == 1


def test_a_forward_array_past_the_entry_limit_breaks_the_stream() -> None:
    [error] = ForwardDecoder(max_entries=100).feed(pack(["t", [[0, {}]] * 101]))
    assert isinstance(error, StreamError) and "exceeds max_array_len(100)" in error.reason


def letters(out: list[Any]) -> list[dict[str, Any]]:
    return [msgspec.json.decode(o.value) for o in out if o.topic == SETTINGS.topics.deadletter]


async def test_a_frame_makes_at_most_the_dead_letters_of_the_limit_and_one_that_counts_the_rest(
    caplog: pytest.LogCaptureFixture,
) -> None:
    [frame] = ForwardDecoder().feed(amplification(5_000))
    assert isinstance(frame, Frame)
    good = make_log("node-a")
    frame.entries[2500].record = good  # a valid record among them still goes through
    routing = FrameRouting(Router(SETTINGS, "test:1"), SETTINGS.topics.deadletter, 10)
    out = await routing.route([frame], "peer:1")
    dead = letters(out)
    assert len(dead) == 11 and len(out) == 12
    assert (
        msgspec.json.decode(next(o for o in out if o.topic == SETTINGS.topics.logs).value) == good
    )
    assert dead[-1]["reason"].startswith(
        "4989 more records of this frame rejected past 10 dead letters a frame, counted in "
        "this one; the first: Object missing required field"
    )
    assert any("(--max-frame-dead-letters)" in message for message in caplog.messages)


async def test_routing_a_huge_frame_yields_to_other_tasks() -> None:
    [frame] = ForwardDecoder().feed(amplification(20_000))
    routing = FrameRouting(Router(SETTINGS, "test:1"), SETTINGS.topics.deadletter)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    try:
        await routing.route([frame], "peer:1")
    finally:
        task.cancel()
    assert ticks >= 10  # one turn of the loop per slice of entries at least


# Item 8: an ack for a frame whose time cannot be read.


@pytest.mark.parametrize(
    "time_value",
    [
        msgpack.ExtType(0, b"\x00" * 4),
        msgpack.ExtType(0, b"\x00" * 12),
        True,
        "yesterday",
    ],
    ids=["EventTime of 4 bytes", "EventTime of 12 bytes", "bool", "str"],
)
def test_a_frame_with_a_time_that_cannot_be_read_keeps_its_chunk(time_value: Any) -> None:
    [frame] = ForwardDecoder().feed(pack(["logdeck.log", time_value, RECORD, {"chunk": "c1"}]))
    assert isinstance(frame, Frame)
    assert frame.chunk == "c1" and not frame.entries and frame.rejected


def test_a_frame_of_the_wrong_shape_with_an_option_keeps_its_chunk() -> None:
    [frame] = ForwardDecoder().feed(pack([1, 2, {"chunk": "c2"}]))
    assert isinstance(frame, Frame) and frame.chunk == "c2" and frame.rejected


# Item 7: memory per connection.


def test_a_partial_frame_holds_a_small_buffer_and_a_big_frame_gives_its_buffers_back() -> None:
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        decoders = [ForwardDecoder() for _ in range(100)]
        for decoder in decoders:
            decoder.feed(pack(["t", 1, RECORD])[:10])
        per_connection = (tracemalloc.get_traced_memory()[0] - before) / len(decoders)
        assert per_connection < 128 * 1024  # msgpack's default buffer alone is 1 MiB
        big = ForwardDecoder()
        before = tracemalloc.get_traced_memory()[0]
        [frame] = big.feed(pack(["t", 1, {"pad": "x" * (4 * 1024 * 1024)}]))
        del frame
        assert tracemalloc.get_traced_memory()[0] - before < 256 * 1024
    finally:
        tracemalloc.stop()


class Sink:
    """A FrameSink whose deliveries complete once `release` is set (at once by default)."""

    def __init__(self) -> None:
        self.items: list[Frame | StreamError] = []
        self.release = asyncio.Event()
        self.release.set()

    async def submit(
        self, items: list[Frame | StreamError], peer: str, access: object = None
    ) -> Delivery:
        self.items += items
        return asyncio.ensure_future(self.release.wait())


async def serve(sink: Sink, **limits: Any) -> ForwardServer:
    server = ForwardServer(sink, "127.0.0.1", 0, **limits)
    await server.start()
    return server


async def connect(
    port: int, source: str = "127.0.0.1", rcvbuf: int | None = None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    sock = socket.socket()
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.bind((source, 0))
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    return await asyncio.open_connection(sock=sock)


async def closed(reader: asyncio.StreamReader, within: float) -> bool:
    """True if the server closes the connection within `within` seconds."""
    try:
        async with asyncio.timeout(within):
            while await reader.read(65536):
                pass
    except TimeoutError:
        return False
    except ConnectionError:
        pass
    return True


async def wait_for_message(caplog: pytest.LogCaptureFixture, text: str, within: float) -> None:
    deadline = time.monotonic() + within
    while not any(text in message for message in caplog.messages):
        assert time.monotonic() < deadline, f"no log line with {text!r}"
        await asyncio.sleep(0.05)


# Item 3: connections that hold a slot without doing their part.


async def test_a_frame_sent_one_byte_at_a_time_is_cut_off_at_the_frame_timeout(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sink = Sink()
    server = await serve(sink, idle_timeout=5, frame_timeout=0.5)
    try:
        reader, writer = await connect(server.port)
        frame = pack(["t", 1, RECORD, {"chunk": "loris"}])

        async def trickle() -> None:
            for byte in range(len(frame) - 1):  # never the last byte
                writer.write(frame[byte : byte + 1])
                await asyncio.sleep(0.05)

        started = time.monotonic()
        dripping = asyncio.create_task(trickle())
        assert await closed(reader, 3)
        assert 0.4 < time.monotonic() - started < 3
        dripping.cancel()
        writer.close()
    finally:
        await server.stop()
    [error] = sink.items
    assert isinstance(error, StreamError) and "bytes into a frame" in error.reason
    assert any(m.endswith("the limit (--frame-timeout)") for m in caplog.messages)


async def test_a_client_that_never_reads_its_acks_is_cut_off_at_the_write_timeout(
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = await serve(Sink(), write_timeout=0.5)
    try:
        _, writer = await connect(server.port, rcvbuf=4096)
        chunk = "c" * (128 * 1024)  # each ack as big, so the socket's buffers fill soon
        for number in range(64):
            writer.write(pack(["t", 1, RECORD, {"chunk": f"{chunk}{number}"}]))
            with contextlib.suppress(TimeoutError, ConnectionError):  # the server decides
                await asyncio.wait_for(writer.drain(), 0.5)
            if any("(--write-timeout)" in m for m in caplog.messages):
                break
        await wait_for_message(caplog, "acks not taken for 0.5 s, the limit (--write-timeout)", 10)
        writer.transport.abort()
    finally:
        await server.stop()


async def test_connections_past_the_limit_per_address_are_refused_and_others_served(
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = await serve(Sink(), max_connections_per_peer=2)
    try:
        held = [await connect(server.port, "127.0.0.2") for _ in range(2)]
        refused, _ = await connect(server.port, "127.0.0.2")
        assert await closed(refused, 5)
        assert any(
            "2 connections from 127.0.0.2 are open, the limit (--max-connections-per-peer)" in m
            for m in caplog.messages
        )
        reader, writer = await connect(server.port, "127.0.0.1")
        writer.write(pack(["t", 1, RECORD, {"chunk": "good"}]))
        assert await asyncio.wait_for(reader.read(100), 5) == ack_for("good")
        for _, held_writer in held:
            held_writer.close()
        writer.close()
    finally:
        await server.stop()


# Item 5: memory in all.


async def test_past_the_byte_budget_the_server_stops_reading_until_acks_release_bytes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sink = Sink()
    sink.release.clear()  # the bus holds every delivery for now
    budget = 1024 * 1024
    server = await serve(sink, max_buffered_bytes=budget)
    frame = pack(["t", 1, {"pad": "x" * (200 * 1024)}, {"chunk": "big"}])
    clients, frames = 8, 6
    try:
        connections = [await connect(server.port) for _ in range(clients)]
        for _, writer in connections:
            writer.write(frame * frames)
        await asyncio.sleep(1.0)
        # The budget, and a read per connection read at once past it.
        assert len(sink.items) * len(frame) <= budget + clients * 256 * 1024
        assert len(sink.items) < clients * frames
        assert any("the limit (--max-buffered-bytes)" in m for m in caplog.messages)
        sink.release.set()
        expected = ack_for("big") * frames
        for reader, _ in connections:
            assert await asyncio.wait_for(reader.readexactly(len(expected)), 10) == expected
        assert len(sink.items) == clients * frames
        for _, writer in connections:
            writer.close()
    finally:
        await server.stop()


async def test_frames_bigger_than_what_is_left_of_the_budget_still_complete() -> None:
    sink = Sink()
    server = await serve(sink, max_buffered_bytes=256 * 1024)
    frame = pack(["t", 1, {"pad": "x" * (1024 * 1024)}, {"chunk": "huge"}])
    try:
        clients = [await connect(server.port) for _ in range(4)]
        for _, writer in clients:
            writer.write(frame)
        for reader, _ in clients:
            assert await asyncio.wait_for(reader.read(100), 10) == ack_for("huge")
        for _, writer in clients:
            writer.close()
    finally:
        await server.stop()


async def test_a_big_compressed_frame_does_not_hold_up_another_clients_ack() -> None:
    """The decoding of one client's frame runs off the event loop."""
    server = await serve(Sink())
    try:
        _, attacker = await connect(server.port)
        reader, writer = await connect(server.port)
        started = time.monotonic()
        attacker.write(amplification(1_000_000))  # 2,944 bytes; decoded, seconds of work
        await asyncio.sleep(0.01)
        writer.write(pack(["t", 1, RECORD, {"chunk": "good"}]))
        assert await asyncio.wait_for(reader.read(100), 5) == ack_for("good")
        elapsed = time.monotonic() - started
        print(f"\ngood client's ack during the decoding: {elapsed:.3f} s")
        # Generous: a few ms when the decoding runs elsewhere, seconds when it blocks the loop.
        assert elapsed < 1.0
        attacker.close()
        writer.close()
    finally:
        await server.stop()


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ([], (100_000, 100, None, 60.0, 30.0, 64 * 1024 * 1024)),
        (
            [
                *("--max-frame-entries", "10", "--max-frame-dead-letters", "5"),
                *("--max-connections-per-peer", "7", "--frame-timeout", "2.5"),
                *("--write-timeout", "1.5", "--max-buffered-bytes", "1024"),
            ],
            (10, 5, 7, 2.5, 1.5, 1024),
        ),
    ],
)
def test_accumulator_hostile_input_flags(flags: list[str], expected: tuple[Any, ...]) -> None:
    args = build_parser().parse_args(["accumulator", *flags])
    assert (
        args.max_frame_entries,
        args.max_frame_dead_letters,
        args.max_connections_per_peer,
        args.frame_timeout,
        args.write_timeout,
        args.max_buffered_bytes,
    ) == expected


def test_the_per_peer_limit_is_half_the_connection_limit_unless_given() -> None:
    assert (
        ForwardServer(Sink(), "127.0.0.1", 0, max_connections=300).max_connections_per_peer == 150
    )
    assert ForwardServer(Sink(), "127.0.0.1", 0, max_connections=1).max_connections_per_peer == 1
