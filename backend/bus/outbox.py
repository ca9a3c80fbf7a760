"""Records waiting for a publisher's one flusher, from any number of callers.

Callers `put` their records and get a future that the flusher settles once the bus has
them; the flusher `take`s everything waiting at once, so many small sends become a few
large writes. Past `limit` waiting records `put` blocks: that is the publisher's
backpressure. Each bus keeps only its own way of writing what was taken.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from backend.bus.base import Outgoing

Waiting = tuple[Sequence[Outgoing], asyncio.Future[None]]
"""One caller's records and the future its `put` returned."""


class Outbox:
    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._waiting: list[Waiting] = []
        self._count = 0
        self._work = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._closing = False

    async def put(self, records: Sequence[Outgoing]) -> asyncio.Future[None]:
        """Queue `records`; the result completes when the flusher has written them."""
        delivery: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if not records:
            delivery.set_result(None)
            return delivery
        while self._count >= self._limit:
            self._room.clear()
            await self._room.wait()
        self._waiting.append((records, delivery))
        self._count += len(records)
        self._work.set()
        return delivery

    async def take(self) -> list[Waiting] | None:
        """Everything waiting, once there is some; None once closed and drained."""
        while not self._waiting:
            if self._closing:
                return None
            await self._work.wait()
            self._work.clear()
        taken, self._waiting = self._waiting, []
        self._count = 0
        self._room.set()
        return taken

    def close(self) -> None:
        """No more puts: `take` hands out what is left, then None."""
        self._closing = True
        self._work.set()
