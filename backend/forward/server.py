"""A Forward protocol v1 TCP server: accepting connections, within the server's limits.

Each connection's frames, acks and backpressure are `backend.forward.connection`'s; what
it must pass before its first frame (TLS, the shared-key handshake) is
`backend.forward.guard`'s. Here: the defaults of every limit, their checks, and the
connections a server lets in at all, so one starting or stopping server owns them all.

Past `max_connections` open connections, or `max_connections_per_peer` from one address,
a new one is closed at once, logged with the flag of `logdeck accumulator` that sets the
limit (`--max-connections`, `--max-connections-per-peer`). What all connections have read
and not yet seen acknowledged is at most `max_buffered_bytes` (`--max-buffered-bytes`),
one budget the server shares between them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl as _ssl
from collections import Counter
from collections.abc import Mapping
from typing import Any

from backend.forward.admission import Admission
from backend.forward.budget import ByteBudget
from backend.forward.connection import Connection, ConnectionLimits, FrameSink
from backend.forward.guard import ConnectionGuard
from backend.forward.peers import host_of, peer_of
from backend.forward.protocol import DEFAULT_MAX_FRAME_BYTES, DEFAULT_MAX_FRAME_ENTRIES

log = logging.getLogger("logdeck.forward")

DEFAULT_MAX_CONNECTIONS = 10_000
DEFAULT_IDLE_TIMEOUT = 300.0
DEFAULT_FRAME_TIMEOUT = 60.0
DEFAULT_WRITE_TIMEOUT = 30.0
DEFAULT_MAX_BUFFERED_BYTES = 64 * 1024 * 1024


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
        record_type: Any = None,
    ) -> None:
        """`max_connections_per_peer`: half of `max_connections` unless given; `ssl`: serve
        TLS with this context; `shared_key`: ask every client for it (HELO, PING, PONG),
        naming this server `hostname` in the PONG; `users` (name to password): ask for one
        of them too; `admission`: which nodes each connection may speak for;
        `record_type`: the msgspec type packed records are read straight into when they fit
        (see `ForwardDecoder`)."""
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
        self._limits = ConnectionLimits(
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
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._guard = ConnectionGuard(
            ssl=ssl, shared_key=shared_key, hostname=hostname, users=users, timeout=idle_timeout
        )
        self._admission = admission
        self._record_type = record_type

    @property
    def handshakes(self) -> Counter[str]:
        """Connections by how their TLS and shared-key handshakes ended: `accepted`, or why not."""
        return self._guard.handshakes

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
        host = host_of(writer)
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
            log.warning("refusing %s: %s", peer_of(writer), refusal)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
            return
        self._connections.add(task)
        self._per_peer[host] += 1
        try:
            first, user = b"", None
            if self._guard.enabled:
                opened = await self._guard.open(reader, writer)
                if opened is None:
                    return
                first, user = opened
            access = (
                self._admission.connection(peer_of(writer), user)
                if self._admission is not None
                else None
            )
            await Connection(
                self._sink,
                reader,
                writer,
                self._limits,
                self._budget,
                first,
                access,
                record_type=self._record_type,
            ).run()
        finally:
            self._connections.discard(task)
            self._per_peer[host] -= 1
            if not self._per_peer[host]:
                del self._per_peer[host]
