"""Slack-compatible incoming webhooks (Slack, Mattermost, Rocket.Chat): `{"text": ...}`,
one line per alert."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import aiohttp

from backend.notify.delivery import post_json
from backend.notify.ledger import Notice


def notice_line(notice: Notice) -> str:
    """E.g. `[FIRING] CRITICAL fatal PaymentService payment-01: PAY-502: gateway (count 3)`."""
    alert = notice.alert
    where = " ".join(part for part in (alert.service_name, alert.node_id) if part)
    rule = alert.fingerprint.split(":", 1)[0]
    return (
        f"[{notice.status.upper()}] {alert.severity} {rule} {where}: "
        f"{alert.summary} (count {alert.count})"
    )


def slack_body(notices: Sequence[Notice]) -> dict[str, Any]:
    return {"text": "\n".join(notice_line(notice) for notice in notices)}


class SlackSender:
    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self._session = session
        self._url = url

    async def send(self, notices: Sequence[Notice]) -> None:
        await post_json(self._session, self._url, slack_body(notices))
