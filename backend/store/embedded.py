"""The store on SQLite with FTS5, so `logdeck demo` runs with Python alone.

One file holds everything; several processes may open it (an indexer writes while a console
searches): WAL mode, a busy timeout, and every SQLite call runs in a worker thread of its own
(one for writes, one for reads, each with its own connection), so the event loop stays free.
A locked or unreadable database raises `StoreUnavailable`, and callers retry.

Layout, per UTC day of the logs' own timestamps (like the daily Elasticsearch indices, so
retention drops whole tables):

* `logs_<day>`: one row per log. Its rowid is time-ordered: the timestamp in epoch
  milliseconds shifted left by 20 bits, plus a 20-bit sequence number, so `ORDER BY rowid
  DESC` is newest first at no cost. `h` (a 64-bit hash of the log_id, indexed) finds
  duplicates.
* `text_<day>`: a contentless FTS5 index under the same rowids over message, error_message,
  error_code, plus a `tags` column of made-up tokens for level, service and node (`zl2`,
  `zs7`, `zn12`), so a search with text and filters is one FTS5 query, and a filtered page
  is read from FTS5 without scanning the logs.
* `agg60_<day>`, `agg1800_<day>`: log counts per minute and per half hour by level,
  service and node, kept up to date on insert. Totals and histograms without text add up
  these rows (and count the logs of partial minutes at the edges of the time range), so they
  cost the same over a million logs as over a thousand.

Searches follow backend/store/search.py (Elasticsearch's `simple_query_string` with
`default_operator: and`): the text is parsed here the way Lucene's SimpleQueryParser reads it
(`"a phrase"`, `-not`, `a | b`, `a + b`, `(groups)`, `prefix*`, `\\` escapes) and turned
into an FTS5 expression in which every word is quoted, so no input can make FTS5 fail. What
FTS5 cannot do is said in `SearchResult.note`: fuzzy `word~2` and phrase slop `"a b"~3` are
searched exactly. A term that splits into several words (`PAY-502`, `10.0.0.1`) must match
them side by side, as a phrase, where Elasticsearch's standard analyzer keeps some of them
whole. Hits are sorted newest first by timestamp (milliseconds), then log_id, descending,
with the histogram buckets of `histogram_interval` between the first and the last hit.

`max_logs` caps the store: past it the oldest logs are deleted first. `retention_days` drops
whole days, as `delete_logs_before` does, checked at most every ten minutes while writing.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import re
import sqlite3
import threading
import time
import zlib
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Final, Literal, TypeVar

import msgspec

from backend.schemas import Alert, Level, Log, NodeEntry
from backend.sqlite import use_wal
from backend.store.base import BulkOutcome, Rejection, Snapshot, StoredLog, StoreUnavailable
from backend.store.query import (
    MAX_TEXT_CHARS,
    LogQuery,
    SearchResult,
    histogram_interval,
    text_note,
)

T = TypeVar("T")

DEFAULT_MAX_LOGS: Final = 5_000_000
BUSY_TIMEOUT_MS: Final = 5_000
PAGE_SIZE: Final = 16_384

_SHIFT: Final = 20
_SEQ_MASK: Final = (1 << _SHIFT) - 1
_MAX_MILLIS: Final = 1 << 42  # rowids stay below 2**62 (until the year 2109)
_TIERS: Final = (1800, 60)  # seconds per aggregate row, coarsest first
_DAY_MS: Final = 86_400_000
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_TEXT_COLUMNS: Final = "{message error_message error_code}"
_LEVEL_IDS: Final = {level: level.rank for level in Level}
_SERVICE, _NODE = 0, 1
_EXACT_COUNT_LIMIT: Final = 5_000
"""Above this many text hits in a day, the histogram is counted bucket by bucket (no sort)."""
_PRUNE_CHUNK: Final = 20_000
_EXPORT_BATCH: Final = 5_000
_MAX_ROWID: Final = (1 << 63) - 1
_RETENTION_EVERY_S: Final = 600.0
_MAX_DEPTH: Final = 32
_MAX_EXPANSION: Final = 64
"""A `prefix*` standing for at most this many words is searched as an OR of them."""
_WORD: Final = re.compile(r"\w+")
_encode = msgspec.json.Encoder().encode
_decode_log = msgspec.json.Decoder(Log).decode
_decode_alert = msgspec.json.Decoder(Alert).decode
_decode_node = msgspec.json.Decoder(NodeEntry).decode

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


class EmbeddedStore:
    """The `Store` on one SQLite file (see the module's docstring)."""

    def __init__(
        self,
        path: Path,
        retention_days: int = 7,
        max_logs: int | None = DEFAULT_MAX_LOGS,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._path = Path(path)
        self._clock = clock
        self._retention_days = retention_days
        self._max_logs = max_logs
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="logdeck-sqlite-write")
        self._reader = ThreadPoolExecutor(1, thread_name_prefix="logdeck-sqlite-read")
        self._local = threading.local()
        self._open: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._names: dict[tuple[int, str], int] = {}
        self._known_days: set[int] = set()
        self._retention_checked = -math.inf

    @property
    def path(self) -> Path:
        return self._path

    # The Store protocol ---------------------------------------------------------------------

    async def ensure_schema(self) -> None:
        await self._write(lambda conn: None)

    async def healthy(self) -> bool:
        try:
            await self._read(lambda conn: conn.execute("SELECT count(*) FROM days").fetchone())
        except StoreUnavailable:
            return False
        return True

    async def index_logs(self, logs: Sequence[StoredLog]) -> BulkOutcome:
        if not logs:
            return BulkOutcome()
        outcome = await self._write(functools.partial(self._index_logs, logs))
        if time.monotonic() - self._retention_checked >= _RETENTION_EVERY_S:
            self._retention_checked = time.monotonic()
            cutoff = (self._clock() - timedelta(days=self._retention_days)).date()
            await self.delete_logs_before(cutoff)
        return outcome

    async def put_snapshots(self, snapshots: Sequence[Snapshot]) -> BulkOutcome:
        if not snapshots:
            return BulkOutcome()
        return await self._write(functools.partial(_put_snapshots, snapshots))

    async def search_logs(self, query: LogQuery) -> SearchResult:
        now = self._clock()
        return await self._read(functools.partial(self._search, query, now))

    async def delete_logs_before(self, day: date) -> list[str]:
        return await self._write(functools.partial(self._drop_days_before, day))

    async def export_logs(self) -> AsyncIterator[list[Log]]:
        days = await self._read(
            lambda conn: [day for (day,) in conn.execute("SELECT day FROM days ORDER BY day DESC")]
        )
        for day in days:
            below = _MAX_ROWID
            while True:
                rows = await self._read(functools.partial(_export_page, day, below))
                if not rows:
                    break
                yield [_decode_log(doc) for _, doc in rows]
                below = rows[-1][0]

    async def stored_alerts(self) -> list[Alert]:
        rows = await self._read(
            lambda conn: conn.execute("SELECT doc FROM alerts ORDER BY alert_id").fetchall()
        )
        return [_decode_alert(doc) for (doc,) in rows]

    async def stored_nodes(self) -> list[NodeEntry]:
        rows = await self._read(
            lambda conn: conn.execute("SELECT doc FROM nodes ORDER BY node_id").fetchall()
        )
        return [_decode_node(doc) for (doc,) in rows]

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        for executor in (self._writer, self._reader):
            with contextlib.suppress(RuntimeError):
                await loop.run_in_executor(executor, self._close_connection)
            executor.shutdown(wait=False)

    # Threads and connections ----------------------------------------------------------------

    async def _write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        return await self._run(self._writer, work)

    async def _read(self, work: Callable[[sqlite3.Connection], T]) -> T:
        return await self._run(self._reader, work)

    async def _run(
        self, executor: ThreadPoolExecutor, work: Callable[[sqlite3.Connection], T]
    ) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(executor, self._call, work)
        except RuntimeError as error:  # the executor was shut down
            raise StoreUnavailable(f"the store at {self._path} is closed") from error

    def _call(self, work: Callable[[sqlite3.Connection], T]) -> T:
        try:
            conn = self._connection()
            return work(conn)
        except sqlite3.OperationalError as error:
            raise StoreUnavailable(f"SQLite at {self._path}: {error}") from error
        except sqlite3.DatabaseError as error:
            if isinstance(error, sqlite3.IntegrityError | sqlite3.ProgrammingError):
                raise
            raise StoreUnavailable(f"SQLite at {self._path}: {error}") from error
        except OSError as error:  # its folder cannot be made
            raise StoreUnavailable(f"cannot open {self._path}: {error}") from error

    def _connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        self._path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=True)
        try:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.execute(f"PRAGMA page_size = {PAGE_SIZE}")  # a new file only: measured faster
            use_wal(conn)
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA cache_size = -65536")
            conn.execute("PRAGMA mmap_size = 1073741824")
            conn.execute("PRAGMA temp_store = MEMORY")
            conn.execute("PRAGMA journal_size_limit = 67108864")
            if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'meta'").fetchone():
                with _transaction(conn, immediate=True):
                    _script(conn, _SCHEMA)
        except BaseException:
            conn.close()
            raise
        self._local.conn = conn
        with self._lock:
            self._open.append(conn)
        return conn

    def _close_connection(self) -> None:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            self._local.conn = None
            with self._lock:
                self._open.remove(conn)
            conn.close()

    # Writing --------------------------------------------------------------------------------

    def _index_logs(self, logs: Sequence[StoredLog], conn: sqlite3.Connection) -> BulkOutcome:
        """One transaction; the loop is the hot path of ingestion, hence its plain style."""
        outcome = BulkOutcome()
        batches: dict[int, _Batch] = {}
        seen: set[str] = set()
        names = self._names
        new_names: dict[tuple[int, str], int] = {}
        stamps = _Stamps()
        tags: dict[tuple[int, int, int], str] = {}
        encode = _encode
        with _transaction(conn, immediate=True):
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
                service = names.get((_SERVICE, log.service_name))
                if service is None:
                    service = self._name_id(conn, _SERVICE, log.service_name, new_names)
                node = names.get((_NODE, log.node_id))
                if node is None:
                    node = self._name_id(conn, _NODE, log.node_id, new_names)
                level = _LEVEL_IDS[log.log_level]
                seq += 1
                rowid = (ms << _SHIFT) | (seq & _SEQ_MASK)
                batch = batches.get(day)
                if batch is None:
                    batch = batches[day] = _Batch()
                batch.ids.append(log_id)
                batch.rows.append(
                    (rowid, _hash(log_id), level, service, node, item.ingested_at, encode(log))
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
        names.update(new_names)
        if self._max_logs is not None and (stored or 0) > self._max_logs:
            self._enforce_cap(conn)
        return outcome

    def _name_id(
        self, conn: sqlite3.Connection, kind: int, name: str, new: dict[tuple[int, str], int]
    ) -> int:
        key = (kind, name)
        found = new.get(key)
        if found is not None:
            return found
        conn.execute("INSERT OR IGNORE INTO names (kind, name) VALUES (?, ?)", key)
        (ident,) = conn.execute("SELECT id FROM names WHERE kind = ? AND name = ?", key).fetchone()
        new[key] = ident
        return int(ident)

    def _ensure_day(self, conn: sqlite3.Connection, day: int) -> None:
        if (
            day in self._known_days
            and conn.execute("SELECT 1 FROM days WHERE day = ?", (day,)).fetchone()
        ):
            return
        _script(conn, _DAY_SCHEMA.format(day=day))
        self._known_days.add(day)

    def _enforce_cap(self, conn: sqlite3.Connection) -> None:
        """Delete the oldest logs while there are more than `max_logs`."""
        assert self._max_logs is not None
        while True:
            with _transaction(conn, immediate=True):
                days = conn.execute("SELECT day, logs FROM days ORDER BY day").fetchall()
                excess = sum(logs for _, logs in days) - self._max_logs
                if excess <= 0 or not days:
                    return
                day, logs = days[0]
                if logs <= excess:
                    _drop_day(conn, day)
                    self._known_days.discard(day)
                    continue
                _delete_oldest(conn, day, min(excess, _PRUNE_CHUNK))

    def _drop_days_before(self, cutoff: date, conn: sqlite3.Connection) -> list[str]:
        limit = cutoff.year * 10000 + cutoff.month * 100 + cutoff.day
        dropped: list[str] = []
        with _transaction(conn, immediate=True):
            for (day,) in conn.execute("SELECT day FROM days WHERE day < ?", (limit,)).fetchall():
                _drop_day(conn, day)
                self._known_days.discard(day)
                dropped.append(_day_name(day))
        return dropped

    # Searching ------------------------------------------------------------------------------

    def _search(self, query: LogQuery, now: datetime, conn: sqlite3.Connection) -> SearchResult:
        started = time.perf_counter()
        with _transaction(conn):
            filters = self._resolve(conn, query)
            try:
                result = _Search(conn, query, now, filters).run()
            except sqlite3.OperationalError as error:
                if "fts5" not in str(error):
                    raise
                # Not expected from any text; should FTS5 still refuse, search the bare words.
                words = " ".join(_WORD.findall(query.text[:MAX_TEXT_CHARS]))
                result = _Search(conn, replace(query, text=words), now, filters).run()
                reason = f"the text was searched as plain words ({error})"
                result.note = f"{result.note}; {reason}" if result.note else reason
        took = (time.perf_counter() - started) * 1000
        return SearchResult(result.total, result.logs, result.histogram, took, result.note)

    def _resolve(self, conn: sqlite3.Connection, query: LogQuery) -> _Filters:
        def ids(kind: int, names: frozenset[str]) -> list[int] | None:
            if not names:
                return None
            found: list[int] = []
            for name in sorted(names):
                ident = self._names.get((kind, name))
                if ident is None:
                    row = conn.execute(
                        "SELECT id FROM names WHERE kind = ? AND name = ?", (kind, name)
                    ).fetchone()
                    if row is None:
                        continue
                    ident = self._names.setdefault((kind, name), int(row[0]))
                found.append(ident)
            return found

        levels = sorted(_LEVEL_IDS[level] for level in query.levels) if query.levels else None
        return _Filters(levels, ids(_SERVICE, query.services), ids(_NODE, query.nodes))


# Writing, in the writer's thread ------------------------------------------------------------


class _Stamps:
    """Epoch milliseconds and UTC day of timestamps; `...T10:15:30.123Z` costs a few slices."""

    def __init__(self) -> None:
        self._minutes: dict[str, tuple[int, int]] = {}

    def read(self, stamp: str) -> tuple[int, int]:
        if len(stamp) == 24 and stamp[23] == "Z" and stamp[19] == "." and stamp[16] == ":":
            minute = self._minutes.get(stamp[:16])
            if minute is None:
                minute = self._minute(stamp[:16])
            if minute is not None:
                seconds, millis = stamp[17:19], stamp[20:23]
                if seconds.isdigit() and millis.isdigit() and seconds < "60":
                    return minute[0] + int(seconds) * 1000 + int(millis), minute[1]
        ms = _to_millis(datetime.fromisoformat(stamp).astimezone(UTC))
        return self._check(ms, stamp), _day_number((_EPOCH + timedelta(milliseconds=ms)).date())

    def _minute(self, head: str) -> tuple[int, int] | None:
        """`2026-11-24T10:15` as its first millisecond and day; None if it is not that shape."""
        try:
            moment = datetime.strptime(head, "%Y-%m-%dT%H:%M").replace(tzinfo=UTC)
        except ValueError:
            return None
        found = self._minutes[head] = (self._check(_to_millis(moment), head), _day_number(moment))
        return found

    @staticmethod
    def _check(ms: int, stamp: str) -> int:
        if not 0 <= ms < _MAX_MILLIS - _DAY_MS:
            raise ValueError(
                f"timestamp {stamp!r} is outside 1970-2108, which the embedded store cannot order"
            )
        return ms


def _day_number(day: date) -> int:
    return day.year * 10000 + day.month * 100 + day.day


def _to_millis(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def _query_millis(moment: datetime) -> int:
    """Like `iso_millis` in the Elasticsearch query: a naive time is local time."""
    return _to_millis(moment.astimezone(UTC))


def _day_bounds(day: int) -> tuple[int, int]:
    start = _to_millis(datetime(day // 10000, day // 100 % 100, day % 100, tzinfo=UTC))
    return start, start + _DAY_MS


def _day_name(day: int) -> str:
    return f"logs-{day // 10000:04d}.{day // 100 % 100:02d}.{day % 100:02d}"


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
            (_encode([row[1] for row in self.rows]),),
        ).fetchall()
        if stored:
            taken = {_decode_log(doc).log_id for (doc,) in stored}
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
        _add_counts(conn, day, [(row[0] >> _SHIFT, *row[2:5]) for row in self.rows], 1)
        conn.execute("UPDATE days SET logs = logs + ? WHERE day = ?", (len(self.rows), day))
        return seq

    def _move_collisions(self, conn: sqlite3.Connection, day: int, seq: int) -> int:
        taken = {
            rowid
            for (rowid,) in conn.execute(
                f"SELECT id FROM logs_{day} WHERE id IN (SELECT value FROM json_each(?))",
                (_encode([row[0] for row in self.rows]),),
            )
        }
        for index, (row, text) in enumerate(zip(self.rows, self.text, strict=True)):
            rowid = row[0]
            while rowid in taken:
                seq += 1
                rowid = ((rowid >> _SHIFT) << _SHIFT) | (seq & _SEQ_MASK)
            taken.add(rowid)
            self.rows[index] = (rowid, *row[1:])
            self.text[index] = (rowid, *text[1:])
        self.rows.sort()
        self.text.sort()
        return seq


def _text_values(
    rowid: int, log: Log, level: int, service: int, node: int
) -> tuple[int, str, str | None, str | None, str]:
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
        [_text_values(rowid, _decode_log(doc), lv, sv, nd) for rowid, lv, sv, nd, doc in rows],
    )
    conn.execute(f"DELETE FROM logs_{day} WHERE id <= ?", (rows[-1][0],))
    _add_counts(conn, day, ((rowid >> _SHIFT, lv, sv, nd) for rowid, lv, sv, nd, _ in rows), -1)
    conn.execute("UPDATE days SET logs = logs - ? WHERE day = ?", (len(rows), day))


def _drop_day(conn: sqlite3.Connection, day: int) -> None:
    for table in (f"logs_{day}", f"text_{day}", f"agg60_{day}", f"agg1800_{day}"):
        conn.execute(f"DROP TABLE IF EXISTS {table}")
    conn.execute("DELETE FROM days WHERE day = ?", (day,))


def _export_page(day: int, below: int, conn: sqlite3.Connection) -> list[tuple[int, bytes]]:
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


def _put_snapshots(snapshots: Sequence[Snapshot], conn: sqlite3.Connection) -> BulkOutcome:
    alerts: list[tuple[str, int, bytes]] = []
    nodes: list[tuple[str, int, bytes]] = []
    for snapshot in snapshots:
        state = snapshot.state
        if isinstance(state, Alert):
            alerts.append((state.alert_id, snapshot.version, _encode(state)))
        else:
            nodes.append((state.node_id, snapshot.version, _encode(state)))
    stored = 0
    with _transaction(conn, immediate=True):
        for table, key, rows in (("alerts", "alert_id", alerts), ("nodes", "node_id", nodes)):
            if rows:
                # Like external versioning: only a strictly newer version replaces a state.
                cursor = conn.executemany(
                    f"INSERT INTO {table} VALUES (?, ?, ?) ON CONFLICT ({key}) DO UPDATE SET "
                    f"version = excluded.version, doc = excluded.doc "
                    f"WHERE excluded.version > {table}.version",
                    rows,
                )
                stored += cursor.rowcount
    return BulkOutcome(stored=stored, duplicates=len(snapshots) - stored)


def _script(conn: sqlite3.Connection, script: str) -> None:
    """Statements one by one (`executescript` would commit the transaction around them)."""
    for statement in script.split(";\n"):
        if statement.strip():
            conn.execute(statement)


@contextlib.contextmanager
def _transaction(conn: sqlite3.Connection, *, immediate: bool = False) -> Any:
    conn.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
    try:
        yield
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


# Searching, in the reader's thread ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Filters:
    """Ids of the levels, services and nodes asked for; None: no filter on that field."""

    levels: list[int] | None
    services: list[int] | None
    nodes: list[int] | None

    @property
    def impossible(self) -> bool:
        """A filter on names none of which is stored: nothing can match."""
        return self.services == [] or self.nodes == []

    def sql(self) -> str:
        """The filters as a WHERE fragment over `level`, `service`, `node` columns."""
        parts = [
            f" AND {column} IN ({','.join(map(str, ids))})"
            for column, ids in (
                ("level", self.levels),
                ("service", self.services),
                ("node", self.nodes),
            )
            if ids
        ]
        return "".join(parts)

    def match(self) -> list[str]:
        """The filters as FTS5 expressions over the `tags` column."""
        return [
            "({tags} : (" + " OR ".join(f"z{tag}{ident}" for ident in ids) + "))"
            for tag, ids in (("l", self.levels), ("s", self.services), ("n", self.nodes))
            if ids
        ]


@dataclass(slots=True)
class _Found:
    total: int
    logs: list[Log]
    histogram: list[tuple[datetime, int]]
    note: str | None


class _Search:
    """One search, inside one read transaction (a consistent snapshot of every table)."""

    def __init__(
        self, conn: sqlite3.Connection, query: LogQuery, now: datetime, filters: _Filters
    ) -> None:
        self.conn = conn
        self.query = query
        self.filters = filters
        self.interval_ms = histogram_interval(query.since, query.until, now) * 1000
        self.lo = _query_millis(query.since) if query.since else None
        self.hi = _query_millis(query.until) + 1 if query.until else None  # exclusive
        text = query.text.strip()[:MAX_TEXT_CHARS]
        self.parsed = _parse(text) if text else None
        notes = [note for note in (text_note(query),) if note]
        if self.parsed:
            notes += self.parsed.notes
        self.note = "; ".join(notes) or None
        node = self.parsed.node if self.parsed else None
        self.node = None if node is None or isinstance(node, _All) else node
        self.text = self.node is not None
        self.prefix = False
        self.match: str | None = None

    def run(self) -> _Found:
        if self.filters.impossible or (self.parsed is not None and self.parsed.node is None):
            return _Found(0, [], [], self.note)
        days = []
        for day, start, end in self._days():
            a = start if self.lo is None else max(start, self.lo)
            b = end if self.hi is None else min(end, self.hi)
            if a < b:
                days.append((day, a, b))
        parts = self.filters.match()
        if self.node is not None:
            expansions = self._expand(self.node, [day for day, *_ in days])
            self.prefix = _native_prefix(self.node, expansions)
            parts.insert(0, _render(self.node, expansions))
        self.match = " AND ".join(parts) if parts else None
        counts: Counter[int] = Counter()
        totals: list[tuple[int, int, int, int]] = []  # day, from, to (ms), hits
        for day, a, b in days:
            day_counts = self._text_counts(day, a, b) if self.text else self._counts(day, a, b)
            hits = sum(day_counts.values())
            if hits:
                counts.update(day_counts)
                totals.append((day, a, b, hits))
        if not totals:
            return _Found(0, [], [], self.note)
        total = sum(hits for *_, hits in totals)
        return _Found(total, self._page(totals), self._histogram(counts), self.note)

    def _expand(self, node: _Node, days: list[int]) -> dict[str, list[str]]:
        """The indexed words each `prefix*` of one word stands for, if not too many.

        FTS5 merges the doclists of a prefix into one in memory at every query (and a
        search makes two or more); an OR of the words streams, like a single word.
        """
        expansions: dict[str, list[str]] = {}
        for prefix in _prefixes(node):
            words: set[str] = set()
            for day in days:
                vocabulary = f"temp.vocab_{day}"
                self.conn.execute(
                    f"CREATE VIRTUAL TABLE IF NOT EXISTS {vocabulary} "
                    f"USING fts5vocab(main, text_{day}, 'row')"
                )
                words.update(
                    word
                    for (word,) in self.conn.execute(
                        f"SELECT term FROM {vocabulary} WHERE term >= ? AND term < ? LIMIT ?",
                        (prefix, _after_prefix(prefix), _MAX_EXPANSION + 1),
                    )
                )
                if len(words) > _MAX_EXPANSION:
                    break
            if len(words) <= _MAX_EXPANSION:
                expansions[prefix] = sorted(words)
        return expansions

    def _days(self) -> list[tuple[int, int, int]]:
        found = []
        for (day,) in self.conn.execute("SELECT day FROM days ORDER BY day DESC"):
            start, end = _day_bounds(day)
            found.append((day, start, end))
        return found

    # Totals and histograms

    def _counts(self, day: int, a: int, b: int) -> Counter[int]:
        """Hits per bucket without text: from the aggregates, raw logs at the edges."""
        tiers = [tier for tier in _TIERS if self.interval_ms % (tier * 1000) == 0]
        return self._tiered(day, a, b, tiers)

    def _tiered(self, day: int, a: int, b: int, tiers: list[int]) -> Counter[int]:
        counts: Counter[int] = Counter()
        if a >= b:
            return counts
        where = self.filters.sql()
        if not tiers:
            rows = self.conn.execute(
                f"SELECT (id >> {_SHIFT}) / {self.interval_ms}, count(*) FROM logs_{day} "
                f"WHERE id >= ? AND id < ?{where} GROUP BY 1",
                (a << _SHIFT, b << _SHIFT),
            )
            counts.update(dict(rows))
            return counts
        unit = tiers[0] * 1000
        first, last = -(-a // unit), b // unit  # whole units inside [a, b)
        if first >= last:
            return self._tiered(day, a, b, tiers[1:])
        rows = self.conn.execute(
            f"SELECT bucket / {self.interval_ms // unit}, sum(n) FROM agg{tiers[0]}_{day} "
            f"WHERE bucket >= ? AND bucket < ?{where} GROUP BY 1",
            (first, last),
        )
        counts.update(dict(rows))
        counts.update(self._tiered(day, a, first * unit, tiers[1:]))
        counts.update(self._tiered(day, last * unit, b, tiers[1:]))
        return counts

    def _text_counts(self, day: int, a: int, b: int) -> Counter[int]:
        """Hits per bucket with text, from FTS5: sorted by SQL if few, else bucket by bucket."""
        table = f"text_{day}"
        where = f"{table} MATCH ? AND rowid >= ? AND rowid < ?"
        counts: Counter[int] = Counter()
        first, last = self.conn.execute(  # two subqueries: each is then one B-tree descent
            f"SELECT (SELECT min(id) FROM logs_{day}), (SELECT max(id) FROM logs_{day})"
        ).fetchone()
        if first is None:
            return counts
        a, b = max(a, first >> _SHIFT), min(b, (last >> _SHIFT) + 1)  # no empty buckets
        if a >= b:
            return counts
        if not self.prefix:  # a prefix is expanded at every query: never count it twice
            (hits,) = self.conn.execute(
                f"SELECT count(*) FROM (SELECT rowid FROM {table} WHERE {where} "
                f"LIMIT {_EXACT_COUNT_LIMIT + 1})",
                (self.match, a << _SHIFT, b << _SHIFT),
            ).fetchone()
            if hits == 0:
                return counts
            if hits > _EXACT_COUNT_LIMIT:
                step = self.interval_ms
                for bucket in range(a // step, (b - 1) // step + 1):
                    start, end = max(a, bucket * step), min(b, (bucket + 1) * step)
                    (n,) = self.conn.execute(
                        f"SELECT count(*) FROM {table} WHERE {where}",
                        (self.match, start << _SHIFT, end << _SHIFT),
                    ).fetchone()
                    if n:
                        counts[bucket] = n
                return counts
        rows = self.conn.execute(
            f"SELECT (rowid >> {_SHIFT}) / {self.interval_ms}, count(*) FROM {table} "
            f"WHERE {where} GROUP BY 1",
            (self.match, a << _SHIFT, b << _SHIFT),
        )
        counts.update(dict(rows))
        return counts

    def _histogram(self, counts: Counter[int]) -> list[tuple[datetime, int]]:
        """Every bucket from the first hit's to the last's, as Elasticsearch gives them."""
        first, last = min(counts), max(counts)
        step = self.interval_ms
        return [
            (_EPOCH + timedelta(milliseconds=bucket * step), counts.get(bucket, 0))
            for bucket in range(first, last + 1)
        ]

    # The page

    def _page(self, totals: list[tuple[int, int, int, int]]) -> list[Log]:
        """The page, newest first by timestamp then log_id.

        Rowids order by timestamp but not by log_id within a millisecond, so a few more
        rows are read on both sides of the page: once the millisecond at each end of the
        page is complete among them, sorting them gives the exact page.
        """
        size = self.query.page_size
        offset = self.query.page * size
        if size <= 0 or offset >= sum(hits for *_, hits in totals):
            return []
        margin = 4
        while True:
            start = max(0, offset - margin)
            rows = self._rows(totals, start, offset + size + margin - start)
            window = rows[offset - start : offset - start + size]
            if not window:
                return []
            top, bottom = window[0][0], window[-1][0]
            head_complete = start == 0 or rows[0][0] > top
            tail_complete = len(rows) < offset + size + margin - start or rows[-1][0] < bottom
            if (head_complete and tail_complete) or margin >= 4096:
                break
            margin *= 4
        rows.sort(key=lambda row: (row[0], row[1].log_id), reverse=True)
        return [log for _, log in rows[offset - start : offset - start + size]]

    def _rows(
        self, totals: list[tuple[int, int, int, int]], offset: int, limit: int
    ) -> list[tuple[int, Log]]:
        """`limit` hits from `offset` in rowid order (newest first): (millisecond, log)."""
        found: list[tuple[int, Log]] = []
        for day, a, b, hits in totals:
            if offset >= hits:
                offset -= hits
                continue
            if self.match is None:
                sql = (
                    f"SELECT id, doc FROM logs_{day} WHERE id >= ? AND id < ? "
                    "ORDER BY id DESC LIMIT ? OFFSET ?"
                )
                params: tuple[Any, ...] = (a << _SHIFT, b << _SHIFT, limit, offset)
            else:
                table = f"text_{day}"
                sql = (
                    f"SELECT l.id, l.doc FROM (SELECT rowid AS r FROM {table} "
                    f"WHERE {table} MATCH ? AND rowid >= ? AND rowid < ? "
                    f"ORDER BY rowid DESC LIMIT ? OFFSET ?) JOIN logs_{day} l ON l.id = r "
                    "ORDER BY l.id DESC"
                )
                params = (self.match, a << _SHIFT, b << _SHIFT, limit, offset)
            batch = self.conn.execute(sql, params).fetchall()
            found += [(rowid >> _SHIFT, _decode_log(doc)) for rowid, doc in batch]
            limit -= len(batch)
            offset = 0
            if limit <= 0:
                break
        return found


# Reading the search text as Elasticsearch's simple_query_string does --------------------------


@dataclass(frozen=True, slots=True)
class _Words:
    """Words that must follow each other (one word: a term); `prefix`: the last one starts."""

    words: tuple[str, ...]
    prefix: bool = False


@dataclass(frozen=True, slots=True)
class _Not:
    node: _Node


@dataclass(frozen=True, slots=True)
class _Bool:
    op: Literal["AND", "OR"]
    nodes: tuple[_Node, ...]


@dataclass(frozen=True, slots=True)
class _All:
    """`*` alone: every log."""


_Node = _Words | _Not | _Bool | _All


@dataclass(slots=True)
class _Parsed:
    node: _Node | None
    notes: list[str]


@dataclass(slots=True)
class _State:
    top: _Node | None = None
    previous: Literal["AND", "OR"] | None = None
    current: Literal["AND", "OR"] | None = None
    negate: int = 0


_OPERATOR_WORDS: Final = frozenset({"AND", "OR", "NOT"})
_FINISHES: Final = frozenset('"|+() \t\n\r')


@dataclass(slots=True)
class _Parser:
    """Lucene's SimpleQueryParser with every operator on, producing `_Node`s."""

    text: str
    ignored: list[str] = field(default_factory=list)
    notes: dict[str, None] = field(default_factory=dict)

    def parse(self) -> _Parsed:
        if self.text.strip() == "*":
            return _Parsed(_All(), [])
        node = self._sub(0, len(self.text), 0)
        if self.ignored:
            shown = ", ".join(f"'{fragment[:20]}'" for fragment in self.ignored[:5])
            more = f" and {len(self.ignored) - 5} more" if len(self.ignored) > 5 else ""
            self.notes[f"ignored {shown}{more}: no letters or digits to search for"] = None
        if node is None:
            self.notes["nothing to search for in the text, so nothing matches"] = None
        return _Parsed(node, list(self.notes))

    def _sub(self, index: int, end: int, depth: int) -> _Node | None:
        state = _State()
        text = self.text
        while index < end:
            char = text[index]
            if char == "(":
                index = self._group(state, index, end, depth)
            elif char == ")":
                index += 1
            elif char == '"':
                index = self._phrase(state, index, end)
            elif char in "+|":
                if state.current is None and state.top is not None:
                    state.current = "AND" if char == "+" else "OR"
                index += 1
            elif char == "-":
                state.negate += 1
                index += 1
                continue
            elif char in " \t\n\r":
                index += 1
            else:
                index = self._token(state, index, end)
            state.negate = 0
        return state.top

    def _group(self, state: _State, index: int, end: int, depth: int) -> int:
        start = index = index + 1
        level, escaped = 1, False
        while index < end:
            char = self.text[index]
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == "(":
                level += 1
            elif char == ")":
                level -= 1
                if level == 0:
                    break
            index += 1
        if index >= end:
            self.notes["an unmatched '(' was ignored"] = None
            return start
        if index == start:
            state.current = None
            return index + 1
        if depth >= _MAX_DEPTH:
            # Read on as if there were no parenthesis; the stray ')' is skipped later.
            self.notes[f"groups nested deeper than {_MAX_DEPTH} were flattened"] = None
            return start
        self._build(state, self._sub(start, index, depth + 1))
        return index + 1

    def _phrase(self, state: _State, index: int, end: int) -> int:
        start = index = index + 1
        chars: list[str] = []
        escaped = slop = False
        while index < end:
            char = self.text[index]
            if not escaped:
                if char == "\\":
                    escaped = True
                    index += 1
                    continue
                if char == '"':
                    if index + 1 < end and self.text[index + 1] == "~":
                        index += 1
                        slop = index + 1 < end
                    break
            escaped = False
            chars.append(char)
            index += 1
        if index >= end:
            self.notes["an unmatched '\"' was ignored"] = None
            return start
        if index == start:
            state.current = None
            return index + 1
        if slop:
            self.notes['phrase slop ("..."~N) is not supported: searched as an exact phrase'] = None
            index = self._skip_token(index)
        self._build(state, self._words("".join(chars), prefix=False))
        return index + 1

    def _token(self, state: _State, index: int, end: int) -> int:
        chars: list[str] = []
        escaped = prefix = fuzzy = False
        while index < end:
            char = self.text[index]
            if not escaped:
                if char == "\\":
                    escaped, prefix = True, False
                    index += 1
                    continue
                if char in _FINISHES:
                    break
                if chars and char == "~":
                    fuzzy = True
                    break
                prefix = bool(chars) and char == "*"
            escaped = False
            chars.append(char)
            index += 1
        if fuzzy:
            self.notes["fuzzy matching (word~N) is not supported: searched exactly"] = None
            index = self._skip_token(index) + 1
        if chars:
            token = "".join(chars[:-1] if prefix else chars)
            # A prefix counts only if it ends in a letter or digit ("foo-*" is just "foo").
            self._build(state, self._words(token, prefix=prefix and bool(_WORD.match(token[-1:]))))
        return index

    def _skip_token(self, index: int) -> int:
        """The index of the last character of the `~N` at `index`."""
        while index + 1 < len(self.text) and self.text[index + 1] not in _FINISHES:
            index += 1
        return index

    def _words(self, text: str, *, prefix: bool) -> _Words | None:
        words = tuple(_WORD.findall(text))
        if not words:
            if text.strip():
                self.ignored.append(text.strip())
            return None
        if len(words) == 1 and words[0] in _OPERATOR_WORDS:
            self.notes[
                f"'{words[0]}' was searched as a word: use + for and, | for or, - for not"
            ] = None
        return _Words(words, prefix)

    def _build(self, state: _State, branch: _Node | None) -> None:
        if branch is None:
            return
        if state.negate % 2:
            branch = _Not(branch)
        if state.top is None:
            state.top = branch
        else:
            op = state.current or "AND"
            top = state.top
            if state.previous == op and isinstance(top, _Bool) and top.op == op:
                state.top = _Bool(op, (*top.nodes, branch))
            else:
                state.top = _Bool(op, (top, branch))
            state.previous = op
        state.current = None


def _parse(text: str) -> _Parsed:
    return _Parser(text).parse()


_EVERY_LEVEL: Final = "({tags} : (" + " OR ".join(f"zl{rank}" for rank in range(4)) + "))"


def _render(node: _Node, expansions: dict[str, list[str]] | None = None) -> str:
    """An FTS5 expression: every word quoted, so no text can be a syntax error."""
    if isinstance(node, _Words):
        words = (expansions or {}).get(node.words[0].lower()) if _single_prefix(node) else None
        if words:
            quoted = " OR ".join('"' + word.replace('"', '""') + '"' for word in words)
            return f"({_TEXT_COLUMNS} : ({quoted}))"
        phrase = '"' + " ".join(node.words) + '"' + (" *" if node.prefix else "")
        return f"({_TEXT_COLUMNS} : {phrase})"
    if isinstance(node, _All):
        return _EVERY_LEVEL
    if isinstance(node, _Not):
        return f"({_EVERY_LEVEL} NOT {_render(node.node, expansions)})"
    if node.op == "OR":
        return "(" + " OR ".join(_render(child, expansions) for child in node.nodes) + ")"
    wanted = [child for child in node.nodes if not isinstance(child, _Not)]
    unwanted = [child.node for child in node.nodes if isinstance(child, _Not)]
    expression = (
        " AND ".join(_render(child, expansions) for child in wanted) if wanted else _EVERY_LEVEL
    )
    if unwanted:
        # One NOT of an OR: a chain of NOTs would nest as deep as there are terms.
        expression = (
            f"({expression}) NOT ("
            + " OR ".join(_render(child, expansions) for child in unwanted)
            + ")"
        )
    return f"({expression})"


def _single_prefix(node: _Words) -> bool:
    return node.prefix and len(node.words) == 1


def _words_of(node: _Node) -> Iterable[_Words]:
    if isinstance(node, _Words):
        yield node
    elif isinstance(node, _Not):
        yield from _words_of(node.node)
    elif isinstance(node, _Bool):
        for child in node.nodes:
            yield from _words_of(child)


def _prefixes(node: _Node) -> list[str]:
    """The one-word prefixes of `node`, lower-cased as the index keeps words."""
    found = {words.words[0].lower() for words in _words_of(node) if _single_prefix(words)}
    return sorted(found)


def _native_prefix(node: _Node, expansions: dict[str, list[str]]) -> bool:
    """Whether a prefix is left for FTS5 to expand (too many words, or within a phrase)."""
    return any(
        words.prefix and not (_single_prefix(words) and words.words[0].lower() in expansions)
        for words in _words_of(node)
    )


def _after_prefix(prefix: str) -> str:
    """The first string after every string starting with `prefix`."""
    last = ord(prefix[-1])
    return prefix[:-1] + chr(last + 1) if last < 0x10FFFF else prefix + "\U0010ffff"
