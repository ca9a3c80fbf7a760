"""The hits over time by level, on each store: every bar's count of each level is the number
of hits of that level in the bar, for plain, text, level, expression and time-range searches."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from backend.backends import open_store
from backend.config import Settings
from backend.logfilter import parse_expression
from backend.schemas import Level, Log, iso_millis, validate_record
from backend.store import Store
from backend.store.base import StoredLog
from backend.store.query import Bucket, LogQuery
from tests.integration.harness import Stored
from tests.records import make_log

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC).replace(microsecond=0)
SERVICES = {"PaymentService": "payment", "OrderService": "order", "AuthService": "auth"}


def _logs(count: int) -> list[Log]:
    """`count` logs of every level over the last three hours, from a fixed seed."""
    rng = random.Random(15)
    logs = []
    for index in range(count):
        level = rng.choices(["INFO", "WARN", "ERROR", "FATAL"], weights=[70, 15, 10, 5])[0]
        service = rng.choice(list(SERVICES))
        node = f"{SERVICES[service]}-0{rng.randrange(1, 4)}"
        extra: dict[str, Any] = {}
        if level == "WARN":
            extra = {"response_time_ms": float(rng.randrange(900, 2000)), "threshold_limit_ms": 1e3}
        if level in ("ERROR", "FATAL"):
            code = rng.choice(["PAY-402", "PAY-500", "ORD-409"])
            extra = {"error_details": {"error_code": code, "error_message": f"{code} raised"}}
        message = f"{rng.choice(['checkout', 'login', 'refund'])} {rng.choice(['ok', 'timeout'])}"
        record = make_log(node, level, service_name=service, message=message, **extra)
        at = NOW - timedelta(milliseconds=rng.randrange(3 * 3600 * 1000))
        record |= {"log_id": f"log-{index:04d}", "timestamp": iso_millis(at)}
        log = validate_record(record)
        assert isinstance(log, Log)
        logs.append(log)
    return logs


LOGS = _logs(600)
QUERIES = {
    "everything": LogQuery(),
    "text": LogQuery(text="timeout"),
    "levels": LogQuery(levels=frozenset({Level.ERROR, Level.FATAL})),
    "expression": LogQuery(expression=parse_expression("service:Pay* -code:PAY-402")),
    "text and expression": LogQuery(
        text="checkout", expression=parse_expression("response_time_ms>1200 -node:order-01")
    ),
    "time range": LogQuery(
        since=NOW - timedelta(hours=2, seconds=7), until=NOW - timedelta(minutes=17)
    ),
}


@pytest.fixture
async def store(settings: Settings, stored: Stored) -> AsyncIterator[Store]:
    store = open_store(settings)
    await store.ensure_schema()
    outcome = await store.index_logs([StoredLog(log, None) for log in LOGS])
    assert outcome.stored == len(LOGS)
    stored.refresh()
    yield store
    await store.close()


def _bar_of(log: Log, buckets: list[Bucket]) -> datetime:
    at = datetime.fromisoformat(log.timestamp)
    found = [bucket.start for bucket in buckets if bucket.start <= at < bucket.end]
    assert len(found) == 1, f"{log.timestamp} is in {len(found)} bars"
    return found[0]


async def test_each_bar_counts_its_hits_by_level(store: Store) -> None:
    for name, query in QUERIES.items():
        result = await store.search_logs(replace(query, page_size=len(LOGS)))
        assert result.total == len(result.logs) > 0, name
        hits = Counter((_bar_of(log, result.buckets), log.log_level) for log in result.logs)
        bars = {
            (bucket.start, level): count
            for bucket in result.buckets
            for level, count in bucket.levels.items()
        }
        assert bars == dict(hits), name
        by_level = Counter(log.log_level for log in result.logs)
        for level in Level:
            counted = sum(bucket.levels.get(level, 0) for bucket in result.buckets)
            assert counted == by_level[level], (name, level)
        starts = [bucket.start for bucket in result.buckets]
        assert starts == sorted(starts) and all(
            later.start == earlier.end
            for earlier, later in zip(result.buckets, result.buckets[1:], strict=False)
        ), name
