"""`logdeck console` in a real terminal: tmux runs it, keys go in, the screen is read back."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from backend.config import Settings
from tests.integration.harness import connection_flags, wait_until
from tests.integration.terminal import Terminal

pytestmark = pytest.mark.integration


@pytest.fixture
def session(settings: Settings) -> Iterator[Terminal]:
    command = [sys.executable, "-m", "launch", "console", *connection_flags(settings)]
    terminal = Terminal(f"logdeck-{settings.namespace}", command)
    yield terminal
    terminal.close()


def test_console_runs_in_tmux_answers_keys_and_quits(settings: Settings, session: Terminal) -> None:
    bus, store = f"{settings.bus_name} ● up", f"{settings.store_name} ● up"
    wait_until(
        lambda: bus in session.screen() and store in session.screen(),
        30,
        f"the header to show {settings.bus_name} and {settings.store_name} up",
    )
    shown = session.screen()
    assert "Nodes" in shown and "Alerts" in shown, shown

    session.send("?")
    wait_until(lambda: "─ Keys ─" in session.screen(), 10, "the key map")
    assert "Pause or follow the live tail" in session.screen()
    session.send("Escape")
    wait_until(lambda: "─ Keys ─" not in session.screen(), 10, "the key map to close")

    session.send("q")
    wait_until(
        lambda: not session.alive(),
        15,
        "the console to quit and its session to end",
    )
