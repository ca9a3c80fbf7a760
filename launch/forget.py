"""`logdeck forget NODE`: ask the monitor to retire a DOWN node from the registry now.

The registry is read first, so an unknown node or one that is UP is refused here with a
clear word instead of being ignored by the monitor.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import sys

from backend.config import Settings
from launch.flags import add_connection_flags, settings_of

log = logging.getLogger("logdeck.forget")


def add_forget(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    forget = commands.add_parser(
        "forget",
        help="drop a DOWN node from the registry now",
        description="The monitor retires NODE: its registry entry goes, its NODE_DOWN and "
        "FLAPPING alerts are cleared. Only a DOWN node can be forgotten; one that comes "
        "back registers again.",
    )
    forget.add_argument("node_id", metavar="NODE")
    forget.add_argument("--by", metavar="NAME", help="who (the OS user)")
    add_connection_flags(forget)
    forget.set_defaults(handler=_forget)


def _forget(args: argparse.Namespace) -> int:
    from backend.bus import BusUnavailable
    from backend.runner import configure_logging

    configure_logging(args.verbose)
    try:
        by = args.by or getpass.getuser()
    except (KeyError, OSError):
        by = "unknown"
    try:
        return asyncio.run(_ask(settings_of(args), args.node_id, by))
    except BusUnavailable as error:
        print(f"logdeck forget: {error}", file=sys.stderr)
        return 1


async def _ask(settings: Settings, node_id: str, by: str) -> int:
    from backend.backends import open_bus
    from backend.monitor.forgetting import NodeForgetter
    from backend.monitor.registry_topic import latest_entries
    from backend.schemas import NodeStatus

    bus = open_bus(settings)
    forgetter = NodeForgetter(settings, bus)
    try:
        topics = settings.topics
        await bus.ensure_topics(topics.all(), topics.compacted())
        entry = latest_entries(await bus.snapshot(topics.registry), log).get(node_id)
        if entry is None:
            print(f"logdeck forget: no node {node_id} in the registry", file=sys.stderr)
            return 2
        if entry.status is NodeStatus.UP:
            print(
                f"logdeck forget: node {node_id} is UP: only a DOWN node can be forgotten",
                file=sys.stderr,
            )
            return 2
        await forgetter.forget(node_id, by)
        print(f"asked the monitor to forget node {node_id} (last heard {entry.last_heartbeat})")
        return 0
    finally:
        await forgetter.close()
        close = getattr(bus, "close", None)  # the embedded bus's worker thread
        if close is not None:
            await close()
