"""The bytes all connections of one server may hold at once: read, not yet acknowledged.

A connection `take`s what it reads, `settle`s the part it hands to the sink as complete
frames, and `release`s bytes once the sink has delivered them (or the connection ended).
Past the limit a connection waits for `room` before reading again, so many big frames at
once cost a bounded amount of memory instead of one frame each.

Bytes handed to the sink come back by themselves; bytes of frames not complete yet do
not. When only those fill the budget (`stuck`), one connection at a time may go on past
the limit (`overdraft`) until its frame is complete: otherwise partial frames that
together fill the budget would wait for each other forever.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time

log = logging.getLogger("logdeck.forward")

_LOG_EVERY_S = 60.0


class ByteBudget:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self.settling = 0
        """Bytes of complete frames the sink has not delivered yet: they come back."""
        self.peak = 0
        self.pauses = 0
        """Times the budget filled up and reading stopped."""
        self._overdrawn = False  # one connection holds the overdraft
        self._partial: collections.deque[asyncio.Future[bool]] = collections.deque()
        self._whole: list[asyncio.Future[bool]] = []
        self._logged_at = -_LOG_EVERY_S

    @property
    def full(self) -> bool:
        return self.used >= self.limit

    def take(self, size: int) -> None:
        was_full = self.full
        self.used += size
        self.peak = max(self.peak, self.used)
        if self.full and not was_full:
            self.pauses += 1
            now = time.monotonic()
            if now - self._logged_at >= _LOG_EVERY_S:  # once a minute at most: it may flap
                self._logged_at = now
                log.warning(
                    "reading paused: %d bytes read and not acknowledged yet, the limit "
                    "(--max-buffered-bytes); %d pauses so far",
                    self.used,
                    self.pauses,
                )

    def settle(self, size: int) -> None:
        self.settling += size

    def release(self, size: int, settled: bool) -> None:
        self.used -= size
        if settled:
            self.settling -= size
        self._wake()

    async def wait(self, partial: bool) -> bool:
        """Until there is room (False) or, for a connection in the middle of a frame, its
        turn on the overdraft (True: it then calls `end_overdraft` once the frame is done)."""
        if not self.full:
            return False
        turn: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        if partial:
            self._partial.append(turn)
        else:
            self._whole.append(turn)
        self._wake()
        try:
            return await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled() and turn.result():
                self.end_overdraft()
            raise

    def end_overdraft(self) -> None:
        self._overdrawn = False
        self._wake()

    def _wake(self) -> None:
        if not self.full:
            for turn in (*self._partial, *self._whole):
                if not turn.done():
                    turn.set_result(False)
            self._partial.clear()
            self._whole.clear()
        elif not self.settling and not self._overdrawn:
            # Stuck: only partial frames fill the budget and nothing else will release it.
            while self._partial:
                turn = self._partial.popleft()
                if not turn.done():
                    turn.set_result(True)
                    self._overdrawn = True
                    return
