"""The bus on one SQLite file, so `logdeck demo` runs with Python alone (no Kafka).

The demo's services are separate processes sharing one database file in WAL mode, where
readers never wait for the writer. The file holds what a Kafka cluster would:

- `topics` and `lanes`: each partition of a topic is a lane with its own next offset.
- `records`: one row a record under rowid `lane << 40 | offset`, so a partition is one
  contiguous rowid range and reading on from an offset is a range scan of the table.
- `latest`: for compacted topics, the offset of each key's latest record; writing a key
  deletes the record it replaces (an empty value, a tombstone, stays as the latest).
- `losses`: per partition, the records retention's hard cap deleted before every group
  that reads the topic had committed them (see `Retention`).
- `groups`, `members`, `owners`, `offsets`: consumer groups, below.
- `producers`: the epoch of each transactional id, for fencing.

Groups. A member holds a lease that its polls renew; a member whose lease has lapsed (it
stopped polling) or that stopped is removed by the next member to look. Every member
computes Kafka's range assignment from the list of live members, releases what is no
longer its own at its next poll (after committing what it processed, since services
commit before they poll again) and takes a partition only once it has no owner, starting
from the group's committed offset. Any change of members or owners bumps the group's
version, which every member reads as it polls.

Every SQLite call of a bus runs on the bus's own worker thread with its own connection, so
the event loop never waits on the file. A poll wakes as soon as a publisher of this
process (on any bus object of the same file) has committed, and reads the file every
`_CHECK_EVERY_S` for what other processes have published.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Literal, TypeVar

import msgpack

from backend.bus.base import (
    POLL_BYTES,
    BusUnavailable,
    Delivery,
    Headers,
    Incoming,
    Outgoing,
    PublisherFenced,
)
from backend.bus.outbox import Outbox
from backend.bus.partitioning import KeyHashes
from backend.sqlite import use_wal

log = logging.getLogger("logdeck.bus")

T = TypeVar("T")

_Row = tuple[int, int, bytes | None, bytes | None, bytes]
"""A record as the file holds it: rowid, ts, key, packed headers, value."""
_SHIFT = 40
_MASK = (1 << _SHIFT) - 1
_CHECK_EVERY_S = 0.025
"""How often a waiting poll reads the file for records of other processes."""
_QUEUED_RECORDS = 50_000
"""Records waiting for the flusher beyond which `enqueue` blocks: the backpressure."""
_HEADER_CACHE_SIZE = 4096
_RETENTION_CHUNK = 20_000
"""Records deleted per transaction by retention, so writers never wait long for it."""
_PAGE_SIZE = 16_384
_CACHE_KIB = 32 * 1024
_WAL_LIMIT_BYTES = 64 * 1024 * 1024

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS topics (
        name TEXT PRIMARY KEY, partitions INTEGER NOT NULL, compacted INTEGER NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS lanes (
        id INTEGER PRIMARY KEY, topic TEXT NOT NULL, partition INTEGER NOT NULL,
        next_offset INTEGER NOT NULL, bytes INTEGER NOT NULL DEFAULT 0,
        UNIQUE (topic, partition))""",
    """CREATE TABLE IF NOT EXISTS records (
        ts INTEGER NOT NULL, key BLOB, headers BLOB, value BLOB NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS latest (
        lane INTEGER NOT NULL, key BLOB NOT NULL, offset INTEGER NOT NULL,
        PRIMARY KEY (lane, key)) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS groups (name TEXT PRIMARY KEY, version INTEGER NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS members (
        grp TEXT NOT NULL, member TEXT NOT NULL, topics TEXT NOT NULL, expires REAL NOT NULL,
        PRIMARY KEY (grp, member)) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS owners (
        grp TEXT NOT NULL, lane INTEGER NOT NULL, member TEXT NOT NULL,
        PRIMARY KEY (grp, lane)) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS offsets (
        grp TEXT NOT NULL, lane INTEGER NOT NULL, offset INTEGER NOT NULL,
        PRIMARY KEY (grp, lane)) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS producers (id TEXT PRIMARY KEY, epoch INTEGER NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS losses (
        lane INTEGER PRIMARY KEY, records INTEGER NOT NULL, at REAL NOT NULL)""",
)
_SIZE = "length(value) + ifnull(length(key), 0) + ifnull(length(headers), 0)"
"""The bytes a record takes, as `lanes.bytes` counts them (SQLite reads a blob's length
without its content)."""

_SELECT_RECORDS = (
    "SELECT rowid, ts, key, headers, value FROM records"
    " WHERE rowid >= ? AND rowid < ? ORDER BY rowid LIMIT ?"
)
_BUMP_GROUP = (
    "INSERT INTO groups (name, version) VALUES (?, 1)"
    " ON CONFLICT (name) DO UPDATE SET version = version + 1"
)
_PUT_OFFSET = (
    "INSERT INTO offsets (grp, lane, offset) VALUES (?, ?, ?)"
    " ON CONFLICT (grp, lane) DO UPDATE SET offset = excluded.offset"
)


