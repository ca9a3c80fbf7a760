"""Reading from Kafka: a group's or a reader's own subscription, and a live tail.

Reads are of committed records only, and a group gives its partitions up to another
member only once the batches it polled are done, so the new owner starts from their commit.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.errors import IllegalStateError, KafkaError

from backend.bus.base import POLL_BYTES, BusUnavailable, Incoming, Lane, committable
from backend.bus.kafka.clients import ClientOptions, refused

_FETCH_BYTES = 16 * 1024 * 1024
_TAIL_FETCH_BYTES = 1024 * 1024
"""A live view takes small fetches: a large response is read and checked in one go, which
held a console's event loop for tens of milliseconds at 20,000 logs/s."""


class KafkaSubscription:
    def __init__(
        self,
        bootstrap: str,
        topics: Sequence[str],
        group: str | None,
        from_beginning: bool,
        fetch_bytes: int = _FETCH_BYTES,
        options: ClientOptions | None = None,
    ) -> None:
        self._group = group
        self._topics = tuple(topics)
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=group,
            enable_auto_commit=False,
            **(options or {}),
            auto_offset_reset="earliest" if from_beginning else "latest",
            isolation_level="read_committed",
            # Partition p of every topic to the same member: a node's heartbeats and
            # registrations (same key, same partition number) are judged by one monitor.
            partition_assignment_strategy=(RangePartitionAssignor,),
            fetch_max_bytes=fetch_bytes,
            max_partition_fetch_bytes=fetch_bytes // 4,
        )
        self._bootstrap = bootstrap
        self._handed_back = asyncio.Event()
        self._handed_back.set()
        self._returned: dict[TopicPartition, int] = {}
        """Per partition, the offset after the last record `poll` returned."""
        self._finished: dict[TopicPartition, int] = {}
        """Per partition, the offset before which the returned records are finished."""

    @property
    def consumer(self) -> AIOKafkaConsumer:
        return self._consumer

    async def start(self) -> None:
        if self._topics:
            # Before start(): its first metadata request then covers the topics (after it,
            # a topic created a moment later is not seen until the next metadata refresh).
            listener = _HandBack(self._handed_back, self._forget) if self._group else None
            self._consumer.subscribe(self._topics, listener=listener)
        try:
            await self._consumer.start()
        except KafkaError as error:
            await self._consumer.stop()
            raise refused(
                error,
                f"reading {', '.join(self._topics)}",
                f"Kafka at {self._bootstrap} unreachable",
            ) from error

    async def stop(self) -> None:
        self._handed_back.set()
        await self._consumer.stop()

    async def poll(
        self,
        max_records: int,
        timeout_ms: int,
        max_bytes: int = POLL_BYTES,
        *,
        in_flight: bool = False,
    ) -> list[Incoming]:
        if not in_flight:
            self._finished.update(self._returned)
        self._hand_back_when_finished()
        batches = await self._consumer.getmany(timeout_ms=timeout_ms, max_records=max_records)
        # Nothing awaited from here on: `_returned` moves with the consumer's position, which
        # a commit running meanwhile reads.
        taken = self._within(batches, max_bytes)
        for record in taken:
            self._returned[TopicPartition(record.topic, record.partition)] = record.offset + 1
        if taken:
            self._handed_back.clear()
        return taken

    def _hand_back_when_finished(self) -> None:
        """Let a rebalance go on once every returned record is finished.

        Once a rebalance has begun the consumer returns no records until it is over, so
        what is finished then stays finished, and the new owner starts after it.
        """
        finished = self._finished
        if all(finished.get(tp, -1) >= offset for tp, offset in self._returned.items()):
            self._handed_back.set()

    def _forget(self, revoked: set[TopicPartition]) -> None:
        for tp in revoked:
            self._returned.pop(tp, None)
            self._finished.pop(tp, None)

    def _within(self, batches: dict[TopicPartition, list[Any]], max_bytes: int) -> list[Incoming]:
        """The records of `batches` that fit in `max_bytes` (the first whatever its size).

        The consumer is moved back to the first record of each partition left out, so the
        next poll starts there; its fetch buffer holds at most `fetch_max_bytes` meanwhile.
        """
        taken: list[Incoming] = []
        left = max_bytes
        for partition, records in batches.items():
            for record in records:
                incoming = Incoming(
                    topic=record.topic,
                    partition=record.partition,
                    offset=record.offset,
                    key=record.key,
                    value=record.value or b"",  # a tombstone reads as empty
                    headers=tuple(record.headers),
                    timestamp_ms=record.timestamp,
                )
                size = incoming.size()
                if size > left and taken:
                    self._consumer.seek(partition, record.offset)
                    left = 0
                    break
                taken.append(incoming)
                left -= size
        return taken

    async def commit(self, upto: Mapping[Lane, int] | None = None) -> None:
        if self._group is None:
            return
        offsets: dict[TopicPartition, Any] | None = None
        if upto is None:
            self._finished.update(self._returned)
        else:
            for lane, offset in upto.items():
                tp = TopicPartition(*lane)
                self._finished[tp] = max(offset, self._finished.get(tp, offset))
            offsets = self._finished_offsets()
        if offsets is None or offsets:
            try:
                await self._consumer.commit(offsets)
            except KafkaError as error:
                raise refused(error, "committing offsets", "offset commit failed") from error
        self._hand_back_when_finished()

    def _finished_offsets(self) -> dict[TopicPartition, Any]:
        """Where each assigned partition's finished records end.

        That is the consumer's position where every record returned is finished: past the
        last of them it has only skipped what is never returned (transaction markers),
        and committing it keeps the group's lag at 0 on transactional topics.
        """
        assignment = self._consumer._subscription.subscription.assignment
        if assignment is None:
            return {}
        offsets: dict[TopicPartition, Any] = {}
        for tp, position in assignment.all_consumed_offsets().items():
            at = committable(position, self._returned.get(tp), self._finished.get(tp))
            if at is not None:
                offsets[tp] = at
        return offsets

    def assignment(self) -> frozenset[Lane]:
        return frozenset((tp.topic, tp.partition) for tp in self._consumer.assignment())

    async def read_through(self, lane: Lane) -> float | None:
        return await read_through(self._consumer, TopicPartition(*lane))

    def partition_count(self, topic: str) -> int | None:
        return len(self._consumer.partitions_for_topic(topic) or ()) or None


