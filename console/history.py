"""History on start: the store's last minutes joined to the live tail.

The store is asked for its newest logs as the live tail starts, and what the tail brings
is held back until the answer; then both go to the feed together, at once. A log stored
and tailed both is shown once: live logs whose log_id is in the history are dropped, now
and later (one may still be on its way), a set at most a few thousand ids large. The
store is searchable only some time after it is written to, and it may have been asked
before the tail started, so while its answers hold none of the tail's logs it has not
caught up with the tail's start: it is asked again a few times, and the logs of that gap
it brings are added in their place by time. Nothing logged after the tail started is
missed, nor anything the store holds.
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
"""How often, and how far apart, the store is asked again after the history is on screen
while it has not caught up with the tail's start; fewer times while the tail brings
nothing (`LogdeckApp._fill_history_gap`)."""


def history_query(now: datetime, limit: int = HISTORY) -> LogQuery:
    """The newest `limit` logs of the last `HISTORY_WINDOW` (the store answers newest first)."""
    return LogQuery(since=now - HISTORY_WINDOW, page_size=limit)


class HistoryJoin:
    """Joins the store's answers (newest first, as the store answers) to the live batches."""

    def __init__(self) -> None:
        self._ids: set[str] = set()
        self._live: set[str] | None = set()

    def join(self, history: Iterable[Log], live: Iterable[Log]) -> list[Log]:
        """The history oldest first, then the live logs it does not hold."""
        stored = list(history)
        stored.reverse()
        self._ids = {log.log_id for log in stored}
        return stored + self.fresh(live)

    def fresh(self, live: Iterable[Log]) -> list[Log]:
        """The live logs that are not in the history."""
        ids = self._ids
        logs = [log for log in live if log.log_id not in ids] if ids else list(live)
        if self._live is not None:
            self._live.update(log.log_id for log in logs)
        return logs

    def caught_up(self, history: Iterable[Log]) -> bool:
        """Whether a store's answer holds one of the live logs: it reaches the tail's start."""
        live = self._live
        if not live:
            return False
        return any(log.log_id in live for log in history)

    def quiet(self) -> bool:
        """Whether the tail has brought nothing yet."""
        return not self._live

    def gap(self, history: Iterable[Log]) -> list[Log]:
        """The logs of a later answer that are neither shown from the store nor live,
        oldest first: the ones the store had not made searchable at the first answer."""
        live = self._live or set()
        logs = [log for log in history if log.log_id not in self._ids and log.log_id not in live]
        self._ids.update(log.log_id for log in logs)
        logs.reverse()
        return logs

    def settle(self) -> None:
        """Stop noting the live logs' ids: the store has caught up, or is given up on."""
        self._live = None
