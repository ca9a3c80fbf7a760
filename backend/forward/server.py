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
from typing import Protocol

from backend.bus import Delivery
from backend.forward import handshake
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
        ssl: _ssl.SSLContext | None = None,
        shared_key: str | None = None,
        hostname: str | None = None,
    ) -> None:
        """`ssl`: serve TLS with this context; `shared_key`: ask every client for it (HELO,
        PING, PONG), naming this server `hostname` in the PONG."""
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
        self._ssl = ssl
        self._shared_key = shared_key or None
        self._hostname = hostname or socket.gethostname()
        self.handshakes: Counter[str] = Counter()
        """Connections by how their TLS and shared-key handshakes ended: `accepted`, or why not."""

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
            first = b""
            if self._ssl is not None or self._shared_key is not None:
                opened = await self._secure(reader, writer)
                if opened is None:
                    return
                first = opened
            await _Connection(
                self._sink,
                reader,
                writer,
                self._max_pending,
                self._max_frame_bytes,
                self._idle_timeout,
                first,
            ).run()
        finally:
            self._connections.discard(task)

    async def _secure(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bytes | None:
        """TLS, then the shared-key handshake, as configured: the bytes the client wrote
        after its PING, or None when the connection failed (it is then closed)."""
        peer = _peer_of(writer)
        first = b""
        try:
            failure = await self._start_tls(writer, peer) if self._ssl is not None else None
            if failure is None and self._shared_key is not None:
                failure, first = await self._handshake(reader, writer, peer, self._shared_key)
        except BaseException:  # cancelled: the server is stopping
            writer.close()
            raise
        if failure is None:
            self.handshakes["accepted"] += 1
            return first
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
    ) -> tuple[str | None, bytes]:
        """HELO, PING, PONG within `idle_timeout`.

        Returns (None, the bytes that followed the PING) or (why it failed, b"").
        """
        nonce = handshake.new_nonce()
        buffer = handshake.MessageBuffer()
        try:
            async with asyncio.timeout(self._idle_timeout):
                writer.write(handshake.helo(nonce))
                await writer.drain()
                while True:
                    data = await reader.read(_HANDSHAKE_READ_BYTES)
                    if not data:
                        raise _ClosedEarly
                    if buffer.feed(data):
                        break
                ping = handshake.check_ping(buffer.message, nonce, shared_key)
                writer.write(handshake.pong(ping, nonce, self._hostname, shared_key))
                await writer.drain()
        except TimeoutError:
            log.warning(
                "refusing %s: no PING within %g s of the HELO, the limit (--idle-timeout)",
                peer,
                self._idle_timeout,
            )
            return "handshake timed out", b""
        except _ClosedEarly:
            log.info("%s closed the connection before its PING", peer)
            return "closed during the handshake", b""
        except ConnectionError as error:
            log.info("%s: connection lost during the handshake (%s)", peer, error)
            return "closed during the handshake", b""
        except handshake.HandshakeError as error:
            log.warning("refusing %s: handshake failed: %s", peer, error)
            writer.write(handshake.pong_refused(error.reason))
            with contextlib.suppress(ConnectionError, TimeoutError):
                async with asyncio.timeout(self._idle_timeout):
                    await writer.drain()
            return error.reason, b""
        log.debug("%s passed the handshake as %r", peer, ping.hostname)
        return None, buffer.rest


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


class _Connection:
    def __init__(
        self,
        sink: FrameSink,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        max_pending: int,
        max_frame_bytes: int,
        idle_timeout: float,
        first: bytes = b"",
    ) -> None:
        self._sink = sink
        self._reader = reader
        self._writer = writer
        self._peer = _peer_of(writer)
        self._decoder = ForwardDecoder(max_frame_bytes)
        self._idle_timeout = idle_timeout
        self._pending: asyncio.Queue[tuple[list[str], Delivery] | None] = asyncio.Queue(max_pending)
        self._awaiting = 0  # reads handed to the sink whose acks are not written yet
        self._first = first  # what a client wrote behind its PING, before any read here

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
        if self._first:
            items = self._decoder.feed(self._first)
            self._first = b""
            if items:
                error = next((item for item in items if isinstance(item, StreamError)), None)
                await self._submit(items)
        while error is None:
            try:
                async with asyncio.timeout(self._idle_timeout):  # no task per read: wait_for's
                    data = await self._reader.read(_READ_BYTES)
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
