"""Two of every service on six partitions, and one copy of each killed mid-stream.

Two accumulators take a fleet each; two indexers, two alerters and two monitors share
the partitions, each pair as one consumer group. Midway one copy of each is SIGKILLed.
The nodes of the killed accumulator turn to their standby, the other one; the killed
copies stay dead, and the survivors take their partitions over. Then:

- every acknowledged log is stored exactly once;
- every alert's fingerprint has one alert, counting each matching log once, although
  the two fleets' nodes of one service log through different accumulators and
  partitions (each fleet's first node bursts the same error);
- no node was reported DOWN while it was logging.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import pytest

from backend.alerting.matching import rule_matches
from backend.alerting.rules import load_rules
from backend.config import Settings
from backend.schemas import AlertKind, InvalidRecord, Log, decode_as, iso_millis
from tests.integration.conftest import Launch
from tests.integration.harness import (
    Process,
    Stored,
    assert_exactly_once,
    free_port,
    ledger_ids,
    port_open,
    read_topic_async,
    wait_until,
)

pytestmark = pytest.mark.integration

PARTITIONS = 6
NODES = 6  # per fleet
RATE = 100  # logs/s per node: 1,200 logs/s in all
SECONDS = 40
BURST = "300@8"  # each fleet's first node (a PaymentService node): 300 ERRORs at 8 s
OWNS = re.compile(r"(\S+) owns (\d+) partitions")
GAINED = re.compile(r"gained (\d+) partitions")


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return replace(settings, partitions=PARTITIONS)


def owned(alerter: Process) -> dict[str, int]:
    """How many partitions each stage of an alerter owns, as it last said."""
    return {stage: int(count) for stage, count in OWNS.findall(alerter.output())}


def fleet(
    launch: Launch, settings: Settings, i: int, ports: tuple[int, int], ledger: Path
) -> Process:
    """Nodes on accumulator `i`, the other one their standby; the first one bursts ERRORs."""
    flags = f"--nodes {NODES} --rate {RATE} --duration {SECONDS} --acks --ledger {ledger}"
    flags += f" --port {ports[i]} --standby-port {ports[1 - i]}"
    flags += f" --fault-nodes 1 --error-burst {BURST}"
    prefix = f"{settings.namespace}-{i}-"
    return launch("simulate", *flags.split(), "--node-prefix", prefix, name=f"fleet-{i}")


def gained(monitor: Process) -> bool:
    return GAINED.search(monitor.output()) is not None


def sharing(alerter: Process) -> bool:
    counts = owned(alerter)
    return len(counts) == 2 and all(0 < count < PARTITIONS for count in counts.values())


def test_two_of_each_share_the_work_and_one_of_each_killed_loses_nothing(
    settings: Settings, launch: Launch, stored: Stored, tmp_path: Path
) -> None:
    ports = (settings.accumulator_port, free_port())
    accumulators = [
        launch("accumulator", "--port", str(port), name=f"accumulator-{i}")
        for i, port in enumerate(ports)
    ]
    for port in ports:
        wait_until(partial(port_open, port), 60, f"an accumulator on {port}")
    indexers = [launch("indexer", name=f"indexer-{i}") for i in (1, 2)]
    alerters = [launch("alerter", "--instance", str(i), name=f"alerter-{i}") for i in (1, 2)]
    monitors = [launch("monitor", "--timeout", "3", name=f"monitor-{i}") for i in (1, 2)]
    ledgers = [tmp_path / f"ledger-{i}" for i in (0, 1)]
    fleets = [fleet(launch, settings, i, ports, ledgers[i]) for i in (0, 1)]
    started = time.time()

    # Both copies of each consumer at work, the partitions split between them.
    wait_until(lambda: stored.logs()[0] > 3000, 60, "the first logs stored")
    for alerter in alerters:
        wait_until(partial(sharing, alerter), 30, f"{alerter.log_path.stem} to share")
    for monitor in monitors:
        wait_until(partial(gained, monitor), 30, f"{monitor.log_path.stem} to share")
    time.sleep(max(0.0, started + 15 - time.time()))

    for process in (accumulators[0], indexers[0], alerters[0], monitors[0]):
        process.kill()

    for nodes in fleets:
        assert nodes.wait(SECONDS + 120) == 0, nodes.output()[-3000:]
    ended = iso_millis(datetime.fromtimestamp(started + SECONDS - 1, UTC))  # nodes end later
    sent = [log_id for ledger in ledgers for log_id in ledger_ids(ledger)]
    assert_exactly_once(stored, fleets, sent, 180)

    expected = expected_counts(settings, len(sent))
    deadline = time.monotonic() + 90
    while alert_counts(stored) != expected and time.monotonic() < deadline:
        time.sleep(0.5)
    counted = alert_counts(stored)
    wrong = {f: (counted.get(f), n) for f, n in expected.items() if counted.get(f) != n}
    assert wrong == {}, f"alert counts (counted, expected) of {len(expected)} fingerprints"
    alerts = stored.alerts().values()
    by_fingerprint = Counter(alert.fingerprint for alert in alerts)
    assert [f for f, n in by_fingerprint.items() if n > 1] == [], "alerts split"
    payment = [a for a in alerts if a.fingerprint == "error-burst:PaymentService"]
    assert len(payment) == 1, "the two fleets' bursts are one alert"
    down_while_logging = [
        alert for alert in alerts if alert.kind is AlertKind.NODE_DOWN and alert.first_seen < ended
    ]
    assert down_while_logging == [], "false NODE_DOWN"
    for survivor in (indexers[1], alerters[1], monitors[1]):
        assert survivor.popen.poll() is None, survivor.output()[-3000:]
    assert set(owned(alerters[1]).values()) == {PARTITIONS}, alerters[1].output()[-3000:]


def expected_counts(settings: Settings, at_least: int) -> dict[str, int]:
    """Each LOG_LEVEL and THRESHOLD fingerprint's matching logs on the logs topic, once each."""
    records = asyncio.run(read_topic_async(settings, settings.topics.logs, at_least, within=60))
    rules = load_rules(None)
    matched: dict[str, set[str]] = {}
    for record in records:
        try:
            entry = decode_as(record.value, Log)
        except InvalidRecord:
            continue
        for match in rule_matches(rules, entry):
            if match.kind is not AlertKind.BURST:
                matched.setdefault(match.fingerprint, set()).add(match.log_id)
    return {fingerprint: len(ids) for fingerprint, ids in matched.items()}


def alert_counts(stored: Stored) -> dict[str, int]:
    return {
        alert.fingerprint: alert.count
        for alert in stored.alerts().values()
        if alert.kind in (AlertKind.LOG_LEVEL, AlertKind.THRESHOLD)
    }
