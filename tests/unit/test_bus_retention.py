"""Retention on the embedded bus never deletes what a known group has not committed, unless
the hard cap forces it, and then it says so and counts it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from pathlib import Path

import pytest
from aiokafka.partitioner import murmur2

from backend.backends import open_store
from backend.bus.base import Incoming, Outgoing
from backend.bus.embedded import EmbeddedBus, EmbeddedSubscription, Retention
from backend.config import BUS_FILE, Settings
from backend.observe.live import LiveObserver

LOGS = "t.logs"
PARTITIONS = 2
GROUP = "t.indexer"


def same_partition_keys() -> tuple[bytes, bytes]:
    """Two node ids that land on the same partition, as in the report."""
    first = b"node-a"
    home = murmur2(first) & 0x7FFFFFFF
    for i in range(1000):
        other = f"node-{i}".encode()
        if other != first and (murmur2(other) & 0x7FFFFFFF) % PARTITIONS == home % PARTITIONS:
            return first, other
    raise AssertionError("no second key on the same partition")


async def publish(bus: EmbeddedBus, batch: Sequence[Outgoing]) -> None:
    publisher = bus.publisher()
    await publisher.start()
    try:
        await publisher.publish(batch)
    finally:
        await publisher.stop()


async def read_all(subscription: EmbeddedSubscription) -> list[Incoming]:
    """Everything the subscription has to give now (polls until one comes back empty)."""
    got: list[Incoming] = []
    for _ in range(1000):
        batch = await subscription.poll(10_000, 50)
        if not batch:
            return got
        got += batch
    raise AssertionError("the subscription never ran dry")


async def known_group(bus: EmbeddedBus) -> None:
    """The group reads and commits what the topic holds, then stops (the indexer stopped)."""
    reader = bus.subscription([LOGS], GROUP)
    await reader.start()
    await read_all(reader)
    await reader.commit()
    await reader.stop()


def logs(key: bytes, count: int, *, start: int = 0, size: int = 1) -> list[Outgoing]:
    return [Outgoing(LOGS, key, f"{i}".encode().ljust(size)) for i in range(start, start + count)]


async def test_retention_keeps_what_a_known_group_has_not_committed(tmp_path: Path) -> None:
    bus = EmbeddedBus(tmp_path / "bus.db", PARTITIONS, Retention(max_age_s=None, max_records=20))
    first, second = same_partition_keys()
    try:
        await bus.ensure_topics([LOGS])
        await publish(bus, logs(first, 5))
        await known_group(bus)
        await publish(bus, logs(first, 100, start=5) + logs(second, 400, start=105))

        await bus.apply_retention()

        again = bus.subscription([LOGS], GROUP)
        await again.start()
        got = await read_all(again)
        await again.stop()
        assert sorted(int(record.value) for record in got) == list(range(5, 505))
    finally:
        await bus.close()


async def test_the_hard_cap_deletes_unread_records_loudly_and_counts_them(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "bus.db"
    # 100-byte values: a partition's share of the hard cap holds about 20 of them.
    retention = Retention(max_age_s=None, max_records=20, max_bytes=PARTITIONS * 2000)
    bus = EmbeddedBus(path, PARTITIONS, retention)
    first, _ = same_partition_keys()
    try:
        await bus.ensure_topics([LOGS])
        await publish(bus, logs(first, 5, size=100))
        await known_group(bus)
        assert await bus.dropped_unread() == 0
        await publish(bus, logs(first, 100, start=5, size=100))

        with caplog.at_level(logging.WARNING, logger="logdeck.bus"):
            await bus.apply_retention()

        again = bus.subscription([LOGS], GROUP)
        await again.start()
        kept = sorted(int(record.value) for record in await read_all(again))
        await again.stop()
        assert 0 < len(kept) < 100 and kept[-1] == 104  # the newest are the ones kept
        lost = kept[0] - 5
        assert await bus.dropped_unread() == lost
        partition = next(r.partition for r in await bus.snapshot(LOGS))
        warning = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warning) == 1
        assert f"{LOGS} partition {partition}" in warning[0]
        assert f"deleted {lost} records" in warning[0] and f"{GROUP} ({lost})" in warning[0]
    finally:
        await bus.close()
    reopened = EmbeddedBus(path, PARTITIONS, retention)  # as another process would
    try:
        assert await reopened.dropped_unread() == lost
    finally:
        await reopened.close()


async def test_without_a_known_group_the_soft_limits_trim_as_before(tmp_path: Path) -> None:
    bus = EmbeddedBus(tmp_path / "bus.db", PARTITIONS, Retention(max_age_s=None, max_records=20))
    first, _ = same_partition_keys()
    try:
        await publish(bus, logs(first, 100))
        assert await bus.apply_retention() == 90
        assert await bus.dropped_unread() == 0
    finally:
        await bus.close()


async def test_the_consoles_observer_reports_the_count_in_the_bus_health(tmp_path: Path) -> None:
    settings = Settings(embedded=tmp_path, namespace="t")
    retention = Retention(max_age_s=None, max_records=None, max_bytes=PARTITIONS * 500)
    bus = EmbeddedBus(tmp_path / BUS_FILE, PARTITIONS, retention)
    first, _ = same_partition_keys()
    await bus.ensure_topics([LOGS])
    await publish(bus, logs(first, 1))
    await known_group(bus)
    await publish(bus, logs(first, 50, start=1, size=100))
    await bus.apply_retention()
    observer = LiveObserver(settings, bus, open_store(settings))
    await observer.start()
    try:
        for _ in range(100):
            health = {item.name: item for item in observer.health()}
            if health[settings.bus_name].dropped_unread:
                break
            await asyncio.sleep(0.05)
        assert health[settings.bus_name].dropped_unread == await bus.dropped_unread() > 40
        assert health[settings.bus_name].up
    finally:
        await observer.close()
        await bus.close()
