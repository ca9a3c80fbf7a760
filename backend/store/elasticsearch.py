"""The store on Elasticsearch (8.x; the integ-test distribution has core modules only).

Logs go to daily indices (`<prefix>YYYY.MM.DD`, by the log's own timestamp) shaped by one
index template, so retention is a matter of deleting whole indices: no ILM needed. Bulk
bodies are built as NDJSON bytes with msgspec; a 1,000-log bulk costs well under a
millisecond to encode.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import UTC, date, datetime
from typing import Any, Final

import msgspec
from elasticsearch import ApiError, AsyncElasticsearch, TransportError

from backend.config import Indices, split_addresses
from backend.schemas import Alert, Log, NodeEntry, RetiredNode
from backend.security import ElasticsearchAuth
from backend.store.base import (
    BulkOutcome,
    Rejection,
    Snapshot,
    StoredLog,
    StoreUnavailable,
)
from backend.store.query import LogQuery, SearchResult, text_note
from backend.store.search import PAGE_ORDER, histogram_buckets, plan_search
from backend.store.search_terms import MESSAGE_RAW_CHARS

_encode = msgspec.json.Encoder().encode
_BULK_FILTER: Final = "errors,items.*.status,items.*._id,items.*.error.type,items.*.error.reason"
_TRANSIENT_STATUS: Final = frozenset({429, 500, 502, 503, 504})
_MAX_STATES: Final = 10_000
_EXPORT_BATCH: Final = 5_000

LOG_MAPPINGS: Final[dict[str, Any]] = {
    "dynamic": "strict",
    "properties": {
        "log_id": {"type": "keyword"},
        "node_id": {"type": "keyword"},
        "log_level": {"type": "keyword"},
        "message_type": {"type": "keyword"},
        "message": {
            "type": "text",
            # The whole message as one term, for the filter expression's substrings: only
            # searched, never sorted or aggregated, so it keeps no doc values.
            "fields": {
                "raw": {
                    "type": "keyword",
                    "ignore_above": MESSAGE_RAW_CHARS,
                    "doc_values": False,
                }
            },
        },
        "service_name": {"type": "keyword"},
        "timestamp": {"type": "date"},
        "ingested_at": {"type": "date"},
        "response_time_ms": {"type": "float"},
        "threshold_limit_ms": {"type": "float"},
        "error_details": {
            "properties": {
                "error_code": {"type": "keyword"},
                "error_message": {"type": "text"},
            }
        },
    },
}

_INDEX_SORT: Final = {
    "index.sort.field": [next(iter(key)) for key in PAGE_ORDER],
    "index.sort.order": [next(iter(key.values())) for key in PAGE_ORDER],
}
"""Each segment keeps its logs newest first, the order of every page: a search stops at
the page's last hit instead of sorting all of them. Set when a daily index is made."""

NODE_MAPPINGS: Final[dict[str, Any]] = {
    "dynamic": "strict",
    "properties": {
        "node_id": {"type": "keyword"},
        "service_name": {"type": "keyword"},
        "status": {"type": "keyword"},
        "registered_at": {"type": "date"},
        "last_heartbeat": {"type": "date"},
    },
}

ALERT_MAPPINGS: Final[dict[str, Any]] = {
    "dynamic": "strict",
    "properties": {
        "alert_id": {"type": "keyword"},
        "fingerprint": {"type": "keyword"},
        "kind": {"type": "keyword"},
        "severity": {"type": "keyword"},
        "node_id": {"type": "keyword"},
        "service_name": {"type": "keyword"},
        "summary": {"type": "text"},
        "first_seen": {"type": "date"},
        "last_seen": {"type": "date"},
        "count": {"type": "long"},
        "state": {"type": "keyword"},
        "acked_by": {"type": "keyword"},
        "acked_at": {"type": "date"},
        "resolved_at": {"type": "date"},
        # Kept with the alert, searched through it: no field of its own in the index.
        "history": {"type": "object", "enabled": False},
    },
}


def shard_settings(data_nodes: int) -> dict[str, int]:
    """One shard per index; one replica of it where another data node can hold it, so
    losing a node loses no logs (on a single node a replica could never be assigned)."""
    return {"number_of_shards": 1, "number_of_replicas": 1 if data_nodes > 1 else 0}


def daily_index(prefix: str, timestamp: str) -> str:
    """The daily index of a log, by the UTC day of its timestamp."""
    if timestamp.endswith("Z") and len(timestamp) >= 10:
        day = timestamp[:10]
    else:
        day = datetime.fromisoformat(timestamp).astimezone(UTC).date().isoformat()
    return prefix + day.replace("-", ".")


