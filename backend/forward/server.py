"""A Forward protocol v1 TCP server: framing, ordering of acks, and backpressure.

What the frames mean is the sink's business. The server reads a connection, hands each
read's frames to the sink in one call, and writes the `{"ack": chunk}` answers only when
the sink says those records are safe, in the order the chunks arrived. At most
`max_pending` reads per connection wait for that; past it the server stops reading, so a
slow Kafka slows the clients down instead of growing memory here.

Limits, each logged with the flag of `logdeck accumulator` that sets it when hit: a frame
beyond `max_frame_bytes` closes its connection (`--max-frame-bytes`); past
`max_connections` open connections a new one is closed at once (`--max-connections`); a
connection that sends nothing for `idle_timeout` seconds while none of its chunks await
an ack is closed (`--idle-timeout`). A frame left unfinished when a connection ends goes
to the sink as a `StreamError`, so it is dead-lettered, not lost without a word. Memory
per connection is thus bounded by about `max_frame_bytes` plus `max_pending` reads.
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
DEFAULT_MAX_CONNECTIONS = 10_000
DEFAULT_IDLE_TIMEOUT = 300.0


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
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
    ) -> None:
        if max_pending < 1 or max_frame_bytes < 1 or max_connections < 1 or idle_timeout <= 0:
            raise ValueError(
                "max_pending, max_frame_bytes, max_connections and idle_timeout must be positive"
            )
        self._sink = sink
        self._host = host
        self._port = port
        self._max_pending = max_pending
        self._max_frame_bytes = max_frame_bytes
        self._max_connections = max_connections
        self._idle_timeout = idle_timeout
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
        if len(self._connections) >= self._max_connections:
            log.warning(
                "refusing %s: %d connections are open, the limit (--max-connections)",
                _peer_of(writer),
                len(self._connections),
            )
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
            return
        self._connections.add(task)
        try:
            await _Connection(
                self._sink,
                reader,
                writer,
                self._max_pending,
                self._max_frame_bytes,
                self._idle_timeout,
            ).run()
        finally:
            self._connections.discard(task)


def _peer_of(writer: asyncio.StreamWriter) -> str:
    peer = writer.get_extra_info("peername")
    return f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)


class _Connection:
    def __init__(
        self,
        sink: FrameSink,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        max_pending: int,
        max_frame_bytes: int,
        idle_timeout: float,
    ) -> None:
        self._sink = sink
        self._reader = reader
        self._writer = writer
        self._peer = _peer_of(writer)
        self._decoder = ForwardDecoder(max_frame_bytes)
        self._idle_timeout = idle_timeout
        self._pending: asyncio.Queue[tuple[list[str], Delivery] | None] = asyncio.Queue(max_pending)
        self._awaiting = 0  # reads handed to the sink whose acks are not written yet

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
        error: StreamError | None = None
        while error is None:
            try:
                data = await asyncio.wait_for(self._reader.read(_READ_BYTES), self._idle_timeout)
            except TimeoutError:
                if self._awaiting:
                    continue  # silent, but waiting for acks the bus still owes it
                log.warning(
                    "closing %s: silent for %g s, the limit (--idle-timeout)",
                    self._peer,
                    self._idle_timeout,
                )
                await self._finish()
                return
            if not data:
                await self._finish()
                return
            items = self._decoder.feed(data)
            if items:
                error = next((item for item in items if isinstance(item, StreamError)), None)
                await self._submit(items)
        hint = " (--max-frame-bytes)" if error.too_large else ""
        log.warning("closing %s: %s%s", self._peer, error.reason, hint)

    async def _finish(self) -> None:
        """Dead-letter the frame a client left unfinished, if any."""
        if (error := self._decoder.close()) is not None:
            log.warning("%s: %s", self._peer, error.reason)
            await self._submit([error])

    async def _submit(self, items: list[Frame | StreamError]) -> None:
        chunks = [item.chunk for item in items if isinstance(item, Frame) and item.chunk]
        delivery = await self._sink.submit(items, self._peer)
        self._awaiting += 1
        await self._pending.put((chunks, delivery))

    async def _acknowledge(self) -> None:
        while (item := await self._pending.get()) is not None:
            chunks, delivery = item
            await delivery
            self._awaiting -= 1
            if chunks:
                self._writer.write(b"".join(ack_for(chunk) for chunk in chunks))
                await self._writer.drain()
