"""`logdeck tail [EXPRESSION]`: the live logs that match, as they are published.

It reads the logs topic as the console's feed does (the bus's `tail`: no consumer group,
so it takes nothing from the services' groups and starts at the end), until SIGINT or
SIGTERM, or until the reader of stdout goes away; all three end it with exit 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import sys
from typing import Final

from backend.config import Settings
from backend.logfilter import Expression, ExpressionError
from launch.flags import add_connection_flags, add_log_output_flags, expression_of, settings_of
from launch.log_output import LogOutput

_BATCH_RECORDS: Final = 1000
_POLL_MS: Final = 200


def add_tail(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    tail = commands.add_parser(
        "tail",
        help="follow the live logs that match EXPRESSION",
        description="Prints each log published from now on that matches EXPRESSION, one "
        "per line: time, level, service, node, message, then its error code and timings; "
        "with --json, the log as JSON. Runs until Ctrl+C or SIGTERM, or until the reader "
        "of its output goes away, then exits 0; exits 2 for a bad expression, 1 when the "
        "bus cannot be reached.",
    )
    add_log_output_flags(tail)
    add_connection_flags(tail)
    tail.set_defaults(handler=_tail)


def _tail(args: argparse.Namespace) -> int:
    from backend.bus import BusUnavailable
    from backend.runner import configure_logging, run_services

    try:
        expression = expression_of(args)
    except ExpressionError as error:
        print(f"logdeck tail: {error}", file=sys.stderr)
        return 2
    configure_logging(args.verbose)
    output = LogOutput(sys.stdout.buffer, as_json=args.json)
    try:
        asyncio.run(run_services(functools.partial(_follow, settings_of(args), expression, output)))
    except (BusUnavailable, OSError) as error:  # OSError: an embedded folder it cannot use
        print(f"logdeck tail: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # before the signal handlers were in place
        pass
    return 0


async def _follow(
    settings: Settings, expression: Expression, output: LogOutput, stop: asyncio.Event
) -> None:
    from backend.backends import open_bus
    from backend.schemas import InvalidRecord, Log, decode_as

    bus = open_bus(settings)
    topic = settings.topics.logs
    try:
        await bus.ensure_topics([topic])
        subscription = bus.tail([topic])
        await subscription.start()
        try:
            print(f"logdeck tail: following {topic} on {settings.bus_label}", file=sys.stderr)
            while not stop.is_set() and not output.reader_gone():
                matching: list[Log] = []
                for record in await subscription.poll(_BATCH_RECORDS, _POLL_MS):
                    with contextlib.suppress(InvalidRecord):
                        log = decode_as(record.value, Log)
                        if expression.matches(log):
                            matching.append(log)
                if matching and not output.write(matching):
                    return
        finally:
            await subscription.stop()
    finally:
        close = getattr(bus, "close", None)  # the embedded bus's worker thread
        if close is not None:
            await close()
