"""A Forward protocol v1 TCP server: framing, ordering of acks, and backpressure.

What the frames mean is the sink's business. The server reads a connection, hands each
read's frames to the sink in one call, and writes the `{"ack": chunk}` answers only when
the sink says those records are safe, in the order the chunks arrived. At most
`max_pending` reads per connection wait for that; past it the server stops reading, so a
slow Kafka slows the clients down instead of growing memory here.

Limits, each logged with the flag of `logdeck accumulator` that sets it when hit: a frame
beyond `max_frame_bytes` closes its connection (`--max-frame-bytes`), and so does an array
of more than `max_frame_entries` items (`--max-frame-entries`; packed entries past it are
rejected as one); past `max_connections` open connections, or `max_connections_per_peer`
from one address, a new one is closed at once (`--max-connections`,
`--max-connections-per-peer`); a connection that sends nothing for `idle_timeout` seconds
while none of its chunks await an ack is closed (`--idle-timeout`), as is one that has not
finished a frame `frame_timeout` seconds after starting it (`--frame-timeout`, so one byte
a second cannot hold a connection) or has not taken its acks within `write_timeout`
seconds (`--write-timeout`). A frame left unfinished when a connection ends goes to the
sink as a `StreamError`, so it is dead-lettered, not lost without a word.

Memory: what all connections have read and not yet seen acknowledged is at most
`max_buffered_bytes` (`--max-buffered-bytes`), plus a read per connection; past it they
stop reading until the sink's deliveries release bytes, except for a small read by one
that holds little (so small frames are served while big ones wait) and a connection in
the middle of a frame when only partial frames fill the budget (one at a time, so frames
bigger than what is left never deadlock).
Work: reads of big frames are decoded, and gzip entries inflated, in a worker thread, so
one client's big or compressed frames never hold up another's acks.

Optionally (both off by default, and then nothing below changes the frame loop): TLS with
`ssl`, and the shared-key handshake of `backend.forward.handshake` with `shared_key`. Both
run before a connection's first frame, each within `idle_timeout`; a connection that fails
either is closed, logged with its peer and the reason (never the key), and counted in
`handshakes` under that reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl as _ssl
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from backend.bus import Delivery
from backend.forward import handshake
from backend.forward.admission import Admission, NodeAccess
from backend.forward.budget import ByteBudget
from backend.forward.protocol import (
    DEFAULT_MAX_FRAME_BYTES,
    DEFAULT_MAX_FRAME_ENTRIES,
    ForwardDecoder,
    Frame,
    StreamError,
    ack_for,
)

log = logging.getLogger("logdeck.forward")

_READ_BYTES = 256 * 1024
_SMALL_READ_BYTES = 16 * 1024
_SMALL_HOLD_BYTES = 64 * 1024
"""Past the byte budget a connection holding less may go on in small reads: small frames
are served while big ones wait."""
_INLINE_BYTES = 16 * 1024
"""Frames up to this size are decoded on the event loop; bigger ones in a worker thread."""
DEFAULT_MAX_CONNECTIONS = 10_000
DEFAULT_IDLE_TIMEOUT = 300.0
DEFAULT_FRAME_TIMEOUT = 60.0
DEFAULT_WRITE_TIMEOUT = 30.0
DEFAULT_MAX_BUFFERED_BYTES = 64 * 1024 * 1024


class FrameSink(Protocol):
    async def submit(
        self, frames: list[Frame | StreamError], peer: str, access: NodeAccess | None = None
    ) -> Delivery:
        """Take the frames of one read; the result completes when they are safe. `access`
        says which nodes the connection may speak for (None: any)."""


class ForwardServer:
    def __init__(
        self,
        sink: FrameSink,
        host: str,
        port: int,
        *,
        max_pending: int = 8,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
        max_frame_entries: int = DEFAULT_MAX_FRAME_ENTRIES,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        max_connections_per_peer: int | None = None,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
        frame_timeout: float = DEFAULT_FRAME_TIMEOUT,
        write_timeout: float = DEFAULT_WRITE_TIMEOUT,
        max_buffered_bytes: int = DEFAULT_MAX_BUFFERED_BYTES,
        ssl: _ssl.SSLContext | None = None,
        shared_key: str | None = None,
        hostname: str | None = None,
        users: Mapping[str, str] | None = None,
        admission: Admission | None = None,
    ) -> None:
        """`max_connections_per_peer`: half of `max_connections` unless given; `ssl`: serve
        TLS with this context; `shared_key`: ask every client for it (HELO, PING, PONG),
        naming this server `hostname` in the PONG; `users` (name to password): ask for one
        of them too; `admission`: which nodes each connection may speak for."""
        per_peer = max_connections_per_peer or max(1, max_connections // 2)
        limits = (max_pending, max_frame_bytes, max_frame_entries, max_connections, per_peer)
        timeouts = (idle_timeout, frame_timeout, write_timeout, max_buffered_bytes)
        if min(limits) < 1 or min(timeouts) <= 0:
            raise ValueError(
                "max_pending, max_frame_bytes, max_frame_entries, max_connections, "
                "max_connections_per_peer, idle_timeout, frame_timeout, write_timeout and "
                "max_buffered_bytes must be positive"
            )
        self._sink = sink
        self._host = host
        self._port = port
        self._limits = _Limits(
            max_pending,
            max_frame_bytes,
            max_frame_entries,
            idle_timeout,
            frame_timeout,
            write_timeout,
        )
        self._max_connections = max_connections
        self._max_per_peer = per_peer
        self._per_peer: Counter[str] = Counter()
        self._budget = ByteBudget(max_buffered_bytes)
        self._idle_timeout = idle_timeout
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._ssl = ssl
        self._shared_key = shared_key or None
        self._hostname = hostname or socket.gethostname()
        self._users = dict(users) if users else None
        self._admission = admission
        self.handshakes: Counter[str] = Counter()
        """Connections by how their TLS and shared-key handshakes ended: `accepted`, or why not."""

    @property
    def max_connections_per_peer(self) -> int:
        return self._max_per_peer

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
        host = _host_of(writer)
        refusal = None
        if len(self._connections) >= self._max_connections:
            open_now = len(self._connections)
            refusal = f"{open_now} connections are open, the limit (--max-connections)"
        elif self._per_peer[host] >= self._max_per_peer:
            refusal = (
                f"{self._per_peer[host]} connections from {host} are open, "
                "the limit (--max-connections-per-peer)"
            )
        if refusal is not None:
            log.warning("refusing %s: %s", _peer_of(writer), refusal)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
            return
        self._connections.add(task)
        self._per_peer[host] += 1
        try:
            first, user = b"", None
            if self._ssl is not None or self._shared_key is not None:
                opened = await self._secure(reader, writer)
                if opened is None:
                    return
                first, user = opened
            access = (
                self._admission.connection(_peer_of(writer), user)
                if self._admission is not None
                else None
            )
            await _Connection(
                self._sink, reader, writer, self._limits, self._budget, first, access
            ).run()
        finally:
            self._connections.discard(task)
            self._per_peer[host] -= 1
            if not self._per_peer[host]:
                del self._per_peer[host]

    async def _secure(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> tuple[bytes, str | None] | None:
        """TLS, then the shared-key handshake, as configured: the bytes the client wrote
        after its PING and the user it proved to be (under user auth), or None when the
        connection failed (it is then closed)."""
        peer = _peer_of(writer)
        first, user = b"", None
        try:
            failure = await self._start_tls(writer, peer) if self._ssl is not None else None
            if failure is None and self._shared_key is not None:
                failure, first, user = await self._handshake(reader, writer, peer, self._shared_key)
        except BaseException:  # cancelled: the server is stopping
            writer.close()
            raise
        if failure is None:
            self.handshakes["accepted"] += 1
            return first, user
        self.handshakes[failure] += 1
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return None

    async def _start_tls(self, writer: asyncio.StreamWriter, peer: str) -> str | None:
        assert self._ssl is not None
        try:
            await writer.start_tls(self._ssl, ssl_handshake_timeout=self._idle_timeout)
        except ConnectionResetError:
            # Not a warning: port probes do this all day. Clients that reject this
            # certificate do it too, and say so on their side.
            log.info(
                "%s hung up during the TLS handshake (a port probe, or a client that does not "
                "trust this certificate)",
                peer,
            )
            return "hung up during the TLS handshake"
        except (OSError, TimeoutError) as error:  # ssl.SSLError is an OSError
            log.warning("refusing %s: TLS handshake failed: %s", peer, _tls_reason(error))
            return "TLS handshake failed"
        return None

    async def _handshake(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        peer: str,
        shared_key: str,
    ) -> tuple[str | None, bytes, str | None]:
        """HELO, PING, PONG within `idle_timeout`.

        Returns (None, the bytes that followed the PING, the user under user auth) or
        (why it failed, b"", None).
        """
        nonce = handshake.new_nonce()
        auth_salt = handshake.new_salt() if self._users is not None else b""
        buffer = handshake.MessageBuffer()
        try:
            async with asyncio.timeout(self._idle_timeout):
                writer.write(handshake.helo(nonce, auth_salt))
                await writer.drain()
                while True:
                    data = await reader.read(_HANDSHAKE_READ_BYTES)
                    if not data:
                        raise _ClosedEarly
                    if buffer.feed(data):
                        break
                ping = handshake.check_ping(
                    buffer.message, nonce, shared_key, self._users, auth_salt
                )
                writer.write(handshake.pong(ping, nonce, self._hostname, shared_key))
                await writer.drain()
        except TimeoutError:
            log.warning(
                "refusing %s: no PING within %g s of the HELO, the limit (--idle-timeout)",
                peer,
                self._idle_timeout,
            )
            return "handshake timed out", b"", None
        except _ClosedEarly:
            log.info("%s closed the connection before its PING", peer)
            return "closed during the handshake", b"", None
        except ConnectionError as error:
            log.info("%s: connection lost during the handshake (%s)", peer, error)
            return "closed during the handshake", b"", None
        except handshake.HandshakeError as error:
            log.warning("refusing %s: handshake failed: %s", peer, error)
            writer.write(handshake.pong_refused(error.reason))
            with contextlib.suppress(ConnectionError, TimeoutError):
                async with asyncio.timeout(self._idle_timeout):
                    await writer.drain()
            return error.reason, b"", None
        log.debug("%s passed the handshake as %r", peer, ping.hostname)
        return None, buffer.rest, ping.username or None


_HANDSHAKE_READ_BYTES = 4096


class _ClosedEarly(Exception):
    """The client hung up in the middle of the handshake."""


def _tls_reason(error: BaseException) -> str:
    if isinstance(error, TimeoutError):
        return "no TLS handshake in time"
    return str(error) or type(error).__name__


def _peer_of(writer: asyncio.StreamWriter) -> str:
    peer = writer.get_extra_info("peername")
    return f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)


def _host_of(writer: asyncio.StreamWriter) -> str:
    peer = writer.get_extra_info("peername")
    return str(peer[0]) if isinstance(peer, tuple) else str(peer)


@dataclass(frozen=True, slots=True)
class _Limits:
    """What every connection of one server is held to."""

    max_pending: int
    max_frame_bytes: int
    max_frame_entries: int
    idle_timeout: float
    frame_timeout: float
    write_timeout: float


class _Connection:
    def __init__(
        self,
        sink: FrameSink,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        limits: _Limits,
        budget: ByteBudget,
        first: bytes = b"",
        access: NodeAccess | None = None,
    ) -> None:
        self._sink = sink
        self._access = access
        self._reader = reader
        self._writer = writer
        self._peer = _peer_of(writer)
        self._limits = limits
        self._decoder = ForwardDecoder(limits.max_frame_bytes, limits.max_frame_entries)
        self._pending: asyncio.Queue[tuple[list[str], Delivery, int] | None] = asyncio.Queue(
            limits.max_pending
        )
        self._awaiting = 0  # reads handed to the sink whose acks are not written yet
        self._first = first  # what a client wrote behind its PING, before any read here
        self._budget = budget
        self._unsettled = 0  # bytes taken from the budget and not handed to the sink yet
        self._held = 0  # bytes taken from the budget and not given back yet
        self._overdraft = False  # finishing a frame past the budget (see ByteBudget)
        self._frame_started = 0.0  # loop time of the first byte of the unfinished frame
        self._capped = 0  # frames seen past --max-frame-entries

    async def run(self) -> None:
        acker = asyncio.create_task(self._acknowledge())
        try:
            await self._read()
        except (ConnectionError, asyncio.IncompleteReadError) as error:
            log.debug("connection from %s lost: %s", self._peer, error)
        finally:
            self._end_overdraft()
            self._give_back(self._unsettled, settled=False)
            await self._pending.put(None)
            with contextlib.suppress(ConnectionError):
                await acker
            self._writer.close()
            try:
                async with asyncio.timeout(self._limits.write_timeout):
                    await self._writer.wait_closed()
            except (ConnectionError, TimeoutError):
                self._writer.transport.abort()  # unread acks would hold it open

    async def _read(self) -> None:
        error: StreamError | None = None
        if self._first:
            first, self._first = self._first, b""
            error = await self._take(first)
        loop = asyncio.get_running_loop()
        limits = self._limits
        while error is None:
            if self._budget.full:
                paused = loop.time()
                await self._wait_for_room()
                self._frame_started += loop.time() - paused  # the wait is not the client's
            # Past the budget (a connection that holds little) only a small read.
            size = _SMALL_READ_BYTES if self._budget.full else _READ_BYTES
            deadline = loop.time() + limits.idle_timeout
            if self._decoder.buffered:
                deadline = min(deadline, self._frame_started + limits.frame_timeout)
            try:
                async with asyncio.timeout_at(deadline):  # no task per read: wait_for's
                    data = await self._reader.read(size)
            except TimeoutError:
                if (
                    self._decoder.buffered
                    and loop.time() >= self._frame_started + limits.frame_timeout
                ):
                    log.warning(
                        "closing %s: a frame unfinished %g s after it started, the limit "
                        "(--frame-timeout)",
                        self._peer,
                        limits.frame_timeout,
                    )
                elif self._awaiting:
                    continue  # silent, but waiting for acks the bus still owes it
                else:
                    log.warning(
                        "closing %s: silent for %g s, the limit (--idle-timeout)",
                        self._peer,
                        limits.idle_timeout,
                    )
                await self._finish()
                return
            if not data:
                await self._finish()
                return
            error = await self._take(data)
        hint = " (--max-frame-bytes)" if error.too_large else ""
        if "max_array_len" in error.reason:
            hint = " (--max-frame-entries)"
        log.warning("closing %s: %s%s", self._peer, error.reason, hint)

    async def _take(self, data: bytes) -> StreamError | None:
        """Decode one read and hand its frames to the sink; the error that ends the stream."""
        self._budget.take(len(data))
        self._unsettled += len(data)
        self._held += len(data)
        in_frame = bool(self._decoder.buffered)
        items = await self._decode(data)
        if self._decoder.buffered and (items or not in_frame):
            self._frame_started = asyncio.get_running_loop().time()
        if self._decoder.entries_capped > self._capped:
            self._capped = self._decoder.entries_capped
            log.warning(
                "%s: a frame of more than %d entries, the limit (--max-frame-entries); "
                "the rest of it is dead-lettered as one",
                self._peer,
                self._limits.max_frame_entries,
            )
        if items or not self._decoder.buffered:
            self._end_overdraft()  # its deliveries will make room: no more overdraft
        if not items:
            return None
        settled = self._unsettled - self._decoder.buffered
        self._unsettled -= settled
        await self._submit(items, settled)
        return next((item for item in items if isinstance(item, StreamError)), None)

    async def _decode(self, data: bytes) -> list[Frame | StreamError]:
        """Small frames on the loop; big ones, and any gzip entries, in a worker thread."""
        decoder = self._decoder
        if decoder.buffered + len(data) > _INLINE_BYTES:
            return await asyncio.to_thread(decoder.feed, data)
        items = decoder.feed(data, inflate=False)
        if any(isinstance(item, Frame) and item.gzip is not None for item in items):
            return await asyncio.to_thread(
                lambda: [decoder.inflate(i) if isinstance(i, Frame) else i for i in items]
            )
        return items

    async def _wait_for_room(self) -> None:
        """Past the byte budget: wait for room, or finish a frame on the overdraft."""
        budget = self._budget
        if not budget.full or self._overdraft or self._held < _SMALL_HOLD_BYTES:
            return
        transport = self._writer.transport
        assert isinstance(transport, asyncio.ReadTransport)
        transport.pause_reading()  # nothing more piles up in the stream's buffer meanwhile
        try:
            while budget.full and not self._overdraft and self._held >= _SMALL_HOLD_BYTES:
                self._overdraft = await budget.wait(partial=bool(self._decoder.buffered))
        finally:
            transport.resume_reading()

    def _give_back(self, size: int, settled: bool) -> None:
        self._held -= size
        self._budget.release(size, settled)

    def _end_overdraft(self) -> None:
        if self._overdraft:
            self._overdraft = False
            self._budget.end_overdraft()

    async def _finish(self) -> None:
        """Dead-letter the frame a client left unfinished, if any."""
        if (error := self._decoder.close()) is not None:
            log.warning("%s: %s", self._peer, error.reason)
            settled, self._unsettled = self._unsettled, 0
            await self._submit([error], settled)

    async def _submit(self, items: list[Frame | StreamError], size: int) -> None:
        chunks = [item.chunk for item in items if isinstance(item, Frame) and item.chunk]
        self._budget.settle(size)
        try:
            delivery = await self._sink.submit(items, self._peer, self._access)
        except BaseException:
            self._give_back(size, settled=True)
            raise
        self._awaiting += 1
        await self._pending.put((chunks, delivery, size))

    async def _acknowledge(self) -> None:
        while (item := await self._pending.get()) is not None:
            chunks, delivery, size = item
            try:
                await delivery
            finally:
                self._awaiting -= 1
                self._give_back(size, settled=True)
            if chunks and not self._writer.is_closing():
                await self._write(b"".join(ack_for(chunk) for chunk in chunks))

    async def _write(self, data: bytes) -> None:
        """Write acks; a client that does not take them within the limit is cut off."""
        self._writer.write(data)
        try:
            async with asyncio.timeout(self._limits.write_timeout):
                await self._writer.drain()
        except TimeoutError:
            log.warning(
                "closing %s: acks not taken for %g s, the limit (--write-timeout)",
                self._peer,
                self._limits.write_timeout,
            )
            self._writer.transport.abort()
        except ConnectionError as error:
            log.debug("connection from %s lost: %s", self._peer, error)
            self._writer.transport.abort()
