"""An Elasticsearch search as two: the page, sorted as the indices are, and the counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from backend.schemas import Level
from backend.store.elasticsearch import LOG_MAPPINGS
from backend.store.query import Bucket, LogQuery
from backend.store.search import PAGE_ORDER, histogram_buckets, plan_search

NOW = datetime(2026, 11, 24, 10, 16, tzinfo=UTC)
START = NOW - timedelta(seconds=60)
MILLIS = int(START.timestamp() * 1000)


def test_the_page_counts_no_total_so_a_shard_can_stop_at_its_last_hit() -> None:
    plan = plan_search(LogQuery(page=2, page_size=50), NOW)
    assert plan.page["sort"] == PAGE_ORDER
    assert plan.page["track_total_hits"] is False
    assert (plan.page["from"], plan.page["size"]) == (100, 50)
    assert "aggs" not in plan.page
    assert plan.counts["size"] == 0 and plan.counts["query"] == plan.page["query"]


def test_the_page_order_is_on_fields_the_index_can_sort_by() -> None:
    for key in PAGE_ORDER:
        (field,) = key
        assert LOG_MAPPINGS["properties"][field]["type"] in {"date", "keyword"}


def test_a_narrowed_query_counts_each_bar_by_level_in_one_pass() -> None:
    plan = plan_search(LogQuery(text="card", since=NOW - timedelta(minutes=15)), NOW)
    bars = plan.counts["aggs"]["bars"]
    assert bars["date_histogram"]["fixed_interval"] == "30s"
    assert bars["aggs"] == {"levels": {"terms": {"field": "log_level", "size": 4}}}
    assert plan.interval == 30
    assert plan.rarer is None and len(plan.bodies) == 2


def test_a_time_range_alone_counts_the_bars_from_the_index_and_the_rarer_levels_apart() -> None:
    plan = plan_search(LogQuery(since=NOW - timedelta(hours=1)), NOW)
    assert "aggs" not in plan.counts["aggs"]["bars"]
    assert plan.rarer is not None and len(plan.bodies) == 3
    assert plan.rarer["query"]["bool"]["filter"] == [
        *plan.counts["query"]["bool"]["filter"],
        {"terms": {"log_level": ["ERROR", "FATAL", "WARN"]}},
    ]
    assert "levels" in plan.rarer["aggs"]["bars"]["aggs"]


def test_bars_counted_in_one_pass_are_read_with_their_end_and_levels() -> None:
    response = _histogram(
        _bar(0, 5, INFO=4, FATAL=1),
        _bar(1, 0),
    )
    assert histogram_buckets(response, 30) == [
        Bucket(START, START + timedelta(seconds=30), {Level.INFO: 4, Level.FATAL: 1}),
        Bucket(START + timedelta(seconds=30), NOW, {}),
    ]
    assert histogram_buckets({}, 30) == []


def test_bars_counted_from_the_index_give_info_the_rest_of_each_bar() -> None:
    counts = _histogram({"key": MILLIS, "doc_count": 10}, {"key": MILLIS + 30_000, "doc_count": 2})
    rarer = _histogram(_bar(0, 4, ERROR=3, WARN=1), _bar(1, 2, ERROR=2))
    bars = histogram_buckets(counts, 30, rarer)
    assert [bar.levels for bar in bars] == [
        {Level.INFO: 6, Level.ERROR: 3, Level.WARN: 1},
        {Level.ERROR: 2},
    ]
    assert sum(bar.count for bar in bars) == 12


def _bar(index: int, count: int, **levels: int) -> dict[str, Any]:
    found = [{"key": level, "doc_count": n} for level, n in levels.items()]
    return {"key": MILLIS + index * 30_000, "doc_count": count, "levels": {"buckets": found}}


def _histogram(*buckets: dict[str, Any]) -> dict[str, Any]:
    return {"aggregations": {"bars": {"buckets": list(buckets)}}}
