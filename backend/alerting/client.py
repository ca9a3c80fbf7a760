"""What a console needs of the alerter: the alerts now, their changes, and the commands.

Any number of clients, on any machine, see the same alerts: the state is the alerts
topic, and a command takes effect once the alerter has applied it and published the
alert's new snapshot, which every client then reads.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterable

from backend.alerting import latest_alerts
from backend.bus import Bus, Outgoing, Publisher
from backend.config import Settings
from backend.schemas import (
    Acknowledge,
    Alert,
    AlertState,
    Annotate,
    Resolve,
    Unacknowledge,
    encode,
    now_iso,
)

_LIVE = (AlertState.OPEN, AlertState.ACKED)
_TAIL_RECORDS = 1000
_TAIL_POLL_MS = 200


class AlertClient:
    """Reads the alerts topic and sends commands to the alerter; `close()` when done.

    A command is published once Kafka has it; it shows in the alerts once the alerter has
    applied it (an ACK of an alert already ACKED or RESOLVED changes nothing).
    """

    def __init__(self, settings: Settings, bus: Bus) -> None:
        self._settings = settings
        self._bus = bus
        self._publisher: Publisher | None = None
        self._topics_ready = False

    async def open_alerts(self) -> list[Alert]:
        """Every OPEN or ACKED alert, most severe first, then most recently seen."""
        await self._ensure_topics()
        alerts = latest_alerts(await self._bus.snapshot(self._settings.topics.alerts))
        return _open(alerts.values())

    async def changes(self) -> AsyncGenerator[list[Alert], None]:
        """The open alerts as `open_alerts` gives them, then every change, batch by batch.

        The first batch (possibly empty) is the state when the tail began, so nothing
        falls between it and the changes; each later batch holds the latest snapshot of
        every alert that changed since the one before, in any state. `aclose()` it to stop.
        """
        await self._ensure_topics()
        topic = self._settings.topics.alerts
        tail = self._bus.tail([topic])
        await tail.start()
        try:
            records = await self._bus.snapshot(topic)
            read = {record.partition: record.offset for record in records}
            yield _open(latest_alerts(records).values())
            while True:
                batch = [
                    record
                    for record in await tail.poll(_TAIL_RECORDS, _TAIL_POLL_MS)
                    if record.offset > read.get(record.partition, -1)
                ]
                if batch:
                    yield list(latest_alerts(batch).values())
        finally:
            await tail.stop()

    async def acknowledge(self, alert: Alert, by: str, note: str | None = None) -> None:
        await self._send(
            alert, Acknowledge(alert_id=alert.alert_id, by=by, at=now_iso(), note=note)
        )

    async def annotate(self, alert: Alert, by: str, note: str) -> None:
        await self._send(alert, Annotate(alert_id=alert.alert_id, by=by, note=note, at=now_iso()))

    async def unacknowledge(self, alert: Alert, by: str) -> None:
        await self._send(alert, Unacknowledge(alert_id=alert.alert_id, by=by, at=now_iso()))

    async def resolve(self, alert: Alert, by: str) -> None:
        await self._send(alert, Resolve(alert_id=alert.alert_id, by=by, at=now_iso()))

    async def close(self) -> None:
        if self._publisher is not None:
            await self._publisher.stop()
            self._publisher = None

    async def _send(
        self, alert: Alert, command: Acknowledge | Unacknowledge | Resolve | Annotate
    ) -> None:
        """Publish `command` once Kafka has it (`BusUnavailable` if not).

        Keyed by the alert's fingerprint, as every command about it is, so it reaches the
        alerter copy that keeps the alert.
        """
        publisher = await self._started_publisher()
        topic = self._settings.topics.alert_commands
        key = alert.fingerprint.encode()
        await publisher.publish([Outgoing(topic, key, encode(command))])

    async def _started_publisher(self) -> Publisher:
        if self._publisher is None:
            await self._ensure_topics()
            publisher = self._bus.publisher()
            await publisher.start()
            self._publisher = publisher
        return self._publisher

    async def _ensure_topics(self) -> None:
        """The alerts topic must exist (and be compacted) before anything reads it."""
        if not self._topics_ready:
            topics = self._settings.topics
            await self._bus.ensure_topics(topics.all(), topics.compacted())
            self._topics_ready = True


def _open(alerts: Iterable[Alert]) -> list[Alert]:
    live = [alert for alert in alerts if alert.state in _LIVE]
    live.sort(key=lambda alert: alert.last_seen, reverse=True)
    live.sort(key=lambda alert: alert.severity.rank, reverse=True)
    return live
