"""The stack's servers from a benchmark's side: are they up, how much is on a topic, clean-up.

A run checks its servers before it starts anything, so a missing one is one clear line
rather than a service's stack trace; at the end it deletes what its namespaces made (best
effort: the run is over, and a failed delete must not hide its figures).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from elasticsearch import AsyncElasticsearch

from backend.config import Settings
from bench.common import BenchError


async def check_kafka(settings: Settings) -> None:
    """Raises unless Kafka accepts a connection."""
    host, _, port = settings.kafka.rpartition(":")
    try:
        async with asyncio.timeout(10):
            _, writer = await asyncio.open_connection(host, int(port))
            writer.close()
    except (OSError, TimeoutError) as error:
        raise BenchError(
            f"Kafka ({settings.kafka}) must be running (`logdeck stack up`): {error}"
        ) from None


async def elasticsearch_version(es: AsyncElasticsearch, url: str, otherwise: str = "") -> str:
    """Elasticsearch's version, once it answers; `otherwise` ends the error if it does not."""
    try:
        async with asyncio.timeout(10):
            # GET / is not served by the integ-test distribution the stack runs.
            nodes = await es.nodes.info(node_id="_local", filter_path="nodes.*.version")
    except Exception as error:
        raise BenchError(
            f"Elasticsearch ({url}) must be running (`logdeck stack up`){otherwise}: {error}"
        ) from None
    version: str = next(iter(nodes["nodes"].values()))["version"]
    return version


async def check_servers(settings: Settings, es: AsyncElasticsearch) -> str:
    """Elasticsearch's version, once both servers answer."""
    await check_kafka(settings)
    return await elasticsearch_version(es, settings.elasticsearch)


class TopicSize:
    """Records on the logs topic, summed from its partitions' end offsets (nothing is consumed)."""

    def __init__(self, consumer: AIOKafkaConsumer, settings: Settings) -> None:
        self._consumer = consumer
        self._partitions = [
            TopicPartition(settings.topics.logs, p) for p in range(settings.partitions)
        ]

    async def total(self) -> int:
        async with asyncio.timeout(10):
            offsets: dict[Any, int] = await self._consumer.end_offsets(self._partitions)
        return sum(offsets.values())

    async def growth(self) -> Callable[[], Awaitable[int]]:
        """A counter of the records added from now on."""
        base = await self.total()

        async def grown() -> int:
            return await self.total() - base

        return grown


async def drop_topics(*namespaces: Settings) -> None:
    """Delete the topics of `namespaces`, all on one Kafka (as the first one's principal)."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=namespaces[0].kafka, **namespaces[0].kafka_security.client_options()
    )
    with contextlib.suppress(Exception):
        async with asyncio.timeout(30):
            await admin.start()
            existing = set(await admin.list_topics())
            ours = [
                topic
                for settings in namespaces
                for topic in settings.topics.all()
                if topic in existing
            ]
            if ours:
                await admin.delete_topics(ours)
    with contextlib.suppress(Exception):
        await admin.close()


async def drop_indices(es: AsyncElasticsearch, *namespaces: Settings) -> None:
    """Delete the indices and the index templates of `namespaces`."""
    with contextlib.suppress(Exception):
        await es.indices.delete(
            index=",".join(f"{settings.namespace}-*" for settings in namespaces),
            allow_no_indices=True,
            ignore_unavailable=True,
        )
    for settings in namespaces:
        with contextlib.suppress(Exception):
            await es.options(ignore_status=404).indices.delete_index_template(
                name=settings.indices.logs_prefix.rstrip("-")
            )
