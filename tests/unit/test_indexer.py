"""The indexer's bookkeeping, with fakes: commit only after storing, dead letters for refusals."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta

import msgspec
import pytest

from backend import retry
from backend.bus import Delivery, Incoming, Lane, Outgoing
from backend.config import Settings
from backend.indexer import Indexer
from backend.schemas import (
    Alert,
    AlertKind,
    AlertState,
    NodeEntry,
    NodeStatus,
    Severity,
    encode,
    iso_millis,
    now_iso,
    validate_record,
)
from backend.store import BulkOutcome, Rejection, Snapshot, StoreUnavailable
from backend.store.base import StoredLog
from tests.records import make_log

SETTINGS = Settings(namespace="unit")


class FakeStore:
    def __init__(self, outages: int = 0, refuse: frozenset[str] = frozenset()) -> None:
        self.outages = outages
        self.refuse = refuse
        self.logs: dict[str, StoredLog] = {}
        self.snapshots: list[Snapshot] = []

    async def ensure_schema(self) -> None: ...

    async def index_logs(self, logs: Sequence[StoredLog]) -> BulkOutcome:
        if self.outages:
            self.outages -= 1
            raise StoreUnavailable("store down")
        outcome = BulkOutcome()
        for item in logs:
            if item.log.log_id in self.refuse:
                outcome.rejected.append(Rejection(item.log.log_id, "mapper_parsing_exception: no"))
            elif item.log.log_id in self.logs:
                outcome.duplicates += 1
            else:
                self.logs[item.log.log_id] = item
                outcome.stored += 1
        return outcome

    async def put_snapshots(self, snapshots: Sequence[Snapshot]) -> BulkOutcome:
        self.snapshots += snapshots
        return BulkOutcome(stored=len(snapshots))

    async def delete_logs_before(self, day: date) -> list[str]:
        return []

    async def close(self) -> None: ...


class FakeSubscription:
    def __init__(self, batches: list[list[Incoming]]) -> None:
        self.batches = batches
        self.commits = 0

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def poll(
        self, max_records: int, timeout_ms: int, max_bytes: int = 0, *, in_flight: bool = False
    ) -> list[Incoming]:
        if self.batches:
            return self.batches.pop(0)
        await asyncio.sleep(3600)
        return []

    async def commit(self, upto: Mapping[Lane, int] | None = None) -> None:
        self.commits += 1


class FakePublisher:
    def __init__(self) -> None:
        self.sent: list[Outgoing] = []

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def enqueue(self, records: Sequence[Outgoing]) -> Delivery:
        self.sent += records
        return asyncio.sleep(0)

    async def publish(self, records: Sequence[Outgoing]) -> None:
        await (await self.enqueue(records))


def incoming(value: bytes, offset: int, topic: str = "unit.logs", headers: tuple = ()) -> Incoming:
    return Incoming(topic, 0, offset, b"node-a", value, headers, 0)


def log_record(offset: int, **overrides: object) -> tuple[str, Incoming]:
    record = make_log("node-a", **overrides)
    headers = (("ingested_at", b"2026-11-24T10:00:00.000Z"),)
    return record["log_id"], incoming(encode(validate_record(record)), offset, headers=headers)


@pytest.fixture(autouse=True)
def no_backoff_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retry.Backoff, "next_delay", lambda self: 0.0)


async def run_batches(indexer: Indexer, subscription: FakeSubscription, count: int) -> None:
    task = asyncio.create_task(indexer.consume())
    for _ in range(200):
        if subscription.commits >= count:
            break
        await asyncio.sleep(0.01)
    task.cancel()


async def test_an_outage_is_retried_and_offsets_are_committed_only_after_storing() -> None:
    ids, records = zip(*(log_record(i) for i in range(5)), strict=True)
    store = FakeStore(outages=3)
    subscription = FakeSubscription([list(records)])
    indexer = Indexer(SETTINGS, store, subscription, FakePublisher())
    await run_batches(indexer, subscription, 1)
    assert subscription.commits == 1
    assert sorted(store.logs) == sorted(ids)
    assert store.logs[ids[0]].ingested_at == "2026-11-24T10:00:00.000Z"


async def test_a_replayed_batch_counts_duplicates_and_stores_nothing_twice() -> None:
    _, record = log_record(0)
    store = FakeStore()
    subscription = FakeSubscription([[record], [record]])
    indexer = Indexer(SETTINGS, store, subscription, FakePublisher())
    await run_batches(indexer, subscription, 2)
    assert len(store.logs) == 1
    assert (indexer.stats.stored, indexer.stats.duplicates) == (1, 1)


async def test_refused_documents_and_undecodable_records_become_dead_letters() -> None:
    refused_id, refused = log_record(0)
    kept_id, kept = log_record(1)
    garbage = incoming(b'{"message_type": "LOG", "oops"', 2)
    dead = FakePublisher()
    store = FakeStore(refuse=frozenset({refused_id}))
    subscription = FakeSubscription([[refused, kept, garbage]])
    await run_batches(Indexer(SETTINGS, store, subscription, dead), subscription, 1)
    assert list(store.logs) == [kept_id]
    letters = [msgspec.json.decode(o.value) for o in dead.sent]
    assert {o.topic for o in dead.sent} == {"unit.deadletter"}
    assert [letter["source"] for letter in letters] == ["indexer", "indexer"]
    assert letters[0]["reason"].startswith("not a valid message")
    assert letters[1]["reason"] == "mapper_parsing_exception: no"
    assert (
        msgspec.json.decode(__import__("base64").b64decode(letters[1]["raw"]))["log_id"]
        == refused_id
    )


async def test_alert_and_registry_states_are_stored_with_their_offset_as_version() -> None:
    stamp = "2026-11-24T10:00:00.000Z"
    node = NodeEntry(
        node_id="n",
        service_name="S",
        status=NodeStatus.UP,
        registered_at=stamp,
        last_heartbeat=stamp,
    )
    alert = Alert(
        alert_id="a1",
        fingerprint="LOG_LEVEL:S:E1",
        kind=AlertKind.LOG_LEVEL,
        severity=Severity.ERROR,
        node_id="n",
        service_name="S",
        summary="E1 on S",
        first_seen=stamp,
        last_seen=stamp,
        count=3,
        state=AlertState.OPEN,
    )
    batch = [incoming(encode(node), 41, "unit.registry"), incoming(encode(alert), 7, "unit.alerts")]
    store = FakeStore()
    subscription = FakeSubscription([batch])
    await run_batches(Indexer(SETTINGS, store, subscription, FakePublisher()), subscription, 1)
    assert [(s.version, s.state) for s in store.snapshots] == [(41, node), (7, alert)]


async def test_logs_outside_the_window_that_reach_the_topic_are_dead_lettered_not_dropped() -> None:
    """An older accumulator (or a topic written another way) let them through: the store would
    make a day of their own for them, or retention would delete them without a word."""
    now = datetime.now(UTC)
    headers = (("ingested_at", now_iso().encode()),)
    dated = {
        "ahead": make_log("node-a", timestamp="2099-06-01T00:00:00.000Z"),
        "old": make_log("node-a", timestamp=iso_millis(now - timedelta(days=30))),
        "kept": make_log("node-a"),
    }
    batch = [
        incoming(encode(validate_record(record)), offset, headers=headers)
        for offset, record in enumerate(dated.values())
    ]
    year_one = {**make_log("node-a"), "timestamp": "0001-01-01T00:00:00+01:00"}
    batch.append(incoming(msgspec.json.encode(year_one), 3, headers=headers))
    dead = FakePublisher()
    store = FakeStore()
    subscription = FakeSubscription([batch])
    await run_batches(Indexer(SETTINGS, store, subscription, dead), subscription, 1)
    assert list(store.logs) == [dated["kept"]["log_id"]]
    reasons = [msgspec.json.decode(o.value)["reason"] for o in dead.sent]
    assert reasons[0].startswith("timestamp too far ahead:")
    assert reasons[1].startswith("timestamp older than retention:")
    assert reasons[2].startswith("not a valid message") and "outside 1970-2099" in reasons[2]
    assert subscription.commits == 1
