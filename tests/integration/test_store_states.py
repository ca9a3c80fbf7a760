"""Alert and node states in the store: the newest version wins, whatever the order."""

from __future__ import annotations

import asyncio

import pytest

from backend.backends import open_store
from backend.config import Settings
from backend.schemas import (
    Alert,
    AlertEvent,
    AlertEventKind,
    AlertKind,
    AlertState,
    NodeEntry,
    NodeStatus,
    Severity,
)
from backend.store import Snapshot
from backend.store.elasticsearch import ALERT_MAPPINGS, ElasticsearchStore
from tests.integration.harness import Stored

pytestmark = pytest.mark.integration

STAMP = "2026-11-24T10:00:00.000Z"


def entry(status: NodeStatus) -> NodeEntry:
    return NodeEntry(
        node_id="payment-01",
        service_name="PaymentService",
        status=status,
        registered_at=STAMP,
        last_heartbeat=STAMP,
    )


async def test_a_replayed_older_state_never_overwrites_a_newer_one(
    settings: Settings, stored: Stored
) -> None:
    store = open_store(settings)
    try:
        await store.ensure_schema()
        newer = await store.put_snapshots([Snapshot(10, entry(NodeStatus.DOWN))])
        replayed = await store.put_snapshots([Snapshot(9, entry(NodeStatus.UP))])
    finally:
        await store.close()
    assert (newer.stored, replayed.stored, replayed.duplicates) == (1, 0, 1)
    nodes = await asyncio.to_thread(stored.nodes)
    assert [entry.status for entry in nodes.values()] == [NodeStatus.DOWN]


ALERT = Alert(
    alert_id="a1",
    fingerprint="error:PaymentService:PAY-502",
    kind=AlertKind.LOG_LEVEL,
    severity=Severity.ERROR,
    node_id="payment-01",
    service_name="PaymentService",
    summary="PAY-502: gateway said 502",
    first_seen=STAMP,
    last_seen=STAMP,
    count=3,
    state=AlertState.ACKED,
    acked_by="alice",
    acked_at=STAMP,
    history=(
        AlertEvent(at=STAMP, event=AlertEventKind.OPENED),
        AlertEvent(at=STAMP, event=AlertEventKind.ACKED, by="alice", note="on it"),
    ),
)


async def test_an_alert_keeps_its_history_and_notes(settings: Settings, stored: Stored) -> None:
    store = open_store(settings)
    try:
        await store.ensure_schema()
        assert (await store.put_snapshots([Snapshot(1, ALERT)])).stored == 1
    finally:
        await store.close()
    alerts = await asyncio.to_thread(stored.alerts)
    assert alerts["a1"].history == ALERT.history


@pytest.mark.parametrize("settings", ["kafka"], indirect=True)  # strict mappings: ES only
async def test_an_alerts_index_of_an_earlier_version_takes_alerts_with_history(
    settings: Settings, stored: Stored
) -> None:
    store = open_store(settings)
    assert isinstance(store, ElasticsearchStore)
    earlier = {**ALERT_MAPPINGS, "properties": dict(ALERT_MAPPINGS["properties"])}
    del earlier["properties"]["history"]
    try:
        await store.client.indices.create(index=settings.indices.alerts, mappings=earlier)
        await store.ensure_schema()
        assert (await store.put_snapshots([Snapshot(1, ALERT)])).stored == 1
    finally:
        await store.close()
    alerts = await asyncio.to_thread(stored.alerts)
    assert alerts["a1"].history == ALERT.history
