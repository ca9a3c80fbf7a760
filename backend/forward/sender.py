"""An at-least-once Forward protocol client for asyncio services.

fluent-logger writes Message mode and never asks for acknowledgements, so a record in a
socket buffer when the accumulator dies is gone. `AckSender` batches records into
PackedForward chunks, each with a unique `chunk` id, and keeps a chunk until the server
answers `{"ack": id}`. On a timeout, a refused or reset connection it reconnects with
capped exponential backoff and sends the same chunk, with the same id, again: records
may arrive twice (the indexer deduplicates by log_id) but are never dropped.

One chunk is in flight at a time, so records are acknowledged in the order they were
emitted and memory is bounded by `max_buffer` unacknowledged records: past it, `emit`
waits.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgpack

from backend.forward.protocol import pack_event_time
from backend.retry import Backoff

log = logging.getLogger("logdeck.forward.sender")

_READ_BYTES = 4096


class _Unacknowledged(Exception):
    """The chunk in flight got no acknowledgement on this connection."""


@dataclass(slots=True)
class _Chunk:
    chunk_id: str
    size: int
    frame: bytes


class AckSender:
    """Sends records as acknowledged PackedForward chunks, resending until each is safe."""

    def __init__(
        self,
        tag_prefix: str = "logdeck",
        host: str = "127.0.0.1",
        port: int = 24224,
        *,
        batch_size: int = 500,
        flush_interval: float = 0.05,
        ack_timeout: float = 5.0,
        max_buffer: int = 100_000,
        nanosecond_precision: bool = True,
        backoff: Backoff | None = None,
    ) -> None:
        if batch_size < 1 or max_buffer < 1:
            raise ValueError("batch_size and max_buffer must be at least 1")
        self._tag_prefix = tag_prefix
        self._host = host
        self._port = port
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._ack_timeout = ack_timeout
        self._max_buffer = max_buffer
        self._nanosecond_precision = nanosecond_precision
        self._backoff = backoff or Backoff(initial=0.1, maximum=5.0)
        self._open_tag: str | None = None
        self._open_entries: list[bytes] = []
        self._open_since = 0.0
        self._sealed: deque[_Chunk] = deque()
        self._emitted = 0
        self._acked = 0
        self._wakeup = asyncio.Event()
        self._progress = asyncio.Event()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def emitted(self) -> int:
        """Records accepted by `emit` so far."""
        return self._emitted

    @property
    def acked(self) -> int:
        """Records acknowledged so far; always the first `acked` ones emitted."""
        return self._acked

    @property
    def unacked(self) -> int:
        return self._emitted - self._acked

    async def start(self) -> None:
        """Start the delivery task; connecting waits for the first chunk."""
        if self._task is None:
            self._task = asyncio.create_task(self._deliver_forever(), name="ack-sender")
            self._task.add_done_callback(lambda _: self._progress.set())

    async def emit(self, label: str, record: dict[str, Any]) -> None:
        """Queue `record` under tag `<prefix>.<label>`; waits while `max_buffer` are unacked."""
        if self._closed:
            raise RuntimeError("AckSender is closed")
        if self._task is None:
            await self.start()
        if self.unacked >= self._max_buffer:
            self._seal()
            await self._wait_until(lambda: self.unacked < self._max_buffer)
        tag = f"{self._tag_prefix}.{label}" if self._tag_prefix else label
        if tag != self._open_tag:
            self._seal()
            self._open_tag = tag
        if not self._open_entries:
            self._open_since = time.monotonic()
            self._wakeup.set()
        self._open_entries.append(msgpack.packb([self._event_time(), record]))
        self._emitted += 1
        if len(self._open_entries) >= self._batch_size or self.unacked >= self._max_buffer:
            self._seal()

    async def flush(self) -> None:
        """Return once every record emitted so far is acknowledged."""
        target = self._emitted
        self._seal()
        await self._wait_until(lambda: self._acked >= target)

    async def close(self) -> None:
        """Flush, then stop and disconnect.

        To stop waiting for an accumulator that does not come back, bound it with
        `asyncio.timeout`: the records still unacknowledged (`unacked`) are then abandoned.
        """
        try:
            await self.flush()
        finally:
            self._closed = True
            if self._task is not None:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
            await self._disconnect()

    def _event_time(self) -> object:
        now = time.time()
        return pack_event_time(now) if self._nanosecond_precision else int(now)

    def _seal(self) -> None:
        if not self._open_entries:
            return
        chunk_id = base64.b64encode(os.urandom(16)).decode("ascii")
        size = len(self._open_entries)
        frame = msgpack.packb(
            [self._open_tag, b"".join(self._open_entries), {"chunk": chunk_id, "size": size}]
        )
        self._sealed.append(_Chunk(chunk_id, size, frame))
        self._open_entries = []
        self._wakeup.set()

    async def _wait_until(self, done: Callable[[], bool]) -> None:
        while not done():
            if self._task is not None and self._task.done():
                self._task.result()
                raise RuntimeError("AckSender stopped before its records were acknowledged")
            self._progress.clear()
            await self._progress.wait()

    async def _deliver_forever(self) -> None:
        while True:
            chunk = await self._next_chunk()
            await self._deliver(chunk)
            self._sealed.popleft()
            self._acked += chunk.size
            self._progress.set()

    async def _next_chunk(self) -> _Chunk:
        """The oldest sealed chunk; an open batch is sealed once `flush_interval` old."""
        while True:
            self._wakeup.clear()
            if self._sealed:
                return self._sealed[0]
            if not self._open_entries:
                await self._wakeup.wait()
                continue
            remaining = self._open_since + self._flush_interval - time.monotonic()
            if remaining <= 0:
                self._seal()
                continue
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await self._wakeup.wait()

    async def _deliver(self, chunk: _Chunk) -> None:
        """Send `chunk` until it is acknowledged, reconnecting and resending as needed."""
        failures = 0
        while True:
            try:
                async with asyncio.timeout(self._ack_timeout):
                    reader, writer = await self._connection()
                    writer.write(chunk.frame)
                    await writer.drain()
                    await _read_ack(reader, chunk.chunk_id)
            except (OSError, TimeoutError, _Unacknowledged) as error:
                await self._disconnect()
                failures += 1
                delay = self._backoff.next_delay()
                log.warning(
                    "chunk %s (%d records) not acknowledged by %s:%d (%s); "
                    "reconnecting in %.2f s to send it again",
                    chunk.chunk_id,
                    chunk.size,
                    self._host,
                    self._port,
                    _describe(error),
                    delay,
                )
                await asyncio.sleep(delay)
                continue
            if failures:
                log.info(
                    "chunk %s acknowledged by %s:%d after %d failed attempts",
                    chunk.chunk_id,
                    self._host,
                    self._port,
                    failures,
                )
            self._backoff.reset()
            return

    async def _connection(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._reader is None or self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self._host, self._port)
        return self._reader, self._writer

    async def _disconnect(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


async def _read_ack(reader: asyncio.StreamReader, chunk_id: str) -> None:
    """Read responses until the one for `chunk_id`; earlier chunks' acks are skipped."""
    unpacker = msgpack.Unpacker(raw=False)
    while True:
        data = await reader.read(_READ_BYTES)
        if not data:
            raise _Unacknowledged("connection closed by the server")
        unpacker.feed(data)
        try:
            for response in unpacker:
                if isinstance(response, dict) and response.get("ack") == chunk_id:
                    return
        except ValueError as error:
            raise _Unacknowledged(f"response is not msgpack: {error}") from None


def _describe(error: BaseException) -> str:
    if isinstance(error, TimeoutError):
        return "no acknowledgement in time"
    return str(error) or type(error).__name__
