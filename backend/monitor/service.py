"""`logdeck monitor`: the node registry and NODE_DOWN alerts, from registrations and heartbeats.

The monitor reads `registrations` and `heartbeats` as consumer group `monitor`, keeps the
registry (`Registry`), publishes each change as a NodeEntry snapshot on the compacted
`registry` topic keyed by node_id, and sends RaiseAlert / ClearAlert commands for
NODE_DOWN to the alerter, which owns the alerts. Offsets are committed only once a
batch's changes are on Kafka; a batch replayed after a crash changes nothing, since the
registry ignores records no newer than what it holds.

Silence is judged only where the monitor knows it has read everything (`Progress`), so a
monitor that starts, restarts, rebalances or falls behind judges nobody until it has
caught up, and then gives every node a full timeout from that moment.

A node DOWN past `--retire-after` (`--retire-goodbye` if it said goodbye), or forgotten by
an operator (a ForgetNode on the registrations topic), is retired: a tombstone on the
registry topic, and its NODE_DOWN and FLAPPING alerts cleared.

A node under a maintenance window (a silence of the silences topic, read from a tail) is
still recorded DOWN but raises no NODE_DOWN; see `maintenance` for a window's start and end.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

import msgspec

from backend.bus import Bus, BusUnavailable, Incoming, Lane, Outgoing, Publisher, Subscription
from backend.bus.ready import ensure_topics_retrying
from backend.config import Settings
from backend.monitor.maintenance import MaintenanceGate, Turns, ended_while_down
from backend.monitor.progress import Progress
from backend.monitor.registry import (
    DEFAULT_FLAP_COUNT,
    DEFAULT_FLAP_WINDOW_S,
    DEFAULT_RETIRE_AFTER_S,
    DEFAULT_RETIRE_GOODBYE_S,
    Change,
    Event,
    Kind,
    Policy,
    Registry,
)
from backend.monitor.registry_topic import latest_entries
from backend.retry import retrying
from backend.runner import until_stopped
from backend.schemas import (
    AlertKind,
    ClearAlert,
    ForgetNode,
    Heartbeat,
    InvalidRecord,
    NodeEntry,
    NodeStatus,
    RaiseAlert,
    Registration,
    Severity,
    decode_as,
    encode,
    now_iso,
)
from backend.silences.client import SilenceWatch

log = logging.getLogger("logdeck.monitor")

BATCH_RECORDS: Final = 5000
POLL_MS: Final = 100
"""How long a poll waits for records: also how often silence is judged when all is quiet."""
_REPORT_EVERY_S: Final = 30.0
_REGISTRATIONS: Final = msgspec.json.Decoder(Registration | ForgetNode)
_NODE_ALERTS: Final = (AlertKind.NODE_DOWN, AlertKind.FLAPPING)
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class MonitorOptions:
    timeout_s: float | None = None
    """Silence after which a node is DOWN; None: 3 of the node's heartbeat intervals."""
    flap_count: int = DEFAULT_FLAP_COUNT
    flap_window_s: float = DEFAULT_FLAP_WINDOW_S
    retire_after_s: float = DEFAULT_RETIRE_AFTER_S
    retire_goodbye_s: float = DEFAULT_RETIRE_GOODBYE_S


def node_fingerprint(kind: AlertKind, node_id: str) -> str:
    """The fingerprint of a node's NODE_DOWN or FLAPPING alert."""
    return f"{kind}:{node_id}"


def node_down_fingerprint(node_id: str) -> str:
    return node_fingerprint(AlertKind.NODE_DOWN, node_id)


@dataclass(slots=True)
class MonitorStats:
    raised: int = 0
    cleared: int = 0
    published: int = 0
    invalid: int = 0
    held: int = 0
    """NODE_DOWN not raised because the node was in maintenance."""
    flapping: int = 0
    retired: int = 0


