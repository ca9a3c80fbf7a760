"""The store's searches, each in one read transaction, answered as Elasticsearch answers them.

A search follows backend/store/search.py: its text is read by query_text.py into one FTS5
expression together with the filters (as tags), run day by day, newest day first. Hits are
sorted newest first by timestamp (milliseconds), then log_id, descending, with the histogram
buckets of `histogram_interval` between the first and the last hit, each counted by level.
Without text, totals and histograms add up the per-minute and half-hour counts (and count the
logs of partial minutes at the edges of the time range); with text, a hit's level is read
from its row, or, past `EXACT_COUNT_LIMIT` hits, counted through the level tags. A filter
expression's level, service and node terms join the filters; its other terms are tested on
each log (conditions.py), so a search with them reads the logs in its time range instead of
the counts.
"""

from __future__ import annotations

import sqlite3
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Final

from backend.schemas import Level, Log
from backend.sqlite import transaction
from backend.store.embedded.conditions import RESIDUAL, Filters, residual_function, resolve
from backend.store.embedded.days import EPOCH, day_bounds, query_millis
from backend.store.embedded.query_text import (
    All,
    Node,
    native_prefix,
    parse,
    plain_words,
    prefixes,
    render,
)
from backend.store.embedded.schema import (
    LEVEL_IDS,
    SHIFT,
    TIERS,
    Names,
    decode_log,
    stored_days,
)
from backend.store.query import (
    MAX_TEXT_CHARS,
    Bucket,
    LogQuery,
    SearchResult,
    histogram_interval,
    text_note,
)

EXACT_COUNT_LIMIT: Final = 5_000
"""Above this many text hits in a day, the histogram is counted bucket by bucket, and by level
through the level tags (no sort of every hit, no row read)."""
_MAX_EXPANSION: Final = 64
"""A `prefix*` standing for at most this many words is searched as an OR of them."""
_LEVELS: Final = {ident: level for level, ident in LEVEL_IDS.items()}

Counts = Counter[tuple[int, int]]
"""Hits by (histogram bucket, level id)."""


def search(query: LogQuery, now: datetime, names: Names, conn: sqlite3.Connection) -> SearchResult:
    """One search in one read transaction, so every table is read as of one moment."""
    started = time.perf_counter()
    with transaction(conn, write=False):
        filters = resolve(conn, query, names)
        with residual_function(conn, filters.residual):
            try:
                result = _Search(conn, query, now, filters).run()
            except sqlite3.OperationalError as error:
                if "fts5" not in str(error):
                    raise
                # Not expected from any text; should FTS5 still refuse, search the bare words.
                words = plain_words(query.text[:MAX_TEXT_CHARS])
                result = _Search(conn, replace(query, text=words), now, filters).run()
                reason = f"the text was searched as plain words ({error})"
                result.note = f"{result.note}; {reason}" if result.note else reason
    took = (time.perf_counter() - started) * 1000
    return SearchResult(result.total, result.logs, result.buckets, took, result.note)


@dataclass(slots=True)
class _Found:
    total: int
    logs: list[Log]
    buckets: list[Bucket]
    note: str | None


