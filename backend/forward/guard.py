"""What a connection must pass before its first frame: TLS, then the shared-key handshake.

Both are optional and off by default; with neither, a server never calls this. Each runs
within the server's `idle_timeout`; a connection that fails either is closed, logged with
its peer and the reason (never the key), and counted in `handshakes` under that reason.
The messages of the handshake themselves are `backend.forward.handshake`'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl as _ssl
from collections import Counter
from collections.abc import Mapping

from backend.forward import handshake
from backend.forward.peers import peer_of

log = logging.getLogger("logdeck.forward")

_HANDSHAKE_READ_BYTES = 4096


class ConnectionGuard:
    def __init__(
        self,
        *,
        ssl: _ssl.SSLContext | None,
        shared_key: str | None,
        hostname: str | None,
        users: Mapping[str, str] | None,
        timeout: float,
    ) -> None:
        """`ssl`: serve TLS with this context; `shared_key`: ask every client for it (HELO,
        PING, PONG), naming this server `hostname` in the PONG; `users` (name to password):
        ask for one of them too; `timeout`: for each of TLS and the handshake."""
        self._ssl = ssl
        self._shared_key = shared_key or None
        self._hostname = hostname or socket.gethostname()
        self._users = dict(users) if users else None
        self._timeout = timeout
        self.handshakes: Counter[str] = Counter()
        """Connections by how their TLS and shared-key handshakes ended: `accepted`, or why not."""

    @property
    def enabled(self) -> bool:
        """Whether connections have anything to pass at all."""
        return self._ssl is not None or self._shared_key is not None

    async def open(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> tuple[bytes, str | None] | None:
        """TLS, then the shared-key handshake, as configured: the bytes the client wrote
        after its PING and the user it proved to be (under user auth), or None when the
        connection failed (it is then closed)."""
        peer = peer_of(writer)
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
            await writer.start_tls(self._ssl, ssl_handshake_timeout=self._timeout)
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
        """HELO, PING, PONG within the timeout.

        Returns (None, the bytes that followed the PING, the user under user auth) or
        (why it failed, b"", None).
        """
        nonce = handshake.new_nonce()
        auth_salt = handshake.new_salt() if self._users is not None else b""
        buffer = handshake.MessageBuffer()
        try:
            async with asyncio.timeout(self._timeout):
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
                self._timeout,
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
                async with asyncio.timeout(self._timeout):
                    await writer.drain()
            return error.reason, b"", None
        log.debug("%s passed the handshake as %r", peer, ping.hostname)
        return None, buffer.rest, ping.username or None


class _ClosedEarly(Exception):
    """The client hung up in the middle of the handshake."""


def _tls_reason(error: BaseException) -> str:
    if isinstance(error, TimeoutError):
        return "no TLS handshake in time"
    return str(error) or type(error).__name__
