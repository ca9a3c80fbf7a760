"""The alerter: logs and alert commands in, alert snapshots out, exactly once.

Each polled batch is applied to the engine, and the snapshots of the alerts it changed go
to the alerts topic in one Kafka transaction with the batch's offsets for the group: a
crash either loses both (the batch is read again) or keeps both (it is never read again),
so no record is counted twice and none is missed.

State lives on the alerts topic. A run starts its transactional producer first (which
settles any transaction a crashed run left open), then reads the topic to its end for
the engine, then consumes from the group's committed offsets. Any failure of the bus
ends the run the same way a crash would, and the next run starts over from Kafka.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

from backend.alerting import decode_command, latest_alerts
from backend.alerting.engine import AlertEngine
from backend.alerting.rules import RuleSet
from backend.bus import Bus, BusUnavailable, Incoming, Outgoing, Subscription
from backend.bus.base import PublisherFenced, TransactionalPublisher
from backend.config import Settings
from backend.retry import Backoff, retrying
from backend.runner import ServiceError, until_stopped
from backend.schemas import Alert, InvalidRecord, Log, decode_as, encode

log = logging.getLogger("logdeck.alerter")

BATCH_RECORDS = 500
"""Small batches keep alert latency low: a batch's alerts wait for its whole transaction."""
_POLL_MS = 200
_REPORT_EVERY_S = 10.0


@dataclass(slots=True)
class AlerterStats:
    logs: int = 0
    commands: int = 0
    unreadable: int = 0
    snapshots: int = 0
    transactions: int = 0


class Alerter:
    """One run: a rebuilt engine, and the batches it applies and commits."""

    def __init__(
        self,
        settings: Settings,
        engine: AlertEngine,
        subscription: Subscription,
        publisher: TransactionalPublisher,
        stats: AlerterStats,
    ) -> None:
        self._settings = settings
        self._group = settings.group("alerter")
        self._engine = engine
        self._subscription = subscription
        self._publisher = publisher
        self.stats = stats

    async def consume(self) -> None:
        """Apply and commit batch after batch, forever; errors of the bus end the run."""
        reported = time.monotonic()
        while True:
            batch = await self._subscription.poll(BATCH_RECORDS, timeout_ms=_POLL_MS)
            if batch:
                await self.process(batch)
            if time.monotonic() - reported >= _REPORT_EVERY_S:
                reported = time.monotonic()
                log.info("totals: %s", self.stats)

    async def process(self, batch: Sequence[Incoming]) -> None:
        """Apply `batch`; publish the latest snapshot of each alert it changed, atomically."""
        changed: dict[str, Alert] = {}
        for record in batch:
            for alert in self._apply(record):
                changed[alert.alert_id] = alert
        topic = self._settings.topics.alerts
        snapshots = [
            Outgoing(topic, alert.alert_id.encode(), encode(alert)) for alert in changed.values()
        ]
        started = time.perf_counter()
        await self._publisher.commit(snapshots, batch, self._group)
        log.debug(
            "%d records, %d snapshots committed in %.1f ms",
            len(batch),
            len(snapshots),
            (time.perf_counter() - started) * 1000,
        )
        self.stats.snapshots += len(snapshots)
        self.stats.transactions += 1

    def _apply(self, record: Incoming) -> list[Alert]:
        """The alerts one record changes; a record that is not what its topic carries, none."""
        try:
            if record.topic == self._settings.topics.logs:
                self.stats.logs += 1
                return self._engine.on_log(decode_as(record.value, Log))
            self.stats.commands += 1
            command = decode_command(record.value)
            alert = self._engine.on_command(command)
            if alert is None:
                log.info("%s changed nothing (alert unknown or already so)", command)
            return [] if alert is None else [alert]
        except (InvalidRecord, ValueError) as error:
            self.stats.unreadable += 1
            log.warning(
                "skipped %s[%d]@%d: %s", record.topic, record.partition, record.offset, error
            )
            return []


async def run_alerter(
    settings: Settings,
    bus: Bus,
    stop: asyncio.Event,
    rules: RuleSet,
    *,
    transactional_id: str | None = None,
) -> None:
    """Run the alerter until `stop` is set.

    `transactional_id` names this instance to Kafka (default `<group>-0`). The engine holds
    every alert, so one alerter runs at a time: one started later with the same id takes
    over and this one stops, so a restarted alerter never races a stalled one.
    """
    group = settings.group("alerter")
    identity = transactional_id or f"{group}-0"
    stats = AlerterStats()
    log.info("alerter rules from %s: %s", rules.source, ", ".join(r.name for r in rules.rules))
    try:
        await until_stopped(_serve(settings, bus, rules, identity, stats), stop)
    finally:
        log.info("alerter stopped; totals: %s", stats)


async def _serve(
    settings: Settings, bus: Bus, rules: RuleSet, identity: str, stats: AlerterStats
) -> None:
    topics = settings.topics
    await retrying(
        lambda: bus.ensure_topics(topics.all(), topics.compacted()),
        what=f"creating topics on {settings.bus_label}",
        retry_on=(BusUnavailable,),
        log=log,
    )
    backoff = Backoff()
    while True:
        started = time.monotonic()
        try:
            await _run(settings, bus, rules, identity, stats)
        except PublisherFenced as error:
            raise ServiceError(f"alerter {identity} stopped: {error}") from None
        except BusUnavailable as error:
            if time.monotonic() - started > _REPORT_EVERY_S:
                backoff.reset()
            delay = backoff.next_delay()
            log.warning("Kafka failed the alerter (%s); starting over in %.1f s", error, delay)
            await asyncio.sleep(delay)


async def _run(
    settings: Settings, bus: Bus, rules: RuleSet, identity: str, stats: AlerterStats
) -> None:
    topics = settings.topics
    group = settings.group("alerter")
    publisher = bus.transactional_publisher(identity)
    subscription = bus.subscription([topics.logs, topics.alert_commands], group)
    try:
        await publisher.start()
        alerts = latest_alerts(await bus.snapshot(topics.alerts))
        engine = AlertEngine(rules, alerts.values())
        await subscription.start()
        log.info(
            "alerter %s: %d alerts restored from %s; consuming %s and %s as group %s",
            identity,
            len(alerts),
            topics.alerts,
            topics.logs,
            topics.alert_commands,
            group,
        )
        await Alerter(settings, engine, subscription, publisher, stats).consume()
    finally:
        for closing in (subscription.stop(), publisher.stop()):
            with contextlib.suppress(Exception):
                await closing
