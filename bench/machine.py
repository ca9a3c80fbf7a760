"""What a run records of where and when it was measured: the machine, its load, the code.

A figure means little without the machine it came from and the code it measured, so
every results file carries them; on a shared machine, how busy the CPUs were before the
start says whether others' work is in the figures.
"""

from __future__ import annotations

import asyncio
import os
import platform
import subprocess
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from backend.stack.layout import KAFKA_VERSION
from bench.common import ROOT

STACK_LIBRARIES = ("aiokafka", "elasticsearch", "fluent-logger", "msgpack", "msgspec")
"""The client libraries between the services and the stack's servers."""

BUSY_BEFORE_START = 0.15
"""CPU share in use before a run above which its figures are said to share the machine."""


def cpu_model() -> str:
    """The processor's model name, for the record of where a figure was measured."""
    return next(
        (
            line.partition(":")[2].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )


def library_versions(*names: str) -> dict[str, str]:
    return {name: metadata.version(name) for name in names}


def machine(*, with_os: bool = True, **versions: Any) -> dict[str, Any]:
    """The processors, the system and Python, then `versions` of what the run ran on."""
    host: dict[str, Any] = {"nproc": len(os.sched_getaffinity(0)), "cpu": cpu_model()}
    if with_os:
        host["os"] = platform.platform()
    return {**host, "python": platform.python_version(), **versions}


def stack_machine(elasticsearch: str) -> dict[str, Any]:
    """The machine of a run on the stack: Kafka's version, `elasticsearch`, the clients'."""
    return machine(
        # Kafka does not report its version to clients: this is the one `logdeck stack` runs.
        kafka=KAFKA_VERSION,
        elasticsearch=elasticsearch,
        libraries=library_versions(*STACK_LIBRARIES),
    )


def code_state() -> dict[str, Any]:
    """The commit measured, and the files changed since: results belong to a code state."""

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10, check=False
        )
        return done.stdout if done.returncode == 0 else ""

    changed = git("status", "--porcelain", "--", "backend", "console", "launch", "simulators")
    return {
        "commit": git("rev-parse", "HEAD").strip() or None,
        "changed": [line[3:] for line in changed.splitlines()],
    }


def code_line(code: dict[str, Any]) -> str:
    """Which commit is measured, and what differs from it."""
    return (
        f"code at {(code['commit'] or 'unknown')[:10]}, changed since: "
        f"{', '.join(code['changed']) or 'nothing'}"
    )


async def announce(headline: str, info: dict[str, Any] | None = None) -> dict[str, Any]:
    """Print the run's headline and the code it measures; that code state.

    With the run's machine record `info`, how busy the CPUs were is noted in it too.
    """
    code = code_state()
    print(f"{headline}\n{code_line(code)}")
    if info is not None:
        await note_busy(info)
    return code


def timestamp() -> str:
    """Now, in UTC to the second: when the results were recorded."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def _cpu_times() -> tuple[int, int]:
    """Idle and total jiffies of all CPUs since boot (the `cpu` line of /proc/stat)."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return idle, sum(fields)


async def background_busy(seconds: float = 1.0) -> float:
    """Share of the machine's CPU time busy over `seconds` before the run: others' work."""
    idle_before, total_before = _cpu_times()
    await asyncio.sleep(seconds)
    idle_after, total_after = _cpu_times()
    total = total_after - total_before
    return 1 - (idle_after - idle_before) / total if total else 0.0


async def note_busy(info: dict[str, Any]) -> None:
    """Record in `info` how busy the CPUs were before the start; say so when they were."""
    busy = info["busy_before_start"] = await background_busy()
    if busy > BUSY_BEFORE_START:
        print(f"note: the CPUs were {busy:.0%} busy before the start: figures share them")
