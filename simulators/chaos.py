"""A cast of nodes that live, misbehave and come back: the traffic of `logdeck demo`.

Each node runs as its own process (as in `logdeck simulate`), one life after another:
a life may end in a crash (no goodbye heartbeat), may carry a burst of errors, and a
node that crashed comes back after a pause. So the console always has something to
show: NODE_DOWN raised and resolved, burst alerts, a registry that changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import signal
from dataclasses import dataclass, replace
from typing import IO

from simulators.fleet import NodeSpec, node_environment, plan
from simulators.options import ErrorBurst, NodeOptions

log = logging.getLogger("logdeck.demo")


@dataclass(frozen=True, slots=True)
class Mischief:
    """How often a life goes wrong, and how."""

    crash_chance: float = 0.35
    """Share of lives that end in a crash, somewhere in `crash_within` seconds."""
    crash_within: tuple[float, float] = (40.0, 120.0)
    burst_chance: float = 0.5
    burst_size: tuple[int, int] = (20, 150)
    burst_within: tuple[float, float] = (10.0, 60.0)
    back_after: tuple[float, float] = (8.0, 20.0)
    """Pause between a crash and the node's next life."""

    def next_life(self, options: NodeOptions, rng: random.Random) -> NodeOptions:
        burst = None
        if rng.random() < self.burst_chance:
            burst = ErrorBurst(rng.randint(*self.burst_size), rng.uniform(*self.burst_within))
        crash = rng.uniform(*self.crash_within) if rng.random() < self.crash_chance else None
        return replace(options, error_burst=burst, crash_after=crash, seed=rng.randrange(1 << 30))


class Cast:
    """Runs `count` nodes, each life after life, until `stop` is set."""

    def __init__(
        self,
        count: int,
        options: NodeOptions,
        output: IO[bytes] | None = None,
        mischief: Mischief | None = None,
        seed: int | None = None,
    ) -> None:
        self._specs = plan(count, options)
        self._output = output
        self._mischief = mischief or Mischief()
        self._rng = random.Random(seed)
        self._running: dict[str, asyncio.subprocess.Process] = {}

    async def run(self, stop: asyncio.Event) -> None:
        lives = [asyncio.create_task(self._lives(spec, stop)) for spec in self._specs]
        try:
            await stop.wait()
        finally:
            await self._end_all()
            for task in lives:
                task.cancel()
            await asyncio.gather(*lives, return_exceptions=True)

    async def _lives(self, spec: NodeSpec, stop: asyncio.Event) -> None:
        first = True
        while not stop.is_set():
            options = spec.options if first else self._mischief.next_life(spec.options, self._rng)
            first = False
            life = replace(spec, options=options)
            process = await self._start(life)
            self._running[spec.node_id] = process
            code = await process.wait()
            self._running.pop(spec.node_id, None)
            if stop.is_set():
                return
            pause = self._rng.uniform(*self._mischief.back_after)
            log.info("node %s ended (status %s); back in %.0f s", spec.node_id, code, pause)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), pause)

    async def _start(self, spec: NodeSpec) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            *spec.argv(progress_every=0.0),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=self._output or asyncio.subprocess.DEVNULL,
            stderr=self._output or asyncio.subprocess.DEVNULL,
            # The demo's accumulator is plain TCP on loopback (see `logdeck demo`).
            env={
                k: v for k, v in node_environment().items() if not k.startswith("LOGDECK_FORWARD_")
            },
            start_new_session=True,
        )

    async def _end_all(self, grace_s: float = 5.0) -> None:
        """Stop every node gracefully (a DOWN heartbeat), killing those that linger."""
        running = list(self._running.values())
        for process in running:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
        for process in running:
            try:
                await asyncio.wait_for(process.wait(), grace_s)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()


def demo_options(port: int, rate: float) -> NodeOptions:
    """Nodes of the demo: their first life is calm, so the console fills in quietly first."""
    return NodeOptions(rate=rate, port=port, close_timeout=5.0)
