"""The console's log searches as Elasticsearch requests.

Text goes through `simple_query_string`, which never fails on syntax: `"a phrase"`,
`-not`, `a | b` and `prefix*` work, anything else is searched as words. A filter
expression adds its clauses (search_terms.py).

One console query is two or three searches sent together in one `_msearch` (`SearchPlan`),
because what makes one fast would slow another:
- the page: newest first, the order the log indices keep their documents in (index
  sorting, elasticsearch.py), and without a total, so each shard stops once it has the
  page instead of visiting every hit (10 ms rather than 2.9 s at 10 million logs);
- the counts: the hits over time by level, nothing sorted or fetched; their sum is the
  total. With a level, service, node, text or expression to match, one pass counts each
  bar's hits by level (a `terms` inside the `date_histogram`). With no more than a time
  range, Elasticsearch counts a lone `date_histogram` from its index instead of from the
  hits, so the bars' totals come from there;
- then the levels other than INFO, a fifth of a typical fleet's logs, are counted hit by
  hit in a third search, and INFO is the rest of each bar (60 ms rather than 135 ms for
  every bar of 10 million logs).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from backend.schemas import Level, iso_millis
from backend.store.query import MAX_TEXT_CHARS, Bucket, LogQuery, histogram_interval
from backend.store.search_terms import expression_clauses

_TEXT_FIELDS: Final = ["message", "error_details.error_message", "error_details.error_code^2"]
PAGE_ORDER: Final = [{"timestamp": "desc"}, {"log_id": "desc"}]
"""The page's order, and the log indices' index sort, so a shard can stop at the page."""
_COMMON: Final = Level.INFO
"""The level counted as the rest of each bar when the bars' totals come from the index."""


@dataclass(frozen=True, slots=True)
class SearchPlan:
    """The searches of one console query, as `_msearch` bodies."""

    page: dict[str, Any]
    counts: dict[str, Any]
    rarer: dict[str, Any] | None
    """The levels other than the common one, counted apart when `counts` has bars only."""
    interval: int
    """Seconds per bar of the hits over time."""

    @property
    def bodies(self) -> list[dict[str, Any]]:
        return [self.page, self.counts, *([self.rarer] if self.rarer else [])]


def plan_search(query: LogQuery, now: datetime | None = None) -> SearchPlan:
    """The searches that answer `query`: see the module's docstring."""
    now = now or datetime.now(UTC)
    match = _match(query)
    interval = histogram_interval(query.since, query.until, now)
    bars: dict[str, Any] = {
        "date_histogram": {
            "field": "timestamp",
            "fixed_interval": f"{interval}s",
            "min_doc_count": 0,
        }
    }
    by_level = bars | {"aggs": {"levels": {"terms": {"field": "log_level", "size": len(Level)}}}}
    rarer = None
    if _time_only(query):
        rarer_levels = sorted(str(level) for level in Level if level is not _COMMON)
        rarer = _counting(_and(match, {"terms": {"log_level": rarer_levels}}), by_level)
    return SearchPlan(
        page={
            "query": match,
            "sort": PAGE_ORDER,
            "from": query.page * query.page_size,
            "size": query.page_size,
            "track_total_hits": False,
        },
        counts=_counting(match, bars if rarer else by_level),
        rarer=rarer,
        interval=interval,
    )


def histogram_buckets(
    counts: dict[str, Any], interval: int, rarer: dict[str, Any] | None = None
) -> list[Bucket]:
    """The bars of the `counts` response of a `SearchPlan`, with its `rarer` response if it
    had that search: every bar is `interval` seconds wide."""
    step = timedelta(seconds=interval)
    apart = {bucket["key"]: _levels(bucket) for bucket in _bars(rarer or {})}
    found = []
    for bucket in _bars(counts):
        if "levels" in bucket:
            levels = _levels(bucket)
        else:
            levels = apart.get(bucket["key"], Counter())
            levels[_COMMON] = int(bucket["doc_count"]) - levels.total()
        start = datetime.fromtimestamp(bucket["key"] / 1000, UTC)
        found.append(Bucket(start, start + step, {key: n for key, n in levels.items() if n > 0}))
    return found


def _bars(response: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = (
        response.get("aggregations", {}).get("bars", {}).get("buckets", [])
    )
    return found


def _levels(bucket: dict[str, Any]) -> Counter[Level]:
    return Counter(
        {Level(item["key"]): int(item["doc_count"]) for item in bucket["levels"]["buckets"]}
    )


def _counting(match: dict[str, Any], bars: dict[str, Any]) -> dict[str, Any]:
    return {"query": match, "size": 0, "track_total_hits": False, "aggs": {"bars": bars}}


def _and(match: dict[str, Any], clause: dict[str, Any]) -> dict[str, Any]:
    """`match` with one more filter."""
    narrowed = dict(match["bool"])
    narrowed["filter"] = [*narrowed["filter"], clause]
    return {"bool": narrowed}


def _match(query: LogQuery) -> dict[str, Any]:
    """The `query` clause: the console's filters, the expression and the text."""
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
    return {
        "bool": {
            "filter": filters,
            "must": must or [{"match_all": {}}],
            "must_not": unwanted,
        }
    }


def _time_only(query: LogQuery) -> bool:
    """Whether nothing but a time range narrows `query`."""
    narrowed = query.levels or query.services or query.nodes or query.expression.terms
    return not narrowed and not query.text.strip()
