"""A real `logdeck accumulator` under abuse stays up, serves a well-behaved client promptly,
dead-letters what it cannot use with a reason, and keeps its memory bounded.

Abusers: a slow-loris client writing a frame one byte per 100 ms, 3,000 idle connections,
and connections writing random bytes, malformed frames, a gzip bomb and an oversized
frame. Every loop is bounded in count and in time. Last, the limit flags (`--idle-timeout`,
`--max-connections`) reach the running server. The figures measured (ack time of the
good client, peak RSS) are printed; run with `-s` to see them.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import random
import socket
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import msgpack
import pytest

from backend.backends import open_bus
from backend.config import Settings
from backend.forward.protocol import DEFAULT_MAX_FRAME_BYTES
from backend.forward.sender import AckSender
from backend.schemas import DeadLetter, decode_as
from tests.integration.conftest import Launch
from tests.integration.harness import Process, port_open, read_topic_async, wait_until
from tests.records import make_log

pytestmark = pytest.mark.integration

IDLE_CONNECTIONS = 3000
GOOD_RECORDS = 500
GOOD_CHUNK = 50
# Generous on purpose: the good client's chunks share the bus with a CI run on the same
# Kafka; unhindered, each is acknowledged in a few ms to a few tens of ms.
ACK_DEADLINE = 15.0
# Growth allowed over the accumulator's idle RSS (about 35 MiB). What the abuse may hold at
# once: an oversized frame (its bytes in the decoder's buffer and msgpack's: 2 x 16 MiB), a
# gzip bomb inflated up to the 16 MiB limit (and its copy), the reads of the garbage
# connections (8 x 256 KiB), the good client's batches and, in the other test, 3,000 idle
# connections at about 15 KiB each (the decoder's unpacker waits for their first byte):
# about 100 MiB in all. Twice
# that leaves room for the allocator and for the bus client's buffers; inflating the bomb
# past the limit (it inflates to 512 MiB) would not fit.
RSS_GROWTH_LIMIT_MIB = 200


def rss_mib(pid: int) -> float:
    """Resident memory of process `pid` (VmRSS), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for process {pid}")


class RssWatch:
    """Samples a process's RSS every 100 ms while its context runs; keeps the peak."""

    def __init__(self, process: Process) -> None:
        self.pid = process.popen.pid
        self.baseline = rss_mib(self.pid)
        self.peak = self.baseline
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> RssWatch:
        self._task = asyncio.create_task(self._sample())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        self.peak = max(self.peak, rss_mib(self.pid))

    async def _sample(self) -> None:
        while True:
            self.peak = max(self.peak, rss_mib(self.pid))
            await asyncio.sleep(0.1)

    def check(self, what: str) -> None:
        growth = self.peak - self.baseline
        print(f"\n{what}: RSS {self.baseline:.0f} MiB idle, {self.peak:.0f} MiB at peak")
        assert growth < RSS_GROWTH_LIMIT_MIB, f"RSS grew by {growth:.0f} MiB during {what}"


async def good_client(settings: Settings) -> tuple[list[dict[str, Any]], float]:
    """Sends GOOD_RECORDS logs one chunk at a time; returns them and the mean ack time."""
    client = AckSender(
        "logdeck", port=settings.accumulator_port, batch_size=GOOD_CHUNK, max_in_flight=1
    )
    logs = [make_log(f"{settings.namespace}-good", "INFO") for _ in range(GOOD_RECORDS)]
    started = time.monotonic()
    for record in logs:
        await client.emit("log", record)
    await asyncio.wait_for(client.close(), ACK_DEADLINE)
    elapsed = time.monotonic() - started
    assert client.acked == client.emitted == GOOD_RECORDS
    per_chunk = elapsed / (GOOD_RECORDS // GOOD_CHUNK)
    print(
        f"\ngood client: {GOOD_RECORDS} records acked in {elapsed:.2f} s, {per_chunk:.3f} s/chunk"
    )
    return logs, elapsed


async def on_the_bus(settings: Settings, logs: list[dict[str, Any]]) -> None:
    records = await read_topic_async(settings, settings.topics.logs, len(logs))
    assert Counter(json.loads(r.value)["log_id"] for r in records) == Counter(
        r["log_id"] for r in logs
    )


async def connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 5)


def heartbeat(settings: Settings) -> dict[str, Any]:
    return {
        "node_id": f"{settings.namespace}-loris",
        "message_type": "HEARTBEAT",
        "status": "UP",
        "timestamp": make_log()["timestamp"],
    }


