"""Creating the bus's topics on Kafka, leaving their retention to the broker."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from backend.bus.kafka.clients import ClientOptions, refused
from backend.bus.kafka.replication import replication_for


async def ensure_topics(
    bootstrap: str,
    options: ClientOptions,
    partitions: int,
    topics: Sequence[str],
    compacted: Sequence[str] = (),
) -> None:
    """Create the missing topics with no retention of logdeck's own.

    Each keeps as many copies as the brokers the cluster lists allow (`replication_for`);
    topics that exist keep theirs. The broker's retention applies (`log.retention.hours`,
    7 days by default; no size limit): it deletes whole old segments whether or not a
    group has read them, and a group that fell that far behind goes on from the earliest
    record left.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **options)
    try:
        await admin.start()
        existing = set(await admin.list_topics())
        replication = replication_for(len((await admin.describe_cluster())["brokers"]))
        common = {"min.insync.replicas": str(replication.min_insync)}
        missing = [
            NewTopic(
                name=topic,
                num_partitions=partitions,
                replication_factor=replication.factor,
                topic_configs={**common, "cleanup.policy": "compact"}
                if topic in compacted
                else common,
            )
            for topic in topics
            if topic not in existing
        ]
        if missing:
            # Another service may have created them first.
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(missing)
    except KafkaError as error:
        raise refused(error, "creating topics", f"Kafka at {bootstrap} unreachable") from error
    finally:
        await admin.close()
