"""A poll takes at most its byte budget, on both buses: memory follows bytes, not records.

Records larger than the budget come one at a time; none is lost or repeated when a poll
leaves records out, and the order within each partition stays.
"""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from backend.backends import open_bus
from backend.bus.base import Incoming, Outgoing
from backend.config import Settings
from tests.integration.harness import new_namespace

pytestmark = pytest.mark.integration

BUDGET = 250_000
RECORD = 100_000
LARGE = 300_000
_SET_ON_THE_TOPIC = 1
"""DescribeConfigs' source of a value set on the topic itself (5: the broker's default)."""


async def test_a_poll_returns_at_most_its_budget_or_one_record(settings: Settings) -> None:
    bus = open_bus(settings)
    topic = settings.topics.logs
    sent = [
        Outgoing(topic, f"node-{i % 3}".encode(), f"{i:06}".encode().ljust(RECORD, b"."))
        for i in range(30)
    ]
    sent.append(Outgoing(topic, b"node-0", b"000030".ljust(LARGE, b".")))
    await bus.ensure_topics([topic])
    publisher = bus.publisher()
    reader = bus.subscription([topic], settings.group("budget"))
    try:
        await publisher.start()
        await publisher.publish(sent)
        await reader.start()
        polls: list[list[Incoming]] = []
        deadline = time.monotonic() + 60
        while sum(map(len, polls)) < len(sent):
            assert time.monotonic() < deadline, f"{sum(map(len, polls))} of {len(sent)} came"
            if batch := await reader.poll(1000, 200, max_bytes=BUDGET):
                polls.append(batch)
                await reader.commit()
    finally:
        await reader.stop()
        await publisher.stop()
        close = getattr(bus, "close", None)
        if close is not None:
            await close()

    for batch in polls:
        assert len(batch) == 1 or sum(record.size() for record in batch) <= BUDGET
    got = [record for batch in polls for record in batch]
    assert sorted(int(record.value[:6]) for record in got) == list(range(31))
    for partition in {record.partition for record in got}:
        offsets = [record.offset for record in got if record.partition == partition]
        assert offsets == sorted(offsets)
    assert any(len(batch) > 1 for batch in polls)  # the budget is not one record a poll


async def test_kafka_topics_keep_the_brokers_retention(servers: Settings) -> None:
    """logdeck sets no retention of its own on Kafka: the broker's (time, 7 days by default;
    no size limit) applies to every topic, and the compacted ones keep each key's latest."""
    settings = replace(servers, namespace=new_namespace())  # cleaned as tests' are
    bus = open_bus(settings)
    await bus.ensure_topics(settings.topics.all(), settings.topics.compacted())
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka)
    await admin.start()
    try:
        described = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic) for topic in settings.topics.all()]
        )
    finally:
        await admin.close()
    entries = [
        (name, key, source)
        for response in described
        for _, _, _, name, configs in response.resources
        for key, _, _, source, *_ in configs
        if key in ("retention.ms", "retention.bytes")
    ]
    assert len(entries) == 2 * len(settings.topics.all())
    assert [entry for entry in entries if entry[2] == _SET_ON_THE_TOPIC] == []
