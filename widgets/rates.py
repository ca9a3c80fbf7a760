"""Counts over sliding windows, by arrival time: logs and errors per node per minute, and
logs per second for the header's sparkline.

Arrival time, read from an injected clock, not the log's own timestamp: the console shows
what it is receiving now, and a frozen clock makes the numbers reproducible in tests.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from datetime import datetime

from backend.schemas import Level, Log

_ERROR_LEVELS = frozenset({Level.ERROR, Level.FATAL})


def _second(now: datetime) -> int:
    return int(now.timestamp())


class NodeRates:
    """Logs and ERROR/FATAL logs per node over the last `window` seconds."""

    def __init__(self, window: int = 60) -> None:
        self._window = window
        self._buckets: dict[str, deque[list[int]]] = {}

    def add(self, logs: Iterable[Log], now: datetime) -> None:
        second = _second(now)
        for log in logs:
            buckets = self._buckets.setdefault(log.node_id, deque())
            if not buckets or buckets[-1][0] != second:
                buckets.append([second, 0, 0])
            bucket = buckets[-1]
            bucket[1] += 1
            if log.log_level in _ERROR_LEVELS:
                bucket[2] += 1

    def per_minute(self, node: str, now: datetime) -> tuple[int, int]:
        """(logs, errors) for `node` in the window ending now."""
        buckets = self._buckets.get(node)
        if not buckets:
            return 0, 0
        oldest = _second(now) - self._window + 1
        while buckets and buckets[0][0] < oldest:
            buckets.popleft()
        return sum(b[1] for b in buckets), sum(b[2] for b in buckets)


class RateHistory:
    """How many logs arrived in each of the last `seconds` seconds."""

    def __init__(self, seconds: int = 60) -> None:
        self._seconds = seconds
        self._counts: dict[int, int] = {}

    def add(self, count: int, now: datetime) -> None:
        if count:
            second = _second(now)
            self._counts[second] = self._counts.get(second, 0) + count

    def series(self, now: datetime) -> list[int]:
        """Counts per second, oldest first, ending with the current second."""
        last = _second(now)
        first = last - self._seconds + 1
        for second in [s for s in self._counts if s < first]:
            del self._counts[second]
        return [self._counts.get(second, 0) for second in range(first, last + 1)]
