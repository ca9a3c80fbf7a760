"""The store's two SQLite workers: one thread writes and one reads, so reads never queue
behind a bulk write (WAL mode lets them run side by side, across processes too).

Both are `backend.sqlite.Worker`s, which turn a locked, busy or unreadable file into
`StoreUnavailable`, the error callers retry.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Final, TypeVar

from backend.sqlite import Worker, use_wal
from backend.store.base import StoreUnavailable
from backend.store.embedded.schema import create_schema

T = TypeVar("T")

BUSY_TIMEOUT_S: Final = 5.0
PAGE_SIZE: Final = 16_384


def _prepare(conn: sqlite3.Connection) -> None:
    """Pragmas measured to suit the store, then its fixed tables."""
    conn.execute(f"PRAGMA page_size = {PAGE_SIZE}")  # takes effect on a new file only
    use_wal(conn)
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA cache_size = -65536")
    conn.execute("PRAGMA mmap_size = 1073741824")
    conn.execute("PRAGMA temp_store = MEMORY")
    conn.execute("PRAGMA journal_size_limit = 67108864")
    create_schema(conn)


def _unavailable(detail: str) -> StoreUnavailable:
    return StoreUnavailable(f"SQLite at {detail}")


class Connections:
    """The store file's writer and reader threads; once closed, every call is unavailable."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._closed = False
        self._writer = self._worker("logdeck-sqlite-write")
        self._reader = self._worker("logdeck-sqlite-read")

    def _worker(self, name: str) -> Worker:
        return Worker(
            self.path,
            prepare=_prepare,
            unavailable=_unavailable,
            busy_timeout_s=BUSY_TIMEOUT_S,
            name=name,
        )

    async def write(self, job: Callable[[sqlite3.Connection], T]) -> T:
        return await self._open(self._writer).run(job)

    async def read(self, job: Callable[[sqlite3.Connection], T]) -> T:
        return await self._open(self._reader).run(job)

    def _open(self, worker: Worker) -> Worker:
        if self._closed:
            raise StoreUnavailable(f"the store at {self.path} is closed")
        return worker

    async def close(self) -> None:
        self._closed = True
        await self._writer.close()
        await self._reader.close()
