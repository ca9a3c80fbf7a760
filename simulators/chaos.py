"""A cast of nodes that live, misbehave and come back: the traffic of `logdeck demo`.

Each node runs as its own process (as in `logdeck simulate`), one life after another:
every life ends, in a crash (no goodbye heartbeat) or a restart (a goodbye, as a deploy
makes), may carry a burst of errors, and the node comes back after a pause. So the console
always has something to show: NODE_DOWN raised and resolved, burst alerts, a registry that
changes. The first life is calm, so the console fills in quietly first.
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


DEFAULT_LIFE_S = 120.0


@dataclass(frozen=True, slots=True)
class Mischief:
    """How long a life lasts, how it ends and what goes wrong in it."""

    life: tuple[float, float] = (DEFAULT_LIFE_S / 2, DEFAULT_LIFE_S * 1.5)
    """How long a life lasts, in seconds."""
    crash_chance: float = 0.5
    """Share of lives that end in a crash rather than a restart."""
    burst_chance: float = 0.5
    burst_size: tuple[int, int] = (20, 150)
    burst_within: float = 0.5
    """A burst starts within this share of its life."""
    back_after: tuple[float, float] = (8.0, 20.0)
    """Pause between the end of a life and the next."""

    @classmethod
    def lasting(cls, life_s: float) -> Mischief:
        """Lives of about `life_s` seconds (half as long to half as long again)."""
        return cls(life=(life_s / 2, life_s * 1.5))

    def first_life(self, options: NodeOptions, rng: random.Random) -> NodeOptions:
        """Calm, and ended by a restart."""
        return replace(options.without_faults(), duration=rng.uniform(*self.life))

    def next_life(self, options: NodeOptions, rng: random.Random) -> NodeOptions:
        length = rng.uniform(*self.life)
        burst = None
        if rng.random() < self.burst_chance:
            at = rng.uniform(0.0, length * self.burst_within)
            burst = ErrorBurst(rng.randint(*self.burst_size), at)
        crashes = rng.random() < self.crash_chance
        return replace(
            options,
            error_burst=burst,
            crash_after=length if crashes else None,
            duration=0.0 if crashes else length,
            seed=rng.randrange(1 << 30),
        )


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
        mischief = self._mischief
        first = True
        while not stop.is_set():
            if first:
                options = mischief.first_life(spec.options, self._rng)
            else:
                options = mischief.next_life(spec.options, self._rng)
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