async def test_slow_loris_and_idle_connections_do_not_stall_a_good_client(
    settings: Settings, accumulator: Process
) -> None:
    port = settings.accumulator_port
    frame = msgpack.packb(["logdeck.heartbeat", 1, heartbeat(settings), {"chunk": "loris"}])
    done = asyncio.Event()

    async def slow_loris() -> bytes:
        reader, writer = await connect(port)
        try:
            sent = 0
            # One byte per 100 ms while the good client works; never the last byte until then.
            while sent < len(frame) - 1 and not done.is_set():
                writer.write(frame[sent : sent + 1])
                await writer.drain()
                sent += 1
                await asyncio.sleep(0.1)
            await done.wait()
            writer.write(frame[sent:])
            return await asyncio.wait_for(reader.read(100), 10)
        finally:
            writer.close()

    idle: list[asyncio.StreamWriter] = []
    async with RssWatch(accumulator) as rss:
        try:
            for _ in range(IDLE_CONNECTIONS):
                idle.append((await connect(port))[1])
            loris = asyncio.create_task(slow_loris())
            await asyncio.sleep(0.5)  # the loris is mid-frame
            try:
                logs, elapsed = await good_client(settings)
            finally:
                done.set()
            # The loris's frame, complete at last, is served too.
            assert await loris == msgpack.packb({"ack": "loris"})
        finally:
            for writer in idle:
                writer.close()
    assert elapsed < ACK_DEADLINE
    assert accumulator.popen.poll() is None, accumulator.output()
    await on_the_bus(settings, logs)
    rss.check(f"{IDLE_CONNECTIONS} idle connections and a slow loris")


def garbage_writers(port: int, count: int, seed: int) -> list[Callable[[], Awaitable[None]]]:
    """Connections writing random bytes: 64 writes of 4 KiB at most, until closed."""

    def writer_for(n: int) -> Callable[[], Awaitable[None]]:
        async def write() -> None:
            rng = random.Random(seed + n)
            _, writer = await connect(port)
            try:
                for _ in range(64):
                    writer.write(rng.randbytes(4096))
                    await asyncio.wait_for(writer.drain(), 5)
            except (ConnectionError, TimeoutError):
                pass  # the accumulator closed the stream it could not frame
            finally:
                writer.close()

        return write

    return [writer_for(n) for n in range(count)]


async def send_and_close(port: int, data: bytes) -> None:
    reader, writer = await connect(port)
    try:
        writer.write(data)
        await asyncio.wait_for(writer.drain(), 30)
        writer.write_eof()
        await asyncio.wait_for(reader.read(), 30)  # until the accumulator closes
    except ConnectionError:
        pass  # closed while we were still writing: expected for an oversized frame
    finally:
        writer.close()


async def dead_letters(settings: Settings, reasons: list[str]) -> list[DeadLetter]:
    """The dead-letter topic, once it holds a letter for each of `reasons` (30 s at most)."""
    bus = open_bus(settings)
    deadline = time.monotonic() + 30
    while True:
        letters = [
            decode_as(r.value, DeadLetter) for r in await bus.snapshot(settings.topics.deadletter)
        ]
        missing = [r for r in reasons if not any(r in letter.reason for letter in letters)]
        if not missing:
            return letters
        assert time.monotonic() < deadline, f"no dead letter for {missing} in {len(letters)}"
        await asyncio.sleep(0.5)


async def test_garbage_streams_are_dead_lettered_and_the_good_client_is_served(
    settings: Settings, accumulator: Process
) -> None:
    port = settings.accumulator_port
    bad_record = ["logdeck.log", 1, {"node_id": f"{settings.namespace}-bad", "message_type": "LOG"}]
    # 32 gzip members of 16 MiB of zeros: 0.5 MiB on the wire, 512 MiB inflated.
    bomb = gzip.compress(bytes(16 * 1024 * 1024), compresslevel=9) * 32
    oversized = b"\xdb" + (64 * 1024 * 1024).to_bytes(4, "big") + bytes(DEFAULT_MAX_FRAME_BYTES)
    malformed = [
        msgpack.packb(bad_record),
        msgpack.packb(["logdeck.log", [["not a time", {}], 42]]),
        msgpack.packb(["logdeck.log", bomb, {"compressed": "gzip", "chunk": "bomb"}]),
        msgpack.packb(["logdeck.log", 1, {}]) + b"\xc1 not msgpack",
        oversized,
    ]
    expected_reasons = [
        "Object missing required field",
        "entry is not [time, record]",
        f"decompressed entries exceed the {DEFAULT_MAX_FRAME_BYTES}-byte limit",
        "invalid msgpack",
        f"frame larger than the {DEFAULT_MAX_FRAME_BYTES}-byte limit",
    ]
    async with RssWatch(accumulator) as rss:
        abuse = [write() for write in garbage_writers(port, 8, seed=6)]
        abuse += [send_and_close(port, data) for data in malformed]
        abusers = asyncio.gather(*abuse)
        logs, elapsed = await good_client(settings)
        await asyncio.wait_for(abusers, 60)
    assert elapsed < ACK_DEADLINE
    assert accumulator.popen.poll() is None, accumulator.output()
    await on_the_bus(settings, logs)

    letters = await dead_letters(settings, expected_reasons)
    assert all(letter.reason.strip() and letter.source == "accumulator" for letter in letters)
    # Each garbage stream either breaks or ends in the middle of a frame: a letter says which.
    broken = ("invalid msgpack", "bytes into a frame", "byte limit")
    assert sum(any(b in letter.reason for b in broken) for letter in letters) >= 8 + 2
    assert all(len(letter.raw) <= 64 * 1024 for letter in letters)
    assert "frame larger than the 16777216-byte limit (--max-frame-bytes)" in accumulator.output()
    rss.check("garbage streams, a gzip bomb and an oversized frame")


