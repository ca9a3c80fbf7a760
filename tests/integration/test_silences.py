"""Silences and maintenance windows on each backend, through the real `logdeck` commands.

`silence add | list | expire` run as processes against the test's bus; maintenance is shown
on a live monitor with simulated nodes: a node in maintenance that dies raises no NODE_DOWN
while another node's death does, and the window's start and end clear and raise NODE_DOWN.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from datetime import datetime, timedelta
from typing import Any

import pytest

from backend.backends import open_bus, open_store
from backend.config import Settings
from backend.monitor.service import node_down_fingerprint
from backend.observe.live import LiveObserver
from backend.schemas import NodeStatus, Silence
from backend.silences.matching import is_active
from tests.integration.conftest import Launch
from tests.integration.harness import ROOT, Process, connection_flags, wait_until
from tests.integration.test_monitor import (
    TIMEOUT,
    all_up,
    commands,
    node_pids,
    simulate,
    start_monitor,
    wait_for_command,
    wait_for_registry,
)

pytestmark = pytest.mark.integration


def logdeck(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    """Run one `logdeck` command on the test's bus and namespace, to its end."""
    return subprocess.run(
        [sys.executable, "-m", "launch", *args, *connection_flags(settings)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def listed(settings: Settings) -> list[dict[str, Any]]:
    done = logdeck(settings, "silence", "list", "--json")
    assert done.returncode == 0, done.stderr
    rows: list[dict[str, Any]] = json.loads(done.stdout)
    return rows


def test_a_silence_is_added_listed_and_expired(settings: Settings) -> None:
    added = logdeck(
        settings,
        "silence",
        "add",
        "service=PaymentService",
        "error_code=~DB-5..",
        "--for",
        "2h",
        "--comment",
        "database migration",
        "--by",
        "ana",
    )
    assert added.returncode == 0, added.stderr
    silence_id = added.stdout.strip()
    assert silence_id and "\n" not in silence_id

    [row] = listed(settings)
    assert row["silence_id"] == silence_id
    assert row["active"] is True
    assert row["matchers"] == [
        {"name": "service", "value": "PaymentService", "regex": False},
        {"name": "error_code", "value": "DB-5..", "regex": True},
    ]
    assert (row["comment"], row["created_by"], row["maintenance"]) == (
        "database migration",
        "ana",
        False,
    )
    table = logdeck(settings, "silence", "list")
    assert silence_id in table.stdout and "active" in table.stdout

    expired = logdeck(settings, "silence", "expire", silence_id)
    assert expired.returncode == 0, expired.stderr
    assert f"silence {silence_id} expired at" in expired.stdout
    [row] = listed(settings)
    assert row["active"] is False
    lasted = datetime.fromisoformat(row["ends_at"]) - datetime.fromisoformat(row["starts_at"])
    assert lasted < timedelta(hours=1)  # ended when expired, not two hours on
    again = logdeck(settings, "silence", "expire", silence_id)
    assert again.returncode == 0
    assert "had already ended" in again.stdout


def test_unknown_ids_and_bad_matchers_are_refused(settings: Settings) -> None:
    unknown = logdeck(settings, "silence", "expire", "0123456789abcdef")
    assert unknown.returncode == 1
    assert unknown.stderr.strip() == "logdeck silence: no silence has the id '0123456789abcdef'"
    bad = logdeck(settings, "silence", "add", "colour=red", "--for", "1h", "--comment", "x")
    assert bad.returncode == 2
    assert bad.stderr.count("\n") == 1 and "unknown name 'colour'" in bad.stderr
    not_in = logdeck(settings, "maintenance", "nobody-01", "--end")
    assert not_in.returncode == 1
    assert "node nobody-01 is not in maintenance" in not_in.stderr
    assert listed(settings) == []


async def follow_and_expire(settings: Settings, silence_id: str) -> list[Silence]:
    """What the console's observer shows of `silence_id`: as added, then as it expired it."""
    bus = open_bus(settings)
    observer = LiveObserver(settings, bus, open_store(settings))
    await observer.start()
    feed = observer.silences()
    seen: list[Silence] = []
    try:
        for _ in range(10):
            batch = await asyncio.wait_for(anext(feed), 60)
            mine = [silence for silence in batch if silence.silence_id == silence_id]
            if mine and not seen:
                await observer.expire_silence(silence_id)
            seen += mine
            if len(seen) >= 2:
                break
    finally:
        await feed.aclose()  # type: ignore[attr-defined]
        await observer.close()
        close = getattr(bus, "close", None)
        if close is not None:
            await close()
    return seen


def test_the_consoles_observer_follows_silences_and_expires_one(settings: Settings) -> None:
    added = logdeck(settings, "silence", "add", "rule=fatal", "--for", "1h", "--comment", "noisy")
    assert added.returncode == 0, added.stderr
    silence_id = added.stdout.strip()
    seen = asyncio.run(follow_and_expire(settings, silence_id))
    assert len(seen) == 2, seen
    first, expired = seen
    assert [m.value for m in first.matchers] == ["fatal"]
    assert expired.ends_at < first.ends_at
    assert not is_active(expired, datetime.fromisoformat(expired.ends_at))
    [row] = listed(settings)
    assert (row["silence_id"], row["active"]) == (silence_id, False)


def test_maintenance_again_moves_the_windows_end_and_end_closes_it(settings: Settings) -> None:
    first = logdeck(settings, "maintenance", "pay-01", "--for", "30m", "--by", "ana")
    assert first.returncode == 0, first.stderr
    again = logdeck(settings, "maintenance", "pay-01", "--for", "2h")
    assert again.returncode == 0, again.stderr
    [window] = listed(settings)  # one window, moved, not a second one
    assert window["silence_id"] in first.stdout and window["silence_id"] in again.stdout
    assert window["matchers"] == [{"name": "node", "value": "pay-01", "regex": False}]
    assert (window["maintenance"], window["active"], window["created_by"]) == (True, True, "ana")
    lasted = datetime.fromisoformat(window["ends_at"]) - datetime.fromisoformat(window["starts_at"])
    assert lasted > timedelta(hours=1)
    ended = logdeck(settings, "maintenance", "pay-01", "--end")
    assert ended.returncode == 0, ended.stderr
    assert "node pay-01 out of maintenance at" in ended.stdout
    [window] = listed(settings)
    assert window["active"] is False


def maintenance(settings: Settings, node: str, *how: str) -> None:
    done = logdeck(settings, "maintenance", node, *how)
    assert done.returncode == 0, done.stderr


def raised_for(settings: Settings, node: str) -> list[dict[str, Any]]:
    fingerprint = node_down_fingerprint(node)
    return [
        c.body for c in commands(settings) if c.kind == "RAISE" and c.fingerprint == fingerprint
    ]


def test_a_node_in_maintenance_raises_no_node_down_and_its_window_ends_it(
    settings: Settings, accumulator: Process, launch: Launch
) -> None:
    monitor = start_monitor(launch)
    pids = node_pids(simulate(launch, settings, 2), 2)
    quiet, loud = pids
    wait_for_registry(settings, all_up([quiet, loud]), "both nodes UP")

    maintenance(settings, quiet, "--for", "10m")
    wait_until(
        lambda: f"node {quiet} entered maintenance" in monitor.output(),
        30,
        "the monitor to see the maintenance window",
    )
    os.kill(pids[quiet], signal.SIGKILL)
    os.kill(pids[loud], signal.SIGKILL)

    # The other node's death is raised; by then the node in maintenance is DOWN too.
    wait_for_command(settings, "RAISE", loud, within=TIMEOUT + 10)
    wait_for_registry(
        settings,
        lambda entries: entries[quiet].status is NodeStatus.DOWN,
        "the node in maintenance recorded DOWN",
    )
    assert raised_for(settings, quiet) == []
    assert f"NODE_DOWN held back (node in maintenance): node {quiet}" in monitor.output()

    # A window opened on a node already DOWN clears its NODE_DOWN.
    maintenance(settings, loud, "--for", "10m")
    cleared = wait_for_command(settings, "CLEAR", loud, within=30)
    assert cleared.body["summary"] == f"node {loud} is in maintenance"

    # Ending a window on a node still DOWN raises its NODE_DOWN after all.
    maintenance(settings, quiet, "--end")
    raised = wait_for_command(settings, "RAISE", quiet, within=30)
    assert raised.body["summary"] == f"node {quiet} is still down after its maintenance ended"
    windows = {row["matchers"][0]["value"]: row for row in listed(settings)}
    assert windows[quiet]["maintenance"] and not windows[quiet]["active"]
    assert windows[loud]["maintenance"] and windows[loud]["active"]


def test_a_window_that_ends_while_no_monitor_runs_raises_node_down_on_its_return(
    settings: Settings, accumulator: Process, launch: Launch
) -> None:
    first = start_monitor(launch)
    [(node, pid)] = node_pids(simulate(launch, settings, 1), 1).items()
    wait_for_registry(settings, all_up([node]), "the node UP")
    maintenance(settings, node, "--for", "10m")
    wait_until(
        lambda: f"node {node} entered maintenance" in first.output(),
        30,
        "the monitor to see the maintenance window",
    )
    os.kill(pid, signal.SIGKILL)
    wait_for_registry(
        settings, lambda entries: entries[node].status is NodeStatus.DOWN, "the node DOWN"
    )
    assert first.stop() == 0
    assert raised_for(settings, node) == []

    maintenance(settings, node, "--end")  # no monitor is running to see it end
    second = start_monitor(launch, name="monitor-again")
    raised = wait_for_command(settings, "RAISE", node, within=30)
    assert raised.body["summary"] == f"node {node} is still down after its maintenance ended"
    assert len(raised_for(settings, node)) == 1
    assert "NODE_DOWN raised" in second.output()
