"""What every receiver shares: the sending interface, its failure, and JSON over HTTP."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final, Protocol

import aiohttp
import msgspec

from backend.notify.ledger import Notice

SEND_TIMEOUT_S: Final = 10.0
"""The longest a receiver may take to answer one message (HTTP or SMTP)."""
_RETRYABLE_4XX: Final = frozenset({408, 425, 429})


class DeliveryFailed(Exception):
    """A receiver did not take a notification; `permanent` if sending again cannot help."""

    def __init__(self, reason: str, *, permanent: bool = False) -> None:
        super().__init__(reason)
        self.permanent = permanent


class Sender(Protocol):
    async def send(self, notices: Sequence[Notice]) -> None:
        """Deliver `notices` in one message; `DeliveryFailed` if the receiver did not take it."""


async def post_json(session: aiohttp.ClientSession, url: str, body: Any) -> None:
    """POST `body` as JSON; a 2xx answer is a delivery, a 4xx other than 408/425/429 a
    permanent refusal, anything else worth retrying."""
    data = msgspec.json.encode(body)
    headers = {"Content-Type": "application/json"}
    timeout = aiohttp.ClientTimeout(total=SEND_TIMEOUT_S)
    try:
        async with session.post(url, data=data, headers=headers, timeout=timeout) as response:
            if 200 <= response.status < 300:
                return
            text = (await response.text(errors="replace"))[:200].strip()
            permanent = 400 <= response.status < 500 and response.status not in _RETRYABLE_4XX
            raise DeliveryFailed(f"{url} answered {response.status}: {text}", permanent=permanent)
    except (TimeoutError, aiohttp.ClientError) as error:
        raise DeliveryFailed(f"{url}: {error or type(error).__name__}") from None
