"""What every service needs from the pub-sub layer, whatever carries it.

Publishing is split in two steps so a producer can be pipelined: `enqueue` returns once
the records are buffered (and blocks while the buffer is full: that is the backpressure),
and the `Delivery` it hands back completes once the broker has acknowledged them all.
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import Protocol

Headers = tuple[tuple[str, bytes], ...]


class BusUnavailable(Exception):
    """The broker cannot be reached or refused the request; worth retrying later."""


@dataclass(frozen=True, slots=True)
class Outgoing:
    topic: str
    key: bytes | None
    value: bytes
    headers: Headers = ()


@dataclass(frozen=True, slots=True)
class Incoming:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: Headers
    timestamp_ms: int

    def header(self, name: str) -> bytes | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None


Delivery = Awaitable[None]


class Publisher(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None:
        """Flush what is buffered, then close."""

    async def enqueue(self, records: Sequence[Outgoing]) -> Delivery:
        """Buffer `records`; the result completes when all are acknowledged by the broker."""

    async def publish(self, records: Sequence[Outgoing]) -> None:
        """Send `records` and wait for the broker's acknowledgement of every one."""


class Subscription(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def poll(self, max_records: int, timeout_ms: int) -> list[Incoming]:
        """The next records, in order within each partition; empty after `timeout_ms`."""

    async def commit(self) -> None:
        """Mark everything returned by `poll` so far as processed by this group."""


class Bus(Protocol):
    async def ensure_topics(self, topics: Sequence[str], compacted: Sequence[str] = ()) -> None:
        """Create the topics that do not exist yet; `compacted` ones keep the latest per key."""

    async def snapshot(self, topic: str) -> list[Incoming]:
        """Every record the topic holds now (for a compacted topic: the state to start from)."""

    def publisher(self) -> Publisher: ...

    def subscription(
        self, topics: Sequence[str], group: str | None, *, from_beginning: bool = True
    ) -> Subscription:
        """A reader of `topics`; with a group, partitions are shared and offsets committed."""
