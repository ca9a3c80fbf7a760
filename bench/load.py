"""A steady background of simulated logs through the accumulator, in a process of its own.

Latency measured under load needs load that never delays the probes: in one event loop
with them, the background's bursts of `emit` held up the probes' sends and the reading
of their answers, adding the benchmark's own time to the figures.
"""

from __future__ import annotations

import asyncio
import random
import time

import msgspec

from backend.forward.sender import AckSender
from backend.schemas import now_iso
from bench.common import fleet

BACKGROUND_POOL = 20_000
BACKGROUND_TICK_S = 0.01


class Background:
    """`rate` simulated logs per second through the accumulator, until stopped.

    It runs in a process of its own (`background_process`), as the other services of a
    real system would: its work never delays the probes' sends or the alerts' reading.
    """

    def __init__(self, port: int, rate: float, seed: int) -> None:
        rng = random.Random(seed)
        nodes = fleet(rng, 3, "bench-")
        self._pool = [msgspec.to_builtins(rng.choice(nodes).log()) for _ in range(BACKGROUND_POOL)]
        self._sender = AckSender("logdeck", "127.0.0.1", port)
        self._rate = rate
        self._sent = 0

    async def run(self) -> None:
        """Paced in ticks of 10 ms; each record gets a fresh log_id and the time it is sent."""
        await self._sender.start()
        started = time.perf_counter()
        while True:
            due = int((time.perf_counter() - started) * self._rate) - self._sent
            stamp = now_iso()
            for _ in range(due):
                record = dict(self._pool[self._sent % BACKGROUND_POOL])
                record["log_id"] = f"bg-{self._sent}"
                record["timestamp"] = stamp
                await self._sender.emit("log", record)
                self._sent += 1
            await asyncio.sleep(BACKGROUND_TICK_S)


def background_process(port: int, rate: float, seed: int) -> None:
    """The entry point of the background's process; it runs until terminated."""
    asyncio.run(Background(port, rate, seed).run())
