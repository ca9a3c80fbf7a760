"""The Forward protocol v1 handshake with a shared key: HELO, PING and PONG, for both ends.

Fluentd's `<security>` makes a server greet every connection with HELO and a fresh nonce.
The client proves that it knows the shared key with PING, and the server proves the same
with PONG, so neither end talks to an impostor. The key never crosses the wire: each side
sends `hex(sha512(salt + hostname + nonce + key))`, and the server's nonce and the client's
salt make every digest good for one connection only. The spec's other half, user auth, is
on when the server knows users: HELO carries a fresh `auth` salt, and PING names a user and
proves the password with `hex(sha512(auth_salt + username + password))`; without users the
salt is empty and PING's username and password digest are empty strings.

Wire types follow Fluentd's in_forward and out_forward: nonces and salts are bytes (msgpack
bin from in_forward; out_forward sends its salt as a hex str, so either is taken and its
bytes are hashed), hostnames are UTF-8 str, digests lower-case hex str. A failed PONG is
`["PONG", false, reason, "", ""]` with in_forward's reasons.

Everything here is pure (messages in, bytes or a structure out), so the server, the sender
and the unit tests share one implementation of the digests, and the server's frame loop is
untouched when no key is set. The sockets, timeouts and logging are the callers' business.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

import msgpack

NONCE_BYTES: Final = 16
SALT_BYTES: Final = 16
MAX_MESSAGE_BYTES: Final = 8 * 1024
"""A HELO, PING or PONG is a few hundred bytes; anything this large is not one."""

INVALID_PING: Final = "invalid ping message"
KEY_MISMATCH: Final = "shared_key mismatch"
USER_MISMATCH: Final = "username/password mismatch"
"""in_forward's reasons in a failed PONG, which Fluentd's clients show as they are."""
INVALID_HELO: Final = "invalid HELO"
INVALID_PONG: Final = "invalid PONG"

_REASON_CHARS: Final = 200


class HandshakeError(Exception):
    """The handshake failed; `reason` is short and fixed (a PONG's reason, a counter's key).

    Neither `reason` nor `detail` ever holds the shared key.
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Helo:
    nonce: bytes
    auth: bytes
    """The salt of user auth; empty when the server asks for none."""
    keepalive: bool


@dataclass(frozen=True, slots=True)
class Ping:
    hostname: str
    salt: bytes
    digest: str
    username: str = ""
    """The user the client proved it is, under user auth; empty without it."""


def new_nonce() -> bytes:
    return os.urandom(NONCE_BYTES)


def new_salt() -> bytes:
    return os.urandom(SALT_BYTES)


def shared_key_digest(salt: bytes, hostname: str, nonce: bytes, shared_key: str) -> str:
    """`hex(sha512(salt + hostname + nonce + shared_key))`, the proof both sides send."""
    digest = hashlib.sha512(salt)
    digest.update(_utf8(hostname))
    digest.update(nonce)
    digest.update(shared_key.encode("utf-8"))
    return digest.hexdigest()


def password_digest(auth_salt: bytes, username: str, password: str) -> str:
    """`hex(sha512(auth_salt + username + password))`, a client's proof of its password."""
    digest = hashlib.sha512(auth_salt)
    digest.update(_utf8(username))
    digest.update(password.encode("utf-8"))
    return digest.hexdigest()


def _pack(message: object) -> bytes:
    packed: bytes = msgpack.packb(message, use_bin_type=True)
    return packed


# Server side: HELO out, PING in, PONG out.


def helo(nonce: bytes, auth_salt: bytes = b"") -> bytes:
    """The greeting a server sends as soon as it accepts a connection; `auth_salt` (fresh
    per connection) asks for user auth."""
    # in_forward sends an empty string, not an empty bin, when it asks for no user auth.
    return _pack(["HELO", {"nonce": nonce, "auth": auth_salt or "", "keepalive": True}])


def check_ping(
    message: object,
    nonce: bytes,
    shared_key: str,
    users: Mapping[str, str] | None = None,
    auth_salt: bytes = b"",
) -> Ping:
    """The client's PING, if it proves the key for this `nonce` and, when `users` (name to
    password) is given, a user's password over `auth_salt`; else `HandshakeError`."""
    if not (isinstance(message, list) and len(message) == 6 and message[0] == "PING"):
        raise HandshakeError(INVALID_PING, f"expected a 6-item PING array, got {_shape(message)}")
    _, hostname, salt, digest, username, user_digest = message
    if not isinstance(hostname, str):
        raise HandshakeError(INVALID_PING, "hostname is not a string")
    ping = Ping(
        hostname,
        _bytes(salt, "shared key salt", INVALID_PING),
        _text(digest, "shared key digest", INVALID_PING),
    )
    if not _same(ping.digest, shared_key_digest(ping.salt, hostname, nonce, shared_key)):
        raise HandshakeError(KEY_MISMATCH, f"client hostname {hostname!r}")
    if users is None:
        return ping
    name = _text(username, "username", INVALID_PING)
    proof = _text(user_digest, "password digest", INVALID_PING)
    password = users.get(name)
    # The digest is computed for an unknown user too, so both refusals take the same time.
    expected = password_digest(auth_salt, name, password if password is not None else "")
    if not _same(proof, expected) or password is None:
        raise HandshakeError(USER_MISMATCH, f"user {name[:64]!r} from {hostname!r}")
    return Ping(ping.hostname, ping.salt, ping.digest, name)


