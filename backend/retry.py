"""Backoff for services whose dependencies come and go: say so, wait, try again."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


class Backoff:
    """Exponential delays with jitter, so many clients do not retry in lock-step."""

    def __init__(self, initial: float = 0.25, maximum: float = 10.0, factor: float = 2.0) -> None:
        self._initial = initial
        self._maximum = maximum
        self._factor = factor
        self._current = initial

    def next_delay(self) -> float:
        delay = self._current
        self._current = min(self._current * self._factor, self._maximum)
        return delay * random.uniform(0.8, 1.2)

    def reset(self) -> None:
        self._current = self._initial


async def retrying(
    operation: Callable[[], Awaitable[T]],
    *,
    what: str,
    retry_on: tuple[type[BaseException], ...],
    log: logging.Logger,
    backoff: Backoff | None = None,
) -> T:
    """Run `operation` until it succeeds, logging each failure once with the next delay."""
    backoff = backoff or Backoff()
    failures = 0
    while True:
        try:
            result = await operation()
        except retry_on as error:
            failures += 1
            delay = backoff.next_delay()
            log.warning("%s failed (%s); retry %d in %.1f s", what, error, failures, delay)
            await asyncio.sleep(delay)
            continue
        if failures:
            log.info("%s succeeded after %d retries", what, failures)
        return result
