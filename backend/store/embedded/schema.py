"""The tables of the store's SQLite file, which writing and searching both rely on.

Per UTC day of the logs' own timestamps (like the daily Elasticsearch indices, so retention
drops whole tables):

* `logs_<day>`: one row per log. Its rowid is time-ordered: the timestamp in epoch
  milliseconds shifted left by `SHIFT` bits, plus a 20-bit sequence number, so `ORDER BY
  rowid DESC` is newest first at no cost. `h` (a 64-bit hash of the log_id, indexed) finds
  duplicates.
* `text_<day>`: a contentless FTS5 index under the same rowids over message, error_message,
  error_code, plus a `tags` column of made-up tokens for level, service and node (`zl2`,
  `zs7`, `zn12`), so a search with text and filters is one FTS5 query, and a filtered page
  is read from FTS5 without scanning the logs.
* `agg60_<day>`, `agg1800_<day>`: log counts per minute and per half hour (`TIERS`) by
  level, service and node, kept up to date on insert. Totals and histograms without text add
  up these rows, so they cost the same over a million logs as over a thousand.

Beside them: `days` (the days stored, with their log counts), `names` (the ids of service and
node names), `meta` (the sequence number), and `alerts` and `nodes` (their latest states).
"""

from __future__ import annotations

import sqlite3
from typing import Final

import msgspec

from backend.schemas import Level, Log
from backend.sqlite import transaction

SHIFT: Final = 20
SEQ_MASK: Final = (1 << SHIFT) - 1
TIERS: Final = (1800, 60)  # seconds per aggregate row, coarsest first
LEVEL_IDS: Final = {level: level.rank for level in Level}
SERVICE, NODE = 0, 1
"""The kinds of names in the `names` table."""

encode = msgspec.json.Encoder().encode
decode_log = msgspec.json.Decoder(Log).decode

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS names (
    id INTEGER PRIMARY KEY, kind INTEGER NOT NULL, name TEXT NOT NULL, UNIQUE (kind, name));
CREATE TABLE IF NOT EXISTS days (day INTEGER PRIMARY KEY, logs INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS alerts (
    alert_id TEXT PRIMARY KEY, version INTEGER NOT NULL, doc BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS nodes (
    node_id TEXT PRIMARY KEY, version INTEGER NOT NULL, doc BLOB NOT NULL);
INSERT OR IGNORE INTO meta VALUES ('seq', 0);
"""

_DAY_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS logs_{day} (
    id INTEGER PRIMARY KEY, h INTEGER NOT NULL, level INTEGER NOT NULL,
    service INTEGER NOT NULL, node INTEGER NOT NULL, ingested_at TEXT, doc BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS logs_{day}_h ON logs_{day} (h);
CREATE VIRTUAL TABLE IF NOT EXISTS text_{day} USING fts5 (
    message, error_message, error_code, tags, content='', columnsize=0,
    tokenize="unicode61 remove_diacritics 0 tokenchars '_'");
CREATE TABLE IF NOT EXISTS agg60_{day} (
    bucket INTEGER, level INTEGER, service INTEGER, node INTEGER, n INTEGER NOT NULL,
    PRIMARY KEY (bucket, level, service, node)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS agg1800_{day} (
    bucket INTEGER, level INTEGER, service INTEGER, node INTEGER, n INTEGER NOT NULL,
    PRIMARY KEY (bucket, level, service, node)) WITHOUT ROWID;
INSERT OR IGNORE INTO days (day) VALUES ({day});
"""


def create_schema(conn: sqlite3.Connection) -> None:
    """The fixed tables, if the file has none yet."""
    if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'meta'").fetchone():
        with transaction(conn, write=True):
            _script(conn, _SCHEMA)


def create_day(conn: sqlite3.Connection, day: int) -> None:
    """The tables of one day, if it has none yet (inside the caller's transaction)."""
    _script(conn, _DAY_SCHEMA.format(day=day))


def drop_day(conn: sqlite3.Connection, day: int) -> None:
    for table in (f"logs_{day}", f"text_{day}", f"agg60_{day}", f"agg1800_{day}"):
        conn.execute(f"DROP TABLE IF EXISTS {table}")
    conn.execute("DELETE FROM days WHERE day = ?", (day,))


def stored_days(conn: sqlite3.Connection) -> list[int]:
    """The days that have tables, newest first."""
    return [day for (day,) in conn.execute("SELECT day FROM days ORDER BY day DESC")]


class Names:
    """The ids of service and node names, remembered once seen (names are never deleted)."""

    def __init__(self) -> None:
        self.known: dict[tuple[int, str], int] = {}

    def add(
        self, conn: sqlite3.Connection, kind: int, name: str, new: dict[tuple[int, str], int]
    ) -> int:
        """The id of a name, stored if new; kept in `new` until its transaction commits."""
        key = (kind, name)
        found = new.get(key)
        if found is not None:
            return found
        conn.execute("INSERT OR IGNORE INTO names (kind, name) VALUES (?, ?)", key)
        (ident,) = conn.execute("SELECT id FROM names WHERE kind = ? AND name = ?", key).fetchone()
        new[key] = ident
        return int(ident)

    def remember(self, new: dict[tuple[int, str], int]) -> None:
        self.known.update(new)

    def find(self, conn: sqlite3.Connection, kind: int, name: str) -> int | None:
        """The id of a stored name; None if no log has it."""
        ident = self.known.get((kind, name))
        if ident is None:
            row = conn.execute(
                "SELECT id FROM names WHERE kind = ? AND name = ?", (kind, name)
            ).fetchone()
            if row is None:
                return None
            ident = self.known.setdefault((kind, name), int(row[0]))
        return ident


def _script(conn: sqlite3.Connection, script: str) -> None:
    """Statements one by one (`executescript` would commit the transaction around them)."""
    for statement in script.split(";\n"):
        if statement.strip():
            conn.execute(statement)
