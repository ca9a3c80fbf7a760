"""Creating the bus's topics on Kafka, leaving their retention to the broker."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from backend.bus.base import BusUnavailable
from backend.bus.kafka.clients import ClientOptions


async def ensure_topics(
    bootstrap: str,
    options: ClientOptions,
    partitions: int,
    topics: Sequence[str],
    compacted: Sequence[str] = (),
) -> None:
    """Create the missing topics with no retention of logdeck's own.

    The broker's retention applies (`log.retention.hours`, 7 days by default; no size
    limit): it deletes whole old segments whether or not a group has read them, and a
    group that fell that far behind goes on from the earliest record left.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **options)
    try:
        await admin.start()
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(
                name=topic,
                num_partitions=partitions,
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
        raise BusUnavailable(f"Kafka at {bootstrap} unreachable: {error}") from error
    finally:
        await admin.close()
