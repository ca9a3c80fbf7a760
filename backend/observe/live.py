"""The console's observer on a bus and a store: Kafka and Elasticsearch, or the embedded pair.

Feeds never end while the console runs: when the bus is away they wait and retry, so
the console shows "down since …" from `health()` and fills in again by itself. Alert and
registry feeds read their compacted topic from the start, so the first batches are the
whole current state and later ones the changes, with no gap between the two. The
dead-letter count is followed the same way, in a task of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import TypeVar

from backend.alerting.client import AlertClient
from backend.bus import Bus, BusUnavailable, Incoming, Subscription
from backend.config import Settings
from backend.deadletters.count import PendingCount
from backend.monitor.forgetting import NodeForgetter
from backend.observe.base import ServiceHealth
from backend.observe.pipeline import pipeline_lag
from backend.retry import Backoff
from backend.schemas import (
    Alert,
    InvalidRecord,
    Log,
    NodeEntry,
    RetiredNode,
    Silence,
    decode_as,
)
from backend.silences.client import SilenceClient
from backend.store import Store, StoreUnavailable
from backend.store.query import LogQuery, SearchResult

log = logging.getLogger("logdeck.observe")

T = TypeVar("T")

_HEALTH_EVERY_S = 2.0
_BATCH_RECORDS = 1000
"""Records decoded per step: small steps leave the event loop free for keys in between."""
_POLL_MS = 100


class LiveObserver:
    """The console's view of a bus and a store its caller opened (`backend.backends`).

    Closing the observer closes the store it was handed (its client belongs to the event
    loop the console runs in) but not the bus: services in the same process may share it,
    as in the demo, so the bus is left to whoever opened it.
    """

    def __init__(self, settings: Settings, bus: Bus, store: Store) -> None:
        self._settings = settings
        self._bus = bus
        self._store = store
        self._alerts = AlertClient(settings, self._bus)
        self._silences = SilenceClient(settings, self._bus)
        self._forgetter = NodeForgetter(settings, self._bus)
        started = datetime.now(UTC)
        self._health = {
            name: ServiceHealth(name, False, started, "connecting")
            for name in (settings.bus_name, settings.store_name)
        }
        self._tasks: list[asyncio.Task[None]] = []
        self._dead_letters: int | None = None
        self._lag: dict[str, int | None] = {}

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._watch_health()),
            asyncio.create_task(self._count_dead_letters()),
        ]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._alerts.close()
        await self._silences.close()
        await self._forgetter.close()
        await self._store.close()

    def health(self) -> tuple[ServiceHealth, ...]:
        return tuple(self._health.values())

    def dead_letters(self) -> int | None:
        return self._dead_letters

    def lag(self) -> dict[str, int | None]:
        return dict(self._lag)

    def logs(self) -> AsyncIterator[list[Log]]:
        topic = self._settings.topics.logs
        return self._feed(lambda: self._bus.tail([topic]), _shaped(Log))

    def nodes(self) -> AsyncIterator[list[NodeEntry | RetiredNode]]:
        topic = self._settings.topics.registry
        return self._feed(lambda: self._bus.subscription([topic], None), _registry_entry)

    async def forget_node(self, node_id: str, by: str) -> None:
        await self._forgetter.forget(node_id, by)

    async def alerts(self) -> AsyncIterator[list[Alert]]:
        """The alerter's open alerts, then their changes; started over if the bus goes away."""
        backoff = Backoff(maximum=5.0)
        while True:
            try:
                async for batch in self._alerts.changes():
                    backoff.reset()
                    yield batch
            except BusUnavailable as error:
                log.debug("alert feed waiting for the bus: %s", error)
                await asyncio.sleep(backoff.next_delay())

    async def acknowledge(self, alert: Alert, by: str, note: str | None = None) -> None:
        await self._alerts.acknowledge(alert, by, note)

    async def annotate(self, alert: Alert, by: str, note: str) -> None:
        await self._alerts.annotate(alert, by, note)

    async def unacknowledge(self, alert: Alert, by: str) -> None:
        await self._alerts.unacknowledge(alert, by)

    async def resolve(self, alert: Alert, by: str) -> None:
        await self._alerts.resolve(alert, by)

    def silences(self) -> AsyncIterator[list[Silence]]:
        topic = self._settings.topics.silences
        return self._feed(lambda: self._bus.subscription([topic], None), _shaped(Silence))

    async def add_silence(self, silence: Silence) -> None:
        await self._silences.add(silence)

    async def expire_silence(self, silence_id: str) -> None:
        await self._silences.expire(silence_id, datetime.now(UTC))

    async def search(self, query: LogQuery) -> SearchResult:
        return await self._store.search_logs(query)

    async def _feed(
        self, subscribe: Callable[[], Subscription], decode: Callable[[Incoming], T]
    ) -> AsyncIterator[list[T]]:
        """Decoded batches of a subscription, forever; records that do not decode are skipped.

        The first batch is empty and comes as soon as the subscription has started: from
        then on nothing published is missed, so the console may read the store's history
        without a gap between it and the tail."""
        backoff = Backoff(maximum=5.0)
        while True:
            subscription = subscribe()
            try:
                await subscription.start()
                break
            except BusUnavailable as error:
                log.debug("feed waiting for the bus: %s", error)
                await asyncio.sleep(backoff.next_delay())
        try:
            yield []
            while True:
                batch: list[T] = []
                for record in await subscription.poll(_BATCH_RECORDS, _POLL_MS):
                    with contextlib.suppress(InvalidRecord):
                        batch.append(decode(record))
                if batch:
                    yield batch
        finally:
            await subscription.stop()

    async def _count_dead_letters(self) -> None:
        """Follow the dead-letter and replay topics from the start, forever.

        The count is shown once both topics have been read to their ends; after the bus
        went away they are read again from the start, and the last count stays meanwhile.
        """
        topics = self._settings.topics
        followed = (topics.deadletter, topics.deadletter_replays)
        backoff = Backoff(maximum=5.0)
        while True:
            subscription = self._bus.subscription(followed, None)
            try:
                await self._bus.ensure_topics(topics.all(), topics.compacted())
                await subscription.start()
            except BusUnavailable as error:
                log.debug("dead-letter count waiting for the bus: %s", error)
                await asyncio.sleep(backoff.next_delay())
                continue
            try:
                count = PendingCount(topics)
                known = False
                while True:
                    for record in await subscription.poll(_BATCH_RECORDS * 10, _POLL_MS):
                        count.add(record)
                    known = known or await _read_to_end(subscription, followed)
                    if known:
                        self._dead_letters = count.pending
                        backoff.reset()
            except BusUnavailable as error:
                log.debug("dead-letter count reading again from the start: %s", error)
            finally:
                with contextlib.suppress(BusUnavailable):
                    await subscription.stop()
            await asyncio.sleep(backoff.next_delay())

    async def _watch_health(self) -> None:
        while True:
            bus, store = await asyncio.gather(self._bus.healthy(), self._store_healthy())
            settings = self._settings
            self._note(settings.bus_name, bus, settings.bus_address)
            self._note(settings.store_name, store, settings.store_address)
            if bus:
                await self._note_dropped(settings.bus_name)
                await self._note_lag()
            await asyncio.sleep(_HEALTH_EVERY_S)

    async def _note_lag(self) -> None:
        """The pipeline's consumer lag; the last reading stays while the bus cannot tell."""
        try:
            self._lag = await pipeline_lag(self._bus, self._settings)
        except BusUnavailable as error:
            log.debug("consumer lag not read: %s", error)

    async def _note_dropped(self, name: str) -> None:
        """The bus's count of records dropped unread; the last one stays while it cannot tell."""
        try:
            dropped = await self._bus.dropped_unread()
        except BusUnavailable as error:
            log.debug("dropped-unread count not read: %s", error)
            return
        current = self._health[name]
        if dropped is not None and dropped != current.dropped_unread:
            self._health[name] = replace(current, dropped_unread=dropped)

    async def _store_healthy(self) -> bool:
        try:
            return await self._store.healthy()
        except StoreUnavailable:
            return False

    def _note(self, name: str, up: bool, address: str) -> None:
        current = self._health[name]
        if current.up != up or current.detail == "connecting":
            self._health[name] = ServiceHealth(
                name, up, datetime.now(UTC), address, current.dropped_unread
            )


async def _read_to_end(subscription: Subscription, topics: tuple[str, ...]) -> bool:
    """Whether every partition of `topics` has been read up to its end."""
    for topic in topics:
        partitions = subscription.partition_count(topic)
        if partitions is None:
            return False
        for partition in range(partitions):
            if await subscription.read_through((topic, partition)) is None:
                return False
    return True


def _shaped(shape: type[T]) -> Callable[[Incoming], T]:
    return lambda record: decode_as(record.value, shape)


def _registry_entry(record: Incoming) -> NodeEntry | RetiredNode:
    """A registry record: a node's entry, or its tombstone once it is retired."""
    if not record.value and record.key:
        return RetiredNode(node_id=record.key.decode("utf-8", "replace"))
    return decode_as(record.value, NodeEntry)
