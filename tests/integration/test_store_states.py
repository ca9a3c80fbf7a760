"""Alert and node states in Elasticsearch: the newest version wins, whatever the order."""

from __future__ import annotations

import pytest
from elasticsearch import Elasticsearch

from backend.config import Settings
from backend.schemas import NodeEntry, NodeStatus
from backend.store import Snapshot
from backend.store.elasticsearch import ElasticsearchStore

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
    settings: Settings, es: Elasticsearch
) -> None:
    store = ElasticsearchStore(settings.elasticsearch, settings.indices)
    try:
        await store.ensure_schema()
        newer = await store.put_snapshots([Snapshot(10, entry(NodeStatus.DOWN))])
        replayed = await store.put_snapshots([Snapshot(9, entry(NodeStatus.UP))])
    finally:
        await store.close()
    assert (newer.stored, replayed.stored, replayed.duplicates) == (1, 0, 1)
    document = es.get(index=settings.indices.nodes, id="payment-01")
    assert document["_version"] == 10 and document["_source"]["status"] == "DOWN"
