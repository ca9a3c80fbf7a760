"""Commits of a pipelined reader (the indexer): each batch's own offsets, on both buses, and on
Kafka no partition changes hands while a batch polled before is not committed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import replace

import pytest

from backend.backends import open_bus
from backend.bus import Bus, Incoming, Lane, Outgoing, Subscription
from backend.bus.kafka.subscription import KafkaSubscription
from backend.config import Settings
from tests.integration.harness import new_namespace

pytestmark = pytest.mark.integration


def upto(batch: Iterable[Incoming]) -> dict[Lane, int]:
    ends: dict[Lane, int] = {}
    for record in batch:
        ends[record.topic, record.partition] = record.offset + 1
    return ends


async def read(reader: Subscription, count: int, *, in_flight: bool) -> list[Incoming]:
    got: list[Incoming] = []
    deadline = time.monotonic() + 60
    while len(got) < count:
        assert time.monotonic() < deadline, f"{len(got)} of {count} came"
        got += await reader.poll(count - len(got), 200, in_flight=in_flight)
    return got


async def keep_polling(reader: Subscription) -> None:
    while True:
        await reader.poll(100, 200, in_flight=True)


async def close(bus: Bus) -> None:
    closing = getattr(bus, "close", None)
    if closing is not None:
        await closing()


async def test_a_commit_covers_its_batch_not_what_was_polled_after_it(settings: Settings) -> None:
    """And committing after a later batch passes the end of a transaction: no lag is left."""
    bus = open_bus(settings)
    logs, alerts = settings.topics.logs, settings.topics.alerts
    group = settings.group("pipelined")
    await bus.ensure_topics([logs, alerts])
    publisher = bus.publisher()
    transactions = bus.transactional_publisher(f"{settings.namespace}-pipelined")
    reader = bus.subscription([logs, alerts], group)
    try:
        await publisher.start()
        await transactions.start()
        await publisher.publish([Outgoing(logs, b"node-0", b"%d" % i) for i in range(30)])
        await reader.start()
        first = await read(reader, 10, in_flight=False)
        second = await read(reader, 20, in_flight=True)
        await reader.commit(upto(first))
        assert await bus.lags({group: [logs, alerts]}) == {group: 20}
        await reader.commit(upto(second))
        assert await bus.lags({group: [logs, alerts]}) == {group: 0}

        await transactions.commit([Outgoing(alerts, b"a", b"alert")] * 5, [], group)
        await reader.commit(upto(await read(reader, 5, in_flight=False)))
        lag = await bus.lags({group: [logs, alerts]})
        assert lag[group] in (0, 1), "1 at most: the marker ending the transaction"
        deadline = time.monotonic() + 60
        while lag[group]:
            assert time.monotonic() < deadline, f"the transaction's end is never committed: {lag}"
            await publisher.publish([Outgoing(logs, b"node-0", b"more")])
            await reader.commit(upto(await read(reader, 1, in_flight=False)))
            lag = await bus.lags({group: [logs, alerts]})
    finally:
        await reader.stop()
        await transactions.stop()
        await publisher.stop()
        await close(bus)


async def test_kafka_hands_partitions_over_only_once_both_batches_are_committed(
    servers: Settings,
) -> None:
    """The new member starts after everything the first one wrote: it reads none of it again."""
    settings = replace(servers, namespace=new_namespace(), partitions=3)
    bus = open_bus(settings)
    topic = settings.topics.logs
    group = settings.group("pipelined")
    await bus.ensure_topics([topic])
    publisher = bus.publisher()
    first = bus.subscription([topic], group)
    second = bus.subscription([topic], group)
    assert isinstance(first, KafkaSubscription)
    keys = [f"node-{i}".encode() for i in range(12)]
    polling: asyncio.Task[list[Incoming]] | None = None
    polling_on: asyncio.Task[None] | None = None
    try:
        await publisher.start()
        await publisher.publish([Outgoing(topic, keys[i % 12], b"old") for i in range(60)])
        await first.start()
        written = await read(first, 25, in_flight=False)
        writing = await read(first, 35, in_flight=True)
        assert len(first.assignment()) == 3

        # The first member goes on polling while the two batches are written, as the indexer does.
        polling_on = asyncio.create_task(keep_polling(first))
        joining = asyncio.create_task(second.start())
        deadline = time.monotonic() + 60
        while not first.consumer._subscription.reassignment_in_progress:
            assert time.monotonic() < deadline, "the second member never made the group rebalance"
            await asyncio.sleep(0.1)
        await first.commit(upto(written))
        await asyncio.sleep(1)
        assert not second.assignment(), "the second batch is not committed yet"
        await first.commit(upto(writing))
        await joining
        polling = asyncio.create_task(read(second, 1, in_flight=False))

        deadline = time.monotonic() + 60
        while not second.assignment():
            assert time.monotonic() < deadline, "the partitions were never handed over"
            await asyncio.sleep(0.1)
        await publisher.publish([Outgoing(topic, key, b"new") for key in keys])
        taken = await polling
        assert [record.value for record in taken] == [b"new"], "nothing is read twice"
    finally:
        for task in (polling, polling_on):
            if task is not None:
                task.cancel()
        await second.stop()
        await first.stop()
        await publisher.stop()
        await close(bus)
