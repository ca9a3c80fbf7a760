"""`logdeck notifier`: alerts off the bus, delivered to the receivers of the config file.

The notifier reads the alerts topic (each alert's latest snapshot, keyed by alert_id) as
consumer group `notifier`, so copies share the alerts by partition. When it gains
partitions it reads their alerts and what was sent of them (the notifications topic)
into its `Ledger`, then follows the alerts topic; after every poll it delivers what the
ledger says is due (save what silences, maintenance and open NODE_DOWNs keep `Quiet`),
one message per receiver, each receiver paced by its `Gate`, and
records every delivered (or given up) notification on the notifications topic.

Offsets are committed only when nothing due is left undelivered. Since what is due
follows from the two compacted topics alone, a notifier killed at any point loses no
notification; one delivered but not yet recorded is sent once more (see `ledger`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

import aiohttp

from backend.bus import Bus, BusUnavailable, Incoming, Lane, Outgoing, Publisher, Subscription
from backend.bus.partitioning import partition_of
from backend.bus.ready import ensure_topics_retrying
from backend.config import Settings
from backend.notify.alertmanager import AlertmanagerSender
from backend.notify.config import NotifyConfig, Receiver
from backend.notify.delivery import DeliveryFailed, Sender
from backend.notify.email import EmailSender
from backend.notify.gate import Gate
from backend.notify.ledger import Ledger, Notice
from backend.notify.slack import SlackSender
from backend.notify.webhook import WebhookSender
from backend.retry import retrying
from backend.runner import ServiceError, until_stopped
from backend.schemas import Alert, InvalidRecord, Notification, decode_as, encode
from backend.silences.quiet import Quiet

log = logging.getLogger("logdeck.notifier")

BATCH_RECORDS: Final = 1000
POLL_MS: Final = 100
"""How long a poll waits: also how often group waits, repeats and retries are judged."""
_REPORT_EVERY_S: Final = 30.0


@dataclass(slots=True)
class NotifierStats:
    delivered: int = 0
    given_up: int = 0
    failures: int = 0
    unreadable: int = 0


def sender_for(receiver: Receiver, session: aiohttp.ClientSession) -> Sender:
    if receiver.type == "alertmanager":
        return AlertmanagerSender(session, receiver.url)
    if receiver.type == "slack":
        return SlackSender(session, receiver.url)
    if receiver.type == "email":
        assert receiver.email is not None
        try:
            return EmailSender(receiver.email)
        except KeyError as missing:
            raise ServiceError(
                f"receiver {receiver.name!r}: the variable {missing} of its credentials is unset"
            ) from None
    return WebhookSender(session, receiver.name, receiver.url)


class Notifier:
    """The ledger of the partitions owned, fed from the bus, its due notices delivered."""

    def __init__(
        self,
        settings: Settings,
        bus: Bus,
        config: NotifyConfig,
        subscription: Subscription,
        publisher: Publisher,
        senders: dict[str, Sender],
    ) -> None:
        self._settings = settings
        self._bus = bus
        self._subscription = subscription
        self._publisher = publisher
        self._senders = senders
        self._gates = {r.name: Gate(r.max_per_minute) for r in config.receivers}
        self.ledger = Ledger(config)
        self._owned: frozenset[Lane] = frozenset()
        self._floor: dict[int, int] = {}
        """Per partition, the last offset the snapshot taken on gaining it covered."""
        self._uncommitted = False
        self._sending: dict[str, asyncio.Task[list[Outgoing]]] = {}
        """The delivery under way to each receiver, if any."""
        self.quiet = Quiet()
        self._quieted: dict[str, str] = {}
        """The alerts kept quiet, with why, as last logged."""
        self.stats = NotifierStats()

    async def watch(self) -> None:
        """Follow the alerts and deliver what falls due, forever; cancel to stop.

        Silences and NODE_DOWNs are read to their end before the first delivery, so an
        alert silenced before a restart is not notified after it.
        """
        topics = self._settings.topics
        tail = self._bus.tail([topics.silences, topics.alerts])
        try:
            await retrying(
                tail.start, what="following silences", retry_on=(BusUnavailable,), log=log
            )
            for topic in (topics.silences, topics.alerts):
                for record in await self._snapshot(topic):
                    self._take_quiet(record)
            try:
                async with asyncio.TaskGroup() as group:
                    group.create_task(self._follow_quiet(tail))
                    group.create_task(self._follow())
            except* Exception as failed:
                raise failed.exceptions[0] from None
        finally:
            for task in self._sending.values():
                task.cancel()
            with contextlib.suppress(Exception):
                await tail.stop()

    async def _follow_quiet(self, tail: Subscription) -> None:
        while True:
            try:
                records = await tail.poll(BATCH_RECORDS, timeout_ms=POLL_MS)
            except BusUnavailable as error:
                log.warning("following silences: %s; retrying", error)
                await asyncio.sleep(1.0)
                continue
            for record in records:
                self._take_quiet(record)

    def _take_quiet(self, record: Incoming) -> None:
        if record.topic == self._settings.topics.silences:
            self.quiet.book.apply(record)
        elif record.value:
            with contextlib.suppress(InvalidRecord):  # counted where the alerts are followed
                self.quiet.take_alert(decode_as(record.value, Alert))

    def _is_quiet(self, alert: Alert) -> bool:
        hush = self.quiet.reason(alert, datetime.now(UTC))
        if hush is None:
            self._quieted.pop(alert.alert_id, None)
            return False
        reason = str(hush)
        if self._quieted.get(alert.alert_id) != reason:
            self._quieted[alert.alert_id] = reason
            log.info("not notifying %s (%s): %s", alert.alert_id, alert.summary[:60], reason)
        return True

    async def _follow(self) -> None:
        reported = time.monotonic()
        while True:
            batch = await self._subscription.poll(
                BATCH_RECORDS, timeout_ms=POLL_MS, max_bytes=self._settings.poll_bytes
            )
            await self._follow_assignment()
            now = time.time()
            for record in batch:
                lane = (record.topic, record.partition)
                if lane in self._owned and record.offset > self._floor.get(record.partition, -1):
                    self._take(record, now)
            self._uncommitted |= bool(batch)
            settled = await self._deliver_due()
            if self._uncommitted and settled:
                await retrying(
                    self._subscription.commit,
                    what="committing offsets on the bus",
                    retry_on=(BusUnavailable,),
                    log=log,
                )
                self._uncommitted = False
            if time.monotonic() - reported >= _REPORT_EVERY_S:
                reported = time.monotonic()
                log.info("%d alerts followed; totals: %s", len(self.ledger), self.stats)

    def _take(self, record: Incoming, now: float) -> None:
        try:
            alert = decode_as(record.value, Alert)
        except InvalidRecord as error:
            self.stats.unreadable += 1
            where = f"{record.topic}[{record.partition}]@{record.offset}"
            log.warning("skipped %s: %s", where, error)
            return
        self.ledger.take_alert(alert, (record.partition, record.offset), now)

    async def _follow_assignment(self) -> None:
        """Forget the alerts of lost partitions; read those of gained ones and what was sent."""
        owned = self._subscription.assignment()
        if owned == self._owned:
            return
        topics = self._settings.topics
        count = self._subscription.partition_count(topics.alerts)
        if count is None:
            return  # which alert is on which partition is known once the count is

        def lane_of(alert_id: str) -> Lane:
            return topics.alerts, partition_of(alert_id.encode(), count)

        gained = owned - self._owned
        self.ledger.release(lambda alert_id: lane_of(alert_id) not in owned)
        self._owned = owned
        if not gained:
            return
        alerts = await self._snapshot(topics.alerts)
        now = time.time()
        for record in alerts:
            if (record.topic, record.partition) in gained:
                self._take(record, now)
                self._floor[record.partition] = max(
                    record.offset, self._floor.get(record.partition, -1)
                )
        restored = 0
        for record in await self._snapshot(topics.notifications):
            try:
                sent = decode_as(record.value, Notification)
            except InvalidRecord:
                continue  # a tombstone, or not ours to read
            if self.ledger.holds(sent.alert_id) and lane_of(sent.alert_id) in gained:
                self.ledger.take_sent(sent)
                restored += 1
        log.info(
            "gained %d partitions of %s: %d alerts followed, %d notifications restored",
            len(gained),
            topics.alerts,
            len(self.ledger),
            restored,
        )

    async def _snapshot(self, topic: str) -> list[Incoming]:
        return await retrying(
            lambda: self._bus.snapshot(topic),
            what=f"reading {topic}",
            retry_on=(BusUnavailable,),
            log=log,
        )

    async def _deliver_due(self) -> bool:
        """Record what the deliveries under way have finished, and start one to each
        receiver that has notices due and none under way; whether nothing is left over.

        Each receiver's delivery runs on its own, so a slow one holds back no other.
        """
        finished = [name for name, task in self._sending.items() if task.done()]
        records = [record for name in finished for record in self._sending.pop(name).result()]
        if records:
            await retrying(
                lambda: self._publisher.publish(records),
                what=f"recording {len(records)} notifications",
                retry_on=(BusUnavailable,),
                log=log,
            )
        due = self.ledger.due(time.time(), self._is_quiet)
        now = time.monotonic()
        for name, notices in due.items():
            if name not in self._sending and self._gates[name].admit(now):
                self._sending[name] = asyncio.create_task(self._deliver(name, notices))
        return not due and not self._sending

    async def _deliver(self, name: str, notices: Sequence[Notice]) -> list[Outgoing]:
        """Send `notices` to receiver `name`: the records to keep if it took them or they
        were given up, none if they are to be tried again."""
        what = ", ".join(f"{notice.status} {notice.alert.alert_id}" for notice in notices[:5])
        more = f" and {len(notices) - 5} more" if len(notices) > 5 else ""
        try:
            await self._senders[name].send(notices)
        except DeliveryFailed as error:
            self.stats.failures += 1
            if not self._gates[name].failed(time.monotonic(), permanent=error.permanent):
                log.warning("%s did not take %s%s: %s; retrying", name, what, more, error)
                return []
            self.stats.given_up += len(notices)
            log.error("gave up notifying %s of %s%s: %s", name, what, more, error)
            delivered = False
        else:
            self._gates[name].succeeded()
            self.stats.delivered += len(notices)
            log.info("notified %s: %s%s", name, what, more)
            delivered = True
        topic = self._settings.topics.notifications
        return [
            Outgoing(topic, f"{sent.alert_id}/{sent.receiver}".encode(), encode(sent))
            for sent in self.ledger.record(name, notices, time.time(), delivered=delivered)
        ]


async def run_notifier(
    settings: Settings, bus: Bus, stop: asyncio.Event, config: NotifyConfig
) -> None:
    """Run the notifier until `stop` is set."""
    topics = settings.topics
    group = settings.group("notifier")
    subscription = bus.subscription(topics.consumed_by("notifier"), group)
    publisher = bus.publisher()
    session = aiohttp.ClientSession()
    try:
        senders = {receiver.name: sender_for(receiver, session) for receiver in config.receivers}
    except ServiceError:
        await session.close()
        raise
    notifier = Notifier(settings, bus, config, subscription, publisher, senders)

    async def work() -> None:
        await ensure_topics_retrying(bus, settings, log)
        kafka = settings.bus_label
        await retrying(
            subscription.start, what=f"subscribing to {kafka}", retry_on=(BusUnavailable,), log=log
        )
        await retrying(
            publisher.start, what=f"connecting to {kafka}", retry_on=(BusUnavailable,), log=log
        )
        log.info(
            "notifier reading %s as group %s for %s from %s; notifications recorded on %s",
            topics.alerts,
            group,
            ", ".join(f"{r.name} ({r.type})" for r in config.receivers),
            config.source,
            topics.notifications,
        )
        await notifier.watch()

    try:
        await until_stopped(work(), stop)
    finally:
        for closing in (subscription.stop(), publisher.stop(), session.close()):
            with contextlib.suppress(Exception):
                await closing
        log.info("notifier stopped; totals: %s", notifier.stats)
