"""`logdeck silence add | list | expire` and `logdeck maintenance NODE --for | --end`.

Every silence lives on the compacted silences topic; these commands read and write it
through `SilenceClient`, on the bus their connection flags name.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TextIO

import msgspec

from backend.config import Settings
from launch.flags import add_connection_flags, settings_of

if TYPE_CHECKING:
    from backend.schemas import Silence
    from backend.silences.client import SilenceClient

Action = Callable[["SilenceClient", datetime], Awaitable[int]]


def add_silence(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    silence = commands.add_parser(
        "silence",
        help="add, list or expire silences: matchers over alerts, with a start and an end",
        description="A silence covers the alerts that all its matchers match, until it "
        "ends or is expired. Matcher names: severity, service, node, rule, error_code.",
    )
    actions = silence.add_subparsers(dest="action", required=True, metavar="ACTION")
    adding = actions.add_parser(
        "add",
        help="silence alerts for a while; prints the new silence's id",
        description="MATCHER is name=value, or name=~regex (the whole label must match); "
        "names: severity, service, node, rule, error_code. Every matcher must match.",
    )
    adding.add_argument("matchers", nargs="+", metavar="MATCHER")
    _add_span(adding, required=True)
    adding.add_argument("--comment", required=True, metavar="TEXT", help="why (required)")
    _add_by(adding)
    listing = actions.add_parser(
        "list", help="every silence: those in force first, then those that ended"
    )
    listing.add_argument("--json", action="store_true", help="a JSON array")
    expiring = actions.add_parser("expire", help="end a silence now")
    expiring.add_argument("silence_id", metavar="ID")
    for parser in (adding, listing, expiring):
        add_connection_flags(parser)
        parser.set_defaults(handler=_silence)


def add_maintenance(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    maintenance = commands.add_parser(
        "maintenance",
        help="a node in maintenance raises no NODE_DOWN",
        description="Opens a maintenance window of NODE for DURATION (a window already "
        "open is moved to end then), or ends it with --end. The window is a silence "
        "with the one matcher node=NODE, listed by `logdeck silence list`.",
    )
    maintenance.add_argument("node_id", metavar="NODE")
    how = maintenance.add_mutually_exclusive_group(required=True)
    _add_span(how, required=False)
    how.add_argument("--end", action="store_true", help="end the node's maintenance now")
    maintenance.add_argument("--comment", default="maintenance", metavar="TEXT", help="why")
    _add_by(maintenance)
    add_connection_flags(maintenance)
    maintenance.set_defaults(handler=_maintenance)


def _add_span(parser: argparse._ActionsContainer, required: bool) -> None:
    parser.add_argument(
        "--for",
        dest="duration",
        required=required,
        metavar="DURATION",
        help="how long: 30m, 2h, 1d, 1h30m",
    )


def _add_by(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--by", metavar="NAME", help="who (the OS user)")


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _silence(args: argparse.Namespace) -> int:
    from backend.silences.parsing import SilenceInputError, parse_duration, parse_matcher

    if args.action == "list":
        return _run(args, "silence", lambda client, now: _list(client, now, args.json))
    if args.action == "expire":
        return _run(args, "silence", lambda client, now: _expire(client, now, args.silence_id))
    try:
        matchers = [parse_matcher(text) for text in args.matchers]
        duration = parse_duration(args.duration)
    except SilenceInputError as error:
        return _refuse("silence", str(error))

    async def add(client: SilenceClient, now: datetime) -> int:
        from backend.silences.parsing import new_silence

        by = args.by or _user()
        try:
            silence = new_silence(matchers, duration, comment=args.comment, by=by, now=now)
        except ValueError as error:
            return _refuse("silence", str(error))
        await client.add(silence)
        print(silence.silence_id)
        return 0

    return _run(args, "silence", add)


def _maintenance(args: argparse.Namespace) -> int:
    from backend.silences.parsing import SilenceInputError, parse_duration

    node = args.node_id
    if args.end:
        return _run(args, "maintenance", lambda client, now: _end_maintenance(client, now, node))
    try:
        duration = parse_duration(args.duration)
    except SilenceInputError as error:
        return _refuse("maintenance", str(error))

    async def start(client: SilenceClient, now: datetime) -> int:
        by = args.by or _user()
        try:
            window = await client.start_maintenance(
                node, duration, by=by, comment=args.comment, now=now
            )
        except ValueError as error:
            return _refuse("maintenance", str(error))
        print(f"node {node} in maintenance until {window.ends_at} (silence {window.silence_id})")
        return 0

    return _run(args, "maintenance", start)


def _refuse(command: str, reason: str) -> int:
    print(f"logdeck {command}: {reason}", file=sys.stderr)
    return 2


def _run(args: argparse.Namespace, command: str, action: Action) -> int:
    from backend.bus import BusUnavailable
    from backend.runner import configure_logging

    configure_logging(args.verbose)
    settings = settings_of(args)
    try:
        return asyncio.run(_with_client(settings, action))
    except BusUnavailable as error:
        print(f"logdeck {command}: {error}", file=sys.stderr)
        return 1


async def _with_client(settings: Settings, action: Action) -> int:
    from backend.backends import open_bus
    from backend.silences.client import SilenceClient

    bus = open_bus(settings)
    client = SilenceClient(settings, bus)
    try:
        return await action(client, datetime.now(UTC))
    finally:
        await client.close()
        close = getattr(bus, "close", None)  # the embedded bus's worker thread
        if close is not None:
            await close()


async def _list(client: SilenceClient, now: datetime, as_json: bool) -> int:
    from backend.silences.matching import is_active

    silences = (await client.book()).listing(now)
    if as_json:
        rows = [
            {**msgspec.to_builtins(silence), "active": is_active(silence, now)}
            for silence in silences
        ]
        json.dump(rows, sys.stdout, indent=2)
        print()
    else:
        print_table(silences, now, sys.stdout)
    return 0


def print_table(silences: list[Silence], now: datetime, out: TextIO) -> None:
    """One line per silence: id, state, when it ends, who, matchers, comment."""
    from backend.silences.matching import is_active
    from backend.silences.parsing import format_matcher

    if not silences:
        print("no silences", file=out)
        return
    rows = [("ID", "STATE", "STARTS", "ENDS", "BY", "MATCHERS", "COMMENT")]
    for silence in silences:
        state = "active" if is_active(silence, now) else "expired"
        if silence.maintenance:
            state += " (maintenance)"
        matchers = " ".join(format_matcher(matcher) for matcher in silence.matchers)
        rows.append(
            (
                silence.silence_id,
                state,
                silence.starts_at,
                silence.ends_at,
                silence.created_by,
                matchers,
                silence.comment,
            )
        )
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]) - 1)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        print("  ".join([*cells, row[-1]]).rstrip(), file=out)


async def _expire(client: SilenceClient, now: datetime, silence_id: str) -> int:
    from backend.silences.client import UnknownSilence

    try:
        silence, was_active = await client.expire(silence_id, now)
    except UnknownSilence:
        print(f"logdeck silence: no silence has the id {silence_id!r}", file=sys.stderr)
        return 1
    if was_active:
        print(f"silence {silence_id} expired at {silence.ends_at}")
    else:
        print(f"silence {silence_id} had already ended at {silence.ends_at}")
    return 0


async def _end_maintenance(client: SilenceClient, now: datetime, node: str) -> int:
    ended = await client.end_maintenance(node, now)
    if not ended:
        print(f"logdeck maintenance: node {node} is not in maintenance", file=sys.stderr)
        return 1
    print(f"node {node} out of maintenance at {ended[0].ends_at}")
    return 0
