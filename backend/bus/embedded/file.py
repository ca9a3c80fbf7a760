"""One bus file as a bus object and the publishers and readers it makes share it."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from backend.bus.base import BusUnavailable
from backend.bus.embedded.records import Records
from backend.bus.embedded.schema import prepare
from backend.bus.embedded.signal import Signal, signal_for
from backend.bus.embedded.topics import Topics
from backend.sqlite import Worker

T = TypeVar("T")


class BusFile:
    """The bus file at `path`: its worker, what is known of its topics, its records, and the
    signal that wakes this process's polls.

    Every SQLite call of a bus runs on its own worker thread with its own connection, so the
    event loop never waits on the file; `topics` and `records` are used in jobs run there.
    """

    def __init__(self, path: Path, partitions: int, busy_timeout_s: float) -> None:
        self.path = path
        self.topics = Topics(partitions)
        self.records = Records(self.topics)
        self.signal: Signal = signal_for(path)
        self._worker = Worker(
            path,
            prepare=prepare,
            unavailable=_unavailable,
            busy_timeout_s=busy_timeout_s,
            name="embedded-bus",
        )

    async def run(self, job: Callable[[sqlite3.Connection], T]) -> T:
        """`job(conn)` on the worker thread; `BusUnavailable` if the file is not usable."""
        return await self._worker.run(job)

    async def close(self) -> None:
        await self._worker.close()

    def published(self) -> None:
        """Wake this process's polls: records were just committed."""
        self.signal.fire()


def _unavailable(detail: str) -> BusUnavailable:
    return BusUnavailable(f"the bus file {detail}")
