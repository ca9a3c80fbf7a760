"""`logdeck demo` in a real terminal, on each backend: logs and nodes on screen, a clean end."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator

import pytest

from backend.config import Settings
from backend.schemas import AlertKind, AlertState
from tests.integration.harness import Stored, connection_flags, wait_until
from tests.integration.terminal import Terminal

pytestmark = pytest.mark.integration

LOG_LINE = re.compile(r"\d\d:\d\d:\d\d(\.\d{3})? +(INFO|WARN|ERROR|FATAL) ")
"""A row of the feed: milliseconds are left out below 100 columns."""


def start_demo(settings: Settings, *extra: str) -> Terminal:
    command = [
        sys.executable, "-m", "launch", "demo", *connection_flags(settings),
        "--port", str(settings.accumulator_port), "--rate", "10", *extra,
    ]  # fmt: skip
    return Terminal(f"logdeck-demo-{settings.namespace}", command, size=(160, 48))


@pytest.fixture
def demo(settings: Settings) -> Iterator[Terminal]:
    terminal = start_demo(settings, "--nodes", "3")
    yield terminal
    terminal.close()


def test_demo_shows_logs_and_nodes_and_ends_cleanly_on_ctrl_c(
    settings: Settings, stored: Stored, demo: Terminal
) -> None:
    wait_until(lambda: LOG_LINE.search(demo.screen()) is not None, 30, "log lines on screen")
    wait_until(lambda: demo.screen().count("● UP") >= 3, 30, "three nodes UP in the table")
    wait_until(lambda: stored.logs()[0] > 0, 30, "logs in the demo's store")

    demo.send("C-c")
    wait_until(lambda: not demo.alive(), 30, "the demo to end")
    nodes = subprocess.run(
        ["pgrep", "-f", f"simulators.node.*--port {settings.accumulator_port}"],
        capture_output=True,
        text=True,
    )
    assert nodes.stdout == "", "node processes outlived the demo"
    # The nodes stopped first, so their goodbye heartbeats reached the registry.
    wait_until(
        lambda: [entry.status.value for entry in stored.nodes().values()] == ["DOWN"] * 3,
        30,
        "every node DOWN in the stored registry after the demo",
    )


def test_the_demos_nodes_die_and_come_back(settings: Settings, stored: Stored) -> None:
    demo = start_demo(settings, "--nodes", "2", "--life", "6")
    try:

        def came_back() -> bool:
            return any(
                alert.kind is AlertKind.NODE_DOWN and alert.state is AlertState.RESOLVED
                for alert in stored.alerts().values()
            )

        wait_until(came_back, 90, "a node of the demo down and back (NODE_DOWN resolved)")
        assert demo.alive()
    finally:
        demo.close()
