"""`logdeck demo`: the whole system from one command, on the embedded backend by default.

The accumulator, indexer, alerter and monitor run as asyncio tasks of this process, the
simulated nodes as processes of their own (now and then one bursts errors, or dies and
comes back), and the console opens on top. Service logs go to `demo.log` in the data
folder, never over the console. Quitting the console (q or Ctrl+C) stops everything.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from backend.accumulator import run_accumulator
from backend.alerting.rules import load_rules
from backend.alerting.service import run_alerter
from backend.backends import open_bus, open_store
from backend.config import Settings, default_data_dir
from backend.indexer import run_indexer
from backend.monitor.service import MonitorOptions, run_monitor
from backend.observe.live import LiveObserver
from backend.runner import ServiceError
from console.app import LogdeckApp
from simulators.chaos import DEFAULT_LIFE_S, Cast, Mischief, demo_options

log = logging.getLogger("logdeck.demo")

Service = Callable[[asyncio.Event], Coroutine[Any, Any, None]]
_STOP_GRACE_S = 10.0
_SETTLE_S = 1.5
"""After the nodes end, time for their last records to reach the registry and the store."""


@dataclass(frozen=True, slots=True)
class DemoOptions:
    nodes: int = 5
    rate: float = 5.0
    """Logs per second per node."""
    life_s: float = DEFAULT_LIFE_S
    """How long a node lives, about, before it crashes or restarts."""
    log_file: Path | None = None
    """Where service logs go; by default `demo.log` in the (default) data folder."""
    keymap: Mapping[str, str] = field(default_factory=dict)


def run_demo(settings: Settings, options: DemoOptions) -> int:
    log_file = options.log_file or (settings.embedded or default_data_dir()) / "demo.log"
    log_file.parent.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(
        filename=log_file,
        level=logging.INFO,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    logging.getLogger("elastic_transport").setLevel(logging.WARNING)
    try:
        return asyncio.run(_demo(settings, options, log_file))
    except ServiceError as error:
        print(f"logdeck demo: {error}", file=sys.stderr)
        return 1


async def _demo(settings: Settings, options: DemoOptions, log_file: Path) -> int:
    bus = open_bus(settings)
    stop = asyncio.Event()
    rules = load_rules(None)
    services: dict[str, Service] = {
        "accumulator": lambda stop: run_accumulator(settings, bus, stop),
        "indexer": lambda stop: run_indexer(settings, bus, open_store(settings), stop),
        "alerter": lambda stop: run_alerter(settings, bus, stop, rules),
        "monitor": lambda stop: run_monitor(settings, bus, stop, MonitorOptions()),
    }
    app = LogdeckApp(LiveObserver(settings, bus, open_store(settings)), keymap=options.keymap)
    app.sub_title = f"demo · {settings.bus_address} · logs in {log_file}"
    tasks = {name: asyncio.create_task(service(stop)) for name, service in services.items()}
    for name, task in tasks.items():
        task.add_done_callback(partial(_ended, app, name, stop))
    with log_file.open("ab") as node_output:
        port = settings.accumulator_port
        mischief = Mischief.lasting(options.life_s)
        cast = Cast(options.nodes, demo_options(port, options.rate), node_output, mischief)
        nodes_stop = asyncio.Event()
        nodes = asyncio.create_task(cast.run(nodes_stop))
        log.info("demo: %d nodes logging to 127.0.0.1:%d", options.nodes, port)
        try:
            await app.run_async()
        finally:
            # Nodes first, so their goodbye heartbeats still find the accumulator.
            nodes_stop.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(nodes, return_exceptions=True), _STOP_GRACE_S)
            await asyncio.sleep(_SETTLE_S)
            stop.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    asyncio.gather(*tasks.values(), return_exceptions=True), _STOP_GRACE_S
                )
    failed = [task.exception() for task in tasks.values() if _failed(task)]
    for error in failed:
        print(f"logdeck demo: {error}", file=sys.stderr)
    return 1 if failed else 0


def _failed(task: asyncio.Task[None]) -> bool:
    return task.done() and not task.cancelled() and task.exception() is not None


def _ended(app: LogdeckApp, name: str, stop: asyncio.Event, task: asyncio.Task[None]) -> None:
    """A service that stops before the demo does is news: say so on screen and in the log."""
    if stop.is_set() or task.cancelled():
        return
    error = task.exception()
    log.error("%s stopped: %s", name, error, exc_info=error)
    app.notify(f"{name} stopped: {error}", title="demo", severity="error", timeout=30)
