"""The indexer: logs from Kafka into Elasticsearch, with the latest alerts and node registry.

A batch is committed on Kafka only after Elasticsearch has taken all of it, so a crash
or an outage replays the batch, and storing each log under its log_id makes the replay
harmless. The next batch is polled and decoded while one is being written. Documents
Elasticsearch refuses for good go to the dead-letter topic. A node retired from the
registry (a tombstone) has its stored entry deleted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from backend.bus import Bus, BusUnavailable, Incoming, Lane, Outgoing, Publisher, Subscription
from backend.bus.ready import ensure_topics_retrying
from backend.config import Settings
from backend.retry import retrying
from backend.runner import until_stopped
from backend.schemas import (
    Alert,
    DeadLetter,
    InvalidRecord,
    Log,
    NodeEntry,
    RetiredNode,
    decode_as,
    encode,
    now_iso,
)
from backend.store import BulkOutcome, Snapshot, Store, StoreUnavailable
from backend.store.base import StoredLog
from backend.window import TimeWindow

log = logging.getLogger("logdeck.indexer")

BATCH_RECORDS = 20_000
"""Most records taken per batch. Each batch waits on the store, then on the commit, while
the next is decoded; under load, fewer and larger batches keep both busy (the embedded
pipeline went from 30,000 to 37,000 logs/s going from 5,000 to 20,000), and a quiet topic
still gives small ones. Two batches are held at most: one being written, one decoded."""
_DECODE_SLICE = 1000
_RETENTION_EVERY_S = 3600.0
_REPORT_EVERY_S = 10.0


@dataclass(slots=True)
class _Decoded:
    """A batch ready to write, and where its commit ends on each partition."""

    logs: list[StoredLog]
    snapshots: list[Snapshot]
    raw_of: dict[str, Incoming]
    dead: list[Outgoing]
    upto: dict[Lane, int]


@dataclass(slots=True)
class IndexerStats:
    stored: int = 0
    duplicates: int = 0
    dead: int = 0
    states: int = 0

    def add(self, outcome: BulkOutcome) -> None:
        self.stored += outcome.stored
        self.duplicates += outcome.duplicates


class Indexer:
    def __init__(
        self, settings: Settings, store: Store, subscription: Subscription, dead: Publisher
    ) -> None:
        self._settings = settings
        self._store = store
        self._subscription = subscription
        self._dead = dead
        self._window = TimeWindow.of(settings)
        self.stats = IndexerStats()

    async def consume(self) -> None:
        """Index batch after batch, forever; cancel to stop (uncommitted work is replayed).

        While one batch is stored and committed, the next is polled and decoded: the store
        works while this process decodes, instead of each waiting for the other. A batch's
        commit names its own offsets (the reader is already past them), made once the
        store took all of it and before the next batch is written, so commits stay in order.
        """
        reported = time.monotonic()
        writing: asyncio.Task[None] | None = None
        try:
            while True:
                batch = await self._subscription.poll(
                    BATCH_RECORDS,
                    timeout_ms=500,
                    max_bytes=self._settings.poll_bytes,
                    in_flight=writing is not None,
                )
                decoded = await self._decoded(batch) if batch else None
                if writing is not None:
                    await writing
                    writing = None
                if decoded is not None:
                    writing = asyncio.create_task(self._write_and_commit(decoded))
                    # Let the write start (encode and send its bulk request) before the next
                    # poll and decode, which need not give the loop up at all.
                    await asyncio.sleep(0)
                if time.monotonic() - reported >= _REPORT_EVERY_S:
                    reported = time.monotonic()
                    log.info("totals: %s", self.stats)
        finally:
            if writing is not None:
                writing.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await writing

    async def _write_and_commit(self, decoded: _Decoded) -> None:
        await self._write(decoded)
        await retrying(
            lambda: self._subscription.commit(decoded.upto),
            what="committing offsets on the bus",
            retry_on=(BusUnavailable,),
            log=log,
        )

    async def process(self, batch: list[Incoming]) -> None:
        """Store one batch, retrying until the store has taken it."""
        await self._write(await self._decoded(batch))

    async def _decoded(self, batch: list[Incoming]) -> _Decoded:
        """What `batch` asks the store for, its dead letters, and the offsets it ends at.

        It gives the loop up every `_DECODE_SLICE` records, so the bulk request of the batch
        before goes on being sent meanwhile: Elasticsearch starts on it only once all is in.
        """
        topics = self._settings.topics
        logs: list[StoredLog] = []
        snapshots: list[Snapshot] = []
        raw_of: dict[str, Incoming] = {}
        dead: list[Outgoing] = []
        upto: dict[Lane, int] = {}
        now = datetime.now(UTC)
        for count, record in enumerate(batch, 1):
            if count % _DECODE_SLICE == 0:
                await asyncio.sleep(0)
            upto[record.topic, record.partition] = record.offset + 1
            try:
                if record.topic == topics.logs:
                    entry = decode_as(record.value, Log)
                    ingested = record.header("ingested_at")
                    refused = self._window.refusal(entry.timestamp, _judged_at(ingested, now))
                    if refused is not None:
                        dead.append(self._dead_letter(record, refused))
                        continue
                    logs.append(StoredLog(entry, ingested.decode() if ingested else None))
                    raw_of[entry.log_id] = record
                elif record.topic == topics.alerts:
                    snapshots.append(Snapshot(record.offset, decode_as(record.value, Alert)))
                elif not record.value and record.key:
                    retired = RetiredNode(node_id=record.key.decode("utf-8", "replace"))
                    snapshots.append(Snapshot(record.offset, retired))
                else:
                    snapshots.append(Snapshot(record.offset, decode_as(record.value, NodeEntry)))
            except InvalidRecord as error:
                dead.append(self._dead_letter(record, f"not a valid message: {error}"))
        return _Decoded(logs, snapshots, raw_of, dead, upto)

    async def _write(self, decoded: _Decoded) -> None:
        """Store a decoded batch and publish its dead letters, retrying until both are done."""
        logs, snapshots = decoded.logs, decoded.snapshots
        outcome = await self._stored(
            lambda: self._store.index_logs(logs), f"indexing {len(logs)} logs"
        )
        self.stats.add(outcome)
        dead = decoded.dead
        dead += [self._dead_letter(decoded.raw_of[r.doc_id], r.reason) for r in outcome.rejected]
        if snapshots:
            states = await self._stored(
                lambda: self._store.put_snapshots(snapshots), "storing alert and node states"
            )
            self.stats.states += states.stored
        if dead:
            self.stats.dead += len(dead)
            await retrying(
                lambda: self._dead.publish(dead),
                what="publishing dead letters",
                retry_on=(BusUnavailable,),
                log=log,
            )

    async def _stored(self, write: Callable[[], Awaitable[BulkOutcome]], what: str) -> BulkOutcome:
        return await retrying(write, what=what, retry_on=(StoreUnavailable,), log=log)

    def _dead_letter(self, record: Incoming, reason: str) -> Outgoing:
        letter = DeadLetter(
            reason=reason,
            source="indexer",
            raw=record.value,
            received_at=now_iso(),
            tag=record.topic,
            node_id=record.key.decode("utf-8", "replace") if record.key else None,
        )
        return Outgoing(self._settings.topics.deadletter, record.key, encode(letter))

    async def apply_retention(self) -> None:
        """Delete daily indices older than the retention, every hour."""
        while True:
            cutoff = (datetime.now(UTC) - timedelta(days=self._settings.retention_days)).date()
            try:
                dropped = await self._store.delete_logs_before(cutoff)
            except StoreUnavailable as error:
                log.warning("retention skipped this round: %s", error)
            else:
                if dropped:
                    log.info("retention: deleted %s", ", ".join(dropped))
            await asyncio.sleep(_RETENTION_EVERY_S)


def _judged_at(ingested_at: bytes | None, now: datetime) -> datetime:
    """The later of now and the accumulator's clock at arrival (the `ingested_at` header), so
    what the accumulator judged inside the window is inside here too, whatever the clocks."""
    try:
        arrived = datetime.fromisoformat(ingested_at.decode()) if ingested_at else now
    except (ValueError, UnicodeDecodeError):
        return now
    return max(now, arrived) if arrived.tzinfo is not None else now


async def run_indexer(settings: Settings, bus: Bus, store: Store, stop: asyncio.Event) -> None:
    """Run the indexer until `stop` is set."""
    topics = settings.topics
    group = settings.group("indexer")
    subscription = bus.subscription(topics.consumed_by("indexer"), group)
    dead = bus.publisher()
    indexer = Indexer(settings, store, subscription, dead)

    async def work() -> None:
        await _connect(settings, bus, store, subscription, dead)
        log.info(
            "indexer consuming %s as group %s into %s", topics.logs, group, settings.store_label
        )
        await asyncio.gather(indexer.consume(), indexer.apply_retention())

    try:
        await until_stopped(work(), stop)
    finally:
        await _close(subscription, dead, store)
        log.info("indexer stopped; totals: %s", indexer.stats)


async def _connect(
    settings: Settings, bus: Bus, store: Store, subscription: Subscription, dead: Publisher
) -> None:
    kafka = settings.bus_label
    await ensure_topics_retrying(bus, settings, log)
    await retrying(
        store.ensure_schema,
        what=f"preparing {settings.store_label}",
        retry_on=(StoreUnavailable,),
        log=log,
    )
    await retrying(
        subscription.start, what=f"subscribing to {kafka}", retry_on=(BusUnavailable,), log=log
    )
    await retrying(dead.start, what=f"connecting to {kafka}", retry_on=(BusUnavailable,), log=log)


async def _close(subscription: Subscription, dead: Publisher, store: Store) -> None:
    for closing in (subscription.stop(), dead.stop(), store.close()):
        with contextlib.suppress(Exception):
            await closing
