"""Faults on the three-node cluster of `logdeck stack up --cluster`, under acknowledged load.

Simulated nodes log through the accumulator (`--acks`: each node's ledger lists every
log_id the accumulator acknowledged, which it does only once Kafka has it on two
replicas) while a broker or an Elasticsearch node goes away: the leader of most of the
logs topic's partitions SIGKILLed, one Elasticsearch node SIGKILLed, and every broker
restarted in turn; a console (on its role's credentials) follows the live logs through
the broker's loss. Each test then counts the store against the ledgers: every
acknowledged log stored exactly once. Servers are started again through the stack's own
code, so the tests after these find the cluster whole. How long acknowledgements pause
is the benchmark's figure (`python -m bench.failover`); here only that they resume.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from elasticsearch import Elasticsearch

from backend.backends import open_bus, open_store
from backend.config import Settings
from backend.observe.live import LiveObserver
from backend.stack import elasticsearch, kafka
from backend.stack.topology import ElasticsearchNode, KafkaNode, Topology
from backend.store import StoreUnavailable
from backend.store.query import LogQuery
from console.app import LogdeckApp
from tests.integration import test_cluster
from tests.integration.conftest import Launch
from tests.integration.harness import (
    Process,
    Stored,
    assert_exactly_once,
    ledger_ids,
    until,
    wait_until,
)

pytestmark = pytest.mark.cluster

# The cluster's fixtures: it started once, each test in a namespace of its own that the
# stack opened, each service with its role's credentials.
cluster = test_cluster.cluster
settings = test_cluster.settings
launch = test_cluster.launch

RATE_PER_NODE = 500
"""Three nodes: about 1,500 logs/s."""


def fleet(launch: Launch, settings: Settings, ledger: Path, seconds: int) -> Process:
    """Three acknowledging nodes, each appending what was acknowledged to `ledger`."""
    return launch(
        "simulate",
        "--port", str(settings.accumulator_port),
        "--ledger", str(ledger),
        "--node-prefix", f"{settings.namespace}-",
        "--nodes", "3", "--rate", str(RATE_PER_NODE), "--duration", str(seconds), "--acks",
    )  # fmt: skip


async def _describe(settings: Settings, topics: list[str]) -> list[dict[str, Any]]:
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka, **settings.kafka_security.client_options()
    )
    await admin.start()
    try:
        described: list[dict[str, Any]] = await admin.describe_topics(topics)
        return described
    finally:
        await admin.close()


def partitions(settings: Settings, topics: list[str]) -> list[dict[str, Any]]:
    """Every partition of `topics`, with its leader, replicas and in-sync replicas."""
    described = asyncio.run(_describe(settings, topics))
    return [p for topic in described for p in topic["partitions"]]


def busiest_leader(stack: Topology, settings: Settings) -> KafkaNode:
    """The broker leading most partitions of the logs topic: its loss moves the most."""
    leaders = Counter(p["leader"] for p in partitions(settings, [settings.topics.logs]))
    node_id = leaders.most_common(1)[0][0]
    return next(node for node in stack.kafka if node.node_id == node_id)


def all_in_sync(settings: Settings) -> bool:
    """Every replica of the namespace's topics and of the group offsets is in sync."""
    topics = [*settings.topics.all(), "__consumer_offsets"]
    return all(len(p["isr"]) == len(p["replicas"]) for p in partitions(settings, topics))


def sigkill(pid: int | None, what: str) -> None:
    assert pid is not None, f"{what} is not running"
    os.kill(pid, signal.SIGKILL)


def start_broker(stack: Topology, node: KafkaNode) -> None:
    """Start a stopped broker as `stack up` does, and wait until it answers."""
    since = time.monotonic()
    launched = dict(zip(stack.kafka, kafka.launch_nodes(stack), strict=True))
    kafka.node_server(stack, node).wait_ready(launched[node], since)


def start_search_node(stack: Topology, node: ElasticsearchNode) -> None:
    """Start a stopped Elasticsearch node as `stack up` does, and wait until it joined."""
    since = time.monotonic()
    launched = dict(zip(stack.elasticsearch, elasticsearch.launch_nodes(stack), strict=True))
    elasticsearch.node_server(stack, node).wait_ready(launched[node], since)


@pytest.fixture
def restarted_after(cluster: Topology) -> Iterator[Topology]:
    """Whatever a test stopped runs again when it ends (the stack starts what is not running)."""
    yield cluster
    since = time.monotonic()
    launched = [*kafka.launch_nodes(cluster), *elasticsearch.launch_nodes(cluster)]
    servers = [
        *(kafka.node_server(cluster, node) for node in cluster.kafka),
        *(elasticsearch.node_server(cluster, node) for node in cluster.elasticsearch),
    ]
    for server, launcher in zip(servers, launched, strict=True):
        server.wait_ready(launcher, since)


def acknowledged(ledger: Path) -> int:
    return len(ledger_ids(ledger))


