"""The console on each backend starts its feed with what the store holds, then goes on
with the live tail: every log once, in time order."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable

import pytest

from backend.backends import open_bus, open_store
from backend.config import Settings
from backend.observe.live import LiveObserver
from console.app import LogdeckApp
from tests.integration.conftest import Launch
from tests.integration.harness import Process, Stored, wait_until
from widgets.log_feed import LogFeed
from widgets.time_order import time_key

pytestmark = pytest.mark.integration


async def until(check: Callable[[], bool], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within:.0f} s waiting for {what}")
        await asyncio.sleep(0.2)


def simulate(launch: Launch, settings: Settings, prefix: str, seconds: int) -> Process:
    return launch(
        "simulate",
        "--port",
        str(settings.accumulator_port),
        "--node-prefix",
        f"{settings.namespace}-{prefix}-",
        "--nodes",
        "1",
        "--rate",
        "20",
        "--duration",
        str(seconds),
    )


async def test_the_feed_starts_with_the_stored_logs_then_follows_without_duplicates(
    settings: Settings,
    stored: Stored,
    accumulator: Process,
    indexer: Process,
    launch: Launch,
) -> None:
    simulate(launch, settings, "before", 3)
    await asyncio.to_thread(wait_until, lambda: stored.logs()[0] >= 30, 60, "logs stored")
    app = LogdeckApp(LiveObserver(settings, open_bus(settings), open_store(settings)))
    async with app.run_test(size=(160, 48)):
        feed = app.screen.query_one(LogFeed)
        await until(
            lambda: (
                re.search(r"\d earlier logs from the store", str(feed.border_subtitle)) is not None
            ),
            60,
            "the history in the feed",
        )
        history = {log.log_id for log in feed.ring}
        assert len(history) >= 30
        assert history <= set(await asyncio.to_thread(stored.log_ids))

        after = simulate(launch, settings, "after", 3)
        await until(lambda: after.popen.poll() is not None, 60, "the second simulation to end")
        await asyncio.to_thread(
            wait_until, lambda: len(stored.log_ids()) >= len(history) + 30, 60, "live logs stored"
        )
        everything = set(await asyncio.to_thread(stored.log_ids))
        await until(lambda: {log.log_id for log in feed.ring} >= everything, 60, "every log")
        shown = [log.log_id for log in feed.ring]
        assert len(shown) == len(set(shown))
        assert any("-after-" in log.node_id for log in feed.ring)
        keys = [time_key(log) for log in feed.ring]
        assert keys == sorted(keys)