def pong(ping: Ping, nonce: bytes, hostname: str, shared_key: str) -> bytes:
    """The server's answer to a good PING: its own proof, over the client's salt."""
    return _pack(
        ["PONG", True, "", hostname, shared_key_digest(ping.salt, hostname, nonce, shared_key)]
    )


def pong_refused(reason: str) -> bytes:
    return _pack(["PONG", False, reason, "", ""])


# Client side: HELO in, PING out, PONG in.


def parse_helo(message: object) -> Helo:
    if not (isinstance(message, list) and len(message) == 2 and message[0] == "HELO"):
        raise HandshakeError(INVALID_HELO, f"expected a HELO array, got {_shape(message)}")
    options = message[1] if isinstance(message[1], dict) else {}
    if "nonce" not in options:
        raise HandshakeError(INVALID_HELO, "no nonce")
    return Helo(
        nonce=_bytes(options["nonce"], "nonce", INVALID_HELO),
        auth=_bytes(options.get("auth") or b"", "auth salt", INVALID_HELO),
        keepalive=options.get("keepalive", True) is not False,
    )


def ping(
    greeting: Helo,
    hostname: str,
    shared_key: str,
    salt: bytes,
    username: str = "",
    password: str = "",
) -> bytes:
    """The client's PING; username and password digest are empty unless the server asked
    for user auth (a salt in its HELO) and a user is given."""
    digest = shared_key_digest(salt, hostname, greeting.nonce, shared_key)
    if not (greeting.auth and username):
        return _pack(["PING", hostname, salt, digest, "", ""])
    proof = password_digest(greeting.auth, username, password)
    return _pack(["PING", hostname, salt, digest, username, proof])


def check_pong(message: object, salt: bytes, nonce: bytes, shared_key: str) -> str:
    """The server's hostname, if its PONG accepts us and proves the key; else `HandshakeError`."""
    if not (isinstance(message, list) and len(message) == 5 and message[0] == "PONG"):
        raise HandshakeError(INVALID_PONG, f"expected a 5-item PONG array, got {_shape(message)}")
    _, accepted, reason, hostname, digest = message
    if accepted is not True:
        said = reason if isinstance(reason, str) and reason else "no reason given"
        raise HandshakeError("refused by the server", said[:_REASON_CHARS])
    if not isinstance(hostname, str):
        raise HandshakeError(INVALID_PONG, "hostname is not a string")
    expected = shared_key_digest(salt, hostname, nonce, shared_key)
    if not _same(_text(digest, "shared key digest", INVALID_PONG), expected):
        raise HandshakeError(
            "server failed the shared key check", f"server {hostname!r} does not know the key"
        )
    return hostname


class MessageBuffer:
    """Bytes of a stream until one whole msgpack message; keeps the bytes after it.

    A client may write its first frames right behind its PING; `rest` hands them on to
    the frame decoder.
    """

    def __init__(self, limit: int = MAX_MESSAGE_BYTES) -> None:
        self._limit = limit
        self._data = bytearray()
        self.message: object = None
        self.rest = b""

    def feed(self, data: bytes) -> bool:
        """Add `data`; True once a whole message is in `message` (and what follows in `rest`)."""
        self._data += data
        unpacker = msgpack.Unpacker(
            raw=False,
            unicode_errors="surrogateescape",
            max_buffer_size=max(len(self._data), 1),
            strict_map_key=False,
        )
        unpacker.feed(self._data)
        try:
            self.message = unpacker.unpack()
        except msgpack.OutOfData:
            if len(self._data) > self._limit:
                raise self._oversized() from None
            return False
        except (msgpack.UnpackException, ValueError, TypeError) as error:
            raise HandshakeError("not msgpack", str(error)) from None
        end = unpacker.tell()
        if end > self._limit:
            raise self._oversized()
        self.rest = bytes(self._data[end:])
        return True

    def _oversized(self) -> HandshakeError:
        return HandshakeError("oversized message", f"not one message in {self._limit} bytes")


def _utf8(text: str) -> bytes:
    # surrogateescape: a hostname read off the wire hashes as the bytes the peer sent.
    return text.encode("utf-8", "surrogateescape")


def _bytes(value: object, what: str, reason: str) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return _utf8(value)
    raise HandshakeError(reason, f"{what} is neither bin nor str")


def _text(value: object, what: str, reason: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    raise HandshakeError(reason, f"{what} is neither str nor bin")


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(_utf8(given), expected.encode("ascii"))


def _shape(message: object) -> str:
    if isinstance(message, list):
        head = message[0] if message and isinstance(message[0], str) else None
        first = f" starting {head[:32]!r}" if head is not None else ""
        return f"an array of {len(message)}{first}"
    return f"a {type(message).__name__}"