@dataclass(frozen=True, slots=True)
class Retention:
    """How much each topic that is not compacted keeps; None: no limit of that kind.

    The age and record limits are soft: they never delete a record that a known group
    (one that has committed an offset on the topic) has not committed, since the
    accumulator acknowledged it and the group still owes it to the store. Only the hard cap
    `max_bytes` does, so a group stopped for good cannot fill the disk; each time it
    does, a WARNING names the partition, the records and the groups, and `losses` counts
    them for every process and the console.
    """

    max_age_s: float | None = 24 * 3600.0
    max_records: int | None = 2_000_000
    """Per topic, shared evenly between its partitions."""
    max_bytes: int | None = 8 * 1024**3
    """The hard cap per topic (keys, values, headers), shared evenly between its partitions."""
    every_s: float = 30.0
    """How often each running publisher applies it."""


@dataclass(frozen=True, slots=True)
class _Trimmed:
    """One retention step on a partition: the records deleted, and those no group had."""

    deleted: int = 0
    unread: dict[str, int] = field(default_factory=dict)
    """Of the deleted, per known group, the records it had not committed (the hard cap)."""
    lost: int = 0
    """The records deleted that some known group had not committed."""


DEFAULT_RETENTION = Retention()


@dataclass(frozen=True, slots=True)
class _Topic:
    name: str
    compacted: bool
    lanes: tuple[int, ...]
    """The lane of each partition, by partition number."""


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
        self._worker = _Worker(self.path, busy_timeout_s)
        self._signal = _signal_for(self.path)
        # Topics are never deleted nor resized, so what is known of them stays true.
        self._topics: dict[str, _Topic] = {}
        self._lane_names: dict[int, tuple[str, int]] = {}
        # The caches below are used on the worker thread only.
        self._hash = KeyHashes()
        self._packed: dict[Headers, bytes] = {}
        self._unpacked: dict[bytes, Headers] = {}

    async def close(self) -> None:
        await self._worker.close()

    async def ensure_topics(self, topics: Sequence[str], compacted: Sequence[str] = ()) -> None:
        if all(topic in self._topics for topic in topics):
            return
        await self._worker.run(partial(self._ensure_job, tuple(topics), frozenset(compacted)))

    async def healthy(self) -> bool:
        try:
            await self._worker.run(lambda conn: conn.execute("SELECT 1 FROM topics LIMIT 1"))
        except BusUnavailable:
            return False
        return True

    async def snapshot(self, topic: str) -> list[Incoming]:
        return await self._worker.run(partial(self._snapshot_job, topic))

    def publisher(self) -> EmbeddedPublisher:
        return EmbeddedPublisher(self)

    def subscription(
        self, topics: Sequence[str], group: str | None, *, from_beginning: bool = True
    ) -> EmbeddedSubscription:
        return EmbeddedSubscription(
            self, topics, group, start="earliest" if from_beginning else "latest"
        )

    def transactional_publisher(self, transactional_id: str) -> EmbeddedTransactionalPublisher:
        return EmbeddedTransactionalPublisher(self, transactional_id)

    def tail(self, topics: Sequence[str]) -> EmbeddedTail:
        return EmbeddedTail(self, topics)

    async def apply_retention(self) -> int:
        """Trim every topic that is not compacted to the retention; the records deleted."""
        retention = self.retention
        if retention is None:
            return 0
        topics = await self._worker.run(self._all_topics_job)
        cutoff_ms = None
        if retention.max_age_s is not None:
            cutoff_ms = int((time.time() - retention.max_age_s) * 1000)
        deleted = 0
        for topic in topics:
            if topic.compacted:
                continue
            keep = cap = None
            if retention.max_records is not None:
                keep = -(-retention.max_records // len(topic.lanes))
            if retention.max_bytes is not None:
                cap = retention.max_bytes // len(topic.lanes)
            for partition, lane in enumerate(topic.lanes):
                lost = 0
                unread: Counter[str] = Counter()
                while True:
                    trimmed = await self._worker.run(
                        partial(
                            _trim_lane,
                            lane=lane,
                            siblings=topic.lanes,
                            keep=keep,
                            cutoff_ms=cutoff_ms,
                            cap_bytes=cap,
                        )
                    )
                    deleted += trimmed.deleted
                    lost += trimmed.lost
                    unread.update(trimmed.unread)
                    if trimmed.deleted < _RETENTION_CHUNK:
                        break
                if lost:
                    _warn_lost(topic.name, partition, cap, lost, unread)
        return deleted

    async def dropped_unread(self) -> int:
        """Records retention's hard cap deleted before every known group had committed them."""
        return await self._worker.run(_losses_job)

    # What follows runs on the worker thread.

    def _ensure_job(
        self, topics: tuple[str, ...], compacted: frozenset[str], conn: sqlite3.Connection
    ) -> None:
        with _transaction(conn, write=True):
            for topic in topics:
                self._create_topic(conn, topic, topic in compacted)
        self._remember(self._load_topics(conn, topics))

    def _create_topic(self, conn: sqlite3.Connection, name: str, compacted: bool) -> None:
        created = conn.execute(
            "INSERT OR IGNORE INTO topics (name, partitions, compacted) VALUES (?, ?, ?)",
            (name, self.partitions, int(compacted)),
        )
        if created.rowcount == 1:
            conn.executemany(
                "INSERT INTO lanes (topic, partition, next_offset) VALUES (?, ?, 0)",
                [(name, partition) for partition in range(self.partitions)],
            )

    def _load_topics(self, conn: sqlite3.Connection, names: Sequence[str]) -> dict[str, _Topic]:
        """The topics among `names` the file holds (no cache: the caller may roll back)."""
        if not names:
            return {}
        found: dict[str, tuple[bool, list[int]]] = {}
        rows = conn.execute(
            "SELECT t.name, t.compacted, l.id FROM topics t JOIN lanes l ON l.topic = t.name"
            f" WHERE t.name IN ({_marks(len(names))}) ORDER BY t.name, l.partition",
            tuple(names),
        )
        for name, compacted, lane in rows:
            found.setdefault(name, (bool(compacted), []))[1].append(lane)
        return {
            name: _Topic(name, compacted, tuple(lanes))
            for name, (compacted, lanes) in found.items()
        }

    def _remember(self, topics: dict[str, _Topic]) -> None:
        for topic in topics.values():
            for partition, lane in enumerate(topic.lanes):
                self._lane_names[lane] = (topic.name, partition)
            self._topics[topic.name] = topic

    def _known(self, conn: sqlite3.Connection, names: Sequence[str]) -> dict[str, _Topic]:
        """The topics among `names` that exist, as committed (so cached)."""
        missing = [name for name in names if name not in self._topics]
        if missing:
            self._remember(self._load_topics(conn, missing))
        return {name: self._topics[name] for name in names if name in self._topics}

    def _all_topics_job(self, conn: sqlite3.Connection) -> list[_Topic]:
        with _transaction(conn, write=False):
            names = [name for (name,) in conn.execute("SELECT name FROM topics")]
            return list(self._known(conn, names).values())

    def _snapshot_job(self, topic: str, conn: sqlite3.Connection) -> list[Incoming]:
        with _transaction(conn, write=False):
            meta = self._known(conn, (topic,)).get(topic)
            if meta is None:
                return []
            records: list[Incoming] = []
            for partition, lane in enumerate(meta.lanes):
                rows = conn.execute(_SELECT_RECORDS, (lane << _SHIFT, (lane + 1) << _SHIFT, -1))
                self._incoming(rows.fetchall(), topic, partition, records)
            return records

    def _incoming(
        self,
        rows: list[_Row],
        topic: str,
        partition: int,
        into: list[Incoming],
    ) -> None:
        unpacked = self._unpacked
        append = into.append
        for rowid, ts, key, packed, value in rows:
            if packed is None:
                headers: Headers = ()
            else:
                cached = unpacked.get(packed)
                if cached is None:
                    if len(unpacked) >= _HEADER_CACHE_SIZE:
                        unpacked.clear()
                    cached = unpacked[packed] = _unpack_headers(packed)
                headers = cached
            append(Incoming(topic, partition, rowid & _MASK, key, value, headers, ts))

    def _write_job(
        self,
        batches: Sequence[Sequence[Outgoing]],
        fence: tuple[str, int] | None,
        offsets: tuple[str, dict[tuple[str, int], int]] | None,
        conn: sqlite3.Connection,
    ) -> None:
        """Append `batches` (and commit `offsets` for a group), in one transaction."""
        with _transaction(conn, write=True):
            if fence is not None:
                row = conn.execute(
                    "SELECT epoch FROM producers WHERE id = ?", (fence[0],)
                ).fetchone()
                if row is None or row[0] != fence[1]:
                    raise PublisherFenced(
                        f"another publisher took over transactional id {fence[0]!r}"
                    )
            names = {record.topic for batch in batches for record in batch}
            if offsets is not None:
                names.update(topic for topic, _ in offsets[1])
            topics = self._topics_for_write(conn, names)
            self._append(conn, batches, topics)
            if offsets is not None:
                group, positions = offsets
                rows = [
                    (group, topics[topic].lanes[partition], offset)
                    for (topic, partition), offset in positions.items()
                    if topic in topics and 0 <= partition < len(topics[topic].lanes)
                ]
                conn.executemany(_PUT_OFFSET, rows)
        self._remember(topics)

    def _topics_for_write(self, conn: sqlite3.Connection, names: set[str]) -> dict[str, _Topic]:
        """The topics `names`, created (not compacted) where missing, like Kafka's auto-create."""
        topics = {name: self._topics[name] for name in names if name in self._topics}
        missing = [name for name in names if name not in topics]
        if missing:
            for name in missing:
                self._create_topic(conn, name, False)
            topics.update(self._load_topics(conn, missing))
        return topics

    def _append(
        self,
        conn: sqlite3.Connection,
        batches: Sequence[Sequence[Outgoing]],
        topics: dict[str, _Topic],
    ) -> None:
        lanes = [lane for topic in topics.values() for lane in topic.lanes]
        if not lanes:
            return
        ends: dict[int, int] = dict(
            conn.execute(
                f"SELECT id, next_offset FROM lanes WHERE id IN ({_marks(len(lanes))})", lanes
            )
        )
        before = dict(ends)
        added = dict.fromkeys(ends, 0)
        now_ms = int(time.time() * 1000)
        rows: list[_Row] = []
        append = rows.append
        keyed: list[tuple[int, int, bytes]] = []
        hashed = self._hash
        pack = self._pack_headers
        last_topic = ""
        choices: tuple[int, ...] = ()
        compacted = False
        last_headers: Headers | None = None
        packed: bytes | None = None
        packed_size = 0
        for batch in batches:
            for record in batch:
                if record.topic != last_topic:
                    last_topic = record.topic
                    meta = topics[last_topic]
                    choices = meta.lanes
                    compacted = meta.compacted
                key = record.key
                lane = choices[hashed(key) % len(choices)]
                offset = ends[lane]
                ends[lane] = offset + 1
                if record.headers is not last_headers:
                    last_headers = record.headers
                    packed = pack(last_headers)
                    packed_size = len(packed) if packed is not None else 0
                append((lane << _SHIFT | offset, now_ms, key, packed, record.value))
                added[lane] += (
                    len(record.value) + (len(key) if key is not None else 0) + packed_size
                )
                if compacted and key is not None:
                    keyed.append((lane, offset, key))
        conn.executemany(
            "INSERT INTO records (rowid, ts, key, headers, value) VALUES (?, ?, ?, ?, ?)", rows
        )
        for lane, offset, key in keyed:
            previous = conn.execute(
                "SELECT offset FROM latest WHERE lane = ? AND key = ?", (lane, key)
            ).fetchone()
            if previous is not None:
                for (size,) in conn.execute(
                    f"DELETE FROM records WHERE rowid = ? RETURNING {_SIZE}",
                    (lane << _SHIFT | previous[0],),
                ):
                    added[lane] -= size
            conn.execute(
                "INSERT INTO latest (lane, key, offset) VALUES (?, ?, ?)"
                " ON CONFLICT (lane, key) DO UPDATE SET offset = excluded.offset",
                (lane, key, offset),
            )
        conn.executemany(
            "UPDATE lanes SET next_offset = ?, bytes = bytes + ? WHERE id = ?",
            [(end, added[lane], lane) for lane, end in ends.items() if end != before[lane]],
        )

    def _pack_headers(self, headers: Headers) -> bytes | None:
        if not headers:
            return None
        packed = self._packed.get(headers)
        if packed is None:
            if len(self._packed) >= _HEADER_CACHE_SIZE:
                self._packed.clear()
            flat = [part for pair in headers for part in pair]
            packed = self._packed[headers] = msgpack.packb(flat, use_bin_type=True)
        return packed

    def _fire(self) -> None:
        self._signal.fire()


class EmbeddedPublisher:
    """Publishes through one flusher task: whatever is queued meanwhile goes in one write."""

    def __init__(self, bus: EmbeddedBus) -> None:
        self._bus = bus
        self._outbox = Outbox(_QUEUED_RECORDS)
        self._flusher: asyncio.Task[None] | None = None
        self._trimmer: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._bus._worker.run(_nothing)  # the file opens, or BusUnavailable
        self._outbox = Outbox(_QUEUED_RECORDS)
        self._flusher = asyncio.create_task(self._flush_forever())
        if self._bus.retention is not None:
            self._trimmer = asyncio.create_task(self._trim_forever(self._bus.retention))

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
        bus = self._bus
        while (taken := await self._outbox.take()) is not None:
            batches = [records for records, _ in taken]
            error: Exception | None = None
            try:
                await bus._worker.run(partial(bus._write_job, batches, None, None))
            except Exception as failure:  # every caller hears of it; the flusher goes on
                error = failure
            else:
                bus._fire()
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
                deleted = await self._bus.apply_retention()
            except BusUnavailable as error:
                log.warning("retention skipped this round: %s", error)
            else:
                if deleted:
                    log.debug("retention deleted %d records", deleted)


@dataclass(slots=True)
class _Fetched:
    records: list[Incoming]
    positions: dict[int, int]
    read_through: dict[int, float]
    version: int
    resync: bool
    synced_at: float | None = None
    committed: dict[int, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Synced:
    owned: frozenset[int]
    starts: dict[int, int]
    """Where each partition this member has just taken starts."""
    committed: dict[int, int]
    """Of those, the ones that start at the group's committed offset."""
    version: int
    at: float


class EmbeddedSubscription:
    """A reader of `topics`: a member of `group` sharing its partitions, or alone on all.

    `start` is where partitions begin without a committed offset: "earliest", "latest",
    or "tail" (every partition's end as `start()` found it; topics that appear later
    from their first record).
    """

    def __init__(
        self,
        bus: EmbeddedBus,
        topics: Sequence[str],
        group: str | None,
        *,
        start: Literal["earliest", "latest", "tail"],
    ) -> None:
        self._bus = bus
        self._topics = tuple(dict.fromkeys(topics))
        self._group = group
        self._start_at = start
        self._member = ""
        self._started = False
        self._positions: dict[int, int] = {}
        self._committed: dict[int, int] = {}
        self._read_through: dict[int, float] = {}
        self._version = -1
        self._renewed = 0.0
        self._resync = False
        self._rotation = 0
        self._known_topics = 0
        """How many of the topics existed at the last sync (used on the worker thread)."""

    async def start(self) -> None:
        self._member = uuid.uuid4().hex
        self._positions = {}
        self._committed = {}
        self._read_through = {}
        if self._group is None:
            self._positions = await self._bus._worker.run(self._open_job)
        else:
            synced = await self._bus._worker.run(partial(self._sync_job, frozenset()))
            self._positions = dict(synced.starts)
            self._committed = dict(synced.committed)
            self._version = synced.version
            self._renewed = synced.at
        self._resync = False
        self._started = True

    async def stop(self) -> None:
        if self._started and self._group is not None:
            try:
                await self._bus._worker.run(self._leave_job)
            except BusUnavailable as error:
                log.warning("leaving group %s: %s (its lease will lapse)", self._group, error)
        self._started = False
        self._positions = {}
        self._committed = {}
        self._read_through = {}

    async def poll(
        self, max_records: int, timeout_ms: int, max_bytes: int = POLL_BYTES
    ) -> list[Incoming]:
        if not self._started:
            raise RuntimeError("subscription used before start()")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(0, timeout_ms) / 1000
        signal = self._bus._signal
        while True:
            seen = signal.count
            records = await self._fetch(max(0, max_records), max_bytes)
            if records:
                return records
            left = deadline - loop.time()
            if left <= 0:
                return []
            if signal.count == seen:
                await signal.wait(min(left, _CHECK_EVERY_S))

    async def commit(self) -> None:
        if self._group is None or not self._started:
            return
        pending = {
            lane: position
            for lane, position in self._positions.items()
            if self._committed.get(lane) != position
        }
        if not pending:
            return
        await self._bus._worker.run(partial(self._commit_job, self._group, pending))
        self._committed.update(pending)

    def assignment(self) -> frozenset[tuple[str, int]]:
        names = self._bus._lane_names
        return frozenset(names[lane] for lane in self._positions if lane in names)

    async def read_through(self, lane: tuple[str, int]) -> float | None:
        topic = self._bus._topics.get(lane[0])
        if topic is None or not 0 <= lane[1] < len(topic.lanes):
            return None
        return self._read_through.get(topic.lanes[lane[1]])

    def partition_count(self, topic: str) -> int | None:
        known = self._bus._topics.get(topic)
        return None if known is None else len(known.lanes)

    async def _fetch(self, budget: int, max_bytes: int) -> list[Incoming]:
        sync = self._group is not None and (
            self._resync or time.time() - self._renewed >= self._bus.session_s / 4
        )
        self._rotation += 1
        fetched = await self._bus._worker.run(
            partial(self._fetch_job, dict(self._positions), budget, max_bytes, sync, self._rotation)
        )
        self._positions = fetched.positions
        self._read_through = fetched.read_through
        self._committed = {
            lane: offset for lane, offset in self._committed.items() if lane in fetched.positions
        }
        self._committed.update(fetched.committed)
        self._version = fetched.version
        self._resync = fetched.resync
        if fetched.synced_at is not None:
            self._renewed = fetched.synced_at
        return fetched.records

    # What follows runs on the worker thread.

    def _open_job(self, conn: sqlite3.Connection) -> dict[int, int]:
        """Every partition of the topics, at its start or (latest, tail) at its end."""
        with _transaction(conn, write=False):
            topics = self._bus._known(conn, self._topics)
            lanes = [lane for topic in topics.values() for lane in topic.lanes]
            if self._start_at == "earliest" or not lanes:
                return dict.fromkeys(lanes, 0)
            return _ends(conn, lanes)

    def _fetch_job(
        self,
        positions: dict[int, int],
        budget: int,
        bytes_left: int,
        sync: bool,
        rotation: int,
        conn: sqlite3.Connection,
    ) -> _Fetched:
        bus = self._bus
        committed: dict[int, int] = {}
        version = self._version
        synced_at = None
        resync = False
        if self._group is not None and sync:
            try:
                synced = self._sync_job(frozenset(positions), conn)
            except sqlite3.OperationalError as error:
                log.debug("group %s: lease not renewed this time: %s", self._group, error)
                resync = True
            else:
                positions = {
                    lane: synced.starts[lane] if lane in synced.starts else positions[lane]
                    for lane in synced.owned
                }
                committed = synced.committed
                version = synced.version
                synced_at = synced.at
        records: list[Incoming] = []
        read_through: dict[int, float] = {}
        checked = time.time()
        with _transaction(conn, write=False):
            topics = bus._known(conn, self._topics)
            if self._group is None:
                for topic in topics.values():
                    for lane in topic.lanes:
                        positions.setdefault(lane, 0)  # a topic created after start()
            else:
                if len(topics) != self._known_topics:
                    resync = True  # a topic appeared: its partitions are to be shared out
                row = conn.execute(
                    "SELECT version FROM groups WHERE name = ?", (self._group,)
                ).fetchone()
                if row is None or row[0] != version:
                    resync = True
            lanes = sorted(positions)
            if not lanes:
                return _Fetched(records, positions, read_through, version, resync, synced_at)
            ends = _ends(conn, lanes)
            first = rotation % len(lanes)
            for lane in lanes[first:] + lanes[:first]:
                position = positions[lane]
                end = ends.get(lane, position)
                if position < end and budget > 0 and bytes_left > 0:
                    with contextlib.closing(
                        conn.execute(
                            _SELECT_RECORDS,
                            (lane << _SHIFT | position, lane << _SHIFT | end, budget),
                        )
                    ) as cursor:
                        rows, bytes_left = _within(cursor, bytes_left, first=not records)
                    name, partition = bus._lane_names[lane]
                    bus._incoming(rows, name, partition, records)
                    if rows:
                        position = (rows[-1][0] & _MASK) + 1
                    if len(rows) < budget and bytes_left > 0:
                        position = end  # all to the end is read (what is missing was deleted)
                    positions[lane] = position
                    budget -= len(rows)
                if position >= end:
                    read_through[lane] = checked
        return _Fetched(records, positions, read_through, version, resync, synced_at, committed)

    def _sync_job(self, have: frozenset[int], conn: sqlite3.Connection) -> _Synced:
        """Renew the lease, drop lapsed members, release and take partitions."""
        group = self._group
        assert group is not None
        bus = self._bus
        me = self._member
        now = time.time()
        with _transaction(conn, write=True):
            changed = False
            lapsed = [
                (group, member)
                for (member,) in conn.execute(
                    "SELECT member FROM members WHERE grp = ? AND expires < ?", (group, now)
                )
            ]
            if lapsed:
                conn.executemany("DELETE FROM members WHERE grp = ? AND member = ?", lapsed)
                conn.executemany("DELETE FROM owners WHERE grp = ? AND member = ?", lapsed)
                changed = True
            renewed = conn.execute(
                "UPDATE members SET expires = ? WHERE grp = ? AND member = ?",
                (now + bus.session_s, group, me),
            )
            if renewed.rowcount == 0:
                conn.execute(
                    "INSERT INTO members (grp, member, topics, expires) VALUES (?, ?, ?, ?)",
                    (group, me, "\n".join(self._topics), now + bus.session_s),
                )
                changed = True
            members = [
                (member, topics.split("\n"))
                for member, topics in conn.execute(
                    "SELECT member, topics FROM members WHERE grp = ? ORDER BY member", (group,)
                )
            ]
            wanted = {topic for _, topics in members for topic in topics}
            known = bus._known(conn, sorted(wanted))
            self._known_topics = sum(1 for topic in self._topics if topic in known)
            target = _range_assignment(members, me, known)
            owners: dict[int, str] = dict(
                conn.execute("SELECT lane, member FROM owners WHERE grp = ?", (group,)).fetchall()
            )
            mine = {lane for lane, member in owners.items() if member == me}
            release = mine - target
            take = sorted(lane for lane in target if lane not in owners)
            if release:
                conn.executemany(
                    "DELETE FROM owners WHERE grp = ? AND lane = ?",
                    [(group, lane) for lane in release],
                )
                changed = True
            if take:
                conn.executemany(
                    "INSERT INTO owners (grp, lane, member) VALUES (?, ?, ?)",
                    [(group, lane, me) for lane in take],
                )
                changed = True
            if changed:
                conn.execute(_BUMP_GROUP, (group,))
            row = conn.execute("SELECT version FROM groups WHERE name = ?", (group,)).fetchone()
            version = 0 if row is None else int(row[0])
            owned = frozenset((mine - release) | set(take))
            fresh = sorted(set(take) | (owned - have))
            starts: dict[int, int] = {}
            committed: dict[int, int] = {}
            if fresh:
                marks = _marks(len(fresh))
                committed = dict(
                    conn.execute(
                        f"SELECT lane, offset FROM offsets WHERE grp = ? AND lane IN ({marks})",
                        (group, *fresh),
                    ).fetchall()
                )
                ends = _ends(conn, fresh) if self._start_at != "earliest" else {}
                for lane in fresh:
                    if lane in committed:
                        starts[lane] = committed[lane]
                    else:
                        starts[lane] = ends.get(lane, 0)
        return _Synced(owned, starts, committed, version, now)

    def _leave_job(self, conn: sqlite3.Connection) -> None:
        group = self._group
        with _transaction(conn, write=True):
            conn.execute("DELETE FROM members WHERE grp = ? AND member = ?", (group, self._member))
            conn.execute("DELETE FROM owners WHERE grp = ? AND member = ?", (group, self._member))
            conn.execute(_BUMP_GROUP, (group,))

    def _commit_job(self, group: str, pending: dict[int, int], conn: sqlite3.Connection) -> None:
        """Commit `pending` for the partitions this member still owns (the rest moved on)."""
        with _transaction(conn, write=True):
            mine = {
                lane
                for (lane,) in conn.execute(
                    "SELECT lane FROM owners WHERE grp = ? AND member = ?", (group, self._member)
                )
            }
            conn.executemany(
                _PUT_OFFSET,
                [(group, lane, offset) for lane, offset in pending.items() if lane in mine],
            )


class EmbeddedTail(EmbeddedSubscription):
    """Every partition of `topics`, from their ends as `start()` found them."""

    def __init__(self, bus: EmbeddedBus, topics: Sequence[str]) -> None:
        super().__init__(bus, topics, None, start="tail")


class EmbeddedTransactionalPublisher:
    """Records and a group's offsets in one SQLite transaction; an epoch per id fences."""

    def __init__(self, bus: EmbeddedBus, transactional_id: str) -> None:
        self._bus = bus
        self._id = transactional_id
        self._epoch: int | None = None

    async def start(self) -> None:
        self._epoch = await self._bus._worker.run(self._claim_job)

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
        bus = self._bus
        await bus._worker.run(
            partial(bus._write_job, (records,), (self._id, self._epoch), (group, offsets))
        )
        if records:
            bus._fire()

    def _claim_job(self, conn: sqlite3.Connection) -> int:
        with _transaction(conn, write=True):
            row = conn.execute(
                "INSERT INTO producers (id, epoch) VALUES (?, 1)"
                " ON CONFLICT (id) DO UPDATE SET epoch = epoch + 1 RETURNING epoch",
                (self._id,),
            ).fetchone()
            return int(row[0])


def _within(rows: Iterable[_Row], bytes_left: int, *, first: bool) -> tuple[list[_Row], int]:
    """The rows that fit in `bytes_left`, and the bytes left after them (0: the budget is
    spent). Rows are read one by one, so one that does not fit is the only one too many in
    memory; the `first` row of a poll is taken whatever its size."""
    taken: list[_Row] = []
    for row in rows:
        _, _, key, headers, value = row
        size = len(value) + (len(key) if key is not None else 0)
        size += len(headers) if headers is not None else 0
        if size > bytes_left and (taken or not first):
            return taken, 0
        taken.append(row)
        bytes_left -= size
    return taken, max(bytes_left, 0)


def _range_assignment(
    members: list[tuple[str, list[str]]], me: str, topics: dict[str, _Topic]
) -> set[int]:
    """Kafka's range assignment: per topic, consecutive partitions to members by id."""
    mine: set[int] = set()
    for name, topic in topics.items():
        readers = [member for member, wanted in members if name in wanted]
        if me not in readers:
            continue
        index = readers.index(me)
        each, extra = divmod(len(topic.lanes), len(readers))
        first = index * each + min(index, extra)
        mine.update(topic.lanes[first : first + each + (1 if index < extra else 0)])
    return mine


def _trim_lane(
    conn: sqlite3.Connection,
    *,
    lane: int,
    siblings: tuple[int, ...],
    keep: int | None,
    cutoff_ms: int | None,
    cap_bytes: int | None,
) -> _Trimmed:
    """Delete up to `_RETENTION_CHUNK` of the lane's oldest records beyond the retention.

    The soft limits stop at the lowest offset committed by a group known on the topic
    (`siblings`: the lanes of the lane's topic); the hard cap goes past it.
    """
    low, high = lane << _SHIFT, (lane + 1) << _SHIFT
    with _transaction(conn, write=True):
        row = conn.execute(
            "SELECT rowid FROM records WHERE rowid >= ? AND rowid < ? ORDER BY rowid LIMIT 1",
            (low, high),
        ).fetchone()
        if row is None:
            return _Trimmed()
        first = row[0] & _MASK
        limit = first + _RETENTION_CHUNK
        end, size = conn.execute(
            "SELECT next_offset, bytes FROM lanes WHERE id = ?", (lane,)
        ).fetchone()
        committed = _committed_on(conn, lane, siblings)
        cut = _soft_cut(conn, lane, first, limit, end, keep, cutoff_ms)
        if committed:
            cut = min(cut, max(first, min(committed.values())))
        if cap_bytes is not None and size > cap_bytes:
            cut = max(cut, _hard_cut(conn, lane, first, limit, size - cap_bytes))
        if cut <= first:
            return _Trimmed()
        deleted = freed = 0
        for (bytes_,) in conn.execute(
            f"DELETE FROM records WHERE rowid >= ? AND rowid < ? RETURNING {_SIZE}",
            (low, low | cut),
        ):
            deleted += 1
            freed += bytes_
        conn.execute("UPDATE lanes SET bytes = bytes - ? WHERE id = ?", (freed, lane))
        unread = {
            group: cut - max(first, offset) for group, offset in committed.items() if offset < cut
        }
        lost = max(unread.values(), default=0)
        if lost:
            conn.execute(
                "INSERT INTO losses (lane, records, at) VALUES (?, ?, ?) ON CONFLICT (lane)"
                " DO UPDATE SET records = records + excluded.records, at = excluded.at",
                (lane, lost, time.time()),
            )
        return _Trimmed(deleted, unread, lost)


def _soft_cut(
    conn: sqlite3.Connection,
    lane: int,
    first: int,
    limit: int,
    end: int,
    keep: int | None,
    cutoff_ms: int | None,
) -> int:
    """Where the age and record limits would cut the lane, at most `limit`."""
    low, high = lane << _SHIFT, (lane + 1) << _SHIFT
    cut = first
    if keep is not None:
        cut = max(cut, min(limit, end - keep))
    if cutoff_ms is not None and cut < limit:
        # Timestamps grow along a partition: the old records are its first ones.
        for rowid, ts in conn.execute(
            "SELECT rowid, ts FROM records WHERE rowid >= ? AND rowid < ? ORDER BY rowid LIMIT ?",
            (low | cut, high, limit - cut),
        ):
            if ts >= cutoff_ms:
                break
            cut = (rowid & _MASK) + 1
    return cut


def _hard_cut(conn: sqlite3.Connection, lane: int, first: int, limit: int, excess: int) -> int:
    """Where the lane is cut to free `excess` bytes from its start, at most `limit`."""
    low, high = lane << _SHIFT, (lane + 1) << _SHIFT
    cut = first
    for rowid, size in conn.execute(
        f"SELECT rowid, {_SIZE} FROM records WHERE rowid >= ? AND rowid < ? ORDER BY rowid LIMIT ?",
        (low | first, high, limit - first),
    ):
        if excess <= 0:
            break
        excess -= size
        cut = (rowid & _MASK) + 1
    return cut


def _committed_on(conn: sqlite3.Connection, lane: int, siblings: tuple[int, ...]) -> dict[str, int]:
    """Each group known on the topic, with its committed offset on `lane` (0 if none yet)."""
    committed: dict[str, int] = {}
    for group, at, offset in conn.execute(
        f"SELECT grp, lane, offset FROM offsets WHERE lane IN ({_marks(len(siblings))})",
        siblings,
    ):
        committed.setdefault(group, 0)
        if at == lane:
            committed[group] = offset
    return committed


def _losses_job(conn: sqlite3.Connection) -> int:
    (total,) = conn.execute("SELECT ifnull(sum(records), 0) FROM losses").fetchone()
    return int(total)


def _warn_lost(
    topic: str, partition: int, cap_bytes: int | None, lost: int, unread: Counter[str]
) -> None:
    groups = ", ".join(f"{group} ({count})" for group, count in sorted(unread.items()))
    log.warning(
        "retention: %s partition %d is over its hard cap of %s bytes: deleted %d records"
        " before every group had read them; records each group lost: %s",
        topic,
        partition,
        cap_bytes,
        lost,
        groups,
    )


def _count_lane_bytes(conn: sqlite3.Connection) -> None:
    """Give a file written before lanes counted their bytes its `lanes.bytes`, once."""
    columns = {name for _, name, *_ in conn.execute("PRAGMA table_info(lanes)")}
    if "bytes" in columns:
        return
    conn.execute("ALTER TABLE lanes ADD COLUMN bytes INTEGER NOT NULL DEFAULT 0")
    conn.execute(
        f"UPDATE lanes SET bytes = (SELECT ifnull(sum({_SIZE}), 0) FROM records"
        f" WHERE rowid >= lanes.id << {_SHIFT} AND rowid < (lanes.id + 1) << {_SHIFT})"
    )


def _ends(conn: sqlite3.Connection, lanes: Sequence[int]) -> dict[int, int]:
    return dict(
        conn.execute(
            f"SELECT id, next_offset FROM lanes WHERE id IN ({_marks(len(lanes))})", tuple(lanes)
        ).fetchall()
    )


def _marks(count: int) -> str:
    return ", ".join("?" * count)


def _unpack_headers(packed: bytes) -> Headers:
    flat = msgpack.unpackb(packed, raw=False)
    return tuple((str(flat[i]), bytes(flat[i + 1])) for i in range(0, len(flat), 2))


def _nothing(conn: sqlite3.Connection) -> None:
    return None


@contextlib.contextmanager
def _transaction(conn: sqlite3.Connection, *, write: bool) -> Iterator[None]:
    """A transaction: IMMEDIATE for writes (the lock first, so no upgrade can fail later)."""
    conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
    try:
        yield
    except BaseException:
        if conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


class _Worker:
    """One thread with its own connection: the SQLite calls of one bus run there, in turn."""

    def __init__(self, path: Path, busy_timeout_s: float) -> None:
        self._path = path
        self._busy_timeout_s = busy_timeout_s
        self._executor: ThreadPoolExecutor | None = None
        self._pid = 0
        self._conn: sqlite3.Connection | None = None  # on the worker thread only
        self._lock = threading.Lock()

    async def run(self, job: Callable[[sqlite3.Connection], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(
            self._executor_here(), self._call, job
        )

    async def close(self) -> None:
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is None:
            return
        if self._pid == os.getpid():
            await asyncio.get_running_loop().run_in_executor(executor, self._disconnect)
        executor.shutdown(wait=False)

    def _executor_here(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._executor is None or self._pid != os.getpid():
                # A forked child has no worker thread, and its parent's connection is not its own.
                self._conn = None
                self._pid = os.getpid()
                self._executor = ThreadPoolExecutor(1, thread_name_prefix="embedded-bus")
            return self._executor

    def _call(self, job: Callable[[sqlite3.Connection], T]) -> T:
        try:
            return job(self._connection())
        except sqlite3.DatabaseError as error:
            if isinstance(error, sqlite3.ProgrammingError | sqlite3.IntegrityError):
                raise
            message = str(error)
            if "locked" not in message and "busy" not in message:
                self._disconnect()  # an I/O error: open the file afresh next time
            raise BusUnavailable(f"the bus file {self._path}: {message}") from error
        except OSError as error:
            raise BusUnavailable(f"the bus file {self._path}: {error}") from error

    def _connection(self) -> sqlite3.Connection:
        if self._conn is not None:
            return self._conn
        self._path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            self._path, timeout=self._busy_timeout_s, isolation_level=None, check_same_thread=True
        )
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_s * 1000)}")
            conn.execute(f"PRAGMA page_size = {_PAGE_SIZE}")  # takes effect on a new file only
            use_wal(conn)
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute(f"PRAGMA cache_size = -{_CACHE_KIB}")
            conn.execute(f"PRAGMA journal_size_limit = {_WAL_LIMIT_BYTES}")
            with _transaction(conn, write=True):
                for statement in _SCHEMA:
                    conn.execute(statement)
                _count_lane_bytes(conn)
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        return conn

    def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(sqlite3.Error):
                conn.close()


class _Signal:
    """Wakes the polls of this process when a publisher of this process has committed."""

    def __init__(self) -> None:
        self.count = 0
        self._waiting: set[asyncio.Future[None]] = set()

    def fire(self) -> None:
        self.count += 1
        waiting, self._waiting = self._waiting, set()
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        for future in waiting:
            loop = future.get_loop()
            if loop is running:
                _wake(future)
            else:
                with contextlib.suppress(RuntimeError):  # that loop is closed
                    loop.call_soon_threadsafe(_wake, future)

    async def wait(self, at_most_s: float) -> None:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._waiting.add(future)
        timer = loop.call_later(at_most_s, _wake, future)
        try:
            await future
        finally:
            timer.cancel()
            self._waiting.discard(future)


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


_signals: dict[str, _Signal] = {}
_signals_lock = threading.Lock()


def _signal_for(path: Path) -> _Signal:
    with _signals_lock:
        return _signals.setdefault(str(path.resolve()), _Signal())
