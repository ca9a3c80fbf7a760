"""The bus on Apache Kafka, through aiokafka.

Producers are idempotent with acks=all, so a record the broker acknowledged is on every
in-sync replica and a retried send never duplicates it. Consumers never auto-commit: a
service commits only after its own work on the records is done.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.errors import (
    IllegalOperation,
    IllegalStateError,
    InvalidProducerEpoch,
    KafkaError,
    ProducerFenced,
    TopicAlreadyExistsError,
)
from aiokafka.producer.message_accumulator import BatchBuilder

from backend.bus.base import (
    POLL_BYTES,
    BusUnavailable,
    Delivery,
    Incoming,
    Lane,
    Outgoing,
    PublisherFenced,
)
from backend.bus.outbox import Outbox
from backend.bus.partitioning import KeyHashes
from backend.security import KafkaSecurity
from backend.stack.kafka import kafka_ready

ClientOptions = dict[str, Any]
"""Security settings for every aiokafka client (`KafkaSecurity.client_options`)."""

_BATCH_BYTES = 512 * 1024
_LINGER_MS = 5
_FETCH_BYTES = 16 * 1024 * 1024
_TAIL_FETCH_BYTES = 1024 * 1024
"""A live view takes small fetches: a large response is read and checked in one go, which
held a console's event loop for tens of milliseconds at 20,000 logs/s."""
_QUEUED_RECORDS = 50_000
"""Records waiting for the flusher beyond which `enqueue` blocks: the backpressure."""
_SNAPSHOT_TIMEOUT_S = 120.0
_TRANSACTION_TIMEOUT_MS = 10_000
"""How long the broker lets a transaction stay open: a killed service's open transaction
holds back every committed reader of its partitions until the broker aborts it."""
_TRANSACTION_RETRY_MS = 10
"""Kafka 4 answers a transaction's first write that races the markers of the one before
with NOT_ENOUGH_REPLICAS (KIP-890, to clients of the older protocol such as aiokafka),
so this wait comes with nearly every transaction: the default 100 ms would add to every
result's latency."""


