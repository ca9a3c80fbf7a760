"""`logdeck deadletter list` and `replay`: the pending dead letters, and putting them
through today's decoder and router."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from backend.config import Settings
from launch.flags import add_connection_flags, settings_of

if TYPE_CHECKING:
    from backend.deadletters.letters import LetterFilter


def add_deadletter(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    deadletter = commands.add_parser(
        "deadletter",
        help="list the dead letters, or replay them through today's decoder and router",
        description="Dead letters are what the accumulator or the indexer refused, kept "
        "with the reason and the raw bytes. A letter that replays whole is marked replayed "
        "and is no longer pending.",
    )
    actions = deadletter.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser(
        "list",
        help="counts by reason, then each pending letter",
        description="The pending dead letters: counts by reason, then each letter (received "
        "at, partition:offset, reason, source, tag, peer, node, size and form of the raw "
        "bytes, their first bytes).",
    )
    listing.add_argument("--json", action="store_true", help="JSON, the raw bytes as base64")
    replaying = actions.add_parser(
        "replay",
        help="send the pending letters through today's decoder and router",
        description="Each pending letter's raw bytes go through the accumulator's decoder "
        "and router as they are today: records that pass are published to their topics "
        "(the indexer stores each log_id once, so replaying twice is harmless), letters "
        "whose every record passed are marked replayed, the rest stay pending and are "
        "counted by reason. Exits 0 when it ran, 1 when the bus cannot be used.",
    )
    for parser in (listing, replaying):
        parser.add_argument(
            "--reason", metavar="TEXT", help="only letters whose reason contains TEXT (any case)"
        )
        parser.add_argument(
            "--since",
            type=_since,
            metavar="TIME",
            help="only letters received at or after TIME: ISO 8601 or 10:15 (UTC), "
            "or a span back from now: 30s, 15m, 2h, 1d",
        )
        add_connection_flags(parser)
        parser.set_defaults(handler=_deadletter)


def _since(text: str) -> datetime | None:
    from widgets.timerange import TimeRangeError, parse_moment

    try:
        return parse_moment(text, datetime.now(UTC))
    except TimeRangeError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _deadletter(args: argparse.Namespace) -> int:
    from backend.bus import BusUnavailable
    from backend.deadletters.letters import LetterFilter
    from backend.runner import configure_logging

    configure_logging(args.verbose)
    settings = settings_of(args)
    selected = LetterFilter(reason=args.reason or "", since=args.since)
    try:
        if args.action == "list":
            return asyncio.run(_list(settings, selected, args.json))
        return asyncio.run(_replay(settings, selected))
    except BusUnavailable as error:
        print(f"logdeck deadletter: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            "logdeck deadletter: interrupted (letters replayed so far are marked)", file=sys.stderr
        )
        return 130


async def _list(settings: Settings, selected: LetterFilter, as_json: bool) -> int:
    from backend.backends import open_bus
    from backend.deadletters.letters import read_pending
    from launch.deadletter_report import print_pending, print_pending_json

    bus = open_bus(settings)
    try:
        pending = await read_pending(bus, settings.topics, selected)
    finally:
        await _close(bus)
    (print_pending_json if as_json else print_pending)(pending, sys.stdout)
    return 0


async def _replay(settings: Settings, selected: LetterFilter) -> int:
    from backend.backends import open_bus
    from backend.deadletters.replay import replay
    from launch.deadletter_report import print_summary

    shown = 0

    def progress(done: int, total: int) -> None:
        nonlocal shown
        if done // 10_000 > shown // 10_000:
            print(f"replaying: {done} of {total} dead letters done", file=sys.stderr, flush=True)
        shown = done

    bus = open_bus(settings)
    try:
        summary = await replay(bus, settings, selected, progress)
    finally:
        await _close(bus)
    print_summary(summary, sys.stdout)
    return 0


async def _close(bus: object) -> None:
    """Close a bus that holds resources (the embedded one's worker thread)."""
    close = getattr(bus, "close", None)
    if close is not None:
        await close()
