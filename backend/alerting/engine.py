"""The alerts' state machine: which alerts a command changes, and how.

No I/O and no clock: every time comes from the commands themselves (a match's log
timestamp, a command's `at`), so the same commands always give the same alerts with the
same ids, on any machine, on any replay and on any alerter copy.

Occurrences of one fingerprint (a rule's match; the monitor's RAISE for a NODE_DOWN)
within the fold window after an alert's last_seen fold into that alert: its count and
last_seen grow, and a RESOLVED alert opens again. An occurrence after the window starts
a new alert. The lifecycle is OPEN -> ACKED -> RESOLVED, with UNACK back to OPEN; an
ACKED alert still firing `ack_timeout_s` after its ack opens again.
"""

from __future__ import annotations

import bisect
import contextlib
import hashlib
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Final

from msgspec.structs import replace

from backend.alerting.rules import DEFAULT_ACK_TIMEOUT_S
from backend.schemas import (
    Acknowledge,
    Alert,
    AlertCommand,
    AlertEvent,
    AlertEventKind,
    AlertState,
    Annotate,
    ClearAlert,
    RaiseAlert,
    Resolve,
    RuleMatch,
    Unacknowledge,
    iso_millis,
)

RECENT_LOG_IDS: Final = 100_000
MAX_HISTORY: Final = 100
"""State changes and notes an alert keeps; a reopened alert's oldest go first."""


