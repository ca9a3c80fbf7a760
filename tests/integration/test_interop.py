"""Third-party Forward clients, installed from their own registries, are stored exactly once
and field for field, with nothing dead-lettered, on both backends.

Each client runs as its own program (tests/interop) against the accumulator: Node's
fluent-logger and @fluent-org/logger in every event mode they offer, Java's Fluency, Go's
fluent-logger-golang (all asking for acks) and Python's fluent-logger (Message mode, no
acks). The protocol variants each one puts on the wire are listed in
`tests.interop.clients.CLIENTS`. A client that cannot be installed fails its tests with
the installer's reason.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from backend.config import Settings
from backend.schemas import now_iso
from tests.integration.harness import (
    ROOT,
    Process,
    Stored,
    read_topic,
    snapshot,
    wait_until,
)
from tests.interop.clients import CLIENTS, Client, InstallError, install_all
from tests.records import make_log

pytestmark = pytest.mark.integration

LEVELS = ("INFO", "WARN", "ERROR", "FATAL")
LOGS = 240
"""Per client: enough for several chunks in the chunked modes (the clients flush every 50)."""
CLIENT_TIMEOUT = 90.0
"""Above the clients' own 60 s deadline, so they report what they were waiting for."""

Installed = Callable[[str], Path]


@pytest.fixture(scope="session")
def installed() -> Iterator[Installed]:
    """Install each client once per session, when a test first needs it; fail, never skip."""
    done: dict[str, Path | InstallError] = {}

    def get(installer: str) -> Path:
        if installer not in done:
            done.update(install_all([installer]))
        result = done[installer]
        if isinstance(result, InstallError):
            pytest.fail(f"the {installer} client could not be installed: {result}")
        return result

    yield get


def records_for(node_id: str, client: Client) -> tuple[list[list[Any]], list[dict[str, Any]]]:
    """A registration, logs of every level with varied fields, and a heartbeat; and the logs.

    Messages carry non-ASCII text; most WARN timings are fractional, every eighth one the
    integral 420.0 (which JavaScript sends as a msgpack integer).
    """
    logs = []
    for index in range(LOGS):
        level = LEVELS[index % 4]
        fields: dict[str, Any] = {
            "message": f"{level} #{index} from {client.name} ({client.mode}): café ✓ 日本",
            "service_name": "InteropService",
        }
        if level == "WARN" and index % 8 != 1:
            fields |= {"response_time_ms": 300.25 + index, "threshold_limit_ms": 250.5}
        if level in ("ERROR", "FATAL"):
            fields["error_details"] = {
                "error_code": f"E{index:04d}",
                "error_message": f'failure {index}: "quoted" and\nnew line',
            }
        logs.append(make_log(node_id, level, **fields))
    registration = {
        "node_id": node_id,
        "message_type": "REGISTRATION",
        "service_name": "InteropService",
        "timestamp": now_iso(),
    }
    heartbeat = {
        "node_id": node_id,
        "message_type": "HEARTBEAT",
        "status": "UP",
        "timestamp": now_iso(),
    }
    records = [
        ["logdeck.registration", registration],
        *(["logdeck.log", log] for log in logs),
        ["logdeck.heartbeat", heartbeat],
    ]
    return records, logs


def run_client(
    client: Client, installed: Path, port: int, records: Path, accumulator: Process
) -> float:
    """Run the client to its end; its run time, or a failure with its output."""
    args, env = client.command(installed, port, records)
    started = time.monotonic()
    try:
        done = subprocess.run(
            args,
            cwd=ROOT,
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=CLIENT_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as timeout:
        pytest.fail(
            f"{client.name} ({client.mode}) still running after {CLIENT_TIMEOUT:.0f} s: "
            f"{timeout.stderr!r}\naccumulator:\n{accumulator.output()[-3000:]}"
        )
    elapsed = time.monotonic() - started
    assert done.returncode == 0, (
        f"{client.name} ({client.mode}) exited {done.returncode}:\n{done.stdout}{done.stderr}"
        f"\naccumulator:\n{accumulator.output()[-3000:]}"
    )
    return elapsed


@pytest.mark.parametrize("client", [pytest.param(client, id=client.id) for client in CLIENTS])
def test_client_logs_are_stored_once_and_field_for_field(
    client: Client,
    installed: Installed,
    settings: Settings,
    accumulator: Process,
    indexer: Process,
    stored: Stored,
    tmp_path: Path,
) -> None:
    program = installed(client.installer)
    node_id = f"{settings.namespace}-node"
    records, logs = records_for(node_id, client)
    path = tmp_path / "records.json"
    path.write_text(json.dumps(records, ensure_ascii=False))

    elapsed = run_client(client, program, settings.accumulator_port, path, accumulator)
    print(f"{client.name} ({client.mode}): {len(records)} records sent in {elapsed:.2f} s")

    def settled() -> bool:
        # A dead letter ends the wait at once: the logs it stands for will never be stored.
        dead = snapshot(settings, settings.topics.deadletter)
        return bool(dead) or stored.logs()[0] >= len(logs)

    wait_until(settled, 60, f"{len(logs)} logs in the store", interval=0.5)
    letters = [
        json.loads(letter.value) for letter in snapshot(settings, settings.topics.deadletter)
    ]
    reasons = Counter(letter["reason"] for letter in letters)
    assert letters == [], f"{len(letters)} dead letters: {dict(reasons)}; first: {letters[0]}"

    total, ids = stored.logs()
    sent = Counter(log["log_id"] for log in logs)
    got = Counter(ids)
    assert (sent - got, got - sent) == (Counter(), Counter()), "logs missing or unexpected"
    assert total == len(logs), f"{total - len(logs)} duplicates stored"

    expected = {log["log_id"]: log for log in logs}
    actual = {log.log_id: msgspec.to_builtins(log) for log in stored.full_logs()}
    mismatched = [
        (expected[log_id], actual[log_id])
        for log_id in expected
        if actual[log_id] != expected[log_id]
    ]
    assert mismatched[:3] == [], f"{len(mismatched)} logs stored differently from what was sent"

    for topic, message_type in (
        (settings.topics.registrations, "REGISTRATION"),
        (settings.topics.heartbeats, "HEARTBEAT"),
    ):
        bodies = [json.loads(r.value) for r in read_topic(settings, topic, 1, 10)]
        assert [(b["message_type"], b["node_id"]) for b in bodies] == [(message_type, node_id)]
