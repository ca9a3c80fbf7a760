"""`logdeck console` in a real terminal: tmux runs it, keys go in, the screen is read back."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator

import pytest

from backend.config import Settings
from tests.integration.harness import ROOT, connection_flags, wait_until

pytestmark = pytest.mark.integration


def tmux(*args: str) -> str:
    return subprocess.run(
        ["tmux", *args], check=True, capture_output=True, text=True, timeout=10
    ).stdout


@pytest.fixture
def session(settings: Settings) -> Iterator[str]:
    if shutil.which("tmux") is None:
        pytest.fail("tmux is not installed: run scripts/setup")
    name = f"logdeck-{settings.namespace}"
    command = " ".join([sys.executable, "-m", "console", "console", *connection_flags(settings)])
    tmux(
        "new-session", "-d", "-s", name, "-x", "100", "-y", "30",
        "-e", "TERM=tmux-256color", "-c", str(ROOT), command,
    )  # fmt: skip
    yield name
    subprocess.run(["tmux", "kill-session", "-t", name], capture_output=True, timeout=10)


def screen(name: str) -> str:
    return tmux("capture-pane", "-p", "-t", name)


def test_console_runs_in_tmux_answers_keys_and_quits(settings: Settings, session: str) -> None:
    bus, store = f"{settings.bus_name} ● up", f"{settings.store_name} ● up"
    wait_until(
        lambda: bus in screen(session) and store in screen(session),
        30,
        f"the header to show {settings.bus_name} and {settings.store_name} up",
    )
    shown = screen(session)
    assert "Nodes" in shown and "Alerts" in shown, shown

    tmux("send-keys", "-t", session, "?")
    wait_until(lambda: "─ Keys ─" in screen(session), 10, "the key map")
    assert "Pause or follow the live tail" in screen(session)
    tmux("send-keys", "-t", session, "Escape")
    wait_until(lambda: "─ Keys ─" not in screen(session), 10, "the key map to close")

    tmux("send-keys", "-t", session, "q")
    wait_until(
        lambda: (
            subprocess.run(
                ["tmux", "has-session", "-t", session], capture_output=True, timeout=10
            ).returncode
            != 0
        ),
        15,
        "the console to quit and its session to end",
    )
