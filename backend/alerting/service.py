"""The alerter: two stages, each exactly once, each shared out by partition.

The rule stage reads logs (group `alerter-rules`) and sends each rule's match to the
alert-commands topic keyed by the alert's fingerprint. The keeper stage reads
alert-commands (group `alerter`): matches, the monitor's RAISE and CLEAR and the
consoles' ACK, UNACK and RESOLVE, all keyed by fingerprint. So every command about one
alert reaches the one keeper that owns its partition, however many alerter copies run
and whichever log partitions its logs came from: one burst stays one alert.

Each stage publishes what a polled batch yields and commits the batch's offsets in one
transaction: a crash loses both (the batch is read again) or keeps both, so nothing is
counted twice or missed. A group hands a partition over only between polls (see
`Subscription.poll`), so the next owner starts where the last commit left it.

The keeper's state lives on the alerts topic. When it gains partitions it reads the topic
to its end for the alerts whose fingerprints are now its own, and the matches just before
its first record of each, so a log resent after a handover is counted once. Any failure of
the bus ends a stage's run the way a crash would, and the next run starts over.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from backend.alerting import decode_command, latest_alerts
from backend.alerting.engine import RECENT_LOG_IDS, AlertEngine
from backend.alerting.matching import rule_matches
from backend.alerting.rules import RuleSet
from backend.bus import Bus, BusUnavailable, Incoming, Lane, Outgoing, Subscription
from backend.bus.base import PublisherFenced
from backend.bus.partitioning import partition_of
from backend.bus.ready import ensure_topics_retrying
from backend.config import Settings
from backend.retry import Backoff
from backend.runner import ServiceError, until_stopped
from backend.schemas import Alert, InvalidRecord, Log, RuleMatch, decode_as, encode

log = logging.getLogger("logdeck.alerter")

BATCH_RECORDS = 500
"""Small batches keep alert latency low: a batch's alerts wait for its whole transaction."""
_POLL_MS = 200
_REPORT_EVERY_S = 10.0


@dataclass(slots=True)
class AlerterStats:
    logs: int = 0
    matches: int = 0
    commands: int = 0
    unreadable: int = 0
    snapshots: int = 0
    transactions: int = 0


class Stage(Protocol):
    """One consumer group's work: what each polled batch publishes."""

    role: str
    topics: tuple[str, ...]

    async def begin(self) -> None:
        """Called at the start of every run, before the first poll."""

    async def apply(self, batch: Sequence[Incoming], subscription: Subscription) -> list[Outgoing]:
        """The records `batch` publishes, in the same transaction as its offsets."""


@dataclass
class RuleStage:
    """Logs in, one match per rule that fires out, keyed by the alert's fingerprint."""

    settings: Settings
    rules: RuleSet
    stats: AlerterStats
    role: str = "alerter-rules"
    topics: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        self.topics = self.settings.topics.consumed_by(self.role)

    async def begin(self) -> None:
        """The rules hold no state between batches."""

    async def apply(self, batch: Sequence[Incoming], subscription: Subscription) -> list[Outgoing]:
        topic = self.settings.topics.alert_commands
        out: list[Outgoing] = []
        for record in batch:
            self.stats.logs += 1
            try:
                entry = decode_as(record.value, Log)
            except InvalidRecord as error:
                _skipped(self.stats, record, error)
                continue
            for match in rule_matches(self.rules, entry):
                out.append(Outgoing(topic, match.fingerprint.encode(), encode(match)))
        self.stats.matches += len(out)
        return out


@dataclass
class KeeperStage:
    """Alert commands in, the new snapshot of each alert they change out.

    The engine holds the alerts of the fingerprints on this keeper's partitions only: it
    takes over those of gained partitions from the alerts topic and forgets lost ones.
    """

    settings: Settings
    bus: Bus
    fold_window_s: float
    ack_timeout_s: float
    stats: AlerterStats
    role: str = "alerter"
    topics: tuple[str, ...] = ()
    _engine: AlertEngine | None = field(default=None, init=False)
    _owned: frozenset[Lane] = field(default=frozenset(), init=False)
    _recalled: set[Lane] = field(default_factory=set, init=False)

    def __post_init__(self) -> None:
        self.topics = self.settings.topics.consumed_by(self.role)

    async def begin(self) -> None:
        self._engine = None  # each run starts over from the alerts topic
        self._owned = frozenset()
        self._recalled = set()

    async def apply(self, batch: Sequence[Incoming], subscription: Subscription) -> list[Outgoing]:
        engine = await self._engine_for(subscription)
        await self._recall(engine, batch)
        changed: dict[str, Alert] = {}
        for record in batch:
            self.stats.commands += 1
            try:
                alert = engine.on_command(decode_command(record.value))
            except (InvalidRecord, ValueError) as error:
                _skipped(self.stats, record, error)
                continue
            if alert is not None:
                changed[alert.alert_id] = alert
        topic = self.settings.topics.alerts
        self.stats.snapshots += len(changed)
        return [
            Outgoing(topic, alert.alert_id.encode(), encode(alert)) for alert in changed.values()
        ]

    async def _engine_for(self, subscription: Subscription) -> AlertEngine:
        """The engine, holding the alerts of exactly the partitions owned now.

        Only the alerts of gained partitions are read from the alerts topic: the topic can
        lag behind this keeper's own latest snapshots (another writer's open transaction
        holds back what readers see), so the state of kept partitions is never re-read.
        """
        owned = subscription.assignment()
        if self._engine is None:
            self._engine = AlertEngine(self.fold_window_s, ack_timeout_s=self.ack_timeout_s)
        if owned == self._owned:
            return self._engine
        topics = self.settings.topics
        count = max(subscription.partition_count(topics.alert_commands) or 1, 1)

        def lane_of(fingerprint: str) -> Lane:
            return topics.alert_commands, partition_of(fingerprint.encode(), count)

        gained = owned - self._owned
        self._engine.release(lambda fingerprint: lane_of(fingerprint) not in owned)
        if gained:
            alerts = latest_alerts(await self.bus.snapshot(topics.alerts)).values()
            adopted = [alert for alert in alerts if lane_of(alert.fingerprint) in gained]
            self._engine.adopt(adopted)
            log.info(
                "gained %d partitions of %s: %d alerts restored from %s",
                len(gained),
                topics.alert_commands,
                len(adopted),
                topics.alerts,
            )
        self._owned = owned
        self._recalled &= owned
        return self._engine

    async def _recall(self, engine: AlertEngine, batch: Sequence[Incoming]) -> None:
        """Before the first record of each lane newly owned, take in the matches just before it.

        A takeover starts at the last commit, and the matches before it were applied by
        whoever owned the lane then; the engine remembers them, so a log an at-least-once
        sender resent after the handover is not counted again.
        """
        firsts: dict[Lane, int] = {}
        for record in batch:
            lane = (record.topic, record.partition)
            if lane not in self._recalled and lane not in firsts:
                firsts[lane] = record.offset
        if not firsts:
            return
        span = RECENT_LOG_IDS // max(len(self._owned), 1)
        earlier = await self.bus.read_ranges(
            {lane: (offset - span, offset) for lane, offset in firsts.items()}
        )
        matches: list[RuleMatch] = []
        for record in earlier:
            with contextlib.suppress(InvalidRecord):
                command = decode_command(record.value)
                if isinstance(command, RuleMatch):
                    matches.append(command)
        engine.remember(matches)
        self._recalled |= firsts.keys()
        log.info(
            "%d earlier matches remembered before taking %s over",
            len(matches),
            _lanes(frozenset(firsts)),
        )


