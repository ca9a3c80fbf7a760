"""A program in a real terminal: tmux runs it detached at a fixed size, keys go in, the
screen is read back as text."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from tests.integration.harness import ROOT


def _tmux(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["tmux", *args], capture_output=True, text=True, timeout=10)


class Terminal:
    """One tmux session running `command`; `close` ends it whatever state it is in."""

    def __init__(
        self,
        name: str,
        command: Sequence[str],
        *,
        size: tuple[int, int] = (100, 30),
        cwd: Path = ROOT,
        env: Mapping[str, str] | None = None,
    ) -> None:
        if shutil.which("tmux") is None:
            pytest.fail("tmux is not installed: run scripts/setup")
        self.name = name
        width, height = size
        variables = [
            f"-e{key}={value}" for key, value in {"TERM": "tmux-256color", **(env or {})}.items()
        ]
        started = _tmux(
            "new-session", "-d", "-s", name, "-x", str(width), "-y", str(height),
            *variables, "-c", str(cwd), " ".join(command),
        )  # fmt: skip
        assert started.returncode == 0, started.stderr

    def screen(self) -> str:
        return _tmux("capture-pane", "-p", "-t", self.name).stdout

    def send(self, *keys: str) -> None:
        sent = _tmux("send-keys", "-t", self.name, *keys)
        assert sent.returncode == 0, sent.stderr

    def alive(self) -> bool:
        return _tmux("has-session", "-t", self.name).returncode == 0

    def close(self) -> None:
        _tmux("kill-session", "-t", self.name)
