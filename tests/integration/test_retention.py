"""Retention on each store: whole days past the limit go, on the indexer's schedule, and
searches over any range keep working."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from backend.backends import open_store
from backend.config import Settings
from backend.schemas import Log, iso_millis, validate_record
from backend.store.base import StoredLog
from backend.store.query import LogQuery
from tests.integration.conftest import Launch
from tests.integration.harness import Stored, wait_until
from tests.records import make_log

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC)


def aged(days: int, count: int) -> list[Log]:
    logs = []
    for number in range(count):
        record = make_log("retention-01", message=f"{days} days old, {number}")
        record["timestamp"] = iso_millis(NOW - timedelta(days=days, minutes=number))
        log = validate_record(record)
        assert isinstance(log, Log)
        logs.append(log)
    return logs


async def store_logs(settings: Settings, logs: list[Log]) -> None:
    # A long retention for the writing store: the embedded one also applies its own.
    store = open_store(replace(settings, retention_days=30))
    try:
        await store.ensure_schema()
        outcome = await store.index_logs([StoredLog(log, None) for log in logs])
        assert outcome.stored == len(logs)
    finally:
        await store.close()


async def test_days_past_the_limit_are_dropped_and_searches_still_answer(
    settings: Settings, stored: Stored
) -> None:
    await store_logs(settings, aged(10, 5) + aged(1, 3) + aged(0, 2))
    store = open_store(settings)
    try:
        cutoff = (NOW - timedelta(days=7)).date()
        dropped = await store.delete_logs_before(cutoff)
        assert len(dropped) == 1 and (NOW - timedelta(days=10)).strftime("%Y.%m.%d") in dropped[0]
        assert await store.delete_logs_before(cutoff) == []  # already gone: nothing, no error
        await asyncio.to_thread(stored.refresh)
        everything = await store.search_logs(LogQuery(page_size=100))
        assert everything.total == 5
        old_range = await store.search_logs(
            LogQuery(since=NOW - timedelta(days=12), until=NOW - timedelta(days=9))
        )
        assert old_range.total == 0 and old_range.logs == []
    finally:
        await store.close()


def test_the_indexer_applies_retention_when_it_starts(
    settings: Settings, stored: Stored, launch: Launch
) -> None:
    asyncio.run(store_logs(settings, aged(5, 4) + aged(0, 3)))
    assert stored.logs()[0] == 7
    launch("indexer", "--retention-days", "3")
    wait_until(lambda: stored.logs()[0] == 3, 60, "the 5-day-old logs to be dropped")
