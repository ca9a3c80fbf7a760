"""Logs into the day tables and back out, in the writer's thread.

Indexing is idempotent (a log_id stored already counts as a duplicate) and one transaction per
batch. `max_logs` caps the store: past it the oldest logs are deleted first. Retention drops
whole days, as `delete_logs_before` does. The export reads a day's logs back newest first.
"""

from __future__ import annotations

import sqlite3
import zlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Final

from backend.schemas import Log
from backend.sqlite import transaction
from backend.store.base import BulkOutcome, Rejection, StoredLog
from backend.store.embedded.days import Stamps, day_name, day_number
from backend.store.embedded.schema import (
    LEVEL_IDS,
    NODE,
    SEQ_MASK,
    SERVICE,
    SHIFT,
    Names,
    create_day,
    decode_log,
    drop_day,
    encode,
)

_PRUNE_CHUNK: Final = 20_000
_EXPORT_BATCH: Final = 5_000


class Writer:
    """The writes of one store; it remembers which day tables it has made."""

    def __init__(self, names: Names, max_logs: int | None) -> None:
        self._names = names
        self._max_logs = max_logs
        self._known_days: set[int] = set()

    def index_logs(self, logs: Sequence[StoredLog], conn: sqlite3.Connection) -> BulkOutcome:
        """One transaction; the loop is the hot path of ingestion, hence its plain style."""
        outcome = BulkOutcome()
        batches: dict[int, _Batch] = {}
        seen: set[str] = set()
        names = self._names
        known = names.known
        new_names: dict[tuple[int, str], int] = {}
        stamps = Stamps()
        tags: dict[tuple[int, int, int], str] = {}
        to_json = encode
        with transaction(conn, write=True):
            (seq,) = conn.execute("SELECT value FROM meta WHERE key = 'seq'").fetchone()
            for item in logs:
                log = item.log
                log_id = log.log_id
                if log_id in seen:
                    outcome.duplicates += 1
                    continue
                seen.add(log_id)
                try:
                    ms, day = stamps.read(log.timestamp)
                except ValueError as error:
                    outcome.rejected.append(Rejection(log_id, str(error)))
                    continue
                service = known.get((SERVICE, log.service_name))
                if service is None:
                    service = names.add(conn, SERVICE, log.service_name, new_names)
                node = known.get((NODE, log.node_id))
                if node is None:
                    node = names.add(conn, NODE, log.node_id, new_names)
                level = LEVEL_IDS[log.log_level]
                seq += 1
                rowid = (ms << SHIFT) | (seq & SEQ_MASK)
                batch = batches.get(day)
                if batch is None:
                    batch = batches[day] = _Batch()
                batch.ids.append(log_id)
                batch.rows.append(
                    (rowid, _hash(log_id), level, service, node, item.ingested_at, to_json(log))
                )
                key = (level, service, node)
                tag = tags.get(key)
                if tag is None:
                    tag = tags[key] = f"zl{level} zs{service} zn{node}"
                details = log.error_details
                if details is None:
                    batch.text.append((rowid, log.message, None, None, tag))
                else:
                    batch.text.append(
                        (rowid, log.message, details.error_message, details.error_code, tag)
                    )
            for day, batch in batches.items():
                self._ensure_day(conn, day)
                before = len(batch.rows)
                batch.drop_stored(conn, day)
                outcome.duplicates += before - len(batch.rows)
                seq = batch.insert(conn, day, seq)
                outcome.stored += len(batch.rows)
            conn.execute("UPDATE meta SET value = ? WHERE key = 'seq'", (seq,))
            (stored,) = conn.execute("SELECT sum(logs) FROM days").fetchone()
        names.remember(new_names)
        if self._max_logs is not None and (stored or 0) > self._max_logs:
            self._enforce_cap(conn, self._max_logs)
        return outcome

    def drop_days_before(self, cutoff: date, conn: sqlite3.Connection) -> list[str]:
        """Retention: the days before `cutoff` dropped, by the names of their indices."""
        limit = day_number(cutoff)
        dropped: list[str] = []
        with transaction(conn, write=True):
            for (day,) in conn.execute("SELECT day FROM days WHERE day < ?", (limit,)).fetchall():
                drop_day(conn, day)
                self._known_days.discard(day)
                dropped.append(day_name(day))
        return dropped

    def _ensure_day(self, conn: sqlite3.Connection, day: int) -> None:
        if (
            day in self._known_days
            and conn.execute("SELECT 1 FROM days WHERE day = ?", (day,)).fetchone()
        ):
            return
        create_day(conn, day)
        self._known_days.add(day)

    def _enforce_cap(self, conn: sqlite3.Connection, max_logs: int) -> None:
        """Delete the oldest logs while there are more than `max_logs`."""
        while True:
            with transaction(conn, write=True):
                days = conn.execute("SELECT day, logs FROM days ORDER BY day").fetchall()
                excess = sum(logs for _, logs in days) - max_logs
                if excess <= 0 or not days:
                    return
                day, logs = days[0]
                if logs <= excess:
                    drop_day(conn, day)
                    self._known_days.discard(day)
                    continue
                _delete_oldest(conn, day, min(excess, _PRUNE_CHUNK))


def export_page(day: int, below: int, conn: sqlite3.Connection) -> list[tuple[int, bytes]]:
    """The next logs of one day, newest first, below rowid `below` (none: the day is gone)."""
    try:
        cursor = conn.execute(
            f"SELECT id, doc FROM logs_{day} WHERE id < ? ORDER BY id DESC LIMIT ?",
            (below, _EXPORT_BATCH),
        )
    except sqlite3.OperationalError as error:
        if "no such table" in str(error):
            return []  # dropped by retention meanwhile
        raise
    return cursor.fetchall()


