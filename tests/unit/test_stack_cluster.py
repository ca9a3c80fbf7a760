"""The pure parts of `logdeck stack up --cluster` and `logdeck stack env`: where the nodes
live and listen, their rendered configs, the quorum they are formatted with, the variables
each role is given. No Kafka or Elasticsearch is needed."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from backend.stack import commands, kafka, process
from backend.stack.elasticsearch import render_elasticsearch_yml
from backend.stack.env import ROLES, env_lines
from backend.stack.errors import StackError
from backend.stack.kafka import render_server_properties
from backend.stack.kafka_secured import passwords_file
from backend.stack.layout import Layout
from backend.stack.principals import ensure_passwords
from backend.stack.topology import Topology, cluster, single

LAYOUT = Layout(Path("/srv/stack"))
CLUSTER = cluster(LAYOUT)
SINGLE = single(LAYOUT)


def properties(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines())


def yml(text: str) -> dict[str, object]:
    return {
        key: json.loads(value) for key, value in (line.split(": ", 1) for line in text.splitlines())
    }


# --- where the nodes live and listen ---------------------------------------------------


def test_the_cluster_shares_no_port_or_folder_with_the_single_stack() -> None:
    def ports(stack: Topology) -> list[int]:
        return [port for srv in commands.servers(stack) for port in srv.ports]

    def homes(stack: Topology) -> list[Path]:
        return [node.home for node in (*stack.kafka, *stack.elasticsearch)]

    cluster_ports, single_ports = ports(CLUSTER), ports(SINGLE)
    assert len(set(cluster_ports)) == len(cluster_ports) == 15
    assert not set(cluster_ports) & {*single_ports, *range(9300, 9400)}
    assert all(home.is_relative_to(LAYOUT.cluster) for home in homes(CLUSTER))
    assert not any(home.is_relative_to(LAYOUT.cluster) for home in homes(SINGLE))


def test_clients_reach_every_node() -> None:
    assert CLUSTER.bootstrap == "127.0.0.1:19092,127.0.0.1:19094,127.0.0.1:19096"
    assert CLUSTER.elasticsearch_urls == (
        "http://127.0.0.1:19200,http://127.0.0.1:19201,http://127.0.0.1:19202"
    )
    assert (SINGLE.bootstrap, SINGLE.elasticsearch_urls) == (
        "127.0.0.1:9092",
        "http://127.0.0.1:9200",
    )


def test_status_names_every_server_of_the_cluster(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LOGDECK_STACK_DIR", str(tmp_path))
    assert commands.stack_main("status", cluster=True) == commands.EXIT_NOT_RUNNING
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[:2] for line in lines] == [
        *([f"Kafka-{n}", "stopped"] for n in (1, 2, 3)),
        *([f"Elasticsearch-{n}", "stopped"] for n in (1, 2, 3)),
    ]
    assert len({line.index("stopped") for line in lines}) == 1, "columns aligned"


# --- Kafka ------------------------------------------------------------------------------


def test_every_kafka_node_is_broker_and_voter_on_its_own_ports() -> None:
    configs = [properties(render_server_properties(CLUSTER, node)) for node in CLUSTER.kafka]
    assert [c["node.id"] for c in configs] == ["1", "2", "3"]
    assert {c["controller.quorum.bootstrap.servers"] for c in configs} == {
        "127.0.0.1:19093,127.0.0.1:19095,127.0.0.1:19097"
    }
    assert configs[1]["listeners"] == (
        "CLIENT://127.0.0.1:19094,INTERNAL://127.0.0.1:19102,CONTROLLER://127.0.0.1:19095"
    )
    assert configs[2]["log.dirs"] == "/srv/stack/cluster/kafka-3/data"
    assert {c["process.roles"] for c in configs} == {"broker,controller"}


def test_the_cluster_internal_topics_survive_a_lost_broker() -> None:
    config = properties(render_server_properties(CLUSTER, CLUSTER.kafka[0]))
    assert config["offsets.topic.replication.factor"] == "3"
    assert config["transaction.state.log.replication.factor"] == "3"
    assert config["transaction.state.log.min.isr"] == "2"
    assert config["share.coordinator.state.topic.min.isr"] == "2"


def test_the_cluster_is_formatted_with_every_controller_and_one_directory_id_each() -> None:
    flags = kafka._quorum_flags(CLUSTER)
    assert flags[0] == "--initial-controllers"
    voters = [voter.split(":") for voter in flags[1].split(",")]
    assert [voter[:2] for voter in voters] == [
        ["1@127.0.0.1", "19093"],
        ["2@127.0.0.1", "19095"],
        ["3@127.0.0.1", "19097"],
    ]
    assert len({voter[2] for voter in voters}) == 3
    assert kafka._quorum_flags(SINGLE) == ["--standalone"]


def test_a_cluster_formatted_in_part_is_refused(tmp_path: Path) -> None:
    stack = cluster(Layout(tmp_path))
    stack.kafka[1].data.mkdir(parents=True)
    (stack.kafka[1].data / "meta.properties").write_text("node.id=2\n", encoding="utf-8")
    with pytest.raises(StackError, match="only some Kafka nodes of logdeck-cluster"):
        kafka._format(stack)


def test_a_formatted_cluster_is_not_formatted_again(tmp_path: Path) -> None:
    stack = cluster(Layout(tmp_path))
    for node in stack.kafka:
        node.data.mkdir(parents=True)
        (node.data / "meta.properties").write_text("formatted\n", encoding="utf-8")
    kafka._format(stack)  # no JVM is needed: it returns before formatting
    assert all((node.data / "meta.properties").read_text() == "formatted\n" for node in stack.kafka)


# --- Elasticsearch ----------------------------------------------------------------------


def test_elasticsearch_nodes_discover_each_other_on_loopback() -> None:
    config = yml(render_elasticsearch_yml(CLUSTER, CLUSTER.elasticsearch[1]))
    assert "discovery.type" not in config
    assert config["discovery.seed_hosts"] == [
        "127.0.0.1:19300",
        "127.0.0.1:19301",
        "127.0.0.1:19302",
    ]
    assert config["cluster.initial_master_nodes"] == [
        "logdeck-cluster-1",
        "logdeck-cluster-2",
        "logdeck-cluster-3",
    ]
    assert (config["cluster.name"], config["node.name"]) == ("logdeck-cluster", "logdeck-cluster-2")
    assert (config["http.port"], config["transport.port"]) == ("19201", "19301")
    assert config["network.host"] == "127.0.0.1"
    assert config["path.data"] == "/srv/stack/cluster/elasticsearch-2/data"


def test_the_single_node_keeps_its_configuration() -> None:
    config = yml(render_elasticsearch_yml(SINGLE, SINGLE.elasticsearch[0]))
    assert list(config) == [
        "cluster.name",
        "node.name",
        "discovery.type",
        "network.host",
        "http.port",
        "path.data",
        "path.logs",
        "xpack.security.enabled",
        "cluster.routing.allocation.disk.threshold_enabled",
        "action.destructive_requires_name",
    ]
    assert (config["cluster.name"], config["node.name"]) == ("logdeck", "logdeck-1")


def test_cluster_nodes_are_told_apart_by_their_folder() -> None:
    markers = [srv.markers for srv in commands.servers(CLUSTER)[3:]]
    assert len(set(markers)) == 3
    assert "-Dlogdeck.node=/srv/stack/cluster/elasticsearch-1" in markers[0]


# --- stopping ---------------------------------------------------------------------------


def test_stopping_signals_every_process_at_once_and_kills_the_stubborn(tmp_path: Path) -> None:
    polite = process.spawn_detached(
        ["sleep", "60"], log=tmp_path / "a", cwd=tmp_path, env=os.environ
    )
    stubborn = process.spawn_detached(
        ["sh", "-c", "trap '' TERM; echo ready; while :; do sleep 0.1; done"],
        log=tmp_path / "b",
        cwd=tmp_path,
        env=os.environ,
    )
    assert process.wait_until(lambda: (tmp_path / "b").read_text() == "ready\n", 5.0)
    process.terminate_all([polite, stubborn], timeout=1.0)
    assert not process.alive(polite)
    assert not process.alive(stubborn)


# --- env --------------------------------------------------------------------------------


def test_env_exports_what_each_role_reaches(tmp_path: Path) -> None:
    """The addresses, before the credentials (`test_stack_security` checks those)."""
    stack = cluster(Layout(tmp_path))
    ensure_passwords(passwords_file(stack), ROLES)
    kafka_only = ["export LOGDECK_KAFKA=127.0.0.1:19092,127.0.0.1:19094,127.0.0.1:19096"]
    both = [
        *kafka_only,
        "export LOGDECK_ELASTICSEARCH="
        "http://127.0.0.1:19200,http://127.0.0.1:19201,http://127.0.0.1:19202",
    ]
    assert env_lines(stack, None)[:2] == both
    for role in ("accumulator", "alerter", "monitor", "notifier"):
        assert env_lines(stack, role)[:2] == [
            *kafka_only,
            "export LOGDECK_KAFKA_SECURITY_PROTOCOL=SASL_SSL",
        ]
    for role in ("indexer", "console", "console-read-only"):
        assert env_lines(stack, role)[:2] == both
    assert set(ROLES) == {
        "accumulator",
        "indexer",
        "alerter",
        "monitor",
        "notifier",
        "console",
        "console-read-only",
    }


def test_an_unknown_role_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert commands.stack_main("env", role="janitor") == commands.EXIT_USAGE
    assert capsys.readouterr().err.startswith(
        "logdeck stack env: unknown role 'janitor'; use one of accumulator, indexer,"
    )


def test_a_role_outside_env_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert commands.stack_main("status", role="indexer") == commands.EXIT_USAGE
    assert "--role applies to `env` only" in capsys.readouterr().err


def test_env_with_nothing_running_says_how_to_start_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LOGDECK_STACK_DIR", str(tmp_path))
    assert commands.stack_main("env", cluster=True) == commands.EXIT_NOT_RUNNING
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "`logdeck stack up --cluster`" in captured.err


def test_env_follows_the_stack_that_runs(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With only the cluster running (its first broker's pid file names this process,
    whose command line has the markers checked), env gives the cluster's addresses."""
    monkeypatch.setenv("LOGDECK_STACK_DIR", str(tmp_path))
    stack = cluster(Layout(tmp_path))
    first = commands.servers(stack)[0]
    first.pid_file.parent.mkdir(parents=True)
    first.pid_file.write_text(str(os.getpid()), encoding="utf-8")
    monkeypatch.setattr(process, "cmdline", lambda pid: " ".join(first.markers))
    ensure_passwords(passwords_file(stack), ROLES)
    assert commands.stack_main("env", role="accumulator") == 0
    assert capsys.readouterr().out.startswith(f"export LOGDECK_KAFKA={stack.bootstrap}\n")
