"""Prometheus Alertmanager: alerts POSTed to its API v2, as Prometheus posts them.

A firing alert is posted with an endsAt a few re-posts ahead and re-posted while it fires
(`ALERTMANAGER_RESEND_S`), so Alertmanager ends it by itself if the notifier goes away;
a resolved one is posted with the time it was resolved as endsAt. The labels and
annotations here are also those of the webhook format.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp

from backend.alert_labels import error_code_of, rule_of
from backend.notify.delivery import post_json
from backend.notify.ledger import ALERTMANAGER_RESEND_S, Notice
from backend.schemas import Alert, NoticeStatus, iso_millis

ENDS_AFTER_RESENDS = 4
"""A firing alert's endsAt is this many re-posts ahead, as Prometheus sets it."""


def alert_labels(alert: Alert) -> dict[str, str]:
    """alertname (the kind), severity, service, node, rule, fingerprint and, for
    LOG_LEVEL alerts, error_code; empty ones are left out, as Alertmanager drops them."""
    values = {
        "alertname": str(alert.kind),
        "severity": str(alert.severity),
        "service": alert.service_name or "",
        "node": alert.node_id or "",
        "rule": rule_of(alert),
        "fingerprint": alert.fingerprint,
        "error_code": error_code_of(alert) or "",
    }
    return {name: value for name, value in values.items() if value}


def alert_annotations(alert: Alert) -> dict[str, str]:
    return {"summary": alert.summary, "count": str(alert.count)}


def ended_at(alert: Alert) -> str:
    """When a resolved alert ended (never before it started)."""
    return max(alert.resolved_at or alert.last_seen, alert.first_seen)


def alertmanager_alerts(notices: Sequence[Notice], now: datetime) -> list[dict[str, Any]]:
    """The body of POST /api/v2/alerts for `notices`."""
    ahead = iso_millis(now + timedelta(seconds=ENDS_AFTER_RESENDS * ALERTMANAGER_RESEND_S))
    return [
        {
            "labels": alert_labels(notice.alert),
            "annotations": alert_annotations(notice.alert),
            "startsAt": notice.alert.first_seen,
            "endsAt": ahead if notice.status is NoticeStatus.FIRING else ended_at(notice.alert),
        }
        for notice in notices
    ]


class AlertmanagerSender:
    def __init__(self, session: aiohttp.ClientSession, base_url: str) -> None:
        self._session = session
        self._url = f"{base_url}/api/v2/alerts"

    async def send(self, notices: Sequence[Notice]) -> None:
        body = alertmanager_alerts(notices, datetime.now(UTC))
        await post_json(self._session, self._url, body)
