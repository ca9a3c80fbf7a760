"""Pacing of one receiver: a rate limit, and backoff while it fails, up to a give-up.

Times are monotonic seconds. A receiver that keeps failing for `give_up_after_s` (or
refuses a notification for good, such as an HTTP 400) has that notification given up:
recorded as not delivered, so the notifier moves on instead of retrying it forever.
"""

from __future__ import annotations

from typing import Final

from backend.retry import Backoff

GIVE_UP_AFTER_S: Final = 600.0


class Gate:
    def __init__(self, max_per_minute: int, give_up_after_s: float = GIVE_UP_AFTER_S) -> None:
        self._rate = max_per_minute / 60.0
        self._capacity = float(max_per_minute)
        self._tokens = float(max_per_minute)
        self._filled_at: float | None = None
        self._give_up_after_s = give_up_after_s
        self._backoff = Backoff(initial=0.5, maximum=30.0)
        self._retry_at = 0.0
        self._failing_since: float | None = None

    def admit(self, now: float) -> bool:
        """Whether a delivery may start now: not backing off, and within the rate limit.

        An admitted delivery uses up one of the minute's allowance.
        """
        if now < self._retry_at:
            return False
        if self._filled_at is not None:
            elapsed = max(0.0, now - self._filled_at)
            self._tokens = min(self._capacity, self._tokens + elapsed * self._rate)
        self._filled_at = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True

    def succeeded(self) -> None:
        self._backoff.reset()
        self._failing_since = None
        self._retry_at = 0.0

    def failed(self, now: float, *, permanent: bool) -> bool:
        """Note a failed delivery; True when it is to be given up rather than retried."""
        if self._failing_since is None:
            self._failing_since = now
        if permanent or now - self._failing_since >= self._give_up_after_s:
            self.succeeded()  # the next notification starts afresh
            return True
        self._retry_at = now + self._backoff.next_delay()
        return False
