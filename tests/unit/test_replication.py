"""How many copies topics and indices keep, from the size of the cluster they are made on,
and how several servers are written in one setting."""

from __future__ import annotations

import pytest

from backend.bus.kafka.replication import Replication, replication_for
from backend.config import Indices, Settings, split_addresses
from backend.store.elasticsearch import ElasticsearchStore, shard_settings


@pytest.mark.parametrize(
    ("brokers", "expected"),
    [(0, (1, 1)), (1, (1, 1)), (2, (2, 1)), (3, (3, 2)), (5, (3, 2))],
)
def test_topics_keep_up_to_three_copies_and_need_two_of_three(
    brokers: int, expected: tuple[int, int]
) -> None:
    assert replication_for(brokers) == Replication(*expected)


@pytest.mark.parametrize(("data_nodes", "replicas"), [(1, 0), (2, 1), (3, 1)])
def test_indices_keep_a_replica_only_where_another_node_can_hold_it(
    data_nodes: int, replicas: int
) -> None:
    assert shard_settings(data_nodes) == {"number_of_shards": 1, "number_of_replicas": replicas}


def test_several_elasticsearch_urls_are_split_for_the_client(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LOGDECK_ELASTICSEARCH", "http://127.0.0.1:19200, http://127.0.0.1:19201,")
    monkeypatch.setenv("LOGDECK_KAFKA", "127.0.0.1:19092,127.0.0.1:19094")
    settings = Settings.from_env()
    assert settings.elasticsearch_urls == ["http://127.0.0.1:19200", "http://127.0.0.1:19201"]
    assert settings.kafka == "127.0.0.1:19092,127.0.0.1:19094"
    assert Settings().elasticsearch_urls == ["http://127.0.0.1:9200"]
    assert split_addresses("") == []


async def test_the_store_client_spreads_over_every_url() -> None:
    store = ElasticsearchStore(
        "http://127.0.0.1:19200,http://127.0.0.1:19201", Indices.for_namespace("t")
    )
    try:
        nodes = sorted(node.base_url for node in store.client.transport.node_pool.all())
    finally:
        await store.close()
    assert nodes == ["http://127.0.0.1:19200", "http://127.0.0.1:19201"]