class ElasticsearchStore:
    def __init__(
        self,
        url: str,
        indices: Indices,
        *,
        request_timeout: float = 30.0,
        auth: ElasticsearchAuth | None = None,
    ) -> None:
        self._url = url
        self._indices = indices
        nodes = split_addresses(url)
        # A node that refuses the connection (it died) is tried no longer than it takes to
        # ask the next one: each node once at most. Answers, timeouts and error statuses
        # are never retried here; the callers decide what to do with them.
        self._client = AsyncElasticsearch(
            nodes,
            request_timeout=request_timeout,
            max_retries=len(nodes) - 1,
            retry_on_status=(),
            retry_on_timeout=False,
            **(auth or ElasticsearchAuth()).client_options(),
        )

    @property
    def client(self) -> AsyncElasticsearch:
        return self._client

    @property
    def indices(self) -> Indices:
        return self._indices

    async def ensure_schema(self) -> None:
        async with self._errors("creating index templates"):
            health = await self._client.cluster.health()
            shards = shard_settings(health.body.get("number_of_data_nodes", 1))
            await self._client.indices.put_index_template(
                name=self._indices.logs_prefix.rstrip("-"),
                index_patterns=[self._indices.logs_pattern],
                template={
                    "settings": {**shards, "refresh_interval": "1s", **_INDEX_SORT},
                    "mappings": LOG_MAPPINGS,
                },
            )
            # Daily indices made by an earlier version: their new logs get the fields they lack.
            await self._client.indices.put_mapping(
                index=self._indices.logs_pattern,
                properties=LOG_MAPPINGS["properties"],
                allow_no_indices=True,
            )
            for index, mappings in (
                (self._indices.nodes, NODE_MAPPINGS),
                (self._indices.alerts, ALERT_MAPPINGS),
            ):
                if not await self._client.indices.exists(index=index):
                    # 400 when another service created it in between: fine.
                    await self._client.options(ignore_status=400).indices.create(
                        index=index, settings=shards, mappings=mappings
                    )
                else:  # made by an earlier version: add the fields it lacks
                    await self._client.indices.put_mapping(
                        index=index, properties=mappings["properties"]
                    )

    async def healthy(self) -> bool:
        try:
            health = await self._client.cluster.health(timeout="2s")
        except (TransportError, ApiError):
            return False
        return health.body.get("status") in ("yellow", "green")

    async def index_logs(self, logs: Sequence[StoredLog]) -> BulkOutcome:
        if not logs:
            return BulkOutcome()
        prefix = self._indices.logs_prefix
        lines: list[bytes] = []
        for item in logs:
            log = item.log
            lines.append(
                _encode(
                    {"create": {"_index": daily_index(prefix, log.timestamp), "_id": log.log_id}}
                )
            )
            document = msgspec.to_builtins(log)
            if item.ingested_at:
                document["ingested_at"] = item.ingested_at
            lines.append(_encode(document))
        return await self._bulk(lines, "indexing logs")

    async def put_snapshots(self, snapshots: Sequence[Snapshot]) -> BulkOutcome:
        lines: list[bytes] = []
        for snapshot in snapshots:
            state = snapshot.state
            if isinstance(state, RetiredNode):
                retired = {
                    "_index": self._indices.nodes,
                    "_id": state.node_id,
                    "version": snapshot.version,
                    "version_type": "external",
                }
                lines.append(_encode({"delete": retired}))
                continue
            index, doc_id = (
                (self._indices.alerts, state.alert_id)
                if isinstance(state, Alert)
                else (self._indices.nodes, state.node_id)
            )
            action = {"_index": index, "_id": doc_id, "version": snapshot.version}
            lines.append(_encode({"index": action | {"version_type": "external"}}))
            lines.append(_encode(state))
        if not lines:
            return BulkOutcome()
        return await self._bulk(lines, "storing alert and node states")

    async def search_logs(self, query: LogQuery) -> SearchResult:
        now = datetime.now(UTC)
        plan = plan_search(query, now)
        where = {
            "index": self._indices.logs_pattern,
            "allow_no_indices": True,
            "ignore_unavailable": True,
        }
        async with self._errors("searching logs"):
            response = await self._client.msearch(
                searches=[part for body in plan.bodies for part in (where, body)]
            )
        page, counts, *rarer = (self._answer(item) for item in response.body["responses"])
        buckets = histogram_buckets(counts, plan.interval, *rarer)
        logs = [msgspec.convert(_log_fields(hit["_source"]), Log) for hit in page["hits"]["hits"]]
        return SearchResult(
            total=sum(bucket.count for bucket in buckets),
            logs=logs,
            buckets=buckets,
            took_ms=float(max(answer.get("took", 0) for answer in (page, counts, *rarer))),
            note=text_note(query),
        )

    def _answer(self, item: dict[str, Any]) -> dict[str, Any]:
        """One search of an `_msearch`, or the error it ended in, raised."""
        error = item.get("error")
        if error is None:
            return item
        status = int(item.get("status", 500))
        reason = f"{error.get('type', status)}: {error.get('reason', '')}"
        if status in _TRANSIENT_STATUS:
            raise StoreUnavailable(
                f"Elasticsearch at {self._url} answered {status} while searching logs ({reason})"
            )
        raise SearchRefused(f"Elasticsearch refused the search ({status}): {reason}")

    async def delete_logs_before(self, day: date) -> list[str]:
        prefix = self._indices.logs_prefix
        async with self._errors("applying retention"):
            found = await self._client.indices.get(
                index=self._indices.logs_pattern, allow_no_indices=True, expand_wildcards="open"
            )
            expired = [name for name in found.body if _index_day(name, prefix) < day]
            if expired:
                # Another indexer may have deleted some of them first.
                await self._client.indices.delete(index=",".join(expired), ignore_unavailable=True)
        return expired

    async def export_logs(self) -> AsyncIterator[list[Log]]:
        after: list[Any] | None = None
        while True:
            async with self._errors("exporting logs"):
                response = await self._client.search(
                    index=self._indices.logs_pattern,
                    allow_no_indices=True,
                    ignore_unavailable=True,
                    size=_EXPORT_BATCH,
                    sort=PAGE_ORDER,
                    search_after=after,
                    query={"match_all": {}},
                )
            hits = response.body["hits"]["hits"]
            if not hits:
                return
            yield [msgspec.convert(_log_fields(hit["_source"]), Log) for hit in hits]
            after = hits[-1]["sort"]

    async def stored_alerts(self) -> list[Alert]:
        return [
            msgspec.convert(source, Alert)
            for source in await self._all_sources(self._indices.alerts, "reading alerts")
        ]

    async def stored_nodes(self) -> list[NodeEntry]:
        return [
            msgspec.convert(source, NodeEntry)
            for source in await self._all_sources(self._indices.nodes, "reading the node registry")
        ]

    async def close(self) -> None:
        await self._client.close()

    async def _all_sources(self, index: str, what: str) -> list[dict[str, Any]]:
        """The documents of `index` (up to 10,000); none while the index does not exist."""
        async with self._errors(what):
            response = await self._client.search(
                index=index,
                size=_MAX_STATES,
                query={"match_all": {}},
                ignore_unavailable=True,
                allow_no_indices=True,
                filter_path="hits.hits._source",
            )
        return [hit["_source"] for hit in response.body.get("hits", {}).get("hits", [])]

    async def _bulk(self, lines: list[bytes], what: str) -> BulkOutcome:
        body = b"\n".join(lines) + b"\n"
        async with self._errors(what):
            response = await self._client.bulk(operations=body, filter_path=_BULK_FILTER)  # type: ignore[arg-type]
        outcome = BulkOutcome()
        transient: list[str] = []
        for item in response.body.get("items", []):
            ((operation, result),) = item.items()
            status = result["status"]
            if status < 300 or (operation == "delete" and status == 404):
                outcome.stored += 1
            elif status == 409:
                outcome.duplicates += 1
            elif status in _TRANSIENT_STATUS:
                transient.append(result["error"]["type"])
            else:
                error = result.get("error", {})
                reason = f"{error.get('type', status)}: {error.get('reason', '')}"
                outcome.rejected.append(Rejection(result["_id"], reason))
        if transient:
            raise StoreUnavailable(
                f"Elasticsearch at {self._url} pushed back on {len(transient)} documents "
                f"({transient[0]})"
            )
        return outcome

    def _errors(self, what: str) -> _StoreErrors:
        return _StoreErrors(self._url, what)


class SearchRefused(Exception):
    """Elasticsearch answered a search with an error that asking again will not change."""


class _StoreErrors:
    """Maps the client's errors: transport trouble and 429/5xx are worth retrying."""

    def __init__(self, url: str, what: str) -> None:
        self._url = url
        self._what = what

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, kind: object, error: BaseException | None, trace: object) -> bool:
        if isinstance(error, TransportError):
            raise StoreUnavailable(
                f"Elasticsearch at {self._url} unreachable while {self._what}: {error}"
            ) from error
        if isinstance(error, ApiError) and error.meta.status in _TRANSIENT_STATUS:
            raise StoreUnavailable(
                f"Elasticsearch at {self._url} answered {error.meta.status} while {self._what}"
            ) from error
        return False


def _log_fields(source: dict[str, Any]) -> dict[str, Any]:
    source.pop("ingested_at", None)
    return source


def _index_day(name: str, prefix: str) -> date:
    try:
        return date.fromisoformat(name.removeprefix(prefix).replace(".", "-"))
    except ValueError:
        return date.max  # not one of ours: never expire it
