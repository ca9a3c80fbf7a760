"""The three-node cluster of `logdeck stack up --cluster`: a pipeline round trip on it, and
the copies its topics and indices keep.

It starts six JVMs: `python -m pytest -m cluster` runs it alone, `-m "not cluster"` skips
it. The cluster is started through the stack's own code and stopped at the end, unless it
already ran before the module started.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from elasticsearch import Elasticsearch

from backend.backends import open_bus, open_store
from backend.config import Settings
from backend.stack import commands, topology
from backend.stack.layout import Layout
from backend.stack.topology import Topology
from tests.integration.conftest import Launch
from tests.integration.harness import (
    ROOT,
    Process,
    Stored,
    drop_test_topics,
    free_port,
    ledger_ids,
    new_namespace,
    wait_until,
)

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def cluster() -> Iterator[Topology]:
    stack = topology.cluster(Layout.default())
    ran_before = any(srv.pid() is not None for srv in commands.servers(stack))
    assert commands.up(stack) == 0
    yield stack
    asyncio.run(drop_test_topics(stack.bootstrap))
    if not ran_before:
        commands.down(stack)


@pytest.fixture
def settings(cluster: Topology) -> Settings:
    """Overrides the conftest's: every test here on the cluster, in a namespace of its own."""
    return Settings(
        kafka=cluster.bootstrap,
        elasticsearch=cluster.elasticsearch_urls,
        namespace=new_namespace(),
        partitions=3,
        accumulator_port=free_port(),
    )


@pytest.fixture
def indexer_from_env(settings: Settings, tmp_path: Path) -> Iterator[Path]:
    """An indexer that learns where the cluster is only from `stack env --role indexer`."""
    python = sys.executable
    script = (
        f'eval "$({python} -m launch stack env --cluster --role indexer)" && '
        f"exec {python} -m launch indexer --namespace {settings.namespace} --partitions 3"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOGDECK_")}
    log = tmp_path / "indexer.log"
    with log.open("ab") as out:
        indexer = subprocess.Popen(
            ["bash", "-c", script],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**env, "PYTHONUNBUFFERED": "1"},
        )
    yield log
    indexer.terminate()
    indexer.wait(30)


def test_logs_sent_through_the_cluster_are_stored_once_and_searched_back(
    settings: Settings,
    stored: Stored,
    accumulator: Process,
    indexer_from_env: Path,
    launch: Launch,
    tmp_path: Path,
) -> None:
    ledger = tmp_path / "ledger"
    fleet = launch(
        "simulate",
        *("--port", str(settings.accumulator_port), "--ledger", str(ledger)),
        *("--node-prefix", f"{settings.namespace}-", "--nodes", "3"),
        *("--rate", "30", "--duration", "5"),
    )
    assert fleet.wait(90) == 0, fleet.output()
    sent = ledger_ids(ledger)
    assert len(sent) >= 3 * 30 * 5 * 0.9, f"only {len(sent)} logs sent"
    wait_until(
        lambda: stored.logs()[0] >= len(sent),
        90,
        f"{len(sent)} logs in the store; indexer said:\n{indexer_from_env.read_text()}",
    )
    total, ids = stored.logs()
    assert total == len(sent)
    assert sorted(ids) == sorted(sent)
    with Elasticsearch(settings.elasticsearch_urls, request_timeout=90) as es:
        health = es.cluster.health(
            index=settings.indices.logs_pattern, wait_for_status="green", timeout="60s"
        )
        assert health["status"] == "green"
        daily = es.indices.get_settings(index=settings.indices.logs_pattern)
    assert {s["settings"]["index"]["number_of_replicas"] for s in daily.body.values()} == {"1"}


async def _topic_copies(settings: Settings) -> dict[str, tuple[set[int], str]]:
    """Each topic's replica counts over its partitions, and its min.insync.replicas."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka)
    await admin.start()
    try:
        described = await admin.describe_topics(list(settings.topics.all()))
        wanted = {"min.insync.replicas": None}
        configs = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, t, wanted) for t in settings.topics.all()]
        )
    finally:
        await admin.close()
    min_isr = {
        resource["resource_name"]: entry["config_value"]
        for response in configs
        for resource in response.to_object()["resources"]
        for entry in resource["config_entries"]
    }
    return {
        topic["topic"]: (
            {len(partition["replicas"]) for partition in topic["partitions"]},
            min_isr[topic["topic"]],
        )
        for topic in described
    }


def test_topics_keep_three_copies_and_need_two_for_an_ack(settings: Settings) -> None:
    bus = open_bus(settings)
    asyncio.run(bus.ensure_topics(settings.topics.all(), settings.topics.compacted()))
    copies: dict[str, tuple[set[int], str]] = {}

    def described() -> bool:
        """Until every new topic's partitions reach the metadata the admin client reads."""
        copies.update(asyncio.run(_topic_copies(settings)))
        return all(replicas for replicas, _ in copies.values())

    wait_until(described, 30, "the new topics' partitions in the metadata")
    assert copies == {topic: ({3}, "2") for topic in settings.topics.all()}


async def _ensure_schema(settings: Settings) -> None:
    store = open_store(settings)
    try:
        await store.ensure_schema()
    finally:
        await store.close()


def test_indices_keep_one_replica_on_another_node(settings: Settings, stored: Stored) -> None:
    asyncio.run(_ensure_schema(settings))
    indices = settings.indices
    with Elasticsearch(settings.elasticsearch_urls, request_timeout=90) as es:
        health = es.cluster.health(
            index=[indices.alerts, indices.nodes], wait_for_status="green", timeout="60s"
        )
        assert health["status"] == "green"
        replicas = {
            name: found["settings"]["index"]["number_of_replicas"]
            for name, found in es.indices.get_settings(index=f"{settings.namespace}-*").items()
        }
        template = es.indices.get_index_template(name=indices.logs_prefix.rstrip("-"))
    assert replicas == {indices.alerts: "1", indices.nodes: "1"}
    (logs,) = template["index_templates"]
    assert logs["index_template"]["template"]["settings"]["index"]["number_of_replicas"] == "1"
