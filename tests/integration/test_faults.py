"""Faults on the real servers: Elasticsearch or Kafka killed mid-stream, nothing lost.

Each test SIGKILLs one of the servers of `logdeck stack up` while simulated nodes log
through the accumulator, starts it again, and then counts what the store holds against
the nodes' ledgers of acknowledged log_ids: sent, stored, duplicated. The server is
started again in every case, so the tests after these find the stack as it was.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from backend.config import Settings
from backend.stack.elasticsearch import server as elasticsearch_server
from backend.stack.elasticsearch import start_elasticsearch
from backend.stack.kafka import server as kafka_server
from backend.stack.kafka import start_kafka
from tests.integration.conftest import Launch
from tests.integration.harness import (
    Process,
    Stored,
    assert_exactly_once,
    free_port,
    ledger_ids,
    new_namespace,
    wait_until,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(servers: Settings) -> Settings:
    """These faults are the real servers': the embedded backend has no server to kill."""
    return Settings(
        kafka=servers.kafka,
        elasticsearch=servers.elasticsearch,
        namespace=new_namespace(),
        partitions=3,
        accumulator_port=free_port(),
    )


def kill(pid: int | None, what: str) -> None:
    assert pid is not None, f"{what} is not running"
    os.kill(pid, signal.SIGKILL)


@pytest.fixture
def killed_and_restarted() -> Iterator[Callable[[str], None]]:
    """Kills a server by name; whatever happens, it runs again when the test ends."""
    starts = {"elasticsearch": start_elasticsearch, "kafka": start_kafka}
    servers = {"elasticsearch": elasticsearch_server, "kafka": kafka_server}
    killed: list[str] = []

    def do(name: str) -> None:
        kill(servers[name]().pid(), name)
        killed.append(name)

    yield do
    for name in killed:
        starts[name]()


def fleet(launch: Launch, settings: Settings, ledger: Path, seconds: int, rate: int) -> Process:
    return launch(
        "simulate",
        "--port", str(settings.accumulator_port),
        "--ledger", str(ledger),
        "--node-prefix", f"{settings.namespace}-",
        "--nodes", "3", "--rate", str(rate), "--duration", str(seconds), "--acks",
    )  # fmt: skip


def test_elasticsearch_killed_for_30_s_the_indexer_backs_off_and_catches_up_exactly_once(
    settings: Settings,
    stored: Stored,
    accumulator: Process,
    indexer: Process,
    launch: Launch,
    tmp_path: Path,
    killed_and_restarted: Callable[[str], None],
) -> None:
    ledger = tmp_path / "ledger"
    nodes = fleet(launch, settings, ledger, seconds=45, rate=200)
    wait_until(lambda: stored.logs()[0] > 1000, 60, "the first logs stored")
    killed_and_restarted("elasticsearch")
    time.sleep(30)
    start_elasticsearch()
    assert nodes.wait(120) == 0, nodes.output()
    assert_exactly_once(stored, [nodes], ledger_ids(ledger), 120)
    assert "retry" in indexer.output(), indexer.output()[-2000:]


def test_kafka_killed_and_restarted_the_accumulator_holds_acks_and_nothing_is_lost(
    settings: Settings,
    stored: Stored,
    accumulator: Process,
    indexer: Process,
    launch: Launch,
    tmp_path: Path,
    killed_and_restarted: Callable[[str], None],
) -> None:
    ledger = tmp_path / "ledger"
    nodes = fleet(launch, settings, ledger, seconds=40, rate=660)  # about 2,000 logs/s
    wait_until(lambda: stored.logs()[0] > 2000, 60, "the first logs stored")
    killed_and_restarted("kafka")
    time.sleep(10)
    acknowledged_while_down = len(ledger_ids(ledger))
    time.sleep(5)
    assert len(ledger_ids(ledger)) == acknowledged_while_down, "acks went on without Kafka"
    start_kafka()
    assert nodes.wait(180) == 0, nodes.output()
    assert_exactly_once(stored, [nodes], ledger_ids(ledger), 180)
    assert accumulator.popen.poll() is None, accumulator.output()[-2000:]
