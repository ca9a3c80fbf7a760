"""The console's observer on a bus and a store: Kafka and Elasticsearch, or the embedded pair.

Feeds never end while the console runs: when the bus is away they wait and retry, so
the console shows "down since …" from `health()` and fills in again by itself. Alert and
registry feeds read their compacted topic from the start, so the first batches are the
whole current state and later ones the changes, with no gap between the two.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import TypeVar

from backend.alerting.client import AlertClient
from backend.backends import open_bus, open_store
from backend.bus import Bus, BusUnavailable, Subscription
from backend.config import Settings
from backend.observe.base import LogQuery, SearchResult, ServiceHealth
from backend.retry import Backoff
from backend.schemas import Alert, InvalidRecord, Log, NodeEntry, decode_as
from backend.store import Store, StoreUnavailable

log = logging.getLogger("logdeck.observe")

T = TypeVar("T")

_HEALTH_EVERY_S = 2.0
_BATCH_RECORDS = 1000
"""Records decoded per step: small steps leave the event loop free for keys in between."""
_POLL_MS = 100


class LiveObserver:
    def __init__(
        self, settings: Settings, bus: Bus | None = None, store: Store | None = None
    ) -> None:
        self._settings = settings
        self._bus = bus or open_bus(settings)
        self._store = store or open_store(settings)
        self._alerts = AlertClient(settings, self._bus)
        started = datetime.now(UTC)
        self._health = {
            name: ServiceHealth(name, False, started, "connecting")
            for name in (settings.bus_name, settings.store_name)
        }
        self._watcher: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._watcher = asyncio.create_task(self._watch_health())

    async def close(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        await self._alerts.close()
        await self._store.close()

    def health(self) -> tuple[ServiceHealth, ...]:
        return tuple(self._health.values())

    def logs(self) -> AsyncIterator[list[Log]]:
        topic = self._settings.topics.logs
        return self._feed(lambda: self._bus.tail([topic]), Log)

    def nodes(self) -> AsyncIterator[list[NodeEntry]]:
        topic = self._settings.topics.registry
        return self._feed(lambda: self._bus.subscription([topic], None), NodeEntry)

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

    async def acknowledge(self, alert: Alert, by: str) -> None:
        await self._alerts.acknowledge(alert, by)

    async def unacknowledge(self, alert: Alert, by: str) -> None:
        await self._alerts.unacknowledge(alert, by)

    async def resolve(self, alert: Alert, by: str) -> None:
        await self._alerts.resolve(alert, by)

    async def search(self, query: LogQuery) -> SearchResult:
        return await self._store.search_logs(query)

    async def _feed(
        self, subscribe: Callable[[], Subscription], shape: type[T]
    ) -> AsyncIterator[list[T]]:
        """Decoded batches of a subscription, forever; records that do not decode are skipped."""
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
            while True:
                batch: list[T] = []
                for record in await subscription.poll(_BATCH_RECORDS, _POLL_MS):
                    with contextlib.suppress(InvalidRecord):
                        batch.append(decode_as(record.value, shape))
                if batch:
                    yield batch
        finally:
            await subscription.stop()

    async def _watch_health(self) -> None:
        while True:
            bus, store = await asyncio.gather(self._bus.healthy(), self._store_healthy())
            settings = self._settings
            self._note(settings.bus_name, bus, settings.bus_address)
            self._note(settings.store_name, store, settings.store_address)
            await asyncio.sleep(_HEALTH_EVERY_S)

    async def _store_healthy(self) -> bool:
        try:
            return await self._store.healthy()
        except StoreUnavailable:
            return False

    def _note(self, name: str, up: bool, address: str) -> None:
        current = self._health[name]
        if current.up != up or current.detail == "connecting":
            self._health[name] = ServiceHealth(name, up, datetime.now(UTC), address)
