"""The console's searches on each store: every field, pages, histogram, odd input."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from backend.backends import open_store
from backend.config import Settings
from backend.schemas import Level, Log, iso_millis, validate_record
from backend.store import Store
from backend.store.base import StoredLog
from backend.store.elasticsearch import ElasticsearchStore
from backend.store.query import LogQuery
from tests.integration.harness import Stored
from tests.records import make_log

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC).replace(microsecond=0)


def _log(minutes_ago: int, level: str, service: str, node: str, message: str) -> Log:
    record = make_log(node, level, service_name=service, message=message)
    record["timestamp"] = iso_millis(NOW - timedelta(minutes=minutes_ago))
    log = validate_record(record)
    assert isinstance(log, Log)
    return log


LOGS = [
    _log(1, "INFO", "PaymentService", "payment-01", "payment accepted for order 17"),
    _log(2, "ERROR", "PaymentService", "payment-02", "card processor timed out"),
    _log(5, "WARN", "OrderService", "order-01", "slow checkout (order 17)"),
    _log(30, "FATAL", "OrderService", "order-01", "database connection pool exhausted"),
    _log(120, "INFO", "AuthService", "auth-01", "user logged in"),
    *[_log(3, "INFO", "InventoryService", "inventory-01", f"stock level {n}") for n in range(60)],
]


@pytest.fixture
async def store(settings: Settings, stored: Stored) -> AsyncIterator[Store]:
    store = open_store(settings)
    await store.ensure_schema()
    outcome = await store.index_logs([StoredLog(log, None) for log in LOGS])
    assert outcome.stored == len(LOGS)
    stored.refresh()
    yield store
    await store.close()


async def test_text_level_service_node_and_time_range_each_narrow_the_hits(
    store: Store,
) -> None:
    async def ids(**fields: object) -> set[str]:
        result = await store.search_logs(LogQuery(page_size=100, **fields))  # type: ignore[arg-type]
        return {log.log_id for log in result.logs}

    by_id = {log.log_id: log for log in LOGS}
    assert len(await ids()) == len(LOGS)
    assert {by_id[i].message for i in await ids(text="order 17")} == {
        "payment accepted for order 17",
        "slow checkout (order 17)",
    }
    assert {
        by_id[i].log_level for i in await ids(levels=frozenset({Level.ERROR, Level.FATAL}))
    } == {
        Level.ERROR,
        Level.FATAL,
    }
    assert {by_id[i].service_name for i in await ids(services=frozenset({"OrderService"}))} == {
        "OrderService"
    }
    assert {by_id[i].node_id for i in await ids(nodes=frozenset({"payment-02"}))} == {"payment-02"}
    recent = await ids(since=NOW - timedelta(minutes=10))
    assert all(by_id[i].service_name != "AuthService" for i in recent) and len(recent) == 63


async def test_pages_are_newest_first_and_histogram_counts_every_hit(
    store: Store,
) -> None:
    first = await store.search_logs(LogQuery(page_size=20, since=NOW - timedelta(hours=3)))
    second = await store.search_logs(LogQuery(page=1, page_size=20, since=NOW - timedelta(hours=3)))
    assert first.total == len(LOGS)
    stamps = [log.timestamp for log in first.logs + second.logs]
    assert stamps == sorted(stamps, reverse=True)
    assert not {log.log_id for log in first.logs} & {log.log_id for log in second.logs}
    assert sum(count for _, count in first.histogram) == len(LOGS)
    assert len(first.histogram) <= 61


@pytest.mark.parametrize(
    "text", ['"unbalanced', "a AND (b OR", "+-*~^/\\", "{}[]:!?", "x" * 5000, "order 17 |"]
)
async def test_query_syntax_never_fails(store: Store, text: str) -> None:
    result = await store.search_logs(LogQuery(text=text))
    assert result.total >= 0
    if len(text) > 1000:
        assert result.note and "first 1000 characters" in result.note


async def test_search_results_keep_the_log_shape(store: Store) -> None:
    result = await store.search_logs(LogQuery(text="processor"))
    (log,) = result.logs
    original = next(item for item in LOGS if item.log_id == log.log_id)
    assert msgspec.to_builtins(log) == msgspec.to_builtins(original)


async def test_daily_indices_keep_their_logs_in_the_pages_order(store: Store) -> None:
    if not isinstance(store, ElasticsearchStore):
        pytest.skip("index sorting is Elasticsearch's")
    found = await store.client.indices.get_settings(
        index=f"{store.indices.logs_prefix}*", name="index.sort.*", flat_settings=True
    )
    assert found.body
    for index in found.body.values():
        sort = index["settings"]
        assert sort["index.sort.field"] == ["timestamp", "log_id"]
        assert sort["index.sort.order"] == ["desc", "desc"]
