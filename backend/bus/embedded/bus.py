"""The `Bus` on one SQLite file (see the package's docstring)."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path

from backend.bus.base import BusUnavailable, Incoming, Lane
from backend.bus.embedded.file import BusFile
from backend.bus.embedded.lag import group_lags
from backend.bus.embedded.publishing import EmbeddedPublisher, EmbeddedTransactionalPublisher
from backend.bus.embedded.retention import DEFAULT_RETENTION, Retention, apply_retention, losses
from backend.bus.embedded.schema import SELECT_RECORDS, SHIFT
from backend.bus.embedded.subscription import EmbeddedSubscription, EmbeddedTail
from backend.sqlite import transaction


class EmbeddedBus:
    """The `Bus` on the SQLite file at `path`; every process of the demo opens the same one.

    `partitions` is the count for topics this bus creates; a topic keeps the count it was
    created with. `session_s` is how long a group member may go without polling before
    the others take its partitions. `close()` when done, to end the worker thread.
    """

    def __init__(
        self,
        path: Path,
        partitions: int = 6,
        retention: Retention | None = DEFAULT_RETENTION,
        *,
        session_s: float = 5.0,
        busy_timeout_s: float = 5.0,
    ) -> None:
        self.path = Path(path)
        self.partitions = partitions
        self.retention = retention
        self.session_s = session_s
        self._file = BusFile(self.path, partitions, busy_timeout_s)

    async def close(self) -> None:
        await self._file.close()

    async def ensure_topics(self, topics: Sequence[str], compacted: Sequence[str] = ()) -> None:
        known = self._file.topics
        if known.has_all(topics):
            return
        await self._file.run(partial(known.ensure, tuple(topics), frozenset(compacted)))

    async def healthy(self) -> bool:
        try:
            await self._file.run(lambda conn: conn.execute("SELECT 1 FROM topics LIMIT 1"))
        except BusUnavailable:
            return False
        return True

    async def snapshot(self, topic: str) -> list[Incoming]:
        return await self._file.run(partial(self._snapshot_job, topic))

    async def read_ranges(self, ranges: Mapping[Lane, tuple[int, int]]) -> list[Incoming]:
        return await self._file.run(partial(self._ranges_job, dict(ranges)))

    def publisher(self) -> EmbeddedPublisher:
        return EmbeddedPublisher(self._file, self.retention)

    def subscription(
        self, topics: Sequence[str], group: str | None, *, from_beginning: bool = True
    ) -> EmbeddedSubscription:
        return EmbeddedSubscription(
            self._file,
            topics,
            group,
            start="earliest" if from_beginning else "latest",
            session_s=self.session_s,
        )

    def transactional_publisher(self, transactional_id: str) -> EmbeddedTransactionalPublisher:
        return EmbeddedTransactionalPublisher(self._file, transactional_id)

    def tail(self, topics: Sequence[str]) -> EmbeddedTail:
        return EmbeddedTail(self._file, topics)

    async def apply_retention(self) -> int:
        """Trim every topic that is not compacted to the retention; the records deleted."""
        if self.retention is None:
            return 0
        return await apply_retention(self._file, self.retention)

    async def lags(self, groups: Mapping[str, Sequence[str]]) -> dict[str, int | None]:
        return await self._file.run(partial(group_lags, self._file.topics, dict(groups)))

    async def dropped_unread(self) -> int:
        """Records retention's hard cap deleted before every known group had committed them."""
        return await self._file.run(losses)

    def _snapshot_job(self, topic: str, conn: sqlite3.Connection) -> list[Incoming]:
        """Every record of `topic`, partition by partition (on the worker thread)."""
        file = self._file
        with transaction(conn, write=False):
            meta = file.topics.known(conn, (topic,)).get(topic)
            if meta is None:
                return []
            records: list[Incoming] = []
            for partition, lane in enumerate(meta.lanes):
                rows = conn.execute(SELECT_RECORDS, (lane << SHIFT, (lane + 1) << SHIFT, -1))
                file.records.incoming(rows.fetchall(), topic, partition, records)
            return records

    def _ranges_job(
        self, ranges: dict[Lane, tuple[int, int]], conn: sqlite3.Connection
    ) -> list[Incoming]:
        """The records of each range, lane by lane (on the worker thread)."""
        file = self._file
        records: list[Incoming] = []
        with transaction(conn, write=False):
            known = file.topics.known(conn, tuple({topic for topic, _ in ranges}))
            for (topic, partition), (start, end) in ranges.items():
                meta = known.get(topic)
                if meta is None or not 0 <= partition < len(meta.lanes) or start >= end:
                    continue
                base = meta.lanes[partition] << SHIFT
                rows = conn.execute(SELECT_RECORDS, (base + max(start, 0), base + end, -1))
                file.records.incoming(rows.fetchall(), topic, partition, records)
        return records