class KafkaPublisher:
    """Publishes through one flusher task that shares batches between all callers.

    `enqueue` only queues the records; the flusher takes everything queued at once and
    fills one record batch per partition from it. A hundred connections sending a few
    records each so make a few large produce requests instead of a hundred small ones
    racing for each partition's single open batch, which under load left records
    waiting in aiokafka until they timed out and had to be resent.
    """

    def __init__(self, bootstrap: str, options: ClientOptions | None = None) -> None:
        self._bootstrap = bootstrap
        self._options = options or {}
        self._producer: AIOKafkaProducer | None = None
        self._hash = KeyHashes()
        self._outbox = Outbox(_QUEUED_RECORDS)
        self._flusher: asyncio.Task[None] | None = None
        self._answering: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=self._bootstrap,
            enable_idempotence=True,
            acks="all",
            **self._options,
            linger_ms=_LINGER_MS,
            max_batch_size=_BATCH_BYTES,
            max_request_size=4 * _BATCH_BYTES,
        )
        self._producer = await _started(producer, self._bootstrap)
        self._outbox = Outbox(_QUEUED_RECORDS)
        self._flusher = asyncio.create_task(self._flush_forever())

    async def stop(self) -> None:
        """Hand over what is queued, wait for the broker's answers, then close."""
        if self._flusher is not None:
            self._outbox.close()
            await self._flusher
            self._flusher = None
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None
        if self._answering:
            await asyncio.gather(*self._answering)

    async def enqueue(self, records: Sequence[Outgoing]) -> Delivery:
        """Queue `records`; blocks while `_QUEUED_RECORDS` wait for the flusher already."""
        self._require()
        return await self._outbox.put(records)

    async def _flush_forever(self) -> None:
        while (taken := await self._outbox.take()) is not None:
            deliveries = [delivery for _, delivery in taken]
            try:
                acks = await self._send([record for records, _ in taken for record in records])
            except BusUnavailable as error:
                _settle(deliveries, error)
                continue
            answering = asyncio.create_task(_answer(acks, deliveries))
            self._answering.add(answering)
            answering.add_done_callback(self._answering.discard)

    async def _send(self, records: list[Outgoing]) -> list[asyncio.Future[object]]:
        """Fill one record batch per partition and hand each to the producer whole.

        aiokafka's per-record `send` costs about 13 µs of CPU; building the batches here
        costs about 1.3 µs a record, which is what lets one accumulator core keep up.
        """
        producer = self._require()
        try:
            partitions = {
                topic: sorted(await producer.partitions_for(topic))
                for topic in {record.topic for record in records}
            }
            builders: dict[tuple[str, int], BatchBuilder] = {}
            futures: list[asyncio.Future[object]] = []
            for record in records:
                choices = partitions[record.topic]
                slot = (record.topic, choices[self._hash(record.key) % len(choices)])
                builder = builders.get(slot)
                if builder is None:
                    builder = builders[slot] = producer.create_batch()
                if (
                    builder.append(
                        key=record.key,
                        value=record.value,
                        timestamp=None,
                        headers=list(record.headers),
                    )
                    is None
                ):
                    futures.append(await producer.send_batch(builder, slot[0], partition=slot[1]))
                    builder = builders[slot] = producer.create_batch()
                    builder.append(
                        key=record.key,
                        value=record.value,
                        timestamp=None,
                        headers=list(record.headers),
                    )
            for (topic, partition), builder in builders.items():
                futures.append(await producer.send_batch(builder, topic, partition=partition))
        except KafkaError as error:
            raise BusUnavailable(f"Kafka refused a send: {error}") from error
        return futures

    async def publish(self, records: Sequence[Outgoing]) -> None:
        await (await self.enqueue(records))

    def _require(self) -> AIOKafkaProducer:
        if self._producer is None:
            raise RuntimeError("publisher used before start()")
        return self._producer


async def _started(producer: AIOKafkaProducer, bootstrap: str) -> AIOKafkaProducer:
    """`producer`, started; closed again and `BusUnavailable` if Kafka cannot be reached."""
    try:
        await producer.start()
    except KafkaError as error:
        await producer.stop()
        raise BusUnavailable(f"Kafka at {bootstrap} unreachable: {error}") from error
    return producer


async def _answer(
    acks: list[asyncio.Future[object]], deliveries: list[asyncio.Future[None]]
) -> None:
    """Complete the callers' deliveries once the broker has answered for their batches."""
    try:
        await asyncio.gather(*acks)
    except KafkaError as error:
        _settle(deliveries, BusUnavailable(f"Kafka did not acknowledge: {error}"))
    else:
        _settle(deliveries, None)


def _settle(deliveries: list[asyncio.Future[None]], error: BusUnavailable | None) -> None:
    for delivery in deliveries:
        if delivery.done():
            continue
        if error is None:
            delivery.set_result(None)
        else:
            delivery.set_exception(error)


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

    @property
    def consumer(self) -> AIOKafkaConsumer:
        return self._consumer

    async def start(self) -> None:
        if self._topics:
            # Before start(): its first metadata request then covers the topics (after it,
            # a topic created a moment later is not seen until the next metadata refresh).
            listener = _HandBack(self._handed_back) if self._group else None
            self._consumer.subscribe(self._topics, listener=listener)
        try:
            await self._consumer.start()
        except KafkaError as error:
            await self._consumer.stop()
            raise BusUnavailable(f"Kafka at {self._bootstrap} unreachable: {error}") from error

    async def stop(self) -> None:
        self._handed_back.set()
        await self._consumer.stop()

    async def poll(
        self, max_records: int, timeout_ms: int, max_bytes: int = POLL_BYTES
    ) -> list[Incoming]:
        self._handed_back.set()
        batches = await self._consumer.getmany(timeout_ms=timeout_ms, max_records=max_records)
        if batches:
            self._handed_back.clear()
        return self._within(batches, max_bytes)

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
                    value=record.value,
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

    async def commit(self) -> None:
        if self._group is None:
            return
        try:
            await self._consumer.commit()
        except KafkaError as error:
            raise BusUnavailable(f"offset commit failed: {error}") from error

    def assignment(self) -> frozenset[Lane]:
        return frozenset((tp.topic, tp.partition) for tp in self._consumer.assignment())

    async def read_through(self, lane: Lane) -> float | None:
        return await read_through(self._consumer, TopicPartition(*lane))

    def partition_count(self, topic: str) -> int | None:
        return len(self._consumer.partitions_for_topic(topic) or ()) or None


