"""docker-compose.cluster.yml over docker-compose.yml: three brokers in one quorum, three
Elasticsearch nodes in one cluster, and services that know every node.

No Docker engine runs here: the files are read as compose merges them (mappings merged key
by key, a command replaced whole) and checked for what a cluster needs to form and to
survive one node.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from backend.bus.kafka.replication import replication_for

ROOT = Path(__file__).resolve().parents[2]
KAFKA_NODES = ("kafka", "kafka-2", "kafka-3")
ES_NODES = ("elasticsearch", "elasticsearch-2", "elasticsearch-3")
LOGDECK_SERVICES = ("indexer", "alerter", "monitor", "notifier", "console")


def merged(base: Any, override: Any) -> Any:
    if isinstance(base, dict) and isinstance(override, dict):
        return {key: merged(base.get(key), value) for key, value in override.items()} | {
            key: value for key, value in base.items() if key not in override
        }
    return override


@pytest.fixture(scope="module")
def services() -> dict[str, dict[str, Any]]:
    base = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    cluster = yaml.safe_load((ROOT / "docker-compose.cluster.yml").read_text())
    found: dict[str, dict[str, Any]] = merged(base, cluster)["services"]
    return found


def env(service: dict[str, Any]) -> dict[str, str]:
    return {key: str(value) for key, value in service["environment"].items()}


def flag(command: list[str], name: str) -> list[str]:
    return command[command.index(name) + 1].split(",")


def test_three_brokers_form_one_quorum_of_distinct_nodes(
    services: dict[str, dict[str, Any]],
) -> None:
    envs = [env(services[name]) for name in KAFKA_NODES]
    voters = {
        f"{e['KAFKA_NODE_ID']}@{name}:9093" for e, name in zip(envs, KAFKA_NODES, strict=True)
    }
    for e in envs:
        assert set(e["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(",")) == voters
        assert e["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert len({e["CLUSTER_ID"] for e in envs}) == 1
    assert sorted(e["KAFKA_NODE_ID"] for e in envs) == ["1", "2", "3"]
    advertised = [e["KAFKA_ADVERTISED_LISTENERS"] for e in envs]
    assert [
        f"PLAINTEXT://{name}:9092" in a for a, name in zip(advertised, KAFKA_NODES, strict=True)
    ] == [True] * 3


def test_every_topic_survives_a_broker_as_the_services_would_create_it(
    services: dict[str, dict[str, Any]],
) -> None:
    wanted = replication_for(len(KAFKA_NODES))
    for name in KAFKA_NODES:
        e = env(services[name])
        for factor in ("OFFSETS_TOPIC", "TRANSACTION_STATE_LOG", "SHARE_COORDINATOR_STATE_TOPIC"):
            assert e[f"KAFKA_{factor}_REPLICATION_FACTOR"] == str(wanted.factor)
        assert e["KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"] == str(wanted.min_insync)
        assert e["KAFKA_MIN_INSYNC_REPLICAS"] == str(wanted.min_insync)


def test_three_elasticsearch_nodes_discover_each_other(
    services: dict[str, dict[str, Any]],
) -> None:
    for name in ES_NODES:
        e = env(services[name])
        assert e["discovery.type"] != "single-node"
        assert e["discovery.seed_hosts"].split(",") == list(ES_NODES)
        assert e["cluster.initial_master_nodes"].split(",") == list(ES_NODES)
        assert e["node.name"] == name and e["cluster.name"] == "logdeck"


def test_the_services_are_given_every_node(services: dict[str, dict[str, Any]]) -> None:
    brokers = [f"{name}:9092" for name in KAFKA_NODES]
    urls = [f"http://{name}:9200" for name in ES_NODES]
    for name in LOGDECK_SERVICES:
        command = services[name]["command"]
        assert flag(command, "--kafka") == brokers, name
        if "--elasticsearch" in command:
            assert flag(command, "--elasticsearch") == urls, name
    assert env(services["topics"])["LOGDECK_KAFKA"].split(",") == brokers


def test_new_nodes_publish_nothing_and_keep_their_data_in_volumes_of_their_own(
    services: dict[str, dict[str, Any]],
) -> None:
    cluster = yaml.safe_load((ROOT / "docker-compose.cluster.yml").read_text())
    declared = set(cluster["volumes"])
    for name in (*KAFKA_NODES[1:], *ES_NODES[1:]):
        assert "ports" not in services[name], name
        [volume] = services[name]["volumes"]
        assert volume.split(":")[0] in declared
    assert len(declared) == 4
