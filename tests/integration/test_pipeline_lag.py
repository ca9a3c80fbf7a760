"""Consumer lag, on both buses: what each service has not committed yet, as the console shows."""

from __future__ import annotations

import time

import pytest

from backend.backends import open_bus
from backend.bus.base import Bus, Incoming, Outgoing
from backend.config import Settings
from backend.observe.pipeline import pipeline_lag

pytestmark = pytest.mark.integration

SENT = 60
READ = 25


async def read_and_commit(bus: Bus, settings: Settings, role: str, count: int) -> None:
    """The group of `role` reads `count` records and commits them."""
    reader = bus.subscription(settings.topics.consumed_by(role), settings.group(role))
    taken: list[Incoming] = []
    try:
        await reader.start()
        deadline = time.monotonic() + 60
        while len(taken) < count:
            assert time.monotonic() < deadline, f"{len(taken)} of {count} read"
            taken += await reader.poll(count - len(taken), 200)
        await reader.commit()
    finally:
        await reader.stop()


async def test_each_service_lags_by_what_its_groups_have_not_committed(settings: Settings) -> None:
    bus = open_bus(settings)
    topics = settings.topics
    publisher = bus.publisher()
    try:
        await bus.ensure_topics(topics.all(), topics.compacted())
        assert await pipeline_lag(bus, settings) == dict.fromkeys(
            ("indexer", "alerter", "monitor", "notifier")
        ), "no group has run: no lag is known"

        await publisher.start()
        logs = [Outgoing(topics.logs, f"node-{i % 4}".encode(), b"{}") for i in range(SENT)]
        await publisher.publish(logs)
        await read_and_commit(bus, settings, "indexer", READ)
        await read_and_commit(bus, settings, "alerter-rules", 1)
        await read_and_commit(bus, settings, "alerter-rules", SENT - 1)
        lag = await pipeline_lag(bus, settings)
        assert lag == {"indexer": SENT - READ, "alerter": 0, "monitor": None, "notifier": None}

        await publisher.publish(logs[:10])
        lag = await pipeline_lag(bus, settings)
        assert (lag["indexer"], lag["alerter"]) == (SENT - READ + 10, 10)
    finally:
        await publisher.stop()
        close = getattr(bus, "close", None)
        if close is not None:
            await close()
