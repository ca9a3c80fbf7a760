"""AckSender against a small in-test Forward server: delivery, resends, backpressure."""

from __future__ import annotations

import asyncio
import socket
from collections import Counter
from typing import Any

import pytest

from backend.forward.protocol import ForwardDecoder, Frame, ack_for
from backend.forward.sender import AckSender
from backend.retry import Backoff


class AckServer:
    """Decodes with ForwardDecoder and acks each chunk, unless told to misbehave.

    `swallow` chunks are read and dropped without an answer; `hang_up` chunks make the
    server close the connection instead; `acking` False swallows everything.
    """

    def __init__(self, swallow: int = 0, hang_up: int = 0) -> None:
        self.swallow = swallow
        self.hang_up = hang_up
        self.acking = True
        self.frames: list[Frame] = []
        self.delivered: list[Frame] = []
        self.connections = 0
        self.server: asyncio.Server | None = None

    async def start(self, port: int = 0) -> AckServer:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", port)
        return self

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    @property
    def port(self) -> int:
        assert self.server is not None
        port: int = self.server.sockets[0].getsockname()[1]
        return port

    @property
    def chunk_ids(self) -> list[str | None]:
        return [frame.chunk for frame in self.frames]

    def records(self) -> list[dict[str, Any]]:
        """Records of the acknowledged chunks, in the order they arrived."""
        return [entry.record for frame in self.delivered for entry in frame.entries]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        decoder = ForwardDecoder()
        try:
            while data := await reader.read(65536):
                for frame in decoder.feed(data):
                    assert isinstance(frame, Frame), frame
                    self.frames.append(frame)
                    if self.hang_up:
                        self.hang_up -= 1
                        return
                    if self.swallow or not self.acking:
                        self.swallow = max(0, self.swallow - 1)
                        continue
                    assert frame.chunk is not None
                    self.delivered.append(frame)
                    writer.write(ack_for(frame.chunk))
        finally:
            writer.close()


@pytest.fixture
async def server() -> Any:
    srv = await AckServer().start()
    yield srv
    await srv.stop()


def sender_for(port: int, **kwargs: Any) -> AckSender:
    fast_retry = Backoff(initial=0.01, maximum=0.05)
    options: dict[str, Any] = {"flush_interval": 0.01, "ack_timeout": 0.3, "backoff": fast_retry}
    return AckSender("logdeck", "127.0.0.1", port, **(options | kwargs))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def test_records_arrive_in_order_as_acknowledged_packed_chunks(server: AckServer) -> None:
    sender = sender_for(server.port, batch_size=4)
    await sender.start()
    await sender.emit("registration", {"n": 0})
    for n in range(1, 10):
        await sender.emit("log", {"n": n})
    await sender.emit("heartbeat", {"n": 10})
    await sender.close()

    assert [r["n"] for r in server.records()] == list(range(11))
    assert [f.tag for f in server.delivered] == [
        "logdeck.registration",
        "logdeck.log",
        "logdeck.log",
        "logdeck.log",
        "logdeck.heartbeat",
    ]
    assert [len(f.entries) for f in server.delivered] == [1, 4, 4, 1, 1]
    assert {f.mode for f in server.delivered} == {"PackedForward"}
    assert len(set(server.chunk_ids)) == len(server.chunk_ids)
    assert sender.acked == sender.emitted == 11 and sender.unacked == 0


async def test_event_time_carries_sub_second_precision(server: AckServer) -> None:
    sender = sender_for(server.port)
    await sender.emit("log", {"n": 1})
    await sender.close()
    assert not server.delivered[0].entries[0].time.is_integer()


async def test_flush_waits_for_the_acknowledgement(server: AckServer) -> None:
    sender = sender_for(server.port, flush_interval=10.0)
    await sender.emit("log", {"n": 1})
    await sender.flush()
    assert sender.acked == 1 and len(server.delivered) == 1
    await sender.close()


async def test_a_chunk_without_ack_is_resent_with_the_same_id() -> None:
    server = await AckServer(swallow=1).start()
    try:
        sender = sender_for(server.port, batch_size=5, ack_timeout=0.2)
        for n in range(12):
            await sender.emit("log", {"n": n})
        async with asyncio.timeout(5):
            await sender.close()
    finally:
        await server.stop()

    first = server.chunk_ids[0]
    assert server.chunk_ids.count(first) == 2
    assert server.connections == 2
    # Chunks after the lost ack were acknowledged on the first connection: only the
    # swallowed chunk goes again, so it arrives after them.
    assert sorted(r["n"] for r in server.records()) == list(range(12))
    assert len(server.records()) == 12


async def test_a_closed_connection_makes_the_sender_reconnect_and_resend() -> None:
    server = await AckServer(hang_up=2).start()
    try:
        sender = sender_for(server.port, batch_size=3)
        for n in range(7):
            await sender.emit("log", {"n": n})
        async with asyncio.timeout(5):
            await sender.close()
    finally:
        await server.stop()

    assert server.connections == 3
    assert server.chunk_ids[:3] == [server.chunk_ids[0]] * 3
    assert [r["n"] for r in server.records()] == list(range(7))


async def test_a_refused_connection_is_retried_until_the_server_is_up(
    caplog: pytest.LogCaptureFixture,
) -> None:
    port = free_port()
    sender = sender_for(port)
    await sender.emit("log", {"n": 1})
    await asyncio.sleep(0.2)
    assert sender.acked == 0
    assert "not acknowledged" in caplog.text and "send them again" in caplog.text
    server = await AckServer().start(port)
    try:
        async with asyncio.timeout(5):
            await sender.close()
    finally:
        await server.stop()
    assert server.records() == [{"n": 1}]


async def test_emit_waits_while_max_buffer_records_are_unacknowledged(server: AckServer) -> None:
    server.acking = False
    sender = sender_for(server.port, batch_size=4, max_buffer=10, ack_timeout=0.2)
    for n in range(10):
        await sender.emit("log", {"n": n})
    assert sender.unacked == 10
    blocked = asyncio.create_task(sender.emit("log", {"n": 10}))
    await asyncio.sleep(0.5)
    assert not blocked.done()
    assert sender.unacked == 10

    server.acking = True
    async with asyncio.timeout(5):
        await blocked
        await sender.close()
    arrived = Counter(r["n"] for r in server.records())
    assert sorted(arrived) == list(range(11))
    assert sender.unacked == 0


async def test_close_can_be_bounded_and_reports_what_was_left(server: AckServer) -> None:
    server.acking = False
    sender = sender_for(server.port, ack_timeout=0.1)
    for n in range(3):
        await sender.emit("log", {"n": n})
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.3):
            await sender.close()
    assert sender.unacked == 3
    with pytest.raises(RuntimeError):
        await sender.emit("log", {"n": 3})
