"""Reading a whole topic from Kafka, up to its end when the read began."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from backend.bus.base import BusUnavailable, Incoming
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
