"""A Kafka Metadata request over a plain socket.

Readiness must be checkable from synchronous code and from inside a running event loop
(tests), so it uses no client library. Metadata v4 is the oldest version Kafka 4 still
serves (KIP-896 removed v0-v3) and the newest without flexible encoding.
"""

from __future__ import annotations

import socket
import ssl
import struct

METADATA_KEY = 3
METADATA_VERSION = 4
CLIENT_ID = b"logdeck-stack"


def metadata_request(correlation_id: int) -> bytes:
    """A size-prefixed Metadata v4 request for no topics (brokers only)."""
    header = struct.pack(">hhih", METADATA_KEY, METADATA_VERSION, correlation_id, len(CLIENT_ID))
    body = struct.pack(">ib", 0, 0)  # topics: empty array; allow_auto_topic_creation: false
    message = header + CLIENT_ID + body
    return struct.pack(">i", len(message)) + message


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.offset = 0

    def take(self, fmt: str) -> int:
        (value,) = struct.unpack_from(fmt, self.data, self.offset)
        self.offset += struct.calcsize(fmt)
        return int(value)

    def string(self) -> str | None:
        length = self.take(">h")
        if length < 0:
            return None
        raw = self.data[self.offset : self.offset + length]
        self.offset += length
        return raw.decode("utf-8")


def metadata_brokers(response: bytes, correlation_id: int) -> list[tuple[int, str, int]]:
    """(node id, host, port) of each broker in a Metadata v4 response body (size prefix removed)."""
    reader = _Reader(response)
    if reader.take(">i") != correlation_id:
        raise ValueError("response to another request")
    reader.take(">i")  # throttle_time_ms
    brokers = []
    for _ in range(reader.take(">i")):
        node_id = reader.take(">i")
        host = reader.string() or ""
        port = reader.take(">i")
        reader.string()  # rack
        brokers.append((node_id, host, port))
    return brokers


def _receive(sock: socket.socket, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            raise ConnectionError("connection closed mid-response")
        chunks += chunk
    return bytes(chunks)


def fetch_brokers(
    host: str, port: int, timeout: float, context: ssl.SSLContext | None = None
) -> list[tuple[int, str, int]]:
    """Ask one broker for the cluster's brokers, over TLS if given a `context`."""
    with socket.create_connection((host, port), timeout=timeout) as raw:
        sock = raw if context is None else context.wrap_socket(raw, server_hostname=host)
        with sock:
            sock.sendall(metadata_request(correlation_id=1))
            (size,) = struct.unpack(">i", _receive(sock, 4))
            return metadata_brokers(_receive(sock, size), correlation_id=1)