def _hash(log_id: str) -> int:
    """64 bits of the log_id for its index (equal hashes are told apart by the log_id)."""
    data = log_id.encode()
    return ((zlib.crc32(data) << 32) | zlib.adler32(data)) - (1 << 63)


_LogRow = tuple[int, int, int, int, int, str | None, bytes]
"""rowid, log_id hash, level, service, node, ingested_at, the log as JSON."""
_TextRow = tuple[int, str, str | None, str | None, str]
"""rowid, message, error_message, error_code, tags."""


@dataclass(slots=True)
class _Batch:
    """The rows of one day to insert, in three parallel lists."""

    ids: list[str] = field(default_factory=list)
    rows: list[_LogRow] = field(default_factory=list)
    text: list[_TextRow] = field(default_factory=list)

    def drop_stored(self, conn: sqlite3.Connection, day: int) -> None:
        """Leave out the logs whose log_id is stored already."""
        stored = conn.execute(
            f"SELECT doc FROM logs_{day} WHERE h IN (SELECT value FROM json_each(?))",
            (encode([row[1] for row in self.rows]),),
        ).fetchall()
        if stored:
            taken = {decode_log(doc).log_id for (doc,) in stored}
            keep = [i for i, log_id in enumerate(self.ids) if log_id not in taken]
            self.ids = [self.ids[i] for i in keep]
            self.rows = [self.rows[i] for i in keep]
            self.text = [self.text[i] for i in keep]

    def insert(self, conn: sqlite3.Connection, day: int, seq: int) -> int:
        """Store the rows in the day's tables; the sequence number after them."""
        if not self.rows:
            return seq
        # In rowid order (both lists alike, rowids being unique): FTS5 flushes its buffer
        # whenever a rowid goes back.
        self.rows.sort()
        self.text.sort()
        conn.execute("SAVEPOINT logs")
        try:
            conn.executemany(f"INSERT INTO logs_{day} VALUES (?, ?, ?, ?, ?, ?, ?)", self.rows)
        except sqlite3.IntegrityError:
            # Two logs of one millisecond collide only 2**20 logs apart: move them, rarely.
            conn.execute("ROLLBACK TO logs")
            seq = self._move_collisions(conn, day, seq)
            conn.executemany(f"INSERT INTO logs_{day} VALUES (?, ?, ?, ?, ?, ?, ?)", self.rows)
        conn.execute("RELEASE logs")
        conn.executemany(
            f"INSERT INTO text_{day} (rowid, message, error_message, error_code, tags) "
            "VALUES (?, ?, ?, ?, ?)",
            self.text,
        )
        _add_counts(conn, day, [(row[0] >> SHIFT, *row[2:5]) for row in self.rows], 1)
        conn.execute("UPDATE days SET logs = logs + ? WHERE day = ?", (len(self.rows), day))
        return seq

    def _move_collisions(self, conn: sqlite3.Connection, day: int, seq: int) -> int:
        taken = {
            rowid
            for (rowid,) in conn.execute(
                f"SELECT id FROM logs_{day} WHERE id IN (SELECT value FROM json_each(?))",
                (encode([row[0] for row in self.rows]),),
            )
        }
        for index, (row, text) in enumerate(zip(self.rows, self.text, strict=True)):
            rowid = row[0]
            while rowid in taken:
                seq += 1
                rowid = ((rowid >> SHIFT) << SHIFT) | (seq & SEQ_MASK)
            taken.add(rowid)
            self.rows[index] = (rowid, *row[1:])
            self.text[index] = (rowid, *text[1:])
        self.rows.sort()
        self.text.sort()
        return seq


def _text_values(rowid: int, log: Log, level: int, service: int, node: int) -> _TextRow:
    details = log.error_details
    return (
        rowid,
        log.message,
        details.error_message if details else None,
        details.error_code if details else None,
        f"zl{level} zs{service} zn{node}",
    )


def _add_counts(
    conn: sqlite3.Connection, day: int, keys: Iterable[tuple[int, int, int, int]], sign: int
) -> None:
    """Add (or with `sign` -1, take away) logs from the day's per-minute and half-hour counts."""
    minutes: Counter[tuple[int, int, int, int]] = Counter(
        (ms // 60_000, level, service, node) for ms, level, service, node in keys
    )
    halves: Counter[tuple[int, int, int, int]] = Counter()
    for (minute, level, service, node), n in minutes.items():
        halves[(minute // 30, level, service, node)] += n
    for tier, counter in ((60, minutes), (1800, halves)):
        conn.executemany(
            f"INSERT INTO agg{tier}_{day} VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT DO UPDATE SET n = n + excluded.n",
            [(*key, n * sign) for key, n in counter.items()],
        )
        if sign < 0:
            conn.execute(f"DELETE FROM agg{tier}_{day} WHERE n <= 0")


def _delete_oldest(conn: sqlite3.Connection, day: int, count: int) -> None:
    rows = conn.execute(
        f"SELECT id, level, service, node, doc FROM logs_{day} ORDER BY id LIMIT ?", (count,)
    ).fetchall()
    if not rows:
        return
    conn.executemany(
        f"INSERT INTO text_{day} (text_{day}, rowid, message, error_message, error_code, tags) "
        "VALUES ('delete', ?, ?, ?, ?, ?)",
        [_text_values(rowid, decode_log(doc), lv, sv, nd) for rowid, lv, sv, nd, doc in rows],
    )
    conn.execute(f"DELETE FROM logs_{day} WHERE id <= ?", (rows[-1][0],))
    _add_counts(conn, day, ((rowid >> SHIFT, lv, sv, nd) for rowid, lv, sv, nd, _ in rows), -1)
    conn.execute("UPDATE days SET logs = logs - ? WHERE day = ?", (len(rows), day))
