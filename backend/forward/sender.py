"""An at-least-once Forward protocol client for asyncio services.

fluent-logger writes Message mode and never asks for acknowledgements, so a record in a
socket buffer when the accumulator dies is gone. `AckSender` batches records into
PackedForward chunks, each with a unique `chunk` id, and keeps a chunk until the server
answers `{"ack": id}`. On a timeout, a refused or reset connection it reconnects with
capped exponential backoff and sends the same chunk, with the same id, again: records
may arrive twice (the indexer deduplicates by log_id) but are never dropped.

Up to `max_in_flight` chunks are written ahead of their acks, so the round trip to
Kafka does not cap throughput; `acked` still counts records in the order they were
emitted. Memory is bounded by `max_buffer` unacknowledged records: past it, `emit` waits.

With `ssl` it speaks TLS (checking the server's certificate with that context); with
`shared_key` it answers the server's HELO with PING and accepts the connection only if the
PONG says yes and proves that the server knows the key too. A refusal, or a TLS failure,
is a connection error like any other (retried with backoff, nothing is lost), but being a
matter of settings it is logged once per distinct reason, not on every retry; `refusal`
holds the latest.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import logging
import os
import socket
import ssl as _ssl
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import msgpack

from backend.forward import handshake
from backend.forward.handshake import HandshakeError
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
    acked: bool = False
    generation: int = 0  # the connection it was last written on


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
        max_in_flight: int = 4,
        max_buffer: int = 100_000,
        nanosecond_precision: bool = True,
        backoff: Backoff | None = None,
        shared_key: str | None = None,
        hostname: str | None = None,
        user: tuple[str, str] | None = None,
        ssl: _ssl.SSLContext | None = None,
        standby: Sequence[tuple[str, int]] = (),
    ) -> None:
        """`shared_key`: answer the server's HELO, naming this client `hostname` (default:
        this host's name), and as `user` (name, password) when the server asks for one;
        `ssl`: speak TLS, checking the server with this context;
        `standby`: other accumulators (host, port), each tried in turn when the one in use
        fails, at once, so a node's records and heartbeats go on while one is down."""
        if batch_size < 1 or max_buffer < 1:
            raise ValueError("batch_size and max_buffer must be at least 1")
        self._tag_prefix = tag_prefix
        self._endpoints = [(host, port), *standby]
        self._host, self._port = host, port
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._ack_timeout = ack_timeout
        self._max_in_flight = max_in_flight
        self._generation = 0
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
        self._shared_key = shared_key or None
        self._hostname = hostname or socket.gethostname()
        self._user = user or ("", "")
        self._ssl = ssl
        self._refusal: str | None = None

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

    @property
    def refusal(self) -> str | None:
        """Why the server last refused the handshake or TLS; None while it accepts."""
        return self._refusal

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
        """Keep a connection and a window of chunks on it; on trouble, start over."""
        failures = 0
        while True:
            await self._next_chunk()
            try:
                reader, writer = await self._connection()
                await self._pump(reader, writer)
            except (OSError, TimeoutError, _Unacknowledged, HandshakeError) as error:
                await self._disconnect()
                failures += 1
                if isinstance(error, HandshakeError | _ssl.SSLError):
                    delay = self._backoff.next_delay()  # settings: another try will not fix them
                    self._refused(error, delay)
                    await asyncio.sleep(delay)
                    continue
                # Each endpoint once without waiting; then back off before the next round.
                delay = self._backoff.next_delay() if failures % len(self._endpoints) == 0 else 0.0
                oldest = self._sealed[0] if self._sealed else None
                log.warning(
                    "%d chunks (%d records) not acknowledged by %s:%d (%s); "
                    "reconnecting in %.2f s to send them again, oldest %s",
                    len(self._sealed),
                    sum(chunk.size for chunk in self._sealed),
                    self._host,
                    self._port,
                    _describe(error),
                    delay,
                    oldest.chunk_id if oldest else "-",
                )
                self._fail_over()
                await asyncio.sleep(delay)
                continue
            if failures:
                log.info(
                    "%s:%d acknowledges again after %d failures", self._host, self._port, failures
                )
                failures = 0
            self._backoff.reset()

    def _fail_over(self) -> None:
        """Turn to the next accumulator of the list (the same one when there is no other)."""
        index = (self._endpoints.index((self._host, self._port)) + 1) % len(self._endpoints)
        self._host, self._port = self._endpoints[index]

    def _refused(self, error: HandshakeError | _ssl.SSLError, delay: float) -> None:
        """Log a refusal once per distinct reason: retrying will not change the settings."""
        reason = _describe(error)
        if reason == self._refusal:
            log.debug("%s:%d refused again: %s", self._host, self._port, reason)
            return
        self._refusal = reason
        log.error(
            "%s:%d refused the connection: %s; %d records wait, retrying with backoff "
            "(first in %.2f s; logged again only if the reason changes)",
            self._host,
            self._port,
            reason,
            self.unacked,
            delay,
        )

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Keep up to `max_in_flight` chunks written ahead of their acks, until all are acked.

        A chunk leaves `_sealed` only once it and every chunk before it are acknowledged,
        so `acked` always counts the oldest records, and a reconnect resends exactly the
        chunks with no ack yet (the ones after a lost ack may then arrive before it).
        """
        self._generation += 1
        acks = asyncio.create_task(self._read_acks(reader))
        try:
            while self._sealed:
                for chunk in itertools.islice(self._sealed, self._max_in_flight):
                    if not chunk.acked and chunk.generation != self._generation:
                        writer.write(chunk.frame)
                        chunk.generation = self._generation
                await writer.drain()
                self._wakeup.clear()
                waiter = asyncio.create_task(self._wakeup.wait())
                done, _ = await asyncio.wait(
                    [acks, waiter], timeout=self._ack_timeout, return_when=asyncio.FIRST_COMPLETED
                )
                waiter.cancel()
                if acks in done:
                    acks.result()
                    raise _Unacknowledged("connection closed by the server")
                if not done:
                    raise TimeoutError
                self._seal_if_due()
        finally:
            acks.cancel()
            with contextlib.suppress(
                asyncio.CancelledError, OSError, _Unacknowledged, HandshakeError
            ):
                await acks

    async def _read_acks(self, reader: asyncio.StreamReader) -> None:
        """Mark acknowledged chunks; returns when the server hangs up."""
        unpacker = msgpack.Unpacker(raw=False)
        while data := await reader.read(_READ_BYTES):
            unpacker.feed(data)
            try:
                responses = list(unpacker)
            except ValueError as error:
                raise _Unacknowledged(f"response is not msgpack: {error}") from None
            for response in responses:
                if isinstance(response, list) and response and response[0] in ("HELO", "PONG"):
                    raise HandshakeError(
                        "the server asks for the shared-key handshake",
                        "no shared_key is set here (LOGDECK_FORWARD_SHARED_KEY)",
                    )
                ack = response.get("ack") if isinstance(response, dict) else None
                if ack is not None and self._refusal is not None:
                    self._accepted()
                for chunk in itertools.islice(self._sealed, self._max_in_flight):
                    if chunk.chunk_id == ack:
                        chunk.acked = True
                while self._sealed and self._sealed[0].acked:
                    self._acked += self._sealed.popleft().size
                self._progress.set()
                self._wakeup.set()

    def _seal_if_due(self) -> None:
        if self._open_entries and time.monotonic() - self._open_since >= self._flush_interval:
            self._seal()

    async def _next_chunk(self) -> None:
        """Return once a chunk is sealed; an open batch is sealed once `flush_interval` old."""
        while True:
            self._wakeup.clear()
            if self._sealed:
                return
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

    async def _connection(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._reader is None or self._writer is None:
            # Not `wait_for`: on Python 3.11 it can swallow a cancel that lands as the
            # connection opens, and then `close()` waits for this task forever.
            async with asyncio.timeout(self._ack_timeout):
                reader, writer = await asyncio.open_connection(
                    self._host, self._port, ssl=self._ssl
                )
            if self._shared_key is not None:
                try:
                    await self._handshake(reader, writer, self._shared_key)
                except BaseException:
                    writer.close()
                    raise
                self._accepted()
            self._reader, self._writer = reader, writer
        return self._reader, self._writer

    def _accepted(self) -> None:
        if self._refusal is not None:
            log.info("%s:%d accepts the connection again", self._host, self._port)
            self._refusal = None

    async def _handshake(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, shared_key: str
    ) -> None:
        """Answer HELO with PING; return if the PONG accepts us and proves the key."""
        helo = handshake.parse_helo(await self._handshake_message(reader, "HELO"))
        salt = handshake.new_salt()
        writer.write(handshake.ping(helo, self._hostname, shared_key, salt, *self._user))
        await writer.drain()
        pong = await self._handshake_message(reader, "PONG")
        handshake.check_pong(pong, salt, helo.nonce, shared_key)

    async def _handshake_message(self, reader: asyncio.StreamReader, what: str) -> object:
        buffer = handshake.MessageBuffer()
        try:
            async with asyncio.timeout(self._ack_timeout):
                while True:
                    data = await reader.read(_READ_BYTES)
                    if not data:
                        raise HandshakeError(f"no {what}", "the server closed the connection")
                    if buffer.feed(data):
                        return buffer.message
        except TimeoutError:
            hint = " (does the server ask for a shared key?)" if what == "HELO" else ""
            raise HandshakeError(
                f"no {what}", f"nothing within {self._ack_timeout:g} s{hint}"
            ) from None

    async def _disconnect(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


def _describe(error: BaseException) -> str:
    if isinstance(error, TimeoutError):
        return "no acknowledgement in time"
    return str(error) or type(error).__name__
