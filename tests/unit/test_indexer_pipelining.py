"""The indexer's pipelined loop, with fakes: the next batch is polled and decoded while one is
written, and each batch's own offsets are committed only once the store has taken it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pytest

from backend import indexer as indexer_module
from backend.bus import Incoming, Lane
from backend.config import Settings
from backend.indexer import Indexer
from backend.schemas import Log, encode, validate_record
from backend.store import BulkOutcome
from backend.store.base import StoredLog
from tests.records import make_log
from tests.unit.test_indexer import FakePublisher, FakeStore

SETTINGS = Settings(namespace="unit")

Event = tuple[Any, ...]


class GatedStore(FakeStore):
    """Holds each bulk until the test lets it through, noting when it starts and ends."""

    def __init__(self, events: list[Event]) -> None:
        super().__init__()
        self.events = events
        self.gates: list[asyncio.Event] = []

    async def index_logs(self, logs: Sequence[StoredLog]) -> BulkOutcome:
        ids = tuple(item.log.log_id for item in logs)
        gate = asyncio.Event()
        self.gates.append(gate)
        self.events.append(("writing", ids))
        await gate.wait()
        outcome = await super().index_logs(logs)
        self.events.append(("stored", ids))
        return outcome


class RecordingSubscription:
    """Hands out `batches`, then waits; polls yield to the loop as a real one does."""

    def __init__(self, batches: list[list[Incoming]], events: list[Event]) -> None:
        self.batches = batches
        self.events = events

    async def poll(
        self, max_records: int, timeout_ms: int, max_bytes: int = 0, *, in_flight: bool = False
    ) -> list[Incoming]:
        self.events.append(("poll", in_flight))
        await asyncio.sleep(0)
        if self.batches:
            return self.batches.pop(0)
        await asyncio.sleep(3600)
        return []

    async def commit(self, upto: Mapping[Lane, int] | None = None) -> None:
        self.events.append(("commit", None if upto is None else dict(upto)))


def logs_at(partition: int, offsets: range) -> tuple[tuple[str, ...], list[Incoming]]:
    records = [make_log("node-a") for _ in offsets]
    batch = [
        Incoming("unit.logs", partition, offset, b"node-a", encode(validate_record(record)), (), 0)
        for offset, record in zip(offsets, records, strict=True)
    ]
    return tuple(record["log_id"] for record in records), batch


@pytest.fixture
def events(monkeypatch: pytest.MonkeyPatch) -> list[Event]:
    """What happened, in order; decoding a log is noted too."""
    happened: list[Event] = []
    decode_as = indexer_module.decode_as

    def noted(value: bytes, kind: type[Any]) -> Any:
        decoded = decode_as(value, kind)
        if isinstance(decoded, Log):
            happened.append(("decoded", decoded.log_id))
        return decoded

    monkeypatch.setattr(indexer_module, "decode_as", noted)
    return happened


async def until(condition: Callable[[], bool]) -> None:
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the indexer did not get there")


async def test_the_next_batch_is_decoded_while_one_is_written_and_commits_follow_the_store(
    events: list[Event],
) -> None:
    first_ids, first = logs_at(0, range(0, 3))
    second_ids_p0, second_p0 = logs_at(0, range(3, 5))
    second_ids_p1, second_p1 = logs_at(1, range(0, 2))
    second_ids = second_ids_p0 + second_ids_p1
    store = GatedStore(events)
    subscription = RecordingSubscription([first, second_p0 + second_p1], events)
    task = asyncio.create_task(Indexer(SETTINGS, store, subscription, FakePublisher()).consume())
    try:
        await until(lambda: events.count(("decoded", second_ids[-1])) == 1)
        await asyncio.sleep(0.05)
        assert events == [
            ("poll", False),
            *(("decoded", log_id) for log_id in first_ids),
            ("writing", first_ids),
            ("poll", True),
            *(("decoded", log_id) for log_id in second_ids),
        ], "the second batch is polled and decoded while the first is written, and no third"
        store.gates[0].set()
        await until(lambda: len(store.gates) == 2)
        store.gates[1].set()
        await until(lambda: sum(event[0] == "commit" for event in events) == 2)
    finally:
        task.cancel()
    done = [event for event in events if event[0] in ("writing", "stored", "commit")]
    assert done == [
        ("writing", first_ids),
        ("stored", first_ids),
        ("commit", {("unit.logs", 0): 3}),
        ("writing", second_ids),
        ("stored", second_ids),
        ("commit", {("unit.logs", 0): 5, ("unit.logs", 1): 2}),
    ], "each batch commits its own offsets, after it is stored and before the next is written"
    assert sorted(store.logs) == sorted(first_ids + second_ids)


async def test_stopping_while_a_batch_is_written_commits_none_of_it(events: list[Event]) -> None:
    """Its records are read again by the next indexer: a crash replays, it loses nothing."""
    _, first = logs_at(0, range(0, 3))
    second_ids, second = logs_at(0, range(3, 6))
    store = GatedStore(events)
    subscription = RecordingSubscription([first, second], events)
    task = asyncio.create_task(Indexer(SETTINGS, store, subscription, FakePublisher()).consume())
    await until(lambda: len(store.gates) == 1 and ("decoded", second_ids[-1]) in events)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    store.gates[0].set()
    await asyncio.sleep(0.05)
    assert not [event for event in events if event[0] in ("stored", "commit")]
    assert not store.logs