class Monitor:
    """The registry fed from Kafka, its changes published back to Kafka."""

    def __init__(
        self,
        settings: Settings,
        bus: Bus,
        subscription: Subscription,
        publisher: Publisher,
        registry: Registry,
        silences: SilenceWatch | None = None,
    ) -> None:
        self._settings = settings
        self._bus = bus
        self._subscription = subscription
        self._publisher = publisher
        self.registry = registry
        topics = settings.topics
        self._progress = Progress(subscription, (topics.registrations, topics.heartbeats))
        self._announced = False
        self._silences = silences
        self._maintenance = MaintenanceGate()
        self.stats = MonitorStats()

    async def watch(self) -> None:
        """Take batch after batch and judge silence, forever; cancel to stop."""
        reported = time.monotonic()
        while True:
            batch = await self._subscription.poll(
                BATCH_RECORDS, timeout_ms=POLL_MS, max_bytes=self._settings.poll_bytes
            )
            now = time.monotonic()
            gained = await self._progress.refresh(now)
            turned = await self._restore(gained, now) if gained else []
            self._announce_catch_up()
            # Before this batch's changes: a node that goes down in it is judged by the
            # maintenance in force now, and a turn never doubles its command.
            turned += self._turn_records(await self._maintenance_turns())
            changes: list[Change] = []
            # Ingestion order across partitions; a registration before a heartbeat of its ms.
            for record in sorted(batch, key=self._order):
                changes += self._take(record, now)
            changes += self.registry.judge(now, self._progress.observe)
            if changes or turned:
                await self._publish(changes, turned)
            if batch:
                await retrying(
                    self._subscription.commit,
                    what="committing offsets on the bus",
                    retry_on=(BusUnavailable,),
                    log=log,
                )
            if now - reported >= _REPORT_EVERY_S:
                reported = now
                self._report()

    async def _maintenance_turns(self) -> Turns:
        """Read new silences, and the nodes whose maintenance began or ended since."""
        if self._silences is None:
            return Turns()
        try:
            await self._silences.refresh()
        except BusUnavailable as error:
            log.warning("reading silences: %s (keeping the ones known)", error)
        return self._maintenance.update(self._silences.book.maintenance(datetime.now(UTC)))

    def _turn_records(self, turns: Turns) -> list[Outgoing]:
        """For a node of ours that is DOWN: clear its NODE_DOWN when its maintenance starts,
        raise it again when its maintenance ends."""
        records: list[Outgoing] = []
        for node_id in sorted(turns.started | turns.ended):
            began = "entered" if node_id in turns.started else "left"
            log.info("node %s %s maintenance", node_id, began)
            entry = self.registry.entry(node_id)
            if entry is None or entry.status is not NodeStatus.DOWN:
                continue
            if node_id in turns.started:
                summary = f"node {node_id} is in maintenance"
                log.info("NODE_DOWN cleared: %s", summary)
                self.stats.cleared += 1
                records.append(self._clear(entry, summary))
            else:
                summary = f"node {node_id} is still down after its maintenance ended"
                log.warning("NODE_DOWN raised: %s", summary)
                self.stats.raised += 1
                records.append(self._raise(entry, summary))
        return records

    def _order(self, record: Incoming) -> tuple[int, int]:
        return record.timestamp_ms, record.topic == self._settings.topics.heartbeats

    async def _restore(self, gained: set[Lane], now: float) -> list[Outgoing]:
        """The registry entries of nodes on newly gained partitions, as last published; the
        NODE_DOWN of a restored DOWN node whose maintenance ended meanwhile."""
        self._announced = False
        topic = self._settings.topics.registry
        records = await retrying(
            lambda: self._bus.snapshot(topic),
            what=f"reading the registry from {topic}",
            retry_on=(BusUnavailable,),
            log=log,
        )
        latest = latest_entries(records, log)
        ours = [entry for entry in latest.values() if self._on(entry.node_id, gained)]
        self.registry.restore(ours, now, int(time.time() * 1000))
        down = {entry.node_id: entry for entry in ours if entry.status is NodeStatus.DOWN}
        log.info(
            "gained %d partitions; restored %d nodes from %s (%d down)",
            len(gained),
            len(ours),
            topic,
            len(down),
        )
        if self._silences is None or not down:
            return []
        heard = {node: _moment(self.registry.heard_ms(node)) for node in down}
        due = ended_while_down(self._silences.book.silences(), heard, datetime.now(UTC))
        raised = []
        for node_id in sorted(due):
            summary = f"node {node_id} is still down after its maintenance ended"
            log.warning("NODE_DOWN raised: %s", summary)
            self.stats.raised += 1
            raised.append(self._raise(down[node_id], summary))
        return raised

    def _on(self, node_id: str, partitions: set[Lane]) -> bool:
        lanes = self._progress.lanes(node_id)
        return lanes is None or any(lane in partitions for lane in lanes)

    def _announce_catch_up(self) -> None:
        progress = self._progress
        if self._announced or not progress.owned or progress.caught_up < progress.owned:
            return
        self._announced = True
        policy = self.registry.policy
        grace = (
            f"{policy.timeout_s:g} s"
            if policy.timeout_s is not None
            else f"{policy.intervals:g} heartbeat intervals"
        )
        log.info(
            "caught up on all %d partitions; judging silence, every node given %s from now",
            progress.owned,
            grace,
        )

    def _take(self, record: Incoming, now: float) -> list[Change]:
        try:
            message = self._decode(record)
        except InvalidRecord as error:
            self.stats.invalid += 1
            where = f"{record.topic}[{record.partition}] offset {record.offset}"
            log.warning("skipping %s: %s", where, error)
            return []
        self._progress.note(message.node_id, record)
        return self.registry.take(Event(message, record.timestamp_ms, now))

    def _decode(self, record: Incoming) -> Registration | Heartbeat | ForgetNode:
        if record.topic == self._settings.topics.heartbeats:
            return decode_as(record.value, Heartbeat)
        try:
            return _REGISTRATIONS.decode(record.value)
        except (msgspec.ValidationError, msgspec.DecodeError) as error:
            raise InvalidRecord(str(error)) from None

    async def _publish(self, changes: list[Change], turned: list[Outgoing]) -> None:
        records = [outgoing for change in changes for outgoing in self._records(change)]
        records += turned
        await retrying(
            lambda: self._publisher.publish(records),
            what=f"publishing {len(records)} registry changes and alert commands",
            retry_on=(BusUnavailable,),
            log=log,
        )
        self.stats.published += len(changes)
        for change in changes:
            if change.kind is Kind.WENT_DOWN and self._maintenance.holds(change.entry.node_id):
                self.stats.held += 1
                log.info("NODE_DOWN held back (node in maintenance): %s", change.summary)
            elif change.kind is Kind.WENT_DOWN:
                self.stats.raised += 1
                log.warning("NODE_DOWN raised: %s", change.summary)
            elif change.kind is Kind.CAME_BACK:
                self.stats.cleared += 1
                log.info("NODE_DOWN cleared: %s", change.summary)
            elif change.kind is Kind.STARTED_FLAPPING:
                self.stats.flapping += 1
                log.warning("FLAPPING raised: %s", change.summary)
            elif change.kind is Kind.STOPPED_FLAPPING:
                log.info("FLAPPING cleared: %s", change.summary)
            elif change.kind is Kind.RETIRED:
                self.stats.retired += 1
                self._progress.forget(change.entry.node_id)
                log.info(change.summary)
            elif change.kind is Kind.KEPT:
                log.warning(change.summary)
            elif change.kind is Kind.UNREGISTERED:
                log.warning("%s; registered it without a service", change.summary)
            elif change.kind is Kind.REGISTERED:
                log.info(change.summary)

    def _records(self, change: Change) -> list[Outgoing]:
        topics = self._settings.topics
        entry = change.entry
        if change.kind is Kind.KEPT:
            return []
        if change.kind is Kind.RETIRED:
            tombstone = Outgoing(topics.registry, entry.node_id.encode(), b"")
            clears = [self._clear(entry, change.summary, kind) for kind in _NODE_ALERTS]
            return [tombstone, *clears]
        records = [Outgoing(topics.registry, entry.node_id.encode(), encode(entry))]
        held = self._maintenance.holds(entry.node_id)
        down = entry.status is NodeStatus.DOWN
        if change.kind is Kind.WENT_DOWN and not held:
            records.append(self._raise(entry, change.summary))
        elif change.kind is Kind.CAME_BACK:
            records.append(self._clear(entry, change.summary))
        elif change.kind is Kind.STARTED_FLAPPING and not held:
            records.append(self._raise(entry, change.summary, AlertKind.FLAPPING))
        elif change.kind is Kind.STOPPED_FLAPPING:
            records.append(self._clear(entry, change.summary, AlertKind.FLAPPING))
            if down and not held:  # it stopped flapping by staying down
                records.append(self._raise(entry, change.summary))
        return records

    def _raise(
        self, entry: NodeEntry, summary: str, kind: AlertKind = AlertKind.NODE_DOWN
    ) -> Outgoing:
        command = RaiseAlert(
            fingerprint=node_fingerprint(kind, entry.node_id),
            kind=kind,
            severity=Severity.CRITICAL if kind is AlertKind.NODE_DOWN else Severity.ERROR,
            node_id=entry.node_id,
            service_name=entry.service_name,
            summary=summary,
            at=now_iso(),
        )
        return self._command(command)

    def _clear(
        self, entry: NodeEntry, summary: str, kind: AlertKind = AlertKind.NODE_DOWN
    ) -> Outgoing:
        fingerprint = node_fingerprint(kind, entry.node_id)
        return self._command(ClearAlert(fingerprint=fingerprint, summary=summary, at=now_iso()))

    def _command(self, command: RaiseAlert | ClearAlert) -> Outgoing:
        topic = self._settings.topics.alert_commands
        return Outgoing(topic, command.fingerprint.encode(), encode(command))

    def _report(self) -> None:
        entries = self.registry.entries()
        down = sum(1 for entry in entries if entry.status is NodeStatus.DOWN)
        log.info(
            "registry: %d nodes, %d down; caught up on %d/%d partitions; totals: %s",
            len(entries),
            down,
            self._progress.caught_up,
            self._progress.owned,
            self.stats,
        )


