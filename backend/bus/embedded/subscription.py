"""Readers of the bus file: members of a consumer group, or alone on every partition.

A poll wakes as soon as a publisher of this process (on any bus object of the same file)
has committed, and reads the file every `_CHECK_EVERY_S` for what other processes have
published.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial

from backend.bus.base import POLL_BYTES, BusUnavailable, Incoming, Lane, committable
from backend.bus.embedded.file import BusFile
from backend.bus.embedded.groups import Member, Start
from backend.bus.embedded.schema import MASK, SELECT_RECORDS, SHIFT, Row, ends
from backend.sqlite import transaction

log = logging.getLogger("logdeck.bus")

_CHECK_EVERY_S = 0.025
"""How often a waiting poll reads the file for records of other processes."""


@dataclass(slots=True)
class _Fetched:
    records: list[Incoming]
    positions: dict[int, int]
    read_through: dict[int, float]
    version: int
    resync: bool
    synced_at: float | None = None
    committed: dict[int, int] = field(default_factory=dict)
    returned: dict[int, int] = field(default_factory=dict)
    """Per partition read, the offset after its last record in `records`."""


class EmbeddedSubscription:
    """A reader of `topics`: a member of `group` sharing its partitions, or alone on all.

    `start` is where partitions begin without a committed offset: "earliest", "latest",
    or "tail" (every partition's end as `start()` found it; topics that appear later
    from their first record). `session_s` is how long a member may go without polling
    before the others of its group take its partitions.

    A pipelined reader (`poll(in_flight=True)`) may lose a partition while the batch it
    is writing is not committed: a member releases what is no longer its own as it renews
    its lease, and holding partitions back would take a lease of its own kind. The commit
    of that batch then leaves the partition out and its new owner reads those records
    again from the group's commit; the indexer, the one reader that pipelines, stores
    each log under its log_id, so the second write changes nothing.
    """

    def __init__(
        self,
        file: BusFile,
        topics: Sequence[str],
        group: str | None,
        *,
        start: Start,
        session_s: float,
    ) -> None:
        self._file = file
        self._topics = tuple(dict.fromkeys(topics))
        self._group = group
        self._start_at = start
        self._session_s = session_s
        self._member: Member | None = None
        self._started = False
        self._positions: dict[int, int] = {}
        self._committed: dict[int, int] = {}
        self._returned: dict[int, int] = {}
        """Per partition, the offset after the last record `poll` returned."""
        self._finished: dict[int, int] = {}
        """Per partition, the offset before which the returned records are committed."""
        self._read_through: dict[int, float] = {}
        self._version = -1
        self._renewed = 0.0
        self._resync = False
        self._rotation = 0
        self._known_topics = 0
        """How many of the topics existed at the last sync."""

    async def start(self) -> None:
        self._positions = {}
        self._committed = {}
        self._returned = {}
        self._finished = {}
        self._read_through = {}
        if self._group is None:
            self._positions = await self._file.run(self._open_job)
        else:
            member = self._member = Member(
                self._file.topics, self._group, self._topics, self._start_at, self._session_s
            )
            synced = await self._file.run(partial(member.sync, frozenset()))
            self._positions = dict(synced.starts)
            self._committed = dict(synced.committed)
            self._version = synced.version
            self._renewed = synced.at
            self._known_topics = synced.known_topics
        self._resync = False
        self._started = True

    async def stop(self) -> None:
        if self._started and self._member is not None:
            try:
                await self._file.run(self._member.leave)
            except BusUnavailable as error:
                log.warning("leaving group %s: %s (its lease will lapse)", self._group, error)
        self._started = False
        self._positions = {}
        self._committed = {}
        self._returned = {}
        self._finished = {}
        self._read_through = {}

    async def poll(
        self,
        max_records: int,
        timeout_ms: int,
        max_bytes: int = POLL_BYTES,
        *,
        in_flight: bool = False,
    ) -> list[Incoming]:
        if not self._started:
            raise RuntimeError("subscription used before start()")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(0, timeout_ms) / 1000
        signal = self._file.signal
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

    async def commit(self, upto: Mapping[Lane, int] | None = None) -> None:
        member = self._member
        if member is None or not self._started:
            return
        if upto is None:
            self._finished.update(self._returned)
        else:
            for (topic, partition), offset in upto.items():
                known = self._file.topics.get(topic)
                lane = None if known is None else known.lane(partition)
                if lane is not None and lane in self._positions:
                    self._finished[lane] = max(offset, self._finished.get(lane, offset))
        pending = {
            lane: position
            for lane, position in self._finished_positions().items()
            if self._committed.get(lane) != position
        }
        if not pending:
            return
        await self._file.run(partial(member.commit, pending))
        self._committed.update(pending)

    def _finished_positions(self) -> dict[int, int]:
        """Where each owned partition's committed-to-be records end: the read position
        where every record returned is finished (past the last of them there are only
        offsets without a record), else the end of the finished ones."""
        finished_at: dict[int, int] = {}
        for lane, position in self._positions.items():
            at = committable(position, self._returned.get(lane), self._finished.get(lane))
            if at is not None:
                finished_at[lane] = at
        return finished_at

    def assignment(self) -> frozenset[Lane]:
        names = self._file.topics
        return frozenset(
            name for lane in self._positions if (name := names.lane_name(lane)) is not None
        )

    async def read_through(self, lane: Lane) -> float | None:
        topic = self._file.topics.get(lane[0])
        at = None if topic is None else topic.lane(lane[1])
        return None if at is None else self._read_through.get(at)

    def partition_count(self, topic: str) -> int | None:
        known = self._file.topics.get(topic)
        return None if known is None else len(known.lanes)

    async def _fetch(self, budget: int, max_bytes: int) -> list[Incoming]:
        sync = self._member is not None and (
            self._resync or time.time() - self._renewed >= self._session_s / 4
        )
        self._rotation += 1
        fetched = await self._file.run(
            partial(self._fetch_job, dict(self._positions), budget, max_bytes, sync, self._rotation)
        )
        self._positions = fetched.positions
        self._read_through = fetched.read_through
        self._committed = {
            lane: offset for lane, offset in self._committed.items() if lane in fetched.positions
        }
        self._committed.update(fetched.committed)
        self._returned = {
            lane: offset for lane, offset in self._returned.items() if lane in fetched.positions
        }
        self._returned.update(fetched.returned)
        self._finished = {
            lane: offset for lane, offset in self._finished.items() if lane in fetched.positions
        }
        self._version = fetched.version
        self._resync = fetched.resync
        if fetched.synced_at is not None:
            self._renewed = fetched.synced_at
        return fetched.records

    # What follows runs on the worker thread.

    def _open_job(self, conn: sqlite3.Connection) -> dict[int, int]:
        """Every partition of the topics, at its start or (latest, tail) at its end."""
        with transaction(conn, write=False):
            topics = self._file.topics.known(conn, self._topics)
            lanes = [lane for topic in topics.values() for lane in topic.lanes]
            if self._start_at == "earliest" or not lanes:
                return dict.fromkeys(lanes, 0)
            return ends(conn, lanes)

    def _fetch_job(
        self,
        positions: dict[int, int],
        budget: int,
        bytes_left: int,
        sync: bool,
        rotation: int,
        conn: sqlite3.Connection,
    ) -> _Fetched:
        file = self._file
        member = self._member
        committed: dict[int, int] = {}
        version = self._version
        synced_at = None
        resync = False
        if member is not None and sync:
            try:
                synced = member.sync(frozenset(positions), conn)
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
                self._known_topics = synced.known_topics
        records: list[Incoming] = []
        returned: dict[int, int] = {}
        read_through: dict[int, float] = {}
        checked = time.time()
        with transaction(conn, write=False):
            topics = file.topics.known(conn, self._topics)
            if member is None:
                for topic in topics.values():
                    for lane in topic.lanes:
                        positions.setdefault(lane, 0)  # a topic created after start()
            else:
                if len(topics) != self._known_topics:
                    resync = True  # a topic appeared: its partitions are to be shared out
                row = conn.execute(
                    "SELECT version FROM groups WHERE name = ?", (member.group,)
                ).fetchone()
                if row is None or row[0] != version:
                    resync = True
            lanes = sorted(positions)
            if not lanes:
                return _Fetched(records, positions, read_through, version, resync, synced_at)
            at_end = ends(conn, lanes)
            first = rotation % len(lanes)
            for lane in lanes[first:] + lanes[:first]:
                position = positions[lane]
                end = at_end.get(lane, position)
                if position < end and budget > 0 and bytes_left > 0:
                    with contextlib.closing(
                        conn.execute(
                            SELECT_RECORDS,
                            (lane << SHIFT | position, lane << SHIFT | end, budget),
                        )
                    ) as cursor:
                        rows, bytes_left = _within(cursor, bytes_left, first=not records)
                    where = file.topics.lane_name(lane)
                    assert where is not None  # the lanes of known topics only
                    file.records.incoming(rows, where[0], where[1], records)
                    if rows:
                        position = returned[lane] = (rows[-1][0] & MASK) + 1
                    if len(rows) < budget and bytes_left > 0:
                        position = end  # all to the end is read (what is missing was deleted)
                    positions[lane] = position
                    budget -= len(rows)
                if position >= end:
                    read_through[lane] = checked
        return _Fetched(
            records, positions, read_through, version, resync, synced_at, committed, returned
        )


class EmbeddedTail(EmbeddedSubscription):
    """Every partition of `topics`, from their ends as `start()` found them."""

    def __init__(self, file: BusFile, topics: Sequence[str]) -> None:
        super().__init__(file, topics, None, start="tail", session_s=0.0)  # no group, no lease


def _within(rows: Iterable[Row], bytes_left: int, *, first: bool) -> tuple[list[Row], int]:
    """The rows that fit in `bytes_left`, and the bytes left after them (0: the budget is
    spent). Rows are read one by one, so one that does not fit is the only one too many in
    memory; the `first` row of a poll is taken whatever its size."""
    taken: list[Row] = []
    for row in rows:
        _, _, key, headers, value = row
        size = len(value) + (len(key) if key is not None else 0)
        size += len(headers) if headers is not None else 0
        if size > bytes_left and (taken or not first):
            return taken, 0
        taken.append(row)
        bytes_left -= size
    return taken, max(bytes_left, 0)