class _HandBack(ConsumerRebalanceListener):  # type: ignore[misc]
    """Gives partitions up only once the service is done with the batch it last polled.

    A service finishes a batch (its writes, its commit) before it polls again, so a
    member that takes the partitions over starts from offsets that batch committed.
    """

    def __init__(self, handed_back: asyncio.Event) -> None:
        self._handed_back = handed_back

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._handed_back.wait()

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
                for partition in sorted(await _partitions(consumer, topic))
            ]
            consumer.assign(partitions)
            if not await consumer.seek_to_end(*partitions):
                raise BusUnavailable(
                    f"Kafka did not tell the ends of {', '.join(self._tail_topics)}"
                )
        except KafkaError as error:
            await super().stop()
            raise BusUnavailable(f"Kafka at {self._bootstrap} unreachable: {error}") from error
        except BusUnavailable:
            await super().stop()
            raise


class KafkaTransactionalPublisher:
    """Kafka transactions: the records and the group's offsets in one commit.

    Starting a producer with a transactional id bumps the id's epoch: Kafka first settles
    the open transaction of any earlier producer with that id (a crashed or stalled
    instance) and refuses that producer's writes from then on.
    """

    def __init__(
        self, bootstrap: str, transactional_id: str, options: ClientOptions | None = None
    ) -> None:
        self._bootstrap = bootstrap
        self._transactional_id = transactional_id
        self._options = options or {}
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=self._bootstrap,
            transactional_id=self._transactional_id,
            enable_idempotence=True,
            acks="all",
            **self._options,
            retry_backoff_ms=_TRANSACTION_RETRY_MS,
            transaction_timeout_ms=_TRANSACTION_TIMEOUT_MS,
        )
        self._producer = await _started(producer, self._bootstrap)

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def commit(
        self, records: Sequence[Outgoing], consumed: Sequence[Incoming], group: str
    ) -> None:
        producer = self._producer
        if producer is None:
            raise RuntimeError("transactional publisher used before start()")
        offsets: dict[TopicPartition, int] = {}
        for done in consumed:
            partition = TopicPartition(done.topic, done.partition)
            offsets[partition] = max(offsets.get(partition, 0), done.offset + 1)
        try:
            async with producer.transaction():
                for record in records:
                    await producer.send(
                        record.topic, record.value, key=record.key, headers=list(record.headers)
                    )
                if offsets:
                    await producer.send_offsets_to_transaction(offsets, group)
        except (ProducerFenced, InvalidProducerEpoch) as error:
            raise PublisherFenced(
                f"another producer took over transactional id {self._transactional_id!r}"
            ) from error
        except (KafkaError, IllegalOperation) as error:
            raise BusUnavailable(f"Kafka transaction failed: {error!r}") from error