async def test_the_busiest_leader_killed_acks_resume_the_console_goes_on_and_none_is_lost(
    settings: Settings,
    stored: Stored,
    accumulator: Process,
    indexer: Process,
    launch: Launch,
    tmp_path: Path,
    restarted_after: Topology,
) -> None:
    ledger = tmp_path / "ledger"
    reader = test_cluster.as_role(settings, "console")
    app = LogdeckApp(LiveObserver(reader, open_bus(reader), open_store(reader)))
    async with app.run_test(size=(160, 48)):
        shown = app.main.feed.ring
        nodes = fleet(launch, settings, ledger, seconds=30)
        await until(lambda: acknowledged(ledger) > 2000, 60, "the first acknowledgements")
        await until(lambda: shown.end_seq > 0, 60, "the first logs in the console's feed")
        victim = await asyncio.to_thread(busiest_leader, restarted_after, settings)
        killed_at = time.monotonic()
        sigkill(kafka.node_server(restarted_after, victim).pid(), victim.name)
        await asyncio.sleep(1)
        settled, seen = acknowledged(ledger), shown.end_seq
        await until(
            lambda: acknowledged(ledger) > settled + RATE_PER_NODE,
            60,
            f"acknowledgements to resume without {victim.name}",
        )
        print(f"acks resumed {time.monotonic() - killed_at:.1f} s after {victim.name} was killed")
        await until(
            lambda: shown.end_seq > seen + RATE_PER_NODE,
            60,
            f"the console's live feed to go on without {victim.name}",
        )

    def settle() -> None:  # the harness's checks run loops of their own
        start_broker(restarted_after, victim)
        assert nodes.wait(120) == 0, nodes.output()
        assert_exactly_once(stored, [nodes], ledger_ids(ledger), 120)
        wait_until(lambda: all_in_sync(settings), 120, f"{victim.name} back in every ISR")

    await asyncio.to_thread(settle)


def primary_holder(stack: Topology, settings: Settings) -> ElasticsearchNode:
    """The node holding the primary of today's logs index: its loss stops that index's writes
    until the replica is promoted. Asked once the replica is started: one still recovering
    from that node could not take over, and the index would wait for the node's return."""
    with Elasticsearch(settings.elasticsearch_urls, request_timeout=90) as es:
        health = es.cluster.health(
            index=settings.indices.logs_pattern, wait_for_status="green", timeout="60s"
        )
        assert health["status"] == "green", f"today's logs index not green: {health}"
        shards = es.cat.shards(index=settings.indices.logs_pattern, format="json", h="prirep,node")
    rows = cast(list[dict[str, str]], shards.body)  # a list with format=json
    names = {shard["node"] for shard in rows if shard["prirep"] == "p"}
    return next(node for node in stack.elasticsearch if node.node_name in names)


async def _search_once(settings: Settings) -> bool:
    """One search as the console makes it: True if the store answered."""
    store = open_store(settings)
    try:
        await store.search_logs(LogQuery(page_size=10))
        return True
    except StoreUnavailable:
        return False
    finally:
        await store.close()


def searches_while(seconds: float, settings: Settings) -> list[bool]:
    """A search every half second for `seconds`: whether each was answered."""
    deadline = time.monotonic() + seconds
    answers = []
    while time.monotonic() < deadline:
        answers.append(asyncio.run(_search_once(settings)))
        time.sleep(0.5)
    return answers


def test_an_elasticsearch_node_killed_indexing_and_searches_go_on_and_nothing_is_lost(
    settings: Settings,
    stored: Stored,
    accumulator: Process,
    indexer: Process,
    launch: Launch,
    tmp_path: Path,
    restarted_after: Topology,
) -> None:
    ledger = tmp_path / "ledger"
    nodes = fleet(launch, settings, ledger, seconds=35)
    wait_until(lambda: stored.logs()[0] > 2000, 60, "the first logs stored")
    victim = primary_holder(restarted_after, settings)
    sigkill(elasticsearch.node_server(restarted_after, victim).pid(), victim.name)
    stored_at_kill = stored.logs()[0]
    answers = searches_while(15, settings)
    stored_while_down = stored.logs()[0]
    start_search_node(restarted_after, victim)
    print(
        f"{victim.name} down: {answers.count(True)} of {len(answers)} searches answered, "
        f"{stored_while_down - stored_at_kill} logs stored"
    )
    assert answers and all(answers), f"{answers.count(False)} of {len(answers)} searches failed"
    assert stored_while_down > stored_at_kill, f"nothing indexed while {victim.name} was down"
    assert nodes.wait(120) == 0, nodes.output()
    assert_exactly_once(stored, [nodes], ledger_ids(ledger), 120)


def test_every_broker_restarted_in_turn_under_load_loses_and_duplicates_nothing(
    settings: Settings,
    stored: Stored,
    accumulator: Process,
    indexer: Process,
    launch: Launch,
    tmp_path: Path,
    restarted_after: Topology,
) -> None:
    ledger = tmp_path / "ledger"
    nodes = fleet(launch, settings, ledger, seconds=600)
    wait_until(lambda: acknowledged(ledger) > 2000, 60, "the first acknowledgements")
    for node in restarted_after.kafka:
        before = acknowledged(ledger)
        kafka.node_server(restarted_after, node).stop()
        start_broker(restarted_after, node)
        wait_until(lambda: all_in_sync(settings), 120, f"{node.name} back in every ISR")
        assert acknowledged(ledger) > before, f"no acknowledgement while {node.name} restarted"
    assert nodes.stop(60) == 0, nodes.output()
    assert_exactly_once(stored, [nodes], ledger_ids(ledger), 120)
