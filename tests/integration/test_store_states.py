"""Alert and node states in the store: the newest version wins, whatever the order."""

from __future__ import annotations

import asyncio

import pytest

from backend.backends import open_store
from backend.config import Settings
from backend.schemas import NodeEntry, NodeStatus
from backend.store import Snapshot
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