class AlertEngine:
    """Every alert known, and the changes each command makes to them.

    Start it from the alerts topic's latest snapshots to carry on where the last run
    stopped: the newest alert of each fingerprint is the one later matches fold into.
    The rate windows of BURST rules and the log_ids counted lately are not part of any
    snapshot: `remember` rebuilds them from the matches applied before a takeover.
    """

    def __init__(
        self,
        fold_window_s: float,
        alerts: Iterable[Alert] = (),
        *,
        ack_timeout_s: float = DEFAULT_ACK_TIMEOUT_S,
    ) -> None:
        self._fold_s = fold_window_s
        self._ack_timeout_s = ack_timeout_s
        self._alerts: dict[str, Alert] = {}
        self._current: dict[str, Alert] = {}
        self._rates: dict[str, _RateWindow] = {}
        self._counted: dict[str, None] = {}  # recent log_ids, oldest first
        for alert in alerts:
            self._store(alert)

    @property
    def alerts(self) -> Mapping[str, Alert]:
        """Every alert by alert_id, in its latest state."""
        return self._alerts

    def adopt(self, alerts: Iterable[Alert]) -> None:
        """Take over `alerts` (their latest snapshots), as a keeper gaining partitions does."""
        for alert in alerts:
            self._store(alert)

    def release(self, gone: Callable[[str], bool]) -> None:
        """Forget every alert and rate window whose fingerprint `gone` says is not ours now."""
        self._alerts = {key: a for key, a in self._alerts.items() if not gone(a.fingerprint)}
        self._current = {key: a for key, a in self._current.items() if not gone(key)}
        self._rates = {key: window for key, window in self._rates.items() if not gone(key)}

    def on_command(self, command: AlertCommand) -> Alert | None:
        """The alert `command` changes, or None when it changes nothing (or names no alert).

        `ValueError` when its `at` is not an ISO 8601 time.
        """
        if isinstance(command, RuleMatch):
            return self._on_match(command)
        if isinstance(command, RaiseAlert):
            return self._occur(command, _moment(command.at))
        if isinstance(command, ClearAlert):
            return self._clear(command)
        alert = self._alerts.get(command.alert_id)
        if alert is None:
            return None
        at = iso_millis(_moment(command.at))
        changed = alert
        if isinstance(command, Annotate):
            event = AlertEvent(at=at, event=AlertEventKind.NOTE, by=command.by, note=command.note)
        elif isinstance(command, Acknowledge) and alert.state is AlertState.OPEN:
            changed = replace(alert, state=AlertState.ACKED, acked_by=command.by, acked_at=at)
            event = AlertEvent(at=at, event=AlertEventKind.ACKED, by=command.by, note=command.note)
        elif isinstance(command, Unacknowledge) and alert.state is AlertState.ACKED:
            changed = replace(alert, state=AlertState.OPEN, acked_by=None, acked_at=None)
            event = AlertEvent(at=at, event=AlertEventKind.UNACKED, by=command.by)
        elif isinstance(command, Resolve) and alert.state is not AlertState.RESOLVED:
            changed = replace(alert, state=AlertState.RESOLVED, resolved_at=at)
            event = AlertEvent(at=at, event=AlertEventKind.RESOLVED, by=command.by)
        else:
            return None
        return self._store(_noted(changed, event))

    def remember(self, matches: Iterable[RuleMatch]) -> None:
        """Take in `matches` an earlier keeper applied already (oldest first), changing no alert.

        A keeper that takes partitions over calls it with what came just before its first
        record: a log resent after the handover is then counted once, and BURST rates go on
        from where they were.
        """
        for match in matches:
            if self._first_time(match) and match.burst_window_s is not None:
                with contextlib.suppress(ValueError):
                    self._rate(match.fingerprint, match.burst_window_s, _moment(match.at))

    def _on_match(self, match: RuleMatch) -> Alert | None:
        """Fold a rule's match in; a BURST rule's only once over its rate."""
        if not self._first_time(match):
            return None
        when = _moment(match.at)
        burst, window_s = match.burst_count, match.burst_window_s
        if burst is not None and window_s is not None:
            under = self._rate(match.fingerprint, window_s, when) <= burst
            return None if under else self._occur(match, when)
        return self._occur(match, when)

    def _first_time(self, match: RuleMatch) -> bool:
        """False for a (rule, log_id) among the last `RECENT_LOG_IDS`: an at-least-once
        sender that resends a chunk must not count its ERRORs twice."""
        seen = f"{match.rule}/{match.log_id}"
        if seen in self._counted:
            return False
        self._counted[seen] = None
        if len(self._counted) > RECENT_LOG_IDS:
            del self._counted[next(iter(self._counted))]
        return True

    def _rate(self, fingerprint: str, window_s: float, when: datetime) -> int:
        """How many matches of `fingerprint` the window ending at `when` holds, this one too."""
        window = self._rates.get(fingerprint)
        if window is None:
            window = self._rates[fingerprint] = _RateWindow(window_s)
        return window.add(when.timestamp())

    def _clear(self, command: ClearAlert) -> Alert | None:
        """Resolve the alert of the fingerprint; the condition was seen until the CLEAR."""
        alert = self._current.get(command.fingerprint)
        if alert is None or alert.state is AlertState.RESOLVED:
            return None
        at = iso_millis(_moment(command.at))
        resolved = replace(
            alert,
            state=AlertState.RESOLVED,
            resolved_at=at,
            summary=command.summary,
            last_seen=max(alert.last_seen, at),
        )
        return self._store(
            _noted(resolved, AlertEvent(at=at, event=AlertEventKind.RESOLVED, note=command.summary))
        )

    def _occur(self, occurrence: RaiseAlert | RuleMatch, when: datetime) -> Alert:
        """Fold `occurrence` (at `when`) into the current alert of its fingerprint, or start one."""
        current = self._current.get(occurrence.fingerprint)
        at = iso_millis(when)
        if current is None or self._beyond_fold(current, when):
            return self._store(
                Alert(
                    alert_id=alert_id(occurrence.fingerprint, at),
                    fingerprint=occurrence.fingerprint,
                    kind=occurrence.kind,
                    severity=occurrence.severity,
                    node_id=occurrence.node_id,
                    service_name=occurrence.service_name,
                    summary=occurrence.summary,
                    first_seen=at,
                    last_seen=at,
                    count=1,
                    state=AlertState.OPEN,
                    history=(AlertEvent(at=at, event=AlertEventKind.OPENED),),
                )
            )
        newest = at >= current.last_seen
        folded = replace(
            current,
            severity=occurrence.severity,
            # The node, while every occurrence came from one; None once several did.
            node_id=current.node_id if current.node_id == occurrence.node_id else None,
            summary=occurrence.summary if newest else current.summary,
            first_seen=min(current.first_seen, at),
            last_seen=at if newest else current.last_seen,
            count=current.count + 1,
        )
        reopen = folded.state is AlertState.RESOLVED
        note = None
        if folded.state is AlertState.ACKED and self._ack_outlived(folded, when):
            reopen, note = True, f"still firing {self._ack_timeout_s:g} s after the ack"
        if reopen:
            folded = replace(
                folded, state=AlertState.OPEN, acked_by=None, acked_at=None, resolved_at=None
            )
            folded = _noted(folded, AlertEvent(at=at, event=AlertEventKind.REOPENED, note=note))
        return self._store(folded)

    def _ack_outlived(self, alert: Alert, at: datetime) -> bool:
        acked = alert.acked_at
        return acked is not None and (at - _moment(acked)).total_seconds() > self._ack_timeout_s

    def _beyond_fold(self, alert: Alert, at: datetime) -> bool:
        return (at - _moment(alert.last_seen)).total_seconds() > self._fold_s

    def _store(self, alert: Alert) -> Alert:
        """Keep `alert`; the newest alert of a fingerprint (by first_seen) is its current one.

        Every time kept is in the one shape `iso_millis` writes, so text order is time order.
        """
        self._alerts[alert.alert_id] = alert
        current = self._current.get(alert.fingerprint)
        if (
            current is None
            or current.alert_id == alert.alert_id
            or alert.first_seen > current.first_seen
        ):
            self._current[alert.fingerprint] = alert
        return alert


class _RateWindow:
    """Times of a rule's recent matches for one service, oldest first, within `window_s`."""

    def __init__(self, window_s: float) -> None:
        self._window_s = window_s
        self._times: deque[float] = deque()

    def add(self, when: float) -> int:
        """Record a match at `when`; how many lie within the window ending at the newest."""
        if not self._times or when >= self._times[-1]:
            self._times.append(when)
        else:
            bisect.insort(self._times, when)  # a late record, from a slower partition
        start = self._times[-1] - self._window_s
        while self._times[0] <= start:
            self._times.popleft()
        return len(self._times)


def _noted(alert: Alert, event: AlertEvent) -> Alert:
    """`alert` with `event` last in its history, which keeps the latest `MAX_HISTORY`."""
    return replace(alert, history=(*alert.history, event)[-MAX_HISTORY:])


def alert_id(fingerprint: str, first_seen: str) -> str:
    """The same alert gets the same id on every replay: a hash of what makes it unique."""
    return hashlib.blake2b(f"{fingerprint}@{first_seen}".encode(), digest_size=8).hexdigest()


def _moment(timestamp: str) -> datetime:
    """The instant an ISO 8601 time names; one without a zone is taken as UTC."""
    parsed = datetime.fromisoformat(timestamp)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