async def run_monitor(
    settings: Settings, bus: Bus, stop: asyncio.Event, options: MonitorOptions
) -> None:
    """Run the heartbeat monitor until `stop` is set."""
    topics = settings.topics
    group = settings.group("monitor")
    subscription = bus.subscription(topics.consumed_by("monitor"), group)
    publisher = bus.publisher()
    silences = SilenceWatch(settings, bus)
    registry = Registry(
        Policy(
            timeout_s=options.timeout_s,
            flap_count=options.flap_count,
            flap_window_s=options.flap_window_s,
            retire_after_s=options.retire_after_s,
            retire_goodbye_s=options.retire_goodbye_s,
        )
    )
    monitor = Monitor(settings, bus, subscription, publisher, registry, silences)

    async def work() -> None:
        await _connect(settings, bus, subscription, publisher, silences)
        log.info(
            "monitor reading %s and %s as group %s; registry on %s, alerts to %s",
            topics.registrations,
            topics.heartbeats,
            group,
            topics.registry,
            topics.alert_commands,
        )
        await monitor.watch()

    try:
        await until_stopped(work(), stop)
    finally:
        for closing in (subscription.stop(), publisher.stop(), silences.stop()):
            with contextlib.suppress(Exception):
                await closing
        log.info("monitor stopped; %d nodes; totals: %s", len(monitor.registry), monitor.stats)


async def _connect(
    settings: Settings,
    bus: Bus,
    subscription: Subscription,
    publisher: Publisher,
    silences: SilenceWatch,
) -> None:
    kafka = settings.bus_label
    await ensure_topics_retrying(bus, settings, log)
    await retrying(
        subscription.start, what=f"subscribing to {kafka}", retry_on=(BusUnavailable,), log=log
    )
    await retrying(
        publisher.start, what=f"connecting to {kafka}", retry_on=(BusUnavailable,), log=log
    )
    await retrying(
        silences.start,
        what=f"reading silences from {settings.topics.silences}",
        retry_on=(BusUnavailable,),
        log=log,
    )


def _moment(ms: int | None) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms or 0)
