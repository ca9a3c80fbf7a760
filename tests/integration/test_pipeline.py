"""The pipeline end to end, on each backend: nodes → accumulator → bus → indexer → store."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import msgpack
import pytest

from backend.config import Settings
from backend.schemas import NodeStatus
from tests.integration.conftest import Launch
from tests.integration.harness import (
    Process,
    Stored,
    ledger_ids,
    port_open,
    read_topic,
    wait_until,
)
from tests.records import make_log

pytestmark = pytest.mark.integration


def simulate(launch: Launch, settings: Settings, ledger: Path, *extra: str) -> Process:
    return launch(
        "simulate",
        "--port",
        str(settings.accumulator_port),
        "--ledger",
        str(ledger),
        "--node-prefix",
        f"{settings.namespace}-",
        *extra,
    )


def assert_stored_exactly_once(stored: Stored, sent: list[str]) -> None:
    wait_until(lambda: stored.logs()[0] >= len(sent), 90, f"{len(sent)} logs in the store")
    total, ids = stored.logs()
    assert total == len(sent), f"{total - len(sent)} logs stored twice"
    assert set(ids) == set(sent), (
        f"missing {len(set(sent) - set(ids))}, unexpected {len(set(ids) - set(sent))}"
    )


def test_three_nodes_for_ten_seconds_every_log_stored_exactly_once(
    settings: Settings,
    stored: Stored,
    accumulator: Process,
    indexer: Process,
    launch: Launch,
    tmp_path: Path,
) -> None:
    launch("monitor")  # keeps the registry that the indexer copies into the store
    ledger = tmp_path / "ledger"
    fleet = simulate(launch, settings, ledger, "--nodes", "3", "--rate", "60", "--duration", "10")
    assert fleet.wait(90) == 0, fleet.output()
    sent = ledger_ids(ledger)
    assert len(sent) >= 3 * 60 * 10 * 0.9, f"only {len(sent)} logs sent"
    assert len(set(sent)) == len(sent)
    assert_stored_exactly_once(stored, sent)

    def nodes_down() -> bool:
        statuses = [entry.status for entry in stored.nodes().values()]
        return statuses == [NodeStatus.DOWN] * 3  # each said goodbye

    wait_until(nodes_down, 30, "three nodes DOWN in the stored registry")
    assert all(entry.service_name and entry.registered_at for entry in stored.nodes().values())


def test_indexer_killed_and_restarted_mid_stream_loses_and_duplicates_nothing(
    settings: Settings, stored: Stored, accumulator: Process, launch: Launch, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger"
    first = launch("indexer")
    fleet = simulate(launch, settings, ledger, "--nodes", "3", "--rate", "200", "--duration", "12")
    wait_until(lambda: stored.logs()[0] > 500, 60, "the first indexer to store logs")
    first.kill()
    stored_at_kill = stored.logs()[0]
    time.sleep(2)
    launch("indexer")
    assert fleet.wait(90) == 0, fleet.output()
    sent = ledger_ids(ledger)
    assert stored_at_kill < len(sent), (
        "the kill came after the stream ended; the test proves nothing"
    )
    assert_stored_exactly_once(stored, sent)


def _send(port: int, *frames: bytes) -> None:
    with socket.create_connection(("127.0.0.1", port)) as connection:
        for frame in frames:
            connection.sendall(frame)
        time.sleep(0.2)


def test_bad_records_go_to_the_dead_letter_topic_and_good_ones_around_them_arrive(
    settings: Settings, stored: Stored, accumulator: Process, indexer: Process
) -> None:
    node = f"{settings.namespace}-bad-input"
    good = [make_log(node, level) for level in ("INFO", "WARN", "ERROR", "FATAL")]
    missing_field = make_log(node)
    del missing_field["service_name"]
    wrong_type = make_log(node, message=12345)
    unknown_level = make_log(node, "DEBUG")
    bad = [missing_field, wrong_type, unknown_level]

    def message(record: dict[str, object]) -> bytes:
        return msgpack.packb(["logdeck.log", int(time.time()), record])

    stream = [message(good[0]), *map(message, bad[:2]), message(good[1])]
    stream += [message(bad[2]), message(good[2]), message(good[3])]
    _send(settings.accumulator_port, *stream)
    _send(settings.accumulator_port, b"\xc1\xc1 this is not msgpack")

    letters = [json.loads(r.value) for r in read_topic(settings, settings.topics.deadletter, 4)]
    reasons = sorted(letter["reason"] for letter in letters)
    assert len(letters) == 4, reasons
    assert any("missing required field `service_name`" in r for r in reasons), reasons
    assert any("Expected `str`, got `int` - at `$.message`" in r for r in reasons), reasons
    assert any("'DEBUG'" in r and "log_level" in r for r in reasons), reasons
    assert any(r.startswith("invalid msgpack") for r in reasons), reasons
    assert all(letter["raw"] for letter in letters)

    assert_stored_exactly_once(stored, [record["log_id"] for record in good])
    assert not set(stored.log_ids()) & {record["log_id"] for record in bad}


def test_accumulator_killed_and_restarted_loses_no_acknowledged_log(
    settings: Settings, stored: Stored, accumulator: Process, indexer: Process, launch: Launch,
    tmp_path: Path,
) -> None:  # fmt: skip
    ledger = tmp_path / "ledger"
    nodes = simulate(
        launch, settings, ledger, "--nodes", "3", "--rate", "200", "--duration", "15", "--acks"
    )
    wait_until(lambda: stored.logs()[0] > 500, 60, "the first logs stored")
    accumulator.kill()
    acknowledged_at_kill = len(ledger_ids(ledger))
    time.sleep(2)
    restarted = launch("accumulator")
    wait_until(lambda: port_open(settings.accumulator_port), 60, "the accumulator again")
    assert nodes.wait(120) == 0, nodes.output()
    sent = ledger_ids(ledger)
    assert acknowledged_at_kill < len(sent), "the kill came after the stream ended"
    assert_stored_exactly_once(stored, sent)
    assert restarted.popen.poll() is None