class _Search:
    """One search, inside one read transaction (a consistent snapshot of every table)."""

    def __init__(
        self, conn: sqlite3.Connection, query: LogQuery, now: datetime, filters: Filters
    ) -> None:
        self.conn = conn
        self.query = query
        self.filters = filters
        self.interval_ms = histogram_interval(query.since, query.until, now) * 1000
        self.lo = query_millis(query.since) if query.since else None
        self.hi = query_millis(query.until) + 1 if query.until else None  # exclusive
        text = query.text.strip()[:MAX_TEXT_CHARS]
        self.parsed = parse(text) if text else None
        notes = [note for note in (text_note(query),) if note]
        if self.parsed:
            notes += self.parsed.notes
        self.note = "; ".join(notes) or None
        node = self.parsed.node if self.parsed else None
        self.node = None if node is None or isinstance(node, All) else node
        self.text = self.node is not None
        self.residual = bool(filters.residual.terms)
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
        # With terms to test on each document, the columns filter without text: no FTS5.
        parts = self.filters.match() if self.text or not self.residual else []
        if self.node is not None:
            expansions = self._expand(self.node, [day for day, *_ in days])
            self.prefix = native_prefix(self.node, expansions)
            parts.insert(0, render(self.node, expansions))
        self.match = " AND ".join(parts) if parts else None
        counts: Counts = Counter()
        totals: list[tuple[int, int, int, int]] = []  # day, from, to (ms), hits
        for day, a, b in days:
            day_counts = self._day_counts(day, a, b)
            hits = sum(day_counts.values())
            if hits:
                counts.update(day_counts)
                totals.append((day, a, b, hits))
        if not totals:
            return _Found(0, [], [], self.note)
        total = sum(hits for *_, hits in totals)
        return _Found(total, self._page(totals), self._buckets(counts), self.note)

    def _expand(self, node: Node, days: list[int]) -> dict[str, list[str]]:
        """The indexed words each `prefix*` of one word stands for, if not too many.

        FTS5 merges the doclists of a prefix into one in memory at every query (and a
        search makes two or more); an OR of the words streams, like a single word.
        """
        expansions: dict[str, list[str]] = {}
        for prefix in prefixes(node):
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
        """Each stored day, newest first, with its first millisecond and the first after it."""
        return [(day, *day_bounds(day)) for day in stored_days(self.conn)]

    # Totals and histograms

    def _day_counts(self, day: int, a: int, b: int) -> Counts:
        if self.residual:
            return self._residual_counts(day, a, b)
        return self._text_counts(day, a, b) if self.text else self._counts(day, a, b)

    def _counts(self, day: int, a: int, b: int) -> Counts:
        """Hits per bucket and level without text: from the aggregates, raw logs at the edges."""
        tiers = [tier for tier in TIERS if self.interval_ms % (tier * 1000) == 0]
        return self._tiered(day, a, b, tiers)

    def _tiered(self, day: int, a: int, b: int, tiers: list[int]) -> Counts:
        counts: Counts = Counter()
        if a >= b:
            return counts
        where = self.filters.sql()
        if not tiers:
            rows = self.conn.execute(
                f"SELECT (id >> {SHIFT}) / {self.interval_ms}, level, count(*) FROM logs_{day} "
                f"WHERE id >= ? AND id < ?{where} GROUP BY 1, 2",
                (a << SHIFT, b << SHIFT),
            )
            counts.update(_by_bucket_and_level(rows))
            return counts
        unit = tiers[0] * 1000
        first, last = -(-a // unit), b // unit  # whole units inside [a, b)
        if first >= last:
            return self._tiered(day, a, b, tiers[1:])
        rows = self.conn.execute(
            f"SELECT bucket / {self.interval_ms // unit}, level, sum(n) FROM agg{tiers[0]}_{day} "
            f"WHERE bucket >= ? AND bucket < ?{where} GROUP BY 1, 2",
            (first, last),
        )
        counts.update(_by_bucket_and_level(rows))
        counts.update(self._tiered(day, a, first * unit, tiers[1:]))
        counts.update(self._tiered(day, last * unit, b, tiers[1:]))
        return counts

    def _text_counts(self, day: int, a: int, b: int) -> Counts:
        """Hits per bucket and level with text, from FTS5: sorted by SQL if few (each hit's
        level read from its row), else bucket by bucket (`_tagged_counts`)."""
        table = f"text_{day}"
        where = f"{table} MATCH ? AND {table}.rowid >= ? AND {table}.rowid < ?"
        counts: Counts = Counter()
        first, last = self.conn.execute(  # two subqueries: each is then one B-tree descent
            f"SELECT (SELECT min(id) FROM logs_{day}), (SELECT max(id) FROM logs_{day})"
        ).fetchone()
        if first is None:
            return counts
        a, b = max(a, first >> SHIFT), min(b, (last >> SHIFT) + 1)  # no empty buckets
        if a >= b:
            return counts
        if not self.prefix:  # a prefix is expanded at every query: never count it twice
            (hits,) = self.conn.execute(
                f"SELECT count(*) FROM (SELECT {table}.rowid FROM {table} WHERE {where} "
                f"LIMIT {EXACT_COUNT_LIMIT + 1})",
                (self.match, a << SHIFT, b << SHIFT),
            ).fetchone()
            if hits == 0:
                return counts
            if hits > EXACT_COUNT_LIMIT:
                return self._tagged_counts(table, where, a, b)
        rows = self.conn.execute(
            f"SELECT ({table}.rowid >> {SHIFT}) / {self.interval_ms}, l.level, count(*) "
            f"FROM {table} JOIN logs_{day} l ON l.id = {table}.rowid WHERE {where} GROUP BY 1, 2",
            (self.match, a << SHIFT, b << SHIFT),
        )
        counts.update(_by_bucket_and_level(rows))
        return counts

    def _tagged_counts(self, table: str, where: str, a: int, b: int) -> Counts:
        """Many text hits per bucket and level, without sorting them all or reading their rows:
        each bucket's hits counted on their own, those of each level but the lowest wanted
        through its tag (fewer: INFO is by far the most common level), the rest the lowest's."""
        step = self.interval_ms
        rest: Counter[int] = Counter()
        for bucket in range(a // step, (b - 1) // step + 1):
            start, end = max(a, bucket * step), min(b, (bucket + 1) * step)
            (n,) = self.conn.execute(
                f"SELECT count(*) FROM {table} WHERE {where}",
                (self.match, start << SHIFT, end << SHIFT),
            ).fetchone()
            if n:
                rest[bucket] = n
        counts: Counts = Counter()
        lowest, *others = self.filters.levels or sorted(_LEVELS)
        for level in others:
            rows = self.conn.execute(
                f"SELECT ({table}.rowid >> {SHIFT}) / {step}, count(*) FROM {table} "
                f"WHERE {where} GROUP BY 1",
                (f"({self.match}) AND ({{tags}} : zl{level})", a << SHIFT, b << SHIFT),
            )
            for bucket, n in rows:
                counts[bucket, level] = n
                rest[bucket] -= n
        counts.update({(bucket, lowest): n for bucket, n in rest.items() if n})
        return counts

    def _residual_counts(self, day: int, a: int, b: int) -> Counts:
        """Hits per bucket and level when terms are left to test on each log's document: a
        scan of the day's logs in the time range, or of its text hits."""
        if self.match is None:
            rows = self.conn.execute(
                f"SELECT (id >> {SHIFT}) / {self.interval_ms}, level, count(*) FROM logs_{day} "
                f"WHERE id >= ? AND id < ?{self.filters.sql()} AND {RESIDUAL}(doc) GROUP BY 1, 2",
                (a << SHIFT, b << SHIFT),
            )
        else:
            table = f"text_{day}"
            rows = self.conn.execute(
                f"SELECT ({table}.rowid >> {SHIFT}) / {self.interval_ms}, l.level, count(*) "
                f"FROM {table} JOIN logs_{day} l ON l.id = {table}.rowid WHERE {table} MATCH ? "
                f"AND {table}.rowid >= ? AND {table}.rowid < ? AND {RESIDUAL}(l.doc) "
                "GROUP BY 1, 2",
                (self.match, a << SHIFT, b << SHIFT),
            )
        return Counter(_by_bucket_and_level(rows))

    def _buckets(self, counts: Counts) -> list[Bucket]:
        """Every bucket from the first hit's to the last's, as Elasticsearch gives them."""
        levels: dict[int, dict[Level, int]] = {}
        for (bucket, level), n in counts.items():
            if n:
                levels.setdefault(bucket, {})[_LEVELS[level]] = n
        step = self.interval_ms
        return [
            Bucket(
                EPOCH + timedelta(milliseconds=bucket * step),
                EPOCH + timedelta(milliseconds=(bucket + 1) * step),
                levels.get(bucket, {}),
            )
            for bucket in range(min(levels), max(levels) + 1)
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
                residual = f" AND {RESIDUAL}(doc)" if self.residual else ""
                sql = (
                    f"SELECT id, doc FROM logs_{day} WHERE id >= ? AND id < ?"
                    f"{self.filters.sql()}{residual} ORDER BY id DESC LIMIT ? OFFSET ?"
                )
                params: tuple[Any, ...] = (a << SHIFT, b << SHIFT, limit, offset)
            elif self.residual:
                table = f"text_{day}"
                sql = (
                    f"SELECT l.id, l.doc FROM {table} JOIN logs_{day} l ON l.id = {table}.rowid "
                    f"WHERE {table} MATCH ? AND {table}.rowid >= ? AND {table}.rowid < ? "
                    f"AND {RESIDUAL}(l.doc) ORDER BY {table}.rowid DESC LIMIT ? OFFSET ?"
                )
                params = (self.match, a << SHIFT, b << SHIFT, limit, offset)
            else:
                table = f"text_{day}"
                sql = (
                    f"SELECT l.id, l.doc FROM (SELECT rowid AS r FROM {table} "
                    f"WHERE {table} MATCH ? AND rowid >= ? AND rowid < ? "
                    f"ORDER BY rowid DESC LIMIT ? OFFSET ?) JOIN logs_{day} l ON l.id = r "
                    "ORDER BY l.id DESC"
                )
                params = (self.match, a << SHIFT, b << SHIFT, limit, offset)
            batch = self.conn.execute(sql, params).fetchall()
            found += [(rowid >> SHIFT, decode_log(doc)) for rowid, doc in batch]
            limit -= len(batch)
            offset = 0
            if limit <= 0:
                break
        return found


def _by_bucket_and_level(rows: Iterable[tuple[int, int, int]]) -> dict[tuple[int, int], int]:
    return {(bucket, level): n for bucket, level, n in rows}


def _after_prefix(prefix: str) -> str:
    """The first string after every string starting with `prefix`."""
    last = ord(prefix[-1])
    return prefix[:-1] + chr(last + 1) if last < 0x10FFFF else prefix + "\U0010ffff"
