"""Records going into the bus file and coming out of it as `Incoming`."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence

import msgpack

from backend.bus.base import Headers, Incoming, Outgoing, PublisherFenced
from backend.bus.embedded.schema import MASK, PUT_OFFSET, SHIFT, SIZE, Row, marks
from backend.bus.embedded.topics import Topic, Topics
from backend.bus.partitioning import KeyHashes
from backend.sqlite import transaction

_HEADER_CACHE_SIZE = 4096

Fence = tuple[str, int]
"""A transactional id and the epoch its publisher claimed."""
Offsets = tuple[str, dict[tuple[str, int], int]]
"""A group and the offsets it commits, by topic and partition."""


class Records:
    """Appends records to their partitions and reads rows back as `Incoming`.

    On the worker thread only: its caches of key hashes and packed headers take no lock.
    """

    def __init__(self, topics: Topics) -> None:
        self._topics = topics
        self._hash = KeyHashes()
        self._packed: dict[Headers, bytes] = {}
        self._unpacked: dict[bytes, Headers] = {}

    def write(
        self,
        batches: Sequence[Sequence[Outgoing]],
        fence: Fence | None,
        offsets: Offsets | None,
        conn: sqlite3.Connection,
    ) -> None:
        """Append `batches` (and commit `offsets` for a group), in one transaction.

        With a `fence`, only while its epoch is the latest for its id (or `PublisherFenced`).
        """
        with transaction(conn, write=True):
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
            topics = self._topics.for_write(conn, names)
            self._append(conn, batches, topics)
            if offsets is not None:
                group, positions = offsets
                rows = [
                    (group, topics[topic].lanes[partition], offset)
                    for (topic, partition), offset in positions.items()
                    if topic in topics and 0 <= partition < len(topics[topic].lanes)
                ]
                conn.executemany(PUT_OFFSET, rows)
        self._topics.remember(topics)

    def incoming(self, rows: list[Row], topic: str, partition: int, into: list[Incoming]) -> None:
        """Add `rows` of one partition to `into`."""
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
            append(Incoming(topic, partition, rowid & MASK, key, value, headers, ts))

    def _append(
        self,
        conn: sqlite3.Connection,
        batches: Sequence[Sequence[Outgoing]],
        topics: dict[str, Topic],
    ) -> None:
        lanes = [lane for topic in topics.values() for lane in topic.lanes]
        if not lanes:
            return
        ends: dict[int, int] = dict(
            conn.execute(
                f"SELECT id, next_offset FROM lanes WHERE id IN ({marks(len(lanes))})", lanes
            )
        )
        before = dict(ends)
        added = dict.fromkeys(ends, 0)
        now_ms = int(time.time() * 1000)
        rows: list[Row] = []
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
                append((lane << SHIFT | offset, now_ms, key, packed, record.value))
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
                    f"DELETE FROM records WHERE rowid = ? RETURNING {SIZE}",
                    (lane << SHIFT | previous[0],),
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


def _unpack_headers(packed: bytes) -> Headers:
    flat = msgpack.unpackb(packed, raw=False)
    return tuple((str(flat[i]), bytes(flat[i + 1])) for i in range(0, len(flat), 2))
