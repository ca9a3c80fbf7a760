"""History on start: the store's last minutes joined to the live tail.

The tail is started first and what it brings is held back; then the store is asked for
its newest logs; then both go to the feed together. A log stored and tailed both (indexed
between the tail's start and the query) is shown once: live logs whose log_id is in the
history are dropped, now and later (one may still be on its way), a set at most `HISTORY`
ids large. Nothing logged after the tail started is missed, and nothing the store could
be searched for is: the store is asked again while it has not caught up with the tail's
start (none of the tail's logs in its answer), so there is no gap between the two.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Final

from backend.schemas import Log
from backend.store.query import LogQuery

HISTORY: Final = 1_000
"""Logs the feed starts with, at most."""
HISTORY_WINDOW: Final = timedelta(minutes=15)
"""How far back the history goes."""
HISTORY_RETRIES: Final = 8
HISTORY_RETRY_S: Final = 0.5
HISTORY_QUIET_TRIES: Final = 2
"""How often, and how far apart, the store is asked again while it has not caught up with
the tail's start; fewer times while the tail brings nothing (`LogdeckApp._search_history`)."""


def history_query(now: datetime, limit: int = HISTORY) -> LogQuery:
    """The newest `limit` logs of the last `HISTORY_WINDOW` (the store answers newest first)."""
    return LogQuery(since=now - HISTORY_WINDOW, page_size=limit)


class HistoryJoin:
    """Joins one history (newest first, as the store answers) to the live batches."""

    def __init__(self) -> None:
        self._ids: frozenset[str] = frozenset()

    def join(self, history: Iterable[Log], live: Iterable[Log]) -> list[Log]:
        """The history oldest first, then the live logs it does not hold."""
        stored = list(history)
        stored.reverse()
        self._ids = frozenset(log.log_id for log in stored)
        return stored + self.fresh(live)

    def fresh(self, live: Iterable[Log]) -> list[Log]:
        """The live logs that are not in the history."""
        if not self._ids:
            return list(live)
        return [log for log in live if log.log_id not in self._ids]
