"""How much of each topic the bus file keeps, and the trimming that holds it to that."""

from __future__ import annotations

import logging
import sqlite3
import time
from collections import Counter
from dataclasses import dataclass, field
from functools import partial

from backend.bus.embedded.file import BusFile
from backend.bus.embedded.schema import MASK, SHIFT, SIZE, marks
from backend.sqlite import transaction

log = logging.getLogger("logdeck.bus")

_CHUNK = 20_000
"""Records deleted per transaction, so writers never wait long for retention."""


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


DEFAULT_RETENTION = Retention()


@dataclass(frozen=True, slots=True)
class _Trimmed:
    """One retention step on a partition: the records deleted, and those no group had."""

    deleted: int = 0
    unread: dict[str, int] = field(default_factory=dict)
    """Of the deleted, per known group, the records it had not committed (the hard cap)."""
    lost: int = 0
    """The records deleted that some known group had not committed."""


async def apply_retention(file: BusFile, retention: Retention) -> int:
    """Trim every topic that is not compacted to `retention`; the records deleted."""
    topics = await file.run(file.topics.all)
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
                trimmed = await file.run(
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
                if trimmed.deleted < _CHUNK:
                    break
            if lost:
                _warn_lost(topic.name, partition, cap, lost, unread)
    return deleted


def losses(conn: sqlite3.Connection) -> int:
    """Records the hard cap deleted before every known group had committed them."""
    (total,) = conn.execute("SELECT ifnull(sum(records), 0) FROM losses").fetchone()
    return int(total)


def _trim_lane(
    conn: sqlite3.Connection,
    *,
    lane: int,
    siblings: tuple[int, ...],
    keep: int | None,
    cutoff_ms: int | None,
    cap_bytes: int | None,
) -> _Trimmed:
    """Delete up to `_CHUNK` of the lane's oldest records beyond the retention.

    The soft limits stop at the lowest offset committed by a group known on the topic
    (`siblings`: the lanes of the lane's topic); the hard cap goes past it.
    """
    low, high = lane << SHIFT, (lane + 1) << SHIFT
    with transaction(conn, write=True):
        row = conn.execute(
            "SELECT rowid FROM records WHERE rowid >= ? AND rowid < ? ORDER BY rowid LIMIT 1",
            (low, high),
        ).fetchone()
        if row is None:
            return _Trimmed()
        first = row[0] & MASK
        limit = first + _CHUNK
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
            f"DELETE FROM records WHERE rowid >= ? AND rowid < ? RETURNING {SIZE}",
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
    low, high = lane << SHIFT, (lane + 1) << SHIFT
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
            cut = (rowid & MASK) + 1
    return cut


def _hard_cut(conn: sqlite3.Connection, lane: int, first: int, limit: int, excess: int) -> int:
    """Where the lane is cut to free `excess` bytes from its start, at most `limit`."""
    low, high = lane << SHIFT, (lane + 1) << SHIFT
    cut = first
    for rowid, size in conn.execute(
        f"SELECT rowid, {SIZE} FROM records WHERE rowid >= ? AND rowid < ? ORDER BY rowid LIMIT ?",
        (low | first, high, limit - first),
    ):
        if excess <= 0:
            break
        excess -= size
        cut = (rowid & MASK) + 1
    return cut


def _committed_on(conn: sqlite3.Connection, lane: int, siblings: tuple[int, ...]) -> dict[str, int]:
    """Each group known on the topic, with its committed offset on `lane` (0 if none yet)."""
    committed: dict[str, int] = {}
    for group, at, offset in conn.execute(
        f"SELECT grp, lane, offset FROM offsets WHERE lane IN ({marks(len(siblings))})",
        siblings,
    ):
        committed.setdefault(group, 0)
        if at == lane:
            committed[group] = offset
    return committed


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
