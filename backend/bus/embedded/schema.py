"""The bus file's tables, and how a record's rowid places it in its partition.

- `topics` and `lanes`: each partition of a topic is a lane with its own next offset and
  the bytes its records take.
- `records`: one row a record under rowid `lane << 40 | offset`, so a partition is one
  contiguous rowid range and reading on from an offset is a range scan of the table.
- `latest`: for compacted topics, the offset of each key's latest record; writing a key
  deletes the record it replaces (an empty value, a tombstone, stays as the latest).
- `losses`: per partition, the records retention's hard cap deleted before every group
  that reads the topic had committed them (see `Retention`).
- `groups`, `members`, `owners`, `offsets`: consumer groups (see `groups.py`).
- `producers`: the epoch of each transactional id, for fencing.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from backend.sqlite import transaction, use_wal

Row = tuple[int, int, bytes | None, bytes | None, bytes]
"""A record as the file holds it: rowid, ts, key, packed headers, value."""
SHIFT = 40
MASK = (1 << SHIFT) - 1
"""`rowid & MASK` is a record's offset, `rowid >> SHIFT` its lane."""
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
SIZE = "length(value) + ifnull(length(key), 0) + ifnull(length(headers), 0)"
"""The bytes a record takes, as `lanes.bytes` counts them (SQLite reads a blob's length
without its content)."""

SELECT_RECORDS = (
    "SELECT rowid, ts, key, headers, value FROM records"
    " WHERE rowid >= ? AND rowid < ? ORDER BY rowid LIMIT ?"
)
PUT_OFFSET = (
    "INSERT INTO offsets (grp, lane, offset) VALUES (?, ?, ?)"
    " ON CONFLICT (grp, lane) DO UPDATE SET offset = excluded.offset"
)


def prepare(conn: sqlite3.Connection) -> None:
    """Set up a new connection to the bus file, creating the tables it does not hold yet."""
    conn.execute(f"PRAGMA page_size = {_PAGE_SIZE}")  # takes effect on a new file only
    use_wal(conn)
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute(f"PRAGMA cache_size = -{_CACHE_KIB}")
    conn.execute(f"PRAGMA journal_size_limit = {_WAL_LIMIT_BYTES}")
    with transaction(conn, write=True):
        for statement in _SCHEMA:
            conn.execute(statement)
        _count_lane_bytes(conn)


def _count_lane_bytes(conn: sqlite3.Connection) -> None:
    """Give a file written before lanes counted their bytes its `lanes.bytes`, once."""
    columns = {name for _, name, *_ in conn.execute("PRAGMA table_info(lanes)")}
    if "bytes" in columns:
        return
    conn.execute("ALTER TABLE lanes ADD COLUMN bytes INTEGER NOT NULL DEFAULT 0")
    conn.execute(
        f"UPDATE lanes SET bytes = (SELECT ifnull(sum({SIZE}), 0) FROM records"
        f" WHERE rowid >= lanes.id << {SHIFT} AND rowid < (lanes.id + 1) << {SHIFT})"
    )


def ends(conn: sqlite3.Connection, lanes: Sequence[int]) -> dict[int, int]:
    """The next offset of each of `lanes`."""
    return dict(
        conn.execute(
            f"SELECT id, next_offset FROM lanes WHERE id IN ({marks(len(lanes))})", tuple(lanes)
        ).fetchall()
    )


def marks(count: int) -> str:
    """The `?` placeholders of an `IN (...)` list of `count` values."""
    return ", ".join("?" * count)
