"""How far consumer groups are behind on their topics, as Kafka's own tools report it."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from backend.bus.base import BusUnavailable
from backend.bus.kafka.clients import ClientOptions
from backend.bus.kafka.subscription import topic_partitions

_TIMEOUT_S = 5.0


async def group_lags(
    bootstrap: str, options: ClientOptions, groups: Mapping[str, Sequence[str]]
) -> dict[str, int | None]:
    """For each group, the records of its topics past its committed offsets (from the first
    record kept on a partition it never committed); None for a group that has committed
    nothing at all. One admin client and one consumer for every group."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **options)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, **options)
    try:
        async with asyncio.timeout(_TIMEOUT_S):
            await admin.start()
            await consumer.start()
            committed = {group: await admin.list_consumer_group_offsets(group) for group in groups}
            names = sorted({topic for topics in groups.values() for topic in topics})
            partitions = [
                TopicPartition(topic, partition)
                for topic in names
                for partition in await topic_partitions(consumer, topic)
            ]
            ends = await consumer.end_offsets(partitions)
            starts = await consumer.beginning_offsets(partitions)
    except (KafkaError, OSError, TimeoutError) as error:
        raise BusUnavailable(f"reading consumer lag from Kafka failed: {error!r}") from error
    finally:
        await consumer.stop()
        await admin.close()
    lags: dict[str, int | None] = {}
    for group, topics in groups.items():
        done = committed[group]
        if not done:
            lags[group] = None
            continue
        lag = 0
        for partition in partitions:
            if partition.topic in topics:
                at = done.get(partition)
                start = at.offset if at is not None and at.offset >= 0 else starts[partition]
                lag += max(0, ends[partition] - start)
        lags[group] = lag
    return lags
