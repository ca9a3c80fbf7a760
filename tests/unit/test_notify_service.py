"""The notifier's loop on the embedded bus, with receivers stood in for in-process: a slow
receiver holds back no other, and what was sent is recorded for the next notifier."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path

import pytest

from backend.backends import open_bus
from backend.bus import Bus, Outgoing
from backend.config import Settings
from backend.notify.config import parse_notify_config
from backend.notify.delivery import Sender
from backend.notify.ledger import Notice
from backend.notify.service import Notifier
from backend.schemas import Notification, decode_as, encode
from tests.unit.test_notify_routing import alert

CONFIG = parse_notify_config(
    """\
[[receiver]]
name = "slow"
type = "webhook"
url = "http://127.0.0.1:1/slow"

[[receiver]]
name = "fast"
type = "slack"
url = "http://127.0.0.1:1/fast"
""",
    "t",
)


class Recording:
    """A receiver that takes every message once `open` is set."""

    def __init__(self, *, ready: bool = True) -> None:
        self.open = asyncio.Event()
        if ready:
            self.open.set()
        self.received: list[list[str]] = []

    async def send(self, notices: Sequence[Notice]) -> None:
        await self.open.wait()
        self.received.append([notice.alert.alert_id for notice in notices])


@pytest.fixture
async def bus(tmp_path: Path) -> AsyncIterator[tuple[Settings, Bus]]:
    settings = Settings(embedded=tmp_path, partitions=2)
    bus = open_bus(settings)
    await bus.ensure_topics(settings.topics.all(), settings.topics.compacted())
    yield settings, bus


@contextlib.asynccontextmanager
async def notifier(
    settings: Settings, bus: Bus, senders: dict[str, Sender]
) -> AsyncIterator[Notifier]:
    """A notifier watching in the background for the body of the `async with`."""
    subscription = bus.subscription([settings.topics.alerts], settings.group("notifier"))
    publisher = bus.publisher()
    await subscription.start()
    await publisher.start()
    running = Notifier(settings, bus, CONFIG, subscription, publisher, senders)
    watching = asyncio.create_task(running.watch())
    try:
        yield running
    finally:
        watching.cancel()
        await asyncio.gather(watching, return_exceptions=True)
        await subscription.stop()
        await publisher.stop()


async def until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    for _ in range(200):
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"no {what} within 10 s")


async def recorded(settings: Settings, bus: Bus) -> list[Notification]:
    records = await bus.snapshot(settings.topics.notifications)
    return [decode_as(record.value, Notification) for record in records]


async def test_a_slow_receiver_holds_back_no_other_and_a_restart_repeats_nothing(
    bus: tuple[Settings, Bus],
) -> None:
    settings, the_bus = bus
    publisher = the_bus.publisher()
    await publisher.start()
    firing = alert(alert_id="0123456789abcdef")
    topic = settings.topics.alerts
    await publisher.publish([Outgoing(topic, firing.alert_id.encode(), encode(firing))])
    slow, fast = Recording(ready=False), Recording()
    async with notifier(settings, the_bus, {"slow": slow, "fast": fast}):

        async def fast_recorded() -> bool:
            return [n.receiver for n in await recorded(settings, the_bus)] == ["fast"]

        async def both_recorded() -> bool:
            return len(await recorded(settings, the_bus)) == 2

        await until(fast_recorded, "record of the fast receiver's delivery")
        assert (fast.received, slow.received) == ([[firing.alert_id]], [])
        slow.open.set()
        await until(both_recorded, "record of both deliveries")
    assert (slow.received, fast.received) == ([[firing.alert_id]], [[firing.alert_id]])

    again_slow, again_fast = Recording(), Recording()
    async with notifier(settings, the_bus, {"slow": again_slow, "fast": again_fast}) as again:

        async def following() -> bool:
            return len(again.ledger) == 1

        await until(following, "the restarted notifier to follow the alert")
        await asyncio.sleep(0.5)  # what it would send, it would have sent by now
    await publisher.stop()
    assert (again_slow.received, again_fast.received) == ([], [])
