"""What the services need from log storage, whatever holds it.

Writes are idempotent: a log is stored under its log_id, so a redelivered record is
counted as a duplicate, never stored twice. A store that cannot take a write raises
`StoreUnavailable` and the caller retries the whole batch later.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Protocol

from backend.schemas import Alert, Log, NodeEntry, RetiredNode
from backend.store.query import LogQuery, SearchResult


class StoreUnavailable(Exception):
    """The store cannot be reached or is overloaded; worth retrying later."""


@dataclass(frozen=True, slots=True)
class Rejection:
    """A document the store refused for good (bad mapping, say), with why."""

    doc_id: str
    reason: str


@dataclass(slots=True)
class BulkOutcome:
    stored: int = 0
    duplicates: int = 0
    rejected: list[Rejection] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class StoredLog:
    """A log with the time the accumulator took it in (from the Kafka headers)."""

    log: Log
    ingested_at: str | None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The state of one alert or node as of `version` (its offset on its compacted topic).

    Stored with external versioning, so a replayed older state never overwrites a newer one.
    """

    version: int
    state: Alert | NodeEntry | RetiredNode


class Store(Protocol):
    async def ensure_schema(self) -> None:
        """Create index templates and fixed indices that do not exist yet."""

    async def healthy(self) -> bool:
        """Whether the store answers right now (for status displays, not for retry logic)."""

    async def index_logs(self, logs: Sequence[StoredLog]) -> BulkOutcome: ...

    async def put_snapshots(self, snapshots: Sequence[Snapshot]) -> BulkOutcome:
        """Keep the newest state of each alert and node (older versions count as duplicates)."""

    async def search_logs(self, query: LogQuery) -> SearchResult:
        """A page of logs matching `query`, newest first, with hits over time."""

    async def delete_logs_before(self, day: date) -> list[str]:
        """Drop whole days of logs older than `day` (retention); the names dropped."""

    def export_logs(self) -> AsyncIterator[list[Log]]:
        """Every stored log, newest first, in batches: for exports and audits."""

    async def stored_alerts(self) -> list[Alert]:
        """Every stored alert, in its current state."""

    async def stored_nodes(self) -> list[NodeEntry]:
        """Every stored registry entry, in its current state."""

    async def close(self) -> None: ...
