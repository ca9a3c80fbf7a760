"""What is due to whom: the notifier's decisions, from the alerts and what was sent.

The decisions are a pure function of two states, both kept on compacted topics: each
alert's latest snapshot and, per alert and receiver, the last notification sent
(`Notification`). So a notifier that restarts, or takes partitions over from another
copy, reads both and carries on where the last one stopped:

- a firing alert (OPEN or ACKED) nobody has told its receiver about is due once its
  group (the receiver and the route's group_wait_s) has waited group_wait_s since the
  first alert of the group was seen; every alert of the group then goes out together;
- a firing alert already notified is due again after the route's repeat_interval_s
  (for Alertmanager, after `ALERTMANAGER_RESEND_S` at most: it expects alerts to be
  re-posted while they fire, and ends those that are not);
- a RESOLVED alert whose last notification said firing is due as resolved, at once;
- a firing alert that `quiet` says is silenced, in maintenance or inhibited is due to
  nobody (neither first nor repeated) while it is; its resolve still goes to those told;
- an escalation route (`escalate_after_s`) takes a firing alert only once it has been
  OPEN, unacknowledged, that long since it last opened (its history says when); an ack in
  time keeps it from that receiver.

A notification is recorded only after its receiver took it, so one that was delivered
just before a crash is sent once more: at least once, and at most one extra copy per
crash or rebalance of the notifier.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from backend.notify.config import NotifyConfig, Route
from backend.notify.routing import routes_of
from backend.schemas import (
    Alert,
    AlertEventKind,
    AlertState,
    NoticeStatus,
    Notification,
    iso_millis,
)

ALERTMANAGER_RESEND_S: Final = 60.0
"""How often a firing alert is re-posted to Alertmanager, as Prometheus does."""


@dataclass(frozen=True, slots=True)
class Notice:
    """One alert, firing or resolved, for one receiver."""

    alert: Alert
    status: NoticeStatus


@dataclass(slots=True)
class _Held:
    alert: Alert
    version: tuple[int, int]
    """Partition and offset of the snapshot, so an older one read later changes nothing."""
    seen_at: float
    """When this notifier first saw the alert (epoch seconds): where group_wait starts."""


class Ledger:
    """The alerts of the partitions owned, and the last notification of each to each
    receiver; `due` says what to send now, `record` takes what was sent."""

    def __init__(self, config: NotifyConfig) -> None:
        self._config = config
        self._alerts: dict[str, _Held] = {}
        self._sent: dict[tuple[str, str], tuple[Notification, float]] = {}
        """By alert_id and receiver: the last notification, and when it was sent (epoch s)."""
        self._routes: dict[str, dict[str, Route]] = {}
        self._resent = {r.name for r in config.receivers if r.type == "alertmanager"}
        """Receivers that expect firing alerts re-posted every `ALERTMANAGER_RESEND_S`."""

    def __len__(self) -> int:
        return len(self._alerts)

    def take_alert(self, alert: Alert, version: tuple[int, int], now: float) -> None:
        """Keep `alert`'s snapshot unless a newer one of it is already kept."""
        held = self._alerts.get(alert.alert_id)
        if held is None:
            self._alerts[alert.alert_id] = _Held(alert, version, now)
            self._routes[alert.alert_id] = routes_of(self._config, alert)
        elif version > held.version:
            held.alert = alert
            held.version = version

    def holds(self, alert_id: str) -> bool:
        return alert_id in self._alerts

    def take_sent(self, notification: Notification) -> None:
        sent_at = datetime.fromisoformat(notification.sent_at).timestamp()
        self._sent[(notification.alert_id, notification.receiver)] = (notification, sent_at)

    def release(self, gone: Callable[[str], bool]) -> None:
        """Forget the alerts (and what was sent of them) whose alert_id `gone` says."""
        for alert_id in [alert_id for alert_id in self._alerts if gone(alert_id)]:
            del self._alerts[alert_id]
            del self._routes[alert_id]
        self._sent = {key: sent for key, sent in self._sent.items() if not gone(key[0])}

    def due(
        self, now: float, quiet: Callable[[Alert], bool] = lambda alert: False
    ) -> dict[str, list[Notice]]:
        """The notices to send now, by receiver; resolved alerts told to all are dropped."""
        due: dict[str, list[Notice]] = {}
        waiting: dict[tuple[str, float], list[_Held]] = {}
        done: list[str] = []
        for alert_id, held in self._alerts.items():
            firing = held.alert.state is not AlertState.RESOLVED
            if firing and quiet(held.alert):
                continue
            told = False
            for receiver, route in self._routes[alert_id].items():
                sent, sent_at = self._sent.get((alert_id, receiver), (None, 0.0))
                if not firing:
                    if sent is not None and sent.status is NoticeStatus.FIRING:
                        due.setdefault(receiver, []).append(
                            Notice(held.alert, NoticeStatus.RESOLVED)
                        )
                        told = True
                elif sent is None:
                    if route.escalate_after_s is None or _unanswered(
                        held.alert, route.escalate_after_s, now
                    ):
                        waiting.setdefault((receiver, route.group_wait_s), []).append(held)
                elif now - sent_at >= self._repeat_s(receiver, route):
                    due.setdefault(receiver, []).append(Notice(held.alert, NoticeStatus.FIRING))
            if not firing and not told:
                done.append(alert_id)
        for (receiver, wait_s), group in waiting.items():
            if now - min(held.seen_at for held in group) >= wait_s:
                notices = [Notice(held.alert, NoticeStatus.FIRING) for held in group]
                due.setdefault(receiver, []).extend(notices)
        for alert_id in done:
            self._forget(alert_id)
        return due

    def record(
        self, receiver: str, notices: Iterable[Notice], now: float, *, delivered: bool
    ) -> list[Notification]:
        """Note that `notices` went to `receiver` (or were given up): the records to keep."""
        sent_at = iso_millis(datetime.fromtimestamp(now, UTC))
        records = [
            Notification(
                alert_id=notice.alert.alert_id,
                receiver=receiver,
                fingerprint=notice.alert.fingerprint,
                status=notice.status,
                sent_at=sent_at,
                count=notice.alert.count,
                delivered=delivered,
            )
            for notice in notices
        ]
        for notification in records:
            if notification.alert_id in self._alerts:  # not of a partition lost meanwhile
                self.take_sent(notification)
        return records

    def _repeat_s(self, receiver: str, route: Route) -> float:
        if receiver in self._resent:
            return min(route.repeat_interval_s, ALERTMANAGER_RESEND_S)
        return route.repeat_interval_s

    def _forget(self, alert_id: str) -> None:
        del self._alerts[alert_id]
        for receiver in self._routes.pop(alert_id):
            self._sent.pop((alert_id, receiver), None)


_OPENING: Final = (AlertEventKind.OPENED, AlertEventKind.REOPENED, AlertEventKind.UNACKED)


def _unanswered(alert: Alert, after_s: float, now: float) -> bool:
    """Whether `alert` is OPEN and has been since `after_s` seconds before `now` or earlier."""
    if alert.state is not AlertState.OPEN:
        return False
    opened = next((e.at for e in reversed(alert.history) if e.event in _OPENING), None)
    since = datetime.fromisoformat(opened or alert.first_seen).timestamp()
    return now - since >= after_s
