"""The wake-up of the polls of this process when a publisher of this process has committed.

Every bus object of one file in a process shares one `Signal`, so a poll wakes at once for
what this process published; what other processes publish it finds by reading the file.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from pathlib import Path


class Signal:
    """Wakes the polls of this process when a publisher of this process has committed."""

    def __init__(self) -> None:
        self.count = 0
        self._waiting: set[asyncio.Future[None]] = set()

    def fire(self) -> None:
        self.count += 1
        waiting, self._waiting = self._waiting, set()
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        for future in waiting:
            loop = future.get_loop()
            if loop is running:
                _wake(future)
            else:
                with contextlib.suppress(RuntimeError):  # that loop is closed
                    loop.call_soon_threadsafe(_wake, future)

    async def wait(self, at_most_s: float) -> None:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._waiting.add(future)
        timer = loop.call_later(at_most_s, _wake, future)
        try:
            await future
        finally:
            timer.cancel()
            self._waiting.discard(future)


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


_signals: dict[str, Signal] = {}
_signals_lock = threading.Lock()


def signal_for(path: Path) -> Signal:
    """The signal of the bus file at `path`, the same for every bus object of this process."""
    with _signals_lock:
        return _signals.setdefault(str(path.resolve()), Signal())
