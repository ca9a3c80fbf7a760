"""Publishers to the bus file: buffered and flushed in batches, or transactional."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Sequence
from functools import partial

from backend.bus.base import BusUnavailable, Delivery, Incoming, Outgoing
from backend.bus.embedded.file import BusFile
from backend.bus.embedded.retention import Retention, apply_retention
from backend.bus.outbox import Outbox
from backend.sqlite import transaction

log = logging.getLogger("logdeck.bus")

_QUEUED_RECORDS = 50_000
"""Records waiting for the flusher beyond which `enqueue` blocks: the backpressure."""


class EmbeddedPublisher:
    """Publishes through one flusher task: whatever is queued meanwhile goes in one write.

    With a `retention`, it also trims the file to it every `retention.every_s`.
    """

    def __init__(self, file: BusFile, retention: Retention | None) -> None:
        self._file = file
        self._retention = retention
        self._outbox = Outbox(_QUEUED_RECORDS)
        self._flusher: asyncio.Task[None] | None = None
        self._trimmer: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._file.run(_nothing)  # the file opens, or BusUnavailable
        self._outbox = Outbox(_QUEUED_RECORDS)
        self._flusher = asyncio.create_task(self._flush_forever())
        if self._retention is not None:
            self._trimmer = asyncio.create_task(self._trim_forever(self._retention))

    async def stop(self) -> None:
        """Write what is queued, then stop."""
        if self._trimmer is not None:
            self._trimmer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._trimmer
            self._trimmer = None
        if self._flusher is not None:
            self._outbox.close()
            await self._flusher
            self._flusher = None

    async def enqueue(self, records: Sequence[Outgoing]) -> Delivery:
        if self._flusher is None:
            raise RuntimeError("publisher used before start()")
        return await self._outbox.put(records)

    async def publish(self, records: Sequence[Outgoing]) -> None:
        await (await self.enqueue(records))

    async def _flush_forever(self) -> None:
        file = self._file
        while (taken := await self._outbox.take()) is not None:
            batches = [records for records, _ in taken]
            error: Exception | None = None
            try:
                await file.run(partial(file.records.write, batches, None, None))
            except Exception as failure:  # every caller hears of it; the flusher goes on
                error = failure
            else:
                file.published()
            for _, delivery in taken:
                if delivery.done():
                    continue
                if error is None:
                    delivery.set_result(None)
                else:
                    delivery.set_exception(error)

    async def _trim_forever(self, retention: Retention) -> None:
        while True:
            await asyncio.sleep(retention.every_s)
            try:
                deleted = await apply_retention(self._file, retention)
            except BusUnavailable as error:
                log.warning("retention skipped this round: %s", error)
            else:
                if deleted:
                    log.debug("retention deleted %d records", deleted)


class EmbeddedTransactionalPublisher:
    """Records and a group's offsets in one SQLite transaction; an epoch per id fences."""

    def __init__(self, file: BusFile, transactional_id: str) -> None:
        self._file = file
        self._id = transactional_id
        self._epoch: int | None = None

    async def start(self) -> None:
        self._epoch = await self._file.run(self._claim_job)

    async def stop(self) -> None:
        self._epoch = None

    async def commit(
        self, records: Sequence[Outgoing], consumed: Sequence[Incoming], group: str
    ) -> None:
        if self._epoch is None:
            raise RuntimeError("transactional publisher used before start()")
        offsets: dict[tuple[str, int], int] = {}
        for done in consumed:
            lane = (done.topic, done.partition)
            offsets[lane] = max(offsets.get(lane, 0), done.offset + 1)
        file = self._file
        await file.run(
            partial(file.records.write, (records,), (self._id, self._epoch), (group, offsets))
        )
        if records:
            file.published()

    def _claim_job(self, conn: sqlite3.Connection) -> int:
        with transaction(conn, write=True):
            row = conn.execute(
                "INSERT INTO producers (id, epoch) VALUES (?, 1)"
                " ON CONFLICT (id) DO UPDATE SET epoch = epoch + 1 RETURNING epoch",
                (self._id,),
            ).fetchone()
            return int(row[0])


def _nothing(conn: sqlite3.Connection) -> None:
    return None