class _HandBack(ConsumerRebalanceListener):  # type: ignore[misc]
    """Gives partitions up only once the service is done with every batch it polled.

    A service finishes a batch (its writes, its commit) before it polls again, or says
    the batch is still `in_flight` as it polls the next: then the partitions wait for the
    commit of both. So a member that takes them over starts from offsets committed after
    everything this one wrote, and reads nothing twice. The wait is two writes at most,
    under a second at full load, well inside the time the broker waits for a member to
    rejoin (the session timeout, 10 s).
    """

    def __init__(
        self, handed_back: asyncio.Event, forget: Callable[[set[TopicPartition]], None]
    ) -> None:
        self._handed_back = handed_back
        self._forget = forget

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._handed_back.wait()
        self._forget(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        """Nothing to do: readers notice through `assignment()`."""


async def read_through(consumer: Any, partition: TopicPartition) -> float | None:
    """When the fetch response was received whose end `consumer`'s position has reached.

    The end is the last stable offset (readers see committed records only), as the
    broker's latest fetch response for the partition reported it: once the position is
    there, everything written before that response has been read. Responses come at
    least every fetch wait (0.5 s) while the broker answers; when it stops answering or
    the reader falls behind, the time stops moving.
    """
    if partition not in consumer.assignment():
        return None
    polled_ms = consumer.last_poll_timestamp(partition)
    end = consumer.last_stable_offset(partition)
    if end is None or end < 0:
        end = consumer.highwater(partition)
    if polled_ms is None or end is None:
        return None  # not fetched yet since it was assigned
    try:
        position = await consumer.position(partition)
    except IllegalStateError:
        return None  # revoked meanwhile
    return polled_ms / 1000 if position >= end else None


class KafkaTail(KafkaSubscription):
    """Every partition of `topics`, from their ends as `start()` found them.

    The ends are positions resolved before `start()` returns, not a reset left for the
    first fetch, so nothing published after `start()` can slip past the reader.
    """

    def __init__(
        self, bootstrap: str, topics: Sequence[str], options: ClientOptions | None = None
    ) -> None:
        super().__init__(
            bootstrap,
            (),
            None,
            from_beginning=False,
            fetch_bytes=_TAIL_FETCH_BYTES,
            options=options,
        )
        self._tail_topics = tuple(topics)

    async def start(self) -> None:
        await super().start()
        consumer = self.consumer
        try:
            partitions = [
                TopicPartition(topic, partition)
                for topic in self._tail_topics
                for partition in sorted(await topic_partitions(consumer, topic))
            ]
            consumer.assign(partitions)
            if not await consumer.seek_to_end(*partitions):
                raise BusUnavailable(
                    f"Kafka did not tell the ends of {', '.join(self._tail_topics)}"
                )
        except KafkaError as error:
            await super().stop()
            raise refused(
                error,
                f"reading {', '.join(self._tail_topics)}",
                f"Kafka at {self._bootstrap} unreachable",
            ) from error
        except BusUnavailable:
            await super().stop()
            raise


async def topic_partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    """The topic's partitions, once the consumer's metadata knows them."""
    for _ in range(50):
        partitions = consumer.partitions_for_topic(topic)
        if partitions:
            return set(partitions)
        await consumer._client.force_metadata_update()
        await asyncio.sleep(0.1)
    raise BusUnavailable(f"topic {topic} has no partitions on Kafka")
