"""What every service needs from the pub-sub layer, whatever carries it.

Publishing is split in two steps so a producer can be pipelined: `enqueue` returns once
the records are buffered (and blocks while the buffer is full: that is the backpressure),
and the `Delivery` it hands back completes once the broker has acknowledged them all.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import msgspec

Headers = tuple[tuple[str, bytes], ...]
Lane = tuple[str, int]
"""A topic and one of its partitions."""

POLL_BYTES = 32 * 1024 * 1024
"""What one poll returns at most by default: memory follows bytes, not records, and a
backlog of 10 MB records must not come in one batch of thousands."""


class BusUnavailable(Exception):
    """The broker cannot be reached or refused the request; worth retrying later."""


class PublisherFenced(Exception):
    """A newer publisher with the same transactional id has taken over; this one must stop."""


class Outgoing(msgspec.Struct, frozen=True, gc=False):
    """A record to publish. A Struct, not a frozen dataclass: services make one per record,
    and this builds in a tenth of the time; it holds no container that could hold it back,
    so the garbage collector need not track it."""

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

    def size(self) -> int:
        """The bytes of key, value and headers: what a poll's byte budget counts."""
        size = len(self.value) + (len(self.key) if self.key is not None else 0)
        for name, value in self.headers:
            size += len(name) + len(value)
        return size


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

    async def poll(
        self,
        max_records: int,
        timeout_ms: int,
        max_bytes: int = POLL_BYTES,
        *,
        in_flight: bool = False,
    ) -> list[Incoming]:
        """The next records, in order within each partition; empty after `timeout_ms`.

        At most `max_records`, and no more than `max_bytes` (by `Incoming.size`) unless
        the first record alone is larger: then that record comes on its own.

        A group moves partitions between members only inside `poll`. Polling again says
        the batches returned before are finished (written, and committed here or in a
        transaction), and a member that takes a partition over starts where their commit
        left it. With `in_flight`, a batch returned before is still being written (a
        pipelined reader): Kafka then gives its partitions up only once `commit` has
        covered it; the embedded bus may move them sooner, and their new owner reads the
        uncommitted records again, which only a reader with idempotent writes can afford.
        """

    async def commit(self, upto: Mapping[Lane, int] | None = None) -> None:
        """Mark records as processed by this group: everything `poll` returned so far, or
        with `upto` those of each lane before its offset (one past the last processed),
        for a reader that has polled further meanwhile.

        Lanes this member no longer owns are left out: their new owner reads on from the
        group's last commit.
        """

    def assignment(self) -> frozenset[Lane]:
        """The partitions this reader owns right now (a group shares them out)."""

    async def read_through(self, lane: Lane) -> float | None:
        """Epoch seconds up to which every record published to `lane` has come out of `poll`.

        None while the reader is behind on `lane` or has not learnt its end yet: what is
        not read cannot be judged (the heartbeat monitor's silence rests on this).
        """

    def partition_count(self, topic: str) -> int | None:
        """How many partitions `topic` has, once the reader knows."""


def committable(position: int, returned: int | None, finished: int | None) -> int | None:
    """Where a partition's commit may go: the reader's `position` once every record it
    returned is finished (past the last of them there are only offsets without a record),
    else the end of the finished ones; None while none is."""
    if returned is None or (finished is not None and finished >= returned):
        return position
    return finished


class TransactionalPublisher(Protocol):
    """Publishes records and marks the records they came from as consumed, atomically.

    Readers of the topics (reading committed records only) see the records of a `commit`
    together with the group's new offsets, or neither: a crash between the two cannot
    publish a result twice or lose one. Starting a publisher with a transactional id
    fences any earlier publisher with that id and settles its unfinished commit first.
    """

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def commit(
        self, records: Sequence[Outgoing], consumed: Sequence[Incoming], group: str
    ) -> None:
        """Publish `records` and commit `consumed` for `group`, all or nothing.

        `BusUnavailable` when it did not happen (nothing of it is visible);
        `PublisherFenced` when another publisher took over the transactional id.
        """


class Bus(Protocol):
    async def ensure_topics(self, topics: Sequence[str], compacted: Sequence[str] = ()) -> None:
        """Create the topics that do not exist yet; `compacted` ones keep the latest per key."""

    async def healthy(self) -> bool:
        """Whether the broker answers right now (for status displays, not for retry logic)."""

    async def snapshot(self, topic: str) -> list[Incoming]:
        """Every record the topic holds now (for a compacted topic: the state to start from)."""

    async def read_ranges(self, ranges: Mapping[Lane, tuple[int, int]]) -> list[Incoming]:
        """The committed records of each lane with `start <= offset < end`, in order.

        What retention deleted is simply not there. For a reader that takes a partition over
        and must know what was done just before its first record.
        """

    async def lags(self, groups: Mapping[str, Sequence[str]]) -> dict[str, int | None]:
        """For each consumer group (group -> the topics it reads), the records it has not
        committed yet; None for a group that has committed nothing (it never ran).
        `BusUnavailable` if the bus cannot tell now."""

    async def dropped_unread(self) -> int | None:
        """Records retention deleted before every group reading them had committed them.

        None where the broker does not tell: Kafka's retention is the broker's own, set per
        topic (`retention.ms`, `retention.bytes`), and ignores consumer groups.
        """

    def publisher(self) -> Publisher: ...

    def subscription(
        self, topics: Sequence[str], group: str | None, *, from_beginning: bool = True
    ) -> Subscription:
        """A reader of `topics`; with a group, partitions are shared and offsets committed."""

    def transactional_publisher(self, transactional_id: str) -> TransactionalPublisher:
        """A publisher whose commits are atomic; one id per instance of a service, stable."""

    def tail(self, topics: Sequence[str]) -> Subscription:
        """A reader of every record published to `topics` after its `start()` returns."""
