"""Runs services as plain asyncio tasks until a signal or a failure stops them.

Every service is a coroutine function taking a stop event: it returns once the event is
set and its work is flushed. SIGINT and SIGTERM set the event; a second signal cancels.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Callable, Coroutine
from typing import Any

Service = Callable[[asyncio.Event], Coroutine[Any, Any, None]]

log = logging.getLogger("logdeck.runner")


class ServiceError(Exception):
    """A service cannot run at all (a port taken, a bad setting): one clear line, exit 1."""


def configure_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )
    logging.getLogger("aiokafka").setLevel(logging.INFO if verbose else logging.CRITICAL)
    logging.getLogger("elastic_transport").setLevel(logging.WARNING)


async def until_stopped(work: Coroutine[Any, Any, None], stop: asyncio.Event) -> None:
    """Run `work` until it ends or `stop` is set, whichever comes first; its errors propagate."""
    task = asyncio.ensure_future(work)
    waiter = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait([task, waiter], return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    if not task.cancelled():
        task.result()


async def run_services(*services: Service) -> None:
    """Run `services` side by side; the first to fail stops the others."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    tasks = [asyncio.create_task(service(stop)) for service in services]

    def on_signal() -> None:
        if stop.is_set():
            for task in tasks:
                task.cancel()
        stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal)
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


def serve(*services: Service) -> int:
    """Entry point of a service command: exit code 0 after a clean stop."""
    try:
        asyncio.run(run_services(*services))
    except KeyboardInterrupt:
        return 130
    except ServiceError as error:
        print(f"logdeck: {error}", file=sys.stderr)
        return 1
    return 0
