"""Reading records outright, without a group: a whole topic up to its end when the read
began, or ranges of offsets of some partitions."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from backend.bus.base import BusUnavailable, Incoming, Lane
from backend.bus.kafka.clients import ClientOptions
from backend.bus.kafka.subscription import KafkaSubscription, topic_partitions

_SNAPSHOT_TIMEOUT_S = 120.0


async def snapshot(bootstrap: str, options: ClientOptions, topic: str) -> list[Incoming]:
    """Every record of `topic` committed before the call, in each partition's order."""
    subscription = KafkaSubscription(bootstrap, (), None, True, options=options)
    consumer = subscription.consumer
    try:
        await subscription.start()
        partitions = [TopicPartition(topic, p) for p in await topic_partitions(consumer, topic)]
        consumer.assign(partitions)
        ends = await _high_watermarks(bootstrap, options, partitions)
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


async def read_ranges(
    bootstrap: str, options: ClientOptions, ranges: Mapping[Lane, tuple[int, int]]
) -> list[Incoming]:
    """The committed records of each lane with `start <= offset < end`.

    A start below what retention kept reads from the first record kept. The ends must be
    offsets a committed reader has reached (a record it read), so no open transaction can
    hold the read back.
    """
    spans = {
        TopicPartition(*lane): (max(start, 0), end)
        for lane, (start, end) in ranges.items()
        if max(start, 0) < end
    }
    if not spans:
        return []
    subscription = KafkaSubscription(bootstrap, (), None, True, options=options)
    consumer = subscription.consumer
    try:
        await subscription.start()
        consumer.assign(list(spans))
        for partition, (start, _) in spans.items():
            consumer.seek(partition, start)
        records: list[Incoming] = []
        deadline = asyncio.get_running_loop().time() + _SNAPSHOT_TIMEOUT_S
        reading = set(spans)
        while True:
            for partition in list(reading):
                if await consumer.position(partition) >= spans[partition][1]:
                    consumer.pause(partition)
                    reading.discard(partition)
            if not reading:
                break
            if asyncio.get_running_loop().time() > deadline:
                raise BusUnavailable("reading back offset ranges did not finish in time")
            for record in await subscription.poll(10_000, timeout_ms=1000):
                if record.offset < spans[TopicPartition(record.topic, record.partition)][1]:
                    records.append(record)
        return records
    except KafkaError as error:
        raise BusUnavailable(f"reading back offset ranges from Kafka failed: {error}") from error
    finally:
        await subscription.stop()


async def _high_watermarks(
    bootstrap: str, options: ClientOptions, partitions: list[TopicPartition]
) -> dict[TopicPartition, int]:
    """The partitions' ends, open transactions included.

    A committed reader's own end (the last stable offset) stops before the first open
    transaction, which may hide records committed after it began; reading on to the
    high watermark waits for those transactions to end instead (a dead producer's within
    the transaction timeout), so a snapshot holds everything committed before it.
    """
    probe = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        isolation_level="read_uncommitted",
        **options,
    )
    await probe.start()
    try:
        ends: dict[TopicPartition, int] = await probe.end_offsets(partitions)
        return ends
    finally:
        await probe.stop()


async def _behind(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
    for partition, end in ends.items():
        if await consumer.position(partition) < end:
            return True
    return False
