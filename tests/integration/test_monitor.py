"""The heartbeat monitor on each backend: nodes, accumulator and monitor as processes.

Detection times are measured from the moment the test kills or stops a node to the Kafka
timestamp of the RaiseAlert the monitor published, so the test's own polling adds nothing.
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from fluent import sender

from backend.config import Settings
from backend.monitor.registry_topic import latest_entries
from backend.monitor.service import node_down_fingerprint, node_fingerprint
from backend.schemas import AlertKind, NodeEntry, NodeStatus, now_iso
from tests.integration.conftest import Launch
from tests.integration.harness import Process, Stored, connection_flags, snapshot, wait_until

pytestmark = pytest.mark.integration

TIMEOUT = 3.0
_log = logging.getLogger("tests.monitor")
_STARTED = re.compile(r"^started node_id=(\S+) service=\S+ pid=(\d+)$", re.MULTILINE)


@dataclass(frozen=True)
class Command:
    """An alert command the monitor published, with its Kafka timestamp in seconds."""

    at: float
    body: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.body["command"])

    @property
    def fingerprint(self) -> str:
        return str(self.body["fingerprint"])


def registry(settings: Settings) -> dict[str, NodeEntry]:
    """The latest entry per node on the registry topic (retired nodes left out)."""
    return latest_entries(snapshot(settings, settings.topics.registry), _log)


def commands(settings: Settings) -> list[Command]:
    records = snapshot(settings, settings.topics.alert_commands)
    return [Command(record.timestamp_ms / 1000, json.loads(record.value)) for record in records]


def wait_for_command(settings: Settings, kind: str, node_id: str, within: float) -> Command:
    fingerprint = node_down_fingerprint(node_id)
    found: list[Command] = []

    def arrived() -> bool:
        found[:] = [
            c for c in commands(settings) if c.kind == kind and c.fingerprint == fingerprint
        ]
        return bool(found)

    wait_until(arrived, within, f"{kind} {fingerprint}", interval=0.1)
    return found[0]


def wait_for_registry(
    settings: Settings, check: Callable[[dict[str, NodeEntry]], bool], what: str
) -> dict[str, NodeEntry]:
    seen: dict[str, NodeEntry] = {}

    def holds() -> bool:
        seen.clear()
        seen.update(registry(settings))
        return check(seen)

    wait_until(holds, 60, what)
    return seen


def all_up(node_ids: list[str]) -> Callable[[dict[str, NodeEntry]], bool]:
    def check(entries: dict[str, NodeEntry]) -> bool:
        return all(
            node in entries
            and entries[node].status is NodeStatus.UP
            and entries[node].last_heartbeat is not None
            for node in node_ids
        )

    return check


def simulate(launch: Launch, settings: Settings, nodes: int, name: str = "simulate") -> Process:
    """A fleet logging 20 lines/s per node until stopped, its node ids in the namespace."""
    return launch(
        "simulate",
        "--nodes",
        str(nodes),
        "--rate",
        "20",
        "--duration",
        "0",
        "--heartbeat-interval",
        "1.0",
        "--port",
        str(settings.accumulator_port),
        "--node-prefix",
        f"{settings.namespace}-",
        name=name,
    )


def node_pids(fleet: Process, nodes: int) -> dict[str, int]:
    """node_id -> pid, from the `started` lines the fleet prints, in the order it started them."""
    found: dict[str, int] = {}

    def printed() -> bool:
        found.update({node: int(pid) for node, pid in _STARTED.findall(fleet.output())})
        return len(found) >= nodes

    wait_until(printed, 30, f"{nodes} nodes to start")
    return found


def start_monitor(launch: Launch, *extra: str, name: str = "monitor") -> Process:
    monitor = launch("monitor", "--timeout", str(TIMEOUT), *extra, name=name)
    wait_until(
        lambda: "caught up on all" in monitor.output() or monitor.popen.poll() is not None,
        60,
        "the monitor to catch up",
    )
    assert monitor.popen.poll() is None, monitor.output()
    return monitor


def test_a_killed_node_is_raised_within_the_timeout_and_cleared_when_it_comes_back(
    settings: Settings, accumulator: Process, launch: Launch
) -> None:
    monitor = start_monitor(launch)
    pids = node_pids(simulate(launch, settings, 2), 2)
    victim, survivor = pids  # the first is the node a fleet of one starts again
    wait_for_registry(settings, all_up([victim, survivor]), "both nodes UP")

    killed_at = time.time()
    os.kill(pids[victim], signal.SIGKILL)
    raised = wait_for_command(settings, "RAISE", victim, within=TIMEOUT + 10)
    assert raised.at - killed_at <= TIMEOUT + 1, f"raised {raised.at - killed_at:.2f} s after"
    assert raised.body["kind"] == "NODE_DOWN"
    assert raised.body["severity"] == "CRITICAL"
    assert raised.body["node_id"] == victim
    assert raised.body["service_name"]
    assert f"node {victim} ({raised.body['service_name']}) silent for" in raised.body["summary"]
    entries = registry(settings)
    assert entries[victim].status is NodeStatus.DOWN
    assert entries[survivor].status is NodeStatus.UP

    # The same node_id again, from a new process: the first node of a fleet of one.
    node_pids(simulate(launch, settings, 1, name="comeback"), 1)
    cleared = wait_for_command(settings, "CLEAR", victim, within=30)
    assert cleared.at > raised.at
    wait_for_registry(settings, all_up([victim, survivor]), "the node UP again")
    sent = commands(settings)
    assert [c.kind for c in sent if c.fingerprint == node_down_fingerprint(victim)] == [
        "RAISE",
        "CLEAR",
    ]
    assert not [c for c in sent if c.fingerprint == node_down_fingerprint(survivor)]
    assert "NODE_DOWN raised" in monitor.output()


def test_a_node_stopped_gracefully_is_raised_at_once(
    settings: Settings, accumulator: Process, launch: Launch
) -> None:
    start_monitor(launch)
    [(node, pid)] = node_pids(simulate(launch, settings, 1), 1).items()
    wait_for_registry(settings, all_up([node]), "the node UP")

    stopped_at = time.time()
    os.kill(pid, signal.SIGTERM)  # the node heartbeats DOWN on its way out
    raised = wait_for_command(settings, "RAISE", node, within=10)
    assert raised.at - stopped_at < 1.0, f"raised {raised.at - stopped_at:.2f} s after"
    assert "reported DOWN in its heartbeat" in raised.body["summary"]
    assert registry(settings)[node].status is NodeStatus.DOWN


@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL"])
def test_a_monitor_restart_keeps_the_registry_and_raises_nothing(
    settings: Settings, accumulator: Process, launch: Launch, how: str
) -> None:
    first = start_monitor(launch)
    pids = node_pids(simulate(launch, settings, 3), 3)
    before = wait_for_registry(settings, all_up(list(pids)), "three nodes UP")
    time.sleep(2)  # heartbeats read after the last registry change, some not committed

    if how == "SIGTERM":
        first.stop()
    else:
        first.kill()
    time.sleep(1)
    second = start_monitor(launch, name="monitor-again")
    assert "restored 3 nodes" in second.output()
    time.sleep(2 * TIMEOUT + 1)  # well past every node's grace

    assert [c for c in commands(settings) if c.kind == "RAISE"] == []
    after = registry(settings)
    assert set(after) == set(before)
    for node, entry in before.items():
        assert after[node].status is NodeStatus.UP
        assert after[node].service_name == entry.service_name
        assert after[node].registered_at == entry.registered_at

    # The new monitor does judge: a node killed now is raised in time.
    victim = next(iter(pids))
    killed_at = time.time()
    os.kill(pids[victim], signal.SIGKILL)
    raised = wait_for_command(settings, "RAISE", victim, within=TIMEOUT + 10)
    assert raised.at - killed_at <= TIMEOUT + 1, f"raised {raised.at - killed_at:.2f} s after"


def test_a_node_that_heartbeats_without_registering_is_registered_without_a_service(
    settings: Settings, accumulator: Process, launch: Launch
) -> None:
    monitor = start_monitor(launch)
    node = f"{settings.namespace}-unregistered-01"
    logger = sender.FluentSender("logdeck", host="127.0.0.1", port=settings.accumulator_port)
    try:
        for _ in range(3):
            heartbeat = {
                "node_id": node,
                "message_type": "HEARTBEAT",
                "status": "UP",
                "timestamp": now_iso(),
            }
            assert logger.emit("heartbeat", heartbeat), logger.last_error
            time.sleep(0.5)
    finally:
        logger.close()

    entries = wait_for_registry(settings, lambda entries: node in entries, "the node registered")
    entry = entries[node]
    assert entry.service_name is None
    assert entry.registered_at is None
    assert entry.last_heartbeat is not None
    assert f"node {node} (service unknown) sends heartbeats without having registered" in (
        monitor.output()
    )
    # Silent since: it goes DOWN like any other node.
    raised = wait_for_command(settings, "RAISE", node, within=TIMEOUT + 10)
    assert raised.body["service_name"] is None


def test_a_flapping_node_raises_one_flapping_alert_not_a_node_down_per_fall(
    settings: Settings, accumulator: Process, launch: Launch
) -> None:
    monitor = start_monitor(launch)
    node = f"{settings.namespace}-flappy-01"
    logger = sender.FluentSender("logdeck", host="127.0.0.1", port=settings.accumulator_port)
    try:
        registration = {
            "node_id": node,
            "message_type": "REGISTRATION",
            "service_name": "PaymentService",
            "timestamp": now_iso(),
        }
        assert logger.emit("registration", registration), logger.last_error
        for status in ["UP", *["DOWN", "UP"] * 6]:  # six falls within seconds
            time.sleep(0.3)
            heartbeat = {
                "node_id": node,
                "message_type": "HEARTBEAT",
                "status": status,
                "timestamp": now_iso(),
            }
            assert logger.emit("heartbeat", heartbeat), logger.last_error
    finally:
        logger.close()

    flapping = node_fingerprint(AlertKind.FLAPPING, node)

    def raised_flapping() -> bool:
        return any(c.fingerprint == flapping and c.kind == "RAISE" for c in commands(settings))

    wait_until(raised_flapping, 30, f"RAISE {flapping}: {monitor.output()[-2000:]}")
    time.sleep(TIMEOUT + 2)  # silent since: judged down, still flapping, no NODE_DOWN
    sent = commands(settings)  # in order per fingerprint, not across fingerprints
    node_down = [c.kind for c in sent if c.fingerprint == node_down_fingerprint(node)]
    assert node_down == ["RAISE", "CLEAR"] * 3
    (raised,) = [c for c in sent if c.fingerprint == flapping]
    assert raised.kind == "RAISE"
    assert "is flapping: down 4 times" in raised.body["summary"]


def fingerprints_of(settings: Settings, node: str) -> list[tuple[str, str]]:
    """(command, alert kind) of every alert command about `node`, sorted: alerts of
    different kinds are on different partitions, with no order between them."""
    return sorted(
        (c.kind, c.fingerprint.split(":", 1)[0])
        for c in commands(settings)
        if c.fingerprint.endswith(f":{node}")
    )


def test_a_node_that_said_goodbye_is_retired_from_the_registry_and_the_store(
    settings: Settings, stored: Stored, accumulator: Process, indexer: Process, launch: Launch
) -> None:
    monitor = start_monitor(launch, "--retire-goodbye", "2")
    pids = node_pids(simulate(launch, settings, 2), 2)
    leaving, staying = pids
    wait_for_registry(settings, all_up([leaving, staying]), "both nodes UP")
    wait_until(lambda: leaving in stored.nodes(), 60, f"{leaving} in the store")

    os.kill(pids[leaving], signal.SIGTERM)  # goodbye: a DOWN heartbeat
    wait_until(lambda: leaving not in registry(settings), 30, f"{leaving} retired")
    assert f"node {leaving}" in monitor.output() and "retired: said goodbye" in monitor.output()
    assert staying in registry(settings)
    wait_until(lambda: leaving not in stored.nodes(), 60, f"{leaving} gone from the store")
    assert staying in stored.nodes()
    assert fingerprints_of(settings, leaving) == [
        ("CLEAR", "FLAPPING"),
        ("CLEAR", "NODE_DOWN"),
        ("RAISE", "NODE_DOWN"),
    ]


def test_logdeck_forget_retires_a_down_node_and_refuses_an_up_one(
    settings: Settings, stored: Stored, accumulator: Process, indexer: Process, launch: Launch
) -> None:
    start_monitor(launch)
    pids = node_pids(simulate(launch, settings, 2), 2)
    dead, alive = pids
    wait_for_registry(settings, all_up([dead, alive]), "both nodes UP")
    os.kill(pids[dead], signal.SIGKILL)
    wait_for_command(settings, "RAISE", dead, within=TIMEOUT + 10)
    wait_until(lambda: stored.nodes().get(dead, None) is not None, 60, f"{dead} stored")

    refused = launch("forget", alive, *connection_flags(settings), name="forget-alive")
    assert refused.popen.wait(60) == 2
    assert f"node {alive} is UP: only a DOWN node can be forgotten" in refused.output()
    unknown = launch(
        "forget", f"{settings.namespace}-nobody", *connection_flags(settings), name="forget-unknown"
    )
    assert unknown.popen.wait(60) == 2
    assert "no node" in unknown.output()

    forget = launch(
        "forget", dead, "--by", "oncall", *connection_flags(settings), name="forget-dead"
    )
    assert forget.popen.wait(60) == 0, forget.output()
    wait_until(lambda: dead not in registry(settings), 30, f"{dead} forgotten")
    wait_until(lambda: dead not in stored.nodes(), 60, f"{dead} gone from the store")
    assert alive in registry(settings) and alive in stored.nodes()
    assert fingerprints_of(settings, dead) == [
        ("CLEAR", "FLAPPING"),
        ("CLEAR", "NODE_DOWN"),
        ("RAISE", "NODE_DOWN"),
    ]
    cleared = [c for c in commands(settings) if c.fingerprint == node_down_fingerprint(dead)][-1]
    assert cleared.body["summary"].endswith("forgotten by oncall")
