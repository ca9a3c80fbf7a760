"""Following one of the observer's feeds for as long as the console runs.

A feed's iterator may raise or simply end (a broker restart, a lost connection): the
console then says which feed is failing and since when, waits with exponential backoff,
and opens the feed again. Pure asyncio, so it is tested without a terminal.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, NoReturn, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class FeedState:
    """Whether a feed is flowing; when not, since when and why."""

    name: str
    ok: bool
    since: datetime
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Backoff:
    first: float = 0.5
    factor: float = 2.0
    limit: float = 30.0

    def after(self, delay: float) -> float:
        return min(delay * self.factor, self.limit)


@dataclass(slots=True)
class Follower(Generic[T]):
    """Reads `open_feed()` forever, handing each batch to `deliver` and reporting trouble.

    `deliver(batch, first)` says whether the batch is the first of a (re)opened feed, which
    for the registry and the alerts is the whole current state rather than a change.
    """

    name: str
    open_feed: Callable[[], AsyncIterator[list[T]]]
    deliver: Callable[[list[T], bool], None]
    report: Callable[[FeedState], None]
    clock: Callable[[], datetime]
    backoff: Backoff = Backoff()
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep

    async def run(self) -> NoReturn:
        delay = self.backoff.first
        failing_since: datetime | None = None
        while True:
            first = True
            try:
                async for batch in self.open_feed():
                    if failing_since is not None:
                        failing_since = None
                        self.report(FeedState(self.name, ok=True, since=self.clock()))
                    self.deliver(batch, first)
                    first = False
                    delay = self.backoff.first
                reason = "the feed ended"
            except asyncio.CancelledError:
                raise
            except Exception as error:  # any failure of a feed is shown and retried
                reason = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
            failing_since = failing_since or self.clock()
            self.report(
                FeedState(
                    self.name,
                    ok=False,
                    since=failing_since,
                    detail=f"{reason}; retrying in {delay:g} s",
                )
            )
            await self.sleep(delay)
            delay = self.backoff.after(delay)