async def test_limit_flags_close_idle_connections_and_refuse_extra_ones(
    settings: Settings, launch: Launch
) -> None:
    process = launch(
        "accumulator",
        "--idle-timeout",
        "1",
        "--max-connections",
        "2",
        "--max-connections-per-peer",
        "2",
    )
    port = settings.accumulator_port
    wait_until(lambda: port_open(port) or process.popen.poll() is not None, 60, "the accumulator")
    assert process.popen.poll() is None, process.output()
    await asyncio.sleep(0.3)  # the probe's connection is gone
    started = time.monotonic()
    (idle, idle_writer), (partial, partial_writer) = [await connect(port) for _ in range(2)]
    partial_writer.write(msgpack.packb(["logdeck.log", 1, {"node_id": "n"}])[:10])
    refused, refused_writer = await connect(port)
    assert await asyncio.wait_for(refused.read(), 5) == b""  # closed at once
    assert time.monotonic() - started < 0.9
    assert await asyncio.wait_for(idle.read(), 10) == b""  # closed once silent for 1 s
    assert await asyncio.wait_for(partial.read(), 10) == b""
    assert time.monotonic() - started >= 0.9
    for writer in (idle_writer, partial_writer, refused_writer):
        writer.close()
    letters = await dead_letters(settings, ["connection closed 10 bytes into a frame"])
    assert len(letters) == 1
    output = process.output()
    assert "2 connections are open, the limit (--max-connections)" in output
    assert "silent for 1 s, the limit (--idle-timeout)" in output


# Hostile input: each case below failed before its limit existed.


def amplification(entries: int, chunk: str) -> bytes:
    """A small CompressedPackedForward frame whose gzip holds `entries` times `[0, {}]`."""
    blob = gzip.compress(b"\x92\x00\x80" * entries, compresslevel=9)
    packed: bytes = msgpack.packb(["logdeck.log", blob, {"compressed": "gzip", "chunk": chunk}])
    return packed


async def ask_ack(port: int, frame: bytes, chunk: str, within: float) -> None:
    reader, writer = await connect(port)
    try:
        writer.write(frame)
        assert await asyncio.wait_for(reader.read(100), within) == msgpack.packb({"ack": chunk})
    finally:
        writer.close()


async def test_an_amplification_frame_neither_stalls_a_good_client_nor_floods_dead_letters(
    settings: Settings, accumulator: Process
) -> None:
    # 2,944 bytes that inflate to a million `[0, {}]` entries: a million dead letters, built
    # on the event loop, stalled every other client for about 15 s.
    attack = asyncio.create_task(
        ask_ack(settings.accumulator_port, amplification(1_000_000, "bomb"), "bomb", 30)
    )
    await asyncio.sleep(0.05)
    logs, elapsed = await good_client(settings)
    await attack  # the attacker's chunk is acknowledged once its letters are safe
    assert elapsed < 5.0, f"the good client took {elapsed:.1f} s beside the attack"
    await on_the_bus(settings, logs)
    letters = await dead_letters(settings, ["more than 100000 entries in one frame"])
    assert len(letters) <= 100 + 2
    [folded] = [letter for letter in letters if "dead letters a frame" in letter.reason]
    assert folded.reason.startswith("99901 more records of this frame rejected past 100")
    output = accumulator.output()
    assert "the limit (--max-frame-entries)" in output
    assert "(--max-frame-dead-letters)" in output


async def test_frames_whose_time_cannot_be_read_are_acknowledged_once_dead_lettered(
    settings: Settings, accumulator: Process
) -> None:
    port = settings.accumulator_port
    times = {
        "event-time-4": msgpack.ExtType(0, b"\x00" * 4),
        "event-time-12": msgpack.ExtType(0, b"\x00" * 12),
        "bool": True,
    }
    for chunk, value in times.items():
        frame = msgpack.packb(["logdeck.heartbeat", value, heartbeat(settings), {"chunk": chunk}])
        await ask_ack(port, frame, chunk, 10)
    letters = await dead_letters(settings, ["neither a time"])
    assert len(letters) == len(times)


