"""`EmbeddedStore`: the `Store` on one SQLite file, so `logdeck demo` runs with Python alone.

Several processes may open the file (an indexer writes while a console searches). This
module only hands each call to the thread that runs it (connection.py) and the code that does
it: writing.py, searching.py, snapshots.py; the tables are described in schema.py. Retention
is applied while writing too, at most every ten minutes.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Final

from backend.schemas import Alert, Log, NodeEntry
from backend.store.base import BulkOutcome, Snapshot, StoredLog, StoreUnavailable
from backend.store.embedded.connection import Connections
from backend.store.embedded.schema import Names, decode_log, stored_days
from backend.store.embedded.searching import search
from backend.store.embedded.snapshots import put_snapshots, stored_alerts, stored_nodes
from backend.store.embedded.writing import Writer, export_page
from backend.store.query import LogQuery, SearchResult

DEFAULT_MAX_LOGS: Final = 5_000_000
_RETENTION_EVERY_S: Final = 600.0
_MAX_ROWID: Final = (1 << 63) - 1


class EmbeddedStore:
    """The `Store` on one SQLite file; past `max_logs` logs, the oldest are deleted first."""

    def __init__(
        self,
        path: Path,
        retention_days: int = 7,
        max_logs: int | None = DEFAULT_MAX_LOGS,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._worker = Connections(Path(path))
        self._clock = clock
        self._retention_days = retention_days
        self._names = Names()
        self._writer = Writer(self._names, max_logs)
        self._retention_checked = -math.inf

    @property
    def path(self) -> Path:
        return self._worker.path

    async def ensure_schema(self) -> None:
        await self._worker.write(lambda conn: None)

    async def healthy(self) -> bool:
        try:
            await self._worker.read(
                lambda conn: conn.execute("SELECT count(*) FROM days").fetchone()
            )
        except StoreUnavailable:
            return False
        return True

    async def index_logs(self, logs: Sequence[StoredLog]) -> BulkOutcome:
        if not logs:
            return BulkOutcome()
        outcome = await self._worker.write(functools.partial(self._writer.index_logs, logs))
        if time.monotonic() - self._retention_checked >= _RETENTION_EVERY_S:
            self._retention_checked = time.monotonic()
            cutoff = (self._clock() - timedelta(days=self._retention_days)).date()
            await self.delete_logs_before(cutoff)
        return outcome

    async def put_snapshots(self, snapshots: Sequence[Snapshot]) -> BulkOutcome:
        if not snapshots:
            return BulkOutcome()
        return await self._worker.write(functools.partial(put_snapshots, snapshots))

    async def search_logs(self, query: LogQuery) -> SearchResult:
        now = self._clock()
        return await self._worker.read(functools.partial(search, query, now, self._names))

    async def delete_logs_before(self, day: date) -> list[str]:
        return await self._worker.write(functools.partial(self._writer.drop_days_before, day))

    async def export_logs(self) -> AsyncIterator[list[Log]]:
        for day in await self._worker.read(stored_days):
            below = _MAX_ROWID
            while True:
                rows = await self._worker.read(functools.partial(export_page, day, below))
                if not rows:
                    break
                yield [decode_log(doc) for _, doc in rows]
                below = rows[-1][0]

    async def stored_alerts(self) -> list[Alert]:
        return await self._worker.read(stored_alerts)

    async def stored_nodes(self) -> list[NodeEntry]:
        return await self._worker.read(stored_nodes)

    async def close(self) -> None:
        await self._worker.close()
