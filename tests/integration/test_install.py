"""Installing logdeck as a new user would, with a distribution's own Python.

Debian's and Ubuntu's python3 refuse `pip install` outside a virtual environment (PEP 668),
so the README's `scripts/demo` must make one, and `pipx install .` must give a `logdeck`
whose demo runs. Both install from a copy of this checkout into folders of the test's own.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.harness import ROOT, free_port, wait_until
from tests.integration.terminal import Terminal

pytestmark = pytest.mark.integration

LOG_LINE = re.compile(r"\d\d:\d\d:\d\d(\.\d{3})? +(INFO|WARN|ERROR|FATAL) ")
STOCK_PYTHON = Path("/usr/bin/python3")
"""The distribution's own interpreter, marked externally managed."""


@pytest.fixture(scope="module")
def stock_python() -> Path:
    if not STOCK_PYTHON.exists():
        pytest.fail(f"{STOCK_PYTHON} is missing: this test needs the distribution's own python3")
    refused = subprocess.run(
        [str(STOCK_PYTHON), "-m", "pip", "install", "--dry-run", "--no-deps", "six"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if "externally-managed-environment" not in refused.stdout + refused.stderr:
        pytest.fail(f"{STOCK_PYTHON} is not externally managed; this test proves nothing here")
    return STOCK_PYTHON


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """The files git would hand a fresh clone (tracked and new, not ignored ones)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    copy = tmp_path / "logdeck"
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            target = copy / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return copy


def stock_path(tmp_path: Path, python: Path) -> str:
    """A PATH whose first python3 is the distribution's own."""
    first = tmp_path / "stock-bin"
    first.mkdir(exist_ok=True)
    (first / "python3").unlink(missing_ok=True)
    (first / "python3").symlink_to(python)
    return f"{first}:{os.environ['PATH']}"


def demo_runs(terminal: Terminal) -> None:
    wait_until(lambda: LOG_LINE.search(terminal.screen()) is not None, 300, "log lines on screen")
    terminal.send("C-c")
    wait_until(lambda: not terminal.alive(), 30, "the demo to end on Ctrl+C")


@pytest.fixture
def terminals() -> Iterator[list[Terminal]]:
    opened: list[Terminal] = []
    yield opened
    for terminal in opened:
        terminal.close()


def test_scripts_demo_installs_into_its_own_environment_on_a_stock_python(
    stock_python: Path, checkout: Path, tmp_path: Path, terminals: list[Terminal]
) -> None:
    env = {
        "PATH": stock_path(tmp_path, stock_python),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "LOGDECK_VENV": "",  # the script's default: .venv in the checkout
    }
    command = ["scripts/demo", "--nodes", "2", "--rate", "5", "--port", str(free_port())]
    terminals.append(Terminal(f"logdeck-install-{tmp_path.name}", command, cwd=checkout, env=env))
    demo_runs(terminals[-1])
    assert (checkout / ".venv" / "bin" / "logdeck").exists()
    assert (tmp_path / "data" / "logdeck" / "store.db").exists()


def test_pipx_install_gives_a_logdeck_whose_demo_runs(
    stock_python: Path, checkout: Path, tmp_path: Path, terminals: list[Terminal]
) -> None:
    homes = {
        "PIPX_HOME": str(tmp_path / "pipx"),
        "PIPX_BIN_DIR": str(tmp_path / "bin"),
        "PIPX_MAN_DIR": str(tmp_path / "man"),
    }
    installed = subprocess.run(
        [sys.executable, "-m", "pipx", "install", "--python", str(stock_python), str(checkout)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **homes},
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    logdeck = tmp_path / "bin" / "logdeck"
    assert logdeck.exists(), installed.stdout

    env = {"XDG_DATA_HOME": str(tmp_path / "data")}
    command = [str(logdeck), "demo", "--nodes", "2", "--rate", "5", "--port", str(free_port())]
    terminals.append(Terminal(f"logdeck-pipx-{tmp_path.name}", command, cwd=tmp_path, env=env))
    demo_runs(terminals[-1])
