"""Alertmanager's webhook format (version 4), so receivers written for it take ours.

One message carries every alert due to the receiver; its status is `firing` while any of
them fires. Each alert's `fingerprint` is its alert_id, which tells successive alerts of
one logdeck fingerprint apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import aiohttp

from backend.notify.alertmanager import alert_annotations, alert_labels, ended_at
from backend.notify.delivery import post_json
from backend.notify.ledger import Notice
from backend.schemas import NoticeStatus

UNSET_TIME: Final = "0001-01-01T00:00:00Z"
"""Alertmanager's endsAt of an alert still firing."""


def webhook_body(receiver: str, notices: Sequence[Notice]) -> dict[str, Any]:
    alerts = [
        {
            "status": str(notice.status),
            "labels": alert_labels(notice.alert),
            "annotations": alert_annotations(notice.alert),
            "startsAt": notice.alert.first_seen,
            "endsAt": UNSET_TIME
            if notice.status is NoticeStatus.FIRING
            else ended_at(notice.alert),
            "generatorURL": "",
            "fingerprint": notice.alert.alert_id,
        }
        for notice in notices
    ]
    firing = any(notice.status is NoticeStatus.FIRING for notice in notices)
    return {
        "version": "4",
        "groupKey": f'{{}}:{{receiver="{receiver}"}}',
        "truncatedAlerts": 0,
        "status": str(NoticeStatus.FIRING if firing else NoticeStatus.RESOLVED),
        "receiver": receiver,
        "groupLabels": {},
        "commonLabels": _common([alert_labels(notice.alert) for notice in notices]),
        "commonAnnotations": _common([alert_annotations(notice.alert) for notice in notices]),
        "externalURL": "",
        "alerts": alerts,
    }


def _common(tables: list[dict[str, str]]) -> dict[str, str]:
    """The pairs every table has."""
    if not tables:
        return {}
    first, *rest = tables
    return {k: v for k, v in first.items() if all(t.get(k) == v for t in rest)}


class WebhookSender:
    def __init__(self, session: aiohttp.ClientSession, receiver: str, url: str) -> None:
        self._session = session
        self._receiver = receiver
        self._url = url

    async def send(self, notices: Sequence[Notice]) -> None:
        await post_json(self._session, self._url, webhook_body(self._receiver, notices))