async def local_connect(
    port: int, source: str, rcvbuf: int | None = None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection from `source` (any address of 127.0.0.0/8 is this host)."""
    sock = socket.socket()
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.bind((source, 0))
    sock.setblocking(False)
    await asyncio.wait_for(asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port)), 5)
    return await asyncio.open_connection(sock=sock)


async def closed_within(reader: asyncio.StreamReader, seconds: float) -> bool:
    try:
        async with asyncio.timeout(seconds):
            while await reader.read(65536):
                pass
    except TimeoutError:
        return False
    except ConnectionError:
        pass
    return True


async def test_limit_flags_cut_off_slow_frames_unread_acks_and_extra_connections_per_peer(
    settings: Settings, launch: Launch
) -> None:
    flags = ["--frame-timeout", "1", "--write-timeout", "1", "--max-connections-per-peer", "2"]
    process = launch("accumulator", *flags)
    port = settings.accumulator_port
    wait_until(lambda: port_open(port) or process.popen.poll() is not None, 60, "the accumulator")
    assert process.popen.poll() is None, process.output()
    frame = msgpack.packb(["logdeck.heartbeat", 1, heartbeat(settings), {"chunk": "c"}])

    # One byte every 200 ms: each byte used to restart the idle timeout, for ever.
    loris, loris_writer = await local_connect(port, "127.0.0.3")

    async def trickle() -> None:
        with contextlib.suppress(ConnectionError):
            for byte in range(len(frame) - 1):
                loris_writer.write(frame[byte : byte + 1])
                await asyncio.sleep(0.2)

    dripping = asyncio.create_task(trickle())
    # Two connections from one address take its share; a third is refused, others served.
    held = [await local_connect(port, "127.0.0.2") for _ in range(2)]
    refused, _ = await local_connect(port, "127.0.0.2")
    assert await closed_within(refused, 5)
    await ask_ack(port, frame, "c", 10)
    # A client that never reads its acks used to hold its connection for ever.
    _, deaf = await local_connect(port, "127.0.0.4", rcvbuf=4096)
    big_chunk = "c" * (128 * 1024)
    for number in range(64):
        deaf.write(
            msgpack.packb(
                ["logdeck.heartbeat", 1, heartbeat(settings), {"chunk": f"{big_chunk}{number}"}]
            )
        )
        with contextlib.suppress(TimeoutError, ConnectionError):
            await asyncio.wait_for(deaf.drain(), 0.5)
        if "(--write-timeout)" in process.output():
            break
    assert await closed_within(loris, 10)
    dripping.cancel()
    wait_until(lambda: "(--write-timeout)" in process.output(), 10, "the write timeout")
    for _, writer in held:
        writer.close()
    deaf.transport.abort()
    loris_writer.close()
    await dead_letters(settings, ["bytes into a frame"])
    output = process.output()
    assert "the limit (--frame-timeout)" in output
    assert "acks not taken for 1 s, the limit (--write-timeout)" in output
    assert "2 connections from 127.0.0.2 are open, the limit (--max-connections-per-peer)" in output


async def test_many_big_frames_at_once_stay_within_the_byte_budget(
    settings: Settings, launch: Launch
) -> None:
    budget = 32 * 1024 * 1024
    process = launch("accumulator", "--max-buffered-bytes", str(budget))
    port = settings.accumulator_port
    wait_until(lambda: port_open(port) or process.popen.poll() is not None, 60, "the accumulator")
    assert process.popen.poll() is None, process.output()
    # 40 frames of 8 MiB at once (dead-lettered, so the bus keeps 64 KiB of each): each used
    # to be held whole, twice over, until decoded (40 frames of 15 MB took 2.4 GB).
    pad = "x" * (8 * 1024 * 1024)

    async def big(number: int) -> None:
        record = {"node_id": f"{settings.namespace}-big", "pad": pad}
        frame = msgpack.packb(["logdeck.log", 1, record, {"chunk": f"big{number}"}])
        await ask_ack(port, frame, f"big{number}", 60)

    async with RssWatch(process) as rss:
        senders = asyncio.gather(*(big(number) for number in range(40)))
        logs, elapsed = await good_client(settings)
        await asyncio.wait_for(senders, 90)
    assert elapsed < ACK_DEADLINE
    await on_the_bus(settings, logs)
    rss.check("40 connections sending 8 MiB frames at once")
    assert "the limit (--max-buffered-bytes)" in process.output()