class KafkaBus:
    def __init__(
        self, bootstrap: str, partitions: int = 6, security: KafkaSecurity | None = None
    ) -> None:
        self._bootstrap = bootstrap
        self._partitions = partitions
        self._options: ClientOptions = (security or KafkaSecurity()).client_options()

    async def ensure_topics(self, topics: Sequence[str], compacted: Sequence[str] = ()) -> None:
        """Create the missing topics with no retention of logdeck's own.

        The broker's retention applies (`log.retention.hours`, 7 days by default; no size
        limit): it deletes whole old segments whether or not a group has read them, and a
        group that fell that far behind goes on from the earliest record left.
        """
        admin = AIOKafkaAdminClient(bootstrap_servers=self._bootstrap, **self._options)
        try:
            await admin.start()
            existing = set(await admin.list_topics())
            missing = [
                NewTopic(
                    name=topic,
                    num_partitions=self._partitions,
                    replication_factor=1,
                    topic_configs={"cleanup.policy": "compact"} if topic in compacted else {},
                )
                for topic in topics
                if topic not in existing
            ]
            if missing:
                # Another service may have created them first.
                with contextlib.suppress(TopicAlreadyExistsError):
                    await admin.create_topics(missing)
        except KafkaError as error:
            raise BusUnavailable(f"Kafka at {self._bootstrap} unreachable: {error}") from error
        finally:
            await admin.close()

    async def healthy(self) -> bool:
        return await asyncio.to_thread(kafka_ready, self._bootstrap)

    async def dropped_unread(self) -> None:
        """Not known: the broker deletes by its retention whatever the groups have read."""
        return None

    async def snapshot(self, topic: str) -> list[Incoming]:
        subscription = KafkaSubscription(self._bootstrap, (), None, True, options=self._options)
        consumer = subscription.consumer
        try:
            await subscription.start()
            partitions = [TopicPartition(topic, p) for p in await _partitions(consumer, topic)]
            consumer.assign(partitions)
            ends = await self._high_watermarks(partitions)
            await consumer.seek_to_beginning(*partitions)
            records: list[Incoming] = []
            deadline = asyncio.get_running_loop().time() + _SNAPSHOT_TIMEOUT_S
            while await _behind(consumer, ends):
                if asyncio.get_running_loop().time() > deadline:
                    raise BusUnavailable(f"reading {topic} did not reach its end in time")
                records += await subscription.poll(10_000, timeout_ms=1000)
            return records
        except KafkaError as error:
            raise BusUnavailable(f"reading {topic} from Kafka failed: {error}") from error
        finally:
            await subscription.stop()

    async def _high_watermarks(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        """The partitions' ends, open transactions included.

        A committed reader's own end (the last stable offset) stops before the first open
        transaction, which may hide records committed after it began; reading on to the
        high watermark waits for those transactions to end instead (a dead producer's within
        the transaction timeout), so a snapshot holds everything committed before it.
        """
        probe = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap,
            enable_auto_commit=False,
            isolation_level="read_uncommitted",
            **self._options,
        )
        await probe.start()
        try:
            ends: dict[TopicPartition, int] = await probe.end_offsets(partitions)
            return ends
        finally:
            await probe.stop()

    def publisher(self) -> KafkaPublisher:
        return KafkaPublisher(self._bootstrap, self._options)

    def subscription(
        self, topics: Sequence[str], group: str | None, *, from_beginning: bool = True
    ) -> KafkaSubscription:
        return KafkaSubscription(
            self._bootstrap, topics, group, from_beginning, options=self._options
        )

    def transactional_publisher(self, transactional_id: str) -> KafkaTransactionalPublisher:
        return KafkaTransactionalPublisher(self._bootstrap, transactional_id, self._options)

    def tail(self, topics: Sequence[str]) -> KafkaTail:
        return KafkaTail(self._bootstrap, topics, self._options)


async def _behind(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
    for partition, end in ends.items():
        if await consumer.position(partition) < end:
            return True
    return False


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    """The topic's partitions, once the consumer's metadata knows them."""
    for _ in range(50):
        partitions = consumer.partitions_for_topic(topic)
        if partitions:
            return set(partitions)
        await consumer._client.force_metadata_update()
        await asyncio.sleep(0.1)
    raise BusUnavailable(f"topic {topic} has no partitions on Kafka")
