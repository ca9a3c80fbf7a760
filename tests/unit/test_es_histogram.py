"""The hits over time in an Elasticsearch search: asked for by level, read back as bars."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from backend.schemas import Level
from backend.store.query import Bucket, LogQuery
from backend.store.search import build_search, histogram_buckets

NOW = datetime(2026, 11, 24, 10, 16, tzinfo=UTC)


def test_each_bar_asks_for_its_hits_by_level() -> None:
    body = build_search(LogQuery(since=NOW - timedelta(minutes=15)), NOW)
    over_time = body["aggs"]["over_time"]
    assert over_time["date_histogram"]["fixed_interval"] == "30s"
    assert over_time["aggs"] == {"levels": {"terms": {"field": "log_level", "size": 4}}}


def test_bars_are_read_with_their_end_and_levels() -> None:
    start = NOW - timedelta(seconds=60)
    millis = int(start.timestamp() * 1000)
    response = {
        "aggregations": {
            "over_time": {
                "buckets": [
                    {
                        "key": millis,
                        "doc_count": 5,
                        "levels": {
                            "buckets": [
                                {"key": "INFO", "doc_count": 4},
                                {"key": "FATAL", "doc_count": 1},
                            ]
                        },
                    },
                    {"key": millis + 30_000, "doc_count": 0, "levels": {"buckets": []}},
                ]
            }
        }
    }
    assert histogram_buckets(response, 30) == [
        Bucket(start, start + timedelta(seconds=30), {Level.INFO: 4, Level.FATAL: 1}),
        Bucket(start + timedelta(seconds=30), NOW, {}),
    ]
    assert histogram_buckets({}, 30) == []
