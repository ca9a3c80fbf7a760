"""A Forward protocol v1 TCP server: framing, ordering of acks, and backpressure.

What the frames mean is the sink's business. The server reads a connection, hands each
read's frames to the sink in one call, and writes the `{"ack": chunk}` answers only when
the sink says those records are safe, in the order the chunks arrived. At most
`max_pending` reads per connection wait for that; past it the server stops reading, so a
slow Kafka slows the clients down instead of growing memory here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Protocol

from backend.bus import Delivery
from backend.forward.protocol import (
    DEFAULT_MAX_FRAME_BYTES,
    ForwardDecoder,
    Frame,
    StreamError,
    ack_for,
)

log = logging.getLogger("logdeck.forward")

_READ_BYTES = 256 * 1024


class FrameSink(Protocol):
    async def submit(self, frames: list[Frame | StreamError], peer: str) -> Delivery:
        """Take the frames of one read; the result completes when they are safe."""


class ForwardServer:
    def __init__(
        self,
        sink: FrameSink,
        host: str,
        port: int,
        *,
        max_pending: int = 8,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
    ) -> None:
        self._sink = sink
        self._host = host
        self._port = port
        self._max_pending = max_pending
        self._max_frame_bytes = max_frame_bytes
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        """The bound port (useful when started on port 0)."""
        if self._server is None:
            return self._port
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._accept, self._host, self._port, reuse_address=True
        )

    async def stop(self, grace: float = 10.0) -> None:
        """Stop accepting and reading; give pending acks `grace` seconds to go out."""
        if self._server is not None:
            self._server.close()
        for task in self._connections:
            task.cancel()
        if self._connections:
            _, late = await asyncio.wait(self._connections, timeout=grace)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            await _Connection(
                self._sink, reader, writer, self._max_pending, self._max_frame_bytes
            ).run()
        finally:
            self._connections.discard(task)


class _Connection:
    def __init__(
        self,
        sink: FrameSink,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        max_pending: int,
        max_frame_bytes: int,
    ) -> None:
        self._sink = sink
        self._reader = reader
        self._writer = writer
        peer = writer.get_extra_info("peername")
        self._peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        self._decoder = ForwardDecoder(max_frame_bytes)
        self._pending: asyncio.Queue[tuple[list[str], Delivery] | None] = asyncio.Queue(max_pending)

    async def run(self) -> None:
        acker = asyncio.create_task(self._acknowledge())
        try:
            await self._read()
        except (ConnectionError, asyncio.IncompleteReadError) as error:
            log.debug("connection from %s lost: %s", self._peer, error)
        finally:
            await self._pending.put(None)
            with contextlib.suppress(ConnectionError):
                await acker
            self._writer.close()
            with contextlib.suppress(ConnectionError):
                await self._writer.wait_closed()

    async def _read(self) -> None:
        while not self._decoder.broken:
            data = await self._reader.read(_READ_BYTES)
            if not data:
                return
            items = self._decoder.feed(data)
            if not items:
                continue
            chunks = [item.chunk for item in items if isinstance(item, Frame) and item.chunk]
            delivery = await self._sink.submit(items, self._peer)
            await self._pending.put((chunks, delivery))
        log.warning("closing connection from %s: its stream cannot be framed", self._peer)

    async def _acknowledge(self) -> None:
        while (item := await self._pending.get()) is not None:
            chunks, delivery = item
            await delivery
            if chunks:
                self._writer.write(b"".join(ack_for(chunk) for chunk in chunks))
                await self._writer.drain()
