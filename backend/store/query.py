"""What a log search asks and answers, whichever store runs it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

from backend.logfilter import Expression
from backend.schemas import Level, Log

HISTOGRAM_BUCKETS: Final = 60
_INTERVALS_S: Final = (1, 5, 10, 30, 60, 300, 600, 1800, 3600, 3 * 3600, 6 * 3600, 86400)
MAX_TEXT_CHARS: Final = 1000


@dataclass(frozen=True, slots=True)
class LogQuery:
    """A search over stored logs; empty fields match everything.

    `text` is searched as Elasticsearch's `simple_query_string` reads it (the console's
    search box); `expression` is the filter language of backend/logfilter, and both apply.
    """

    text: str = ""
    levels: frozenset[Level] = frozenset()
    services: frozenset[str] = frozenset()
    nodes: frozenset[str] = frozenset()
    expression: Expression = field(default_factory=Expression)
    since: datetime | None = None
    until: datetime | None = None
    page: int = 0
    page_size: int = 50


@dataclass(frozen=True, slots=True)
class Bucket:
    """One bar of the hits over time, from `start` up to (not including) `end`, by level:
    the levels without hits in it are left out."""

    start: datetime
    end: datetime
    levels: Mapping[Level, int] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return sum(self.levels.values())


@dataclass(frozen=True, slots=True)
class SearchResult:
    """One page of hits, newest first, with the hits over time for the whole query: every
    bar from the first hit's to the last's, as Elasticsearch's `date_histogram` gives them."""

    total: int
    logs: list[Log]
    buckets: list[Bucket] = field(default_factory=list)
    took_ms: float = 0.0
    note: str | None = None  # e.g. that the text was searched literally, and why

    @property
    def histogram(self) -> list[tuple[datetime, int]]:
        """The hits of each bar, every level together."""
        return [(bucket.start, bucket.count) for bucket in self.buckets]


def histogram_interval(since: datetime | None, until: datetime | None, now: datetime) -> int:
    """Seconds per bar so that the time range fits in about `HISTOGRAM_BUCKETS` bars."""
    span = ((until or now) - (since or (now - timedelta(hours=24)))).total_seconds()
    for seconds in _INTERVALS_S:
        if span / seconds <= HISTOGRAM_BUCKETS:
            return seconds
    return _INTERVALS_S[-1]


def text_note(query: LogQuery) -> str | None:
    """What the user should know about how their text was read."""
    if len(query.text.strip()) > MAX_TEXT_CHARS:
        return f"the query was cut to its first {MAX_TEXT_CHARS} characters"
    return None
