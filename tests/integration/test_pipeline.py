"""The pipeline end to end on the real servers: nodes → accumulator → Kafka → Elasticsearch."""

from __future__ import annotations

import json
import socket
import time
from collections import Counter
from pathlib import Path

import msgpack
import pytest
from elasticsearch import Elasticsearch

from backend.config import Settings
from tests.integration.conftest import Launch
from tests.integration.harness import (
    Process,
    ledger_ids,
    read_topic,
    stored_log_ids,
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


def assert_stored_exactly_once(es: Elasticsearch, settings: Settings, sent: list[str]) -> None:
    wait_until(
        lambda: len(stored_log_ids(es, settings)) >= len(sent),
        90,
        f"{len(sent)} logs in Elasticsearch",
    )
    stored = stored_log_ids(es, settings)
    duplicates = [log_id for log_id, n in Counter(stored).items() if n > 1]
    assert not duplicates, f"{len(duplicates)} logs stored twice"
    assert set(stored) == set(sent), (
        f"missing {len(set(sent) - set(stored))}, unexpected {len(set(stored) - set(sent))}"
    )


def test_three_nodes_for_ten_seconds_every_log_stored_exactly_once(
    settings: Settings,
    es: Elasticsearch,
    accumulator: Process,
    indexer: Process,
    launch: Launch,
    tmp_path: Path,
) -> None:
    launch("monitor")  # keeps the registry that the indexer copies into the nodes index
    ledger = tmp_path / "ledger"
    fleet = simulate(launch, settings, ledger, "--nodes", "3", "--rate", "60", "--duration", "10")
    assert fleet.wait(90) == 0, fleet.output()
    sent = ledger_ids(ledger)
    assert len(sent) >= 3 * 60 * 10 * 0.9, f"only {len(sent)} logs sent"
    assert len(set(sent)) == len(sent)
    assert_stored_exactly_once(es, settings, sent)

    def nodes_down() -> bool:
        es.indices.refresh(index=settings.indices.nodes)
        hits = es.search(index=settings.indices.nodes, size=10)["hits"]["hits"]
        return [hit["_source"]["status"] for hit in hits] == ["DOWN"] * 3  # each said goodbye

    wait_until(nodes_down, 30, "three nodes DOWN in the nodes index")
    nodes = es.search(index=settings.indices.nodes, size=10)["hits"]["hits"]
    assert all(hit["_source"]["service_name"] and hit["_source"]["registered_at"] for hit in nodes)


def test_indexer_killed_and_restarted_mid_stream_loses_and_duplicates_nothing(
    settings: Settings, es: Elasticsearch, accumulator: Process, launch: Launch, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger"
    first = launch("indexer")
    fleet = simulate(launch, settings, ledger, "--nodes", "3", "--rate", "200", "--duration", "12")
    wait_until(
        lambda: len(stored_log_ids(es, settings)) > 500, 60, "the first indexer to store logs"
    )
    first.kill()
    stored_at_kill = len(stored_log_ids(es, settings))
    time.sleep(2)
    launch("indexer")
    assert fleet.wait(90) == 0, fleet.output()
    sent = ledger_ids(ledger)
    assert stored_at_kill < len(sent), (
        "the kill came after the stream ended; the test proves nothing"
    )
    assert_stored_exactly_once(es, settings, sent)


def _send(port: int, *frames: bytes) -> None:
    with socket.create_connection(("127.0.0.1", port)) as connection:
        for frame in frames:
            connection.sendall(frame)
        time.sleep(0.2)


def test_bad_records_go_to_the_dead_letter_topic_and_good_ones_around_them_arrive(
    settings: Settings, es: Elasticsearch, accumulator: Process, indexer: Process
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

    assert_stored_exactly_once(es, settings, [record["log_id"] for record in good])
    stored = set(stored_log_ids(es, settings))
    assert not stored & {record["log_id"] for record in bad}
