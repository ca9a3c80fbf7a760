"""The console's log searches as Elasticsearch queries.

Text goes through `simple_query_string`, which never fails on syntax: `"a phrase"`,
`-not`, `a | b` and `prefix*` work, anything else is searched as words. A filter
expression adds its clauses (search_terms.py). The hits over time come from the same
query in one request, so the histogram always matches the page; each bar counts its hits
by level (a `terms` aggregation on `log_level` inside the `date_histogram`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Final

from backend.schemas import Level, iso_millis
from backend.store.query import MAX_TEXT_CHARS, Bucket, LogQuery, histogram_interval
from backend.store.search_terms import expression_clauses

_TEXT_FIELDS: Final = ["message", "error_details.error_message", "error_details.error_code^2"]


def build_search(query: LogQuery, now: datetime | None = None) -> dict[str, Any]:
    """The body of one `_search` request: filters, text, page, sort and histogram."""
    now = now or datetime.now(UTC)
    filters: list[dict[str, Any]] = []
    if query.levels:
        filters.append({"terms": {"log_level": sorted(str(level) for level in query.levels)}})
    if query.services:
        filters.append({"terms": {"service_name": sorted(query.services)}})
    if query.nodes:
        filters.append({"terms": {"node_id": sorted(query.nodes)}})
    if query.since or query.until:
        bounds: dict[str, str] = {}
        if query.since:
            bounds["gte"] = iso_millis(query.since)
        if query.until:
            bounds["lte"] = iso_millis(query.until)
        filters.append({"range": {"timestamp": bounds}})
    wanted, unwanted = expression_clauses(query.expression)
    filters += wanted
    must: list[dict[str, Any]] = []
    text = query.text.strip()[:MAX_TEXT_CHARS]
    if text:
        must.append(
            {
                "simple_query_string": {
                    "query": text,
                    "fields": _TEXT_FIELDS,
                    "default_operator": "and",
                    "lenient": True,
                }
            }
        )
    interval = histogram_interval(query.since, query.until, now)
    return {
        "query": {
            "bool": {
                "filter": filters,
                "must": must or [{"match_all": {}}],
                "must_not": unwanted,
            }
        },
        "sort": [{"timestamp": "desc"}, {"log_id": "desc"}],
        "from": query.page * query.page_size,
        "size": query.page_size,
        "track_total_hits": True,
        "aggs": {
            "over_time": {
                "date_histogram": {
                    "field": "timestamp",
                    "fixed_interval": f"{interval}s",
                    "min_doc_count": 0,
                },
                "aggs": {"levels": {"terms": {"field": "log_level", "size": len(Level)}}},
            }
        },
    }


def histogram_buckets(response: dict[str, Any], interval: int) -> list[Bucket]:
    """The bars of a `build_search` response whose histogram has `interval` seconds a bar."""
    step = timedelta(seconds=interval)
    found = response.get("aggregations", {}).get("over_time", {}).get("buckets", [])
    bars = []
    for bucket in found:
        start = datetime.fromtimestamp(bucket["key"] / 1000, UTC)
        levels = {
            Level(level["key"]): int(level["doc_count"])
            for level in bucket.get("levels", {}).get("buckets", [])
        }
        bars.append(Bucket(start, start + step, levels))
    return bars
