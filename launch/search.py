"""`logdeck search [EXPRESSION]`: the stored logs that match, newest first, for scripts."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from datetime import UTC, datetime
from typing import Final

from backend.config import Settings
from backend.logfilter import ExpressionError
from backend.moments import MomentError, read_moment
from backend.schemas import Log
from backend.store.query import LogQuery
from launch.flags import add_connection_flags, add_log_output_flags, expression_of, settings_of
from launch.log_output import LogOutput

MAX_LIMIT: Final = 10_000
"""Elasticsearch returns at most this many hits of one search (`index.max_result_window`)."""
_TIME_HELP: Final = "ISO 8601 (UTC unless it says otherwise), now, or now-15m / 15m (s, m, h, d)"


def add_search(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    search = commands.add_parser(
        "search",
        help="the stored logs that match EXPRESSION, newest first",
        description="Prints the newest stored logs that match EXPRESSION, one per line "
        "(as `logdeck tail` does), and exits 0; exits 2 for a bad expression or time, 1 "
        "when the store cannot be reached.",
    )
    add_log_output_flags(search)
    search.add_argument("--since", metavar="TIME", help=f"logs at or after TIME: {_TIME_HELP}")
    search.add_argument("--until", metavar="TIME", help=f"logs at or before TIME: {_TIME_HELP}")
    search.add_argument(
        "--limit",
        type=_limit,
        default=100,
        metavar="N",
        help=f"at most N logs (default 100, at most {MAX_LIMIT})",
    )
    add_connection_flags(search)
    search.set_defaults(handler=_search)


def _limit(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 1 <= value <= MAX_LIMIT:
        raise argparse.ArgumentTypeError(f"must be from 1 to {MAX_LIMIT}, got {value}")
    return value


def _search(args: argparse.Namespace) -> int:
    from backend.runner import configure_logging
    from backend.store import StoreUnavailable

    try:
        query = _query(args, datetime.now(UTC))
    except (ExpressionError, MomentError) as error:
        print(f"logdeck search: {error}", file=sys.stderr)
        return 2
    configure_logging(args.verbose)
    if not args.verbose:  # the client warns of a failed node; the error below says it once
        logging.getLogger("elastic_transport").setLevel(logging.ERROR)
    try:
        logs = asyncio.run(_run(settings_of(args), query))
    except (StoreUnavailable, OSError) as error:  # OSError: an embedded folder it cannot use
        print(f"logdeck search: {error}", file=sys.stderr)
        return 1
    LogOutput(sys.stdout.buffer, as_json=args.json).write(logs)
    return 0


def _query(args: argparse.Namespace, now: datetime) -> LogQuery:
    """The search the arguments ask for; `ExpressionError` or `MomentError` if they cannot be
    read."""
    expression = expression_of(args)
    since = read_moment(args.since, now) if args.since is not None else None
    until = read_moment(args.until, now) if args.until is not None else None
    if since is not None and until is not None and since > until:
        raise MomentError(f"--since {args.since} is after --until {args.until}")
    return LogQuery(expression=expression, since=since, until=until, page_size=args.limit)


async def _run(settings: Settings, query: LogQuery) -> list[Log]:
    from backend.backends import open_store

    store = open_store(settings)
    try:
        return (await store.search_logs(query)).logs
    finally:
        await store.close()
