"""Runs N simulated nodes, each its own process, and adds up what they report.

Separate processes make node failures real: a test can SIGKILL one node (the fleet prints
each node's pid) and the others carry on. Nodes run in their own sessions so a terminal's
Ctrl+C reaches them once, forwarded by the fleet: the first signal ends them gracefully
(DOWN heartbeat, flush), a second kills them. Each node reports `key=value` lines on
stdout; the fleet relays its summary, shows progress on a terminal and sums up at the end.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from backend.schemas import Level
from simulators.options import NodeOptions
from simulators.traffic import PROFILES

PROGRESS_EVERY = 5.0
NODE_PROGRESS_EVERY = 1.0
_PROJECT_ROOT = str(Path(__file__).resolve().parent.parent)


@dataclass(frozen=True, slots=True)
class NodeSpec:
    node_id: str
    service_name: str
    options: NodeOptions

    def argv(self, progress_every: float) -> list[str]:
        return [
            sys.executable,
            "-m",
            "simulators.node",
            "--node-id",
            self.node_id,
            "--service",
            self.service_name,
            "--parent-pid",
            str(os.getpid()),
            "--progress-every",
            str(progress_every),
            *self.options.to_argv(),
        ]


def plan(
    count: int, options: NodeOptions, prefix: str = "", fault_nodes: int | None = None
) -> list[NodeSpec]:
    """Nodes named for services in turn (`payment-01`, `order-01`, ..., `payment-02`).

    Fault flags apply to the first `fault_nodes` nodes (all when None); a seed is varied
    per node so nodes do not say the same things in lockstep.
    """
    specs = []
    for index in range(count):
        profile = PROFILES[index % len(PROFILES)]
        node_options = options
        if fault_nodes is not None and index >= fault_nodes:
            node_options = node_options.without_faults()
        if options.seed is not None:
            node_options = replace(node_options, seed=options.seed + index)
        node_id = f"{prefix}{profile.short}-{index // len(PROFILES) + 1:02d}"
        specs.append(NodeSpec(node_id, profile.name, node_options))
    return specs


def node_environment() -> dict[str, str]:
    """This environment, with the project importable by `python -m simulators.node`."""
    path = os.pathsep.join(filter(None, (_PROJECT_ROOT, os.environ.get("PYTHONPATH"))))
    return {**os.environ, "PYTHONPATH": path}


def _fields(line: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in line.split()[1:] if "=" in part)


@dataclass(slots=True)
class _Running:
    spec: NodeSpec
    process: asyncio.subprocess.Process
    latest: Mapping[str, str]
    summary: Mapping[str, str] | None = None


class Fleet:
    """Starts the nodes of a plan, forwards signals to them and reports."""

    def __init__(self, specs: list[NodeSpec], *, show_progress: bool) -> None:
        self._specs = specs
        self._show_progress = show_progress
        self._nodes: list[_Running] = []
        self._signals = 0

    async def run(self) -> int:
        """Run every node to its end; 0 when each ended cleanly or crashed as injected."""
        loop = asyncio.get_running_loop()
        started = time.monotonic()
        env = node_environment()
        for spec in self._specs:
            process = await asyncio.create_subprocess_exec(
                *spec.argv(NODE_PROGRESS_EVERY if self._show_progress else 0.0),
                stdout=asyncio.subprocess.PIPE,
                start_new_session=True,
                env=env,
            )
            self._nodes.append(_Running(spec, process, {}))
            print(
                f"started node_id={spec.node_id} service={spec.service_name} pid={process.pid}",
                flush=True,
            )
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, self._forward, signum)
        progress = asyncio.create_task(self._progress(started)) if self._show_progress else None
        try:
            await asyncio.gather(*(self._follow(node) for node in self._nodes))
        finally:
            if progress is not None:
                progress.cancel()
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)
        return self._report(time.monotonic() - started)

    def _forward(self, signum: int) -> None:
        self._signals += 1
        forwarded = signum if self._signals == 1 else signal.SIGKILL
        for node in self._nodes:
            if node.process.returncode is None:
                node.process.send_signal(forwarded)

    async def _follow(self, node: _Running) -> None:
        assert node.process.stdout is not None
        async for raw in node.process.stdout:
            line = raw.decode("utf-8", "replace").rstrip()
            if line.startswith("progress "):
                node.latest = _fields(line)
                continue
            if line.startswith("summary "):
                node.summary = node.latest = _fields(line)
            print(line, flush=True)
        await node.process.wait()

    async def _progress(self, started: float) -> None:
        while True:
            await asyncio.sleep(PROGRESS_EVERY)
            seconds = time.monotonic() - started
            running = [node for node in self._nodes if node.process.returncode is None]
            logs = sum(int(node.latest.get("logs", 0)) for node in self._nodes)
            rate = sum(float(node.latest.get("rate", 0)) for node in running)
            print(
                f"[{seconds:5.0f} s] {len(running)}/{len(self._nodes)} nodes running, "
                f"{logs:,} logs, {rate:,.0f} logs/s",
                flush=True,
            )

    def _report(self, seconds: float) -> int:
        totals = dict.fromkeys(Level, 0)
        rate = 0.0
        unconfirmed = 0
        failed = False
        notes = []
        for node in self._nodes:
            summary = node.summary or {}
            for level in Level:
                totals[level] += int(summary.get(level, 0))
            rate += float(summary.get("rate", 0))
            unconfirmed += int(summary.get("unconfirmed", 0))
            note, expected = _ending(node)
            if note:
                notes.append(f"fleet: {node.spec.node_id} {note}")
            failed = failed or not expected
        reported = sum(1 for node in self._nodes if node.summary) or 1
        levels = " ".join(f"{level}={n}" for level, n in totals.items())
        print(
            f"fleet: {len(self._nodes)} nodes, {sum(totals.values())} logs in {seconds:.1f} s, "
            f"{rate:.1f} logs/s ({rate / reported:.1f}/s per node); {levels}; "
            f"unconfirmed={unconfirmed}",
            flush=True,
        )
        for note in notes:
            print(note, flush=True)
        return 1 if failed else 0


def _ending(node: _Running) -> tuple[str | None, bool]:
    """How a node ended, if not plainly, and whether that was expected."""
    code = node.process.returncode
    if code == 0:
        return None, True
    if code == 1 and node.spec.options.crash_after is not None:
        return "crashed as injected (status 1)", True
    if code is not None and code < 0:
        return f"was killed by {signal.Signals(-code).name}", False
    return f"exited with status {code}", False