def _skipped(stats: AlerterStats, record: Incoming, error: Exception) -> None:
    stats.unreadable += 1
    log.warning("skipped %s[%d]@%d: %s", record.topic, record.partition, record.offset, error)


async def run_alerter(
    settings: Settings,
    bus: Bus,
    stop: asyncio.Event,
    rules: RuleSet,
    *,
    instance: str = "0",
) -> None:
    """Run both stages of the alerter until `stop` is set.

    `instance` names this copy to Kafka: its transactional ids are `<group>-<instance>`.
    Give each copy its own, stable across restarts: a copy started with an instance
    already running takes over from it, and the older one stops.
    """
    stats = AlerterStats()
    log.info("alerter rules from %s: %s", rules.source, ", ".join(r.name for r in rules.rules))
    stages: list[Stage] = [
        RuleStage(settings, rules, stats),
        KeeperStage(settings, bus, rules.fold_window_s, rules.ack_timeout_s, stats),
    ]
    try:
        await until_stopped(_serve_all(settings, bus, stages, instance, stats), stop)
    finally:
        log.info("alerter stopped; totals: %s", stats)


async def _serve_all(
    settings: Settings, bus: Bus, stages: list[Stage], instance: str, stats: AlerterStats
) -> None:
    await ensure_topics_retrying(bus, settings, log)
    try:
        async with asyncio.TaskGroup() as group:
            for stage in stages:
                group.create_task(_serve(settings, bus, stage, instance, stats))
            group.create_task(_report(stats))
    except* ServiceError as failed:
        raise failed.exceptions[0] from None


async def _report(stats: AlerterStats) -> None:
    while True:
        await asyncio.sleep(_REPORT_EVERY_S)
        log.info("totals: %s", stats)


async def _serve(
    settings: Settings, bus: Bus, stage: Stage, instance: str, stats: AlerterStats
) -> None:
    """Run `stage` over and over: a failure of the bus starts it over after a backoff."""
    identity = f"{settings.group(stage.role)}-{instance}"
    backoff = Backoff()
    while True:
        started = time.monotonic()
        try:
            await _run(settings, bus, stage, identity, stats)
        except PublisherFenced as error:
            raise ServiceError(f"alerter {identity} stopped: {error}") from None
        except BusUnavailable as error:
            if time.monotonic() - started > _REPORT_EVERY_S:
                backoff.reset()
            delay = backoff.next_delay()
            log.warning("%s failed (%s); starting over in %.1f s", identity, error, delay)
            await asyncio.sleep(delay)


async def _run(
    settings: Settings, bus: Bus, stage: Stage, identity: str, stats: AlerterStats
) -> None:
    group = settings.group(stage.role)
    publisher = bus.transactional_publisher(identity)
    subscription = bus.subscription(stage.topics, group)
    try:
        await publisher.start()
        await stage.begin()
        await subscription.start()
        log.info("%s consuming %s as group %s", identity, ", ".join(stage.topics), group)
        owned: frozenset[Lane] = frozenset()
        while True:
            batch = await subscription.poll(
                BATCH_RECORDS, timeout_ms=_POLL_MS, max_bytes=settings.poll_bytes
            )
            if subscription.assignment() != owned:
                owned = subscription.assignment()
                log.info("%s owns %d partitions: %s", identity, len(owned), _lanes(owned))
            if batch:
                records = await stage.apply(batch, subscription)
                await publisher.commit(records, batch, group)
                stats.transactions += 1
    finally:
        for closing in (subscription.stop(), publisher.stop()):
            with contextlib.suppress(Exception):
                await closing


def _lanes(lanes: frozenset[Lane]) -> str:
    return ", ".join(f"{topic}[{partition}]" for topic, partition in sorted(lanes)) or "none"
