"""The `logdeck` command: one subcommand per part of the system."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from backend.config import Settings, default_data_dir

if TYPE_CHECKING:
    from backend.deadletters.letters import LetterFilter

Handler = Callable[[argparse.Namespace], int]


def _settings(args: argparse.Namespace) -> Settings:
    return Settings.from_env(
        kafka=args.kafka,
        elasticsearch=args.elasticsearch,
        namespace=args.namespace,
        partitions=args.partitions,
        retention_days=getattr(args, "retention_days", None),
        accumulator_host=getattr(args, "host", None),
        accumulator_port=getattr(args, "port", None),
        embedded=args.embedded,
    )


def _add_connection_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("connections (defaults from LOGDECK_* variables)")
    group.add_argument(
        "--kafka", metavar="HOST:PORT", help="Kafka bootstrap (LOGDECK_KAFKA, 127.0.0.1:9092)"
    )
    group.add_argument(
        "--elasticsearch",
        metavar="URL",
        help="Elasticsearch (LOGDECK_ELASTICSEARCH, http://127.0.0.1:9200)",
    )
    group.add_argument(
        "--embedded",
        nargs="?",
        type=Path,
        const=default_data_dir(),
        metavar="DIR",
        help="the embedded bus and store (SQLite) in DIR instead of Kafka and Elasticsearch "
        f"(LOGDECK_EMBEDDED; DIR defaults to {default_data_dir()})",
    )
    group.add_argument(
        "--namespace", help="prefix of topics, indices and groups (LOGDECK_NAMESPACE, logdeck)"
    )
    group.add_argument(
        "--partitions", type=int, help="partitions of new topics (LOGDECK_PARTITIONS, 6)"
    )
    group.add_argument("-v", "--verbose", action="store_true", help="debug logging")


def _accumulator(args: argparse.Namespace) -> int:
    from backend.accumulator import run_accumulator
    from backend.backends import open_bus
    from backend.runner import configure_logging, serve

    configure_logging(args.verbose)
    settings = _settings(args)
    return serve(
        lambda stop: run_accumulator(
            settings,
            open_bus(settings),
            stop,
            max_frame_bytes=args.max_frame_bytes,
            max_frame_entries=args.max_frame_entries,
            max_frame_dead_letters=args.max_frame_dead_letters,
            max_connections=args.max_connections,
            max_connections_per_peer=args.max_connections_per_peer,
            idle_timeout=args.idle_timeout,
            frame_timeout=args.frame_timeout,
            write_timeout=args.write_timeout,
            max_buffered_bytes=args.max_buffered_bytes,
            max_new_nodes=args.max_new_nodes,
        )
    )


def _positive(kind: type[int] | type[float]) -> Callable[[str], int | float]:
    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
        return value

    return parse


def _indexer(args: argparse.Namespace) -> int:
    from backend.backends import open_bus, open_store
    from backend.indexer import run_indexer
    from backend.runner import configure_logging, serve

    configure_logging(args.verbose)
    settings = _settings(args)
    return serve(lambda stop: run_indexer(settings, open_bus(settings), open_store(settings), stop))


def _alerter(args: argparse.Namespace) -> int:
    from backend.alerting.rules import RulesError, load_rules
    from backend.alerting.service import run_alerter
    from backend.backends import open_bus
    from backend.runner import configure_logging, serve

    configure_logging(args.verbose)
    try:
        rules = load_rules(args.rules)
    except RulesError as error:
        print(f"logdeck alerter: {error}", file=sys.stderr)
        return 2
    settings = _settings(args)
    return serve(
        lambda stop: run_alerter(settings, open_bus(settings), stop, rules, instance=args.instance)
    )


def _monitor(args: argparse.Namespace) -> int:
    from backend.backends import open_bus
    from backend.monitor.service import MonitorOptions, run_monitor
    from backend.runner import configure_logging, serve

    configure_logging(args.verbose)
    settings = _settings(args)
    options = MonitorOptions(timeout_s=args.timeout)
    return serve(lambda stop: run_monitor(settings, open_bus(settings), stop, options))


def _keymap(args: argparse.Namespace) -> dict[str, str]:
    """The keys file named by --keys, or the default one if it exists."""
    from console.app import help_sections
    from console.keymap import binding_ids, default_keymap_file, load_keymap

    path: Path | None = args.keys
    if path is None:
        path = default_keymap_file()
        if not path.exists():
            return {}
    known = {id for _, bindings in help_sections() for id in binding_ids(bindings)}
    return load_keymap(path, known)


def _list_keys() -> None:
    """Each binding id with its keys, as a keys file would write them."""
    from textual.binding import Binding

    from console.app import help_sections

    for section, bindings in help_sections():
        print(f"# {section}")
        keys: dict[str, list[str]] = {}
        texts: dict[str, str] = {}
        for binding in Binding.make_bindings(bindings):
            if binding.id:
                keys.setdefault(binding.id, []).append(binding.key)
                texts[binding.id] = binding.tooltip or binding.description
        for binding_id, bound in keys.items():
            print(f"{binding_id:<22} {','.join(bound):<18} {texts[binding_id]}")


def _console(args: argparse.Namespace) -> int:
    from backend.observe.live import LiveObserver
    from console.app import LogdeckApp
    from console.keymap import KeymapError

    if args.list_keys:
        _list_keys()
        return 0
    settings = _settings(args)
    try:
        keymap = _keymap(args)
    except KeymapError as error:
        print(f"logdeck console: {error}", file=sys.stderr)
        return 2
    app = LogdeckApp(LiveObserver(settings), read_only=args.read_only, keymap=keymap)
    app.run()
    return app.return_code or 0


def _demo(args: argparse.Namespace) -> int:
    from backend.security import ForwardSecurity
    from console.demo import DemoOptions, run_demo
    from console.keymap import KeymapError

    settings = _settings(args)
    if args.kafka is None and args.elasticsearch is None and settings.embedded is None:
        settings = replace(settings, embedded=default_data_dir())
    # The demo's own accumulator on loopback, for its own nodes (fluent-logger, plain TCP).
    settings = replace(settings, forward_security=ForwardSecurity())
    try:
        keymap = _keymap(args)
    except KeymapError as error:
        print(f"logdeck demo: {error}", file=sys.stderr)
        return 2
    return run_demo(settings, DemoOptions(nodes=args.nodes, rate=args.rate, keymap=keymap))


def _since(text: str) -> datetime | None:
    from widgets.timerange import TimeRangeError, parse_since

    try:
        return parse_since(text, datetime.now(UTC))
    except TimeRangeError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _deadletter(args: argparse.Namespace) -> int:
    from backend.bus import BusUnavailable
    from backend.deadletters.letters import LetterFilter
    from backend.runner import configure_logging

    configure_logging(args.verbose)
    settings = _settings(args)
    selected = LetterFilter(reason=args.reason or "", since=args.since)
    try:
        if args.action == "list":
            return asyncio.run(_deadletter_list(settings, selected, args.json))
        return asyncio.run(_deadletter_replay(settings, selected))
    except BusUnavailable as error:
        print(f"logdeck deadletter: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            "logdeck deadletter: interrupted (letters replayed so far are marked)", file=sys.stderr
        )
        return 130


async def _deadletter_list(settings: Settings, selected: LetterFilter, as_json: bool) -> int:
    from backend.backends import open_bus
    from backend.deadletters.letters import read_pending
    from console.deadletter_report import print_pending, print_pending_json

    bus = open_bus(settings)
    try:
        pending = await read_pending(bus, settings.topics, selected)
    finally:
        await _close(bus)
    (print_pending_json if as_json else print_pending)(pending, sys.stdout)
    return 0


async def _deadletter_replay(settings: Settings, selected: LetterFilter) -> int:
    from backend.backends import open_bus
    from backend.deadletters.replay import replay
    from console.deadletter_report import print_summary

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


def _stack(args: argparse.Namespace) -> int:
    from backend.stack.commands import stack_main

    return stack_main(args.action)


def _simulate(args: argparse.Namespace) -> int:
    from simulators.cli import run

    return run(args)


def _add_keys_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--keys",
        type=Path,
        metavar="FILE",
        help="remapped keys, a TOML [keys] table of binding id = keys (default: "
        "~/.config/logdeck/keys.toml if it exists; `logdeck console --list-keys` lists the ids)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="logdeck",
        description="Distributed logging: Forward accumulator, Kafka, Elasticsearch, console.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    accumulator = commands.add_parser(
        "accumulator", help="Fluentd Forward protocol server that publishes to Kafka"
    )
    accumulator.add_argument("--host", help="listen address (127.0.0.1)")
    accumulator.add_argument("--port", type=int, help="listen port (24224)")
    from backend.forward.admission import DEFAULT_MAX_NEW_NODES
    from backend.forward.protocol import DEFAULT_MAX_FRAME_BYTES, DEFAULT_MAX_FRAME_ENTRIES
    from backend.forward.server import (
        DEFAULT_FRAME_TIMEOUT,
        DEFAULT_IDLE_TIMEOUT,
        DEFAULT_MAX_BUFFERED_BYTES,
        DEFAULT_MAX_CONNECTIONS,
        DEFAULT_WRITE_TIMEOUT,
    )
    from backend.frame_routing import DEFAULT_MAX_FRAME_DEAD_LETTERS

    limits = accumulator.add_argument_group("limits (each logged when hit)")
    limits.add_argument(
        "--max-frame-bytes",
        type=_positive(int),
        default=DEFAULT_MAX_FRAME_BYTES,
        metavar="N",
        help="largest Forward message (a larger one is dead-lettered and closes its "
        "connection) and largest gzip output (a larger one is dead-lettered) (%(default)s)",
    )
    limits.add_argument(
        "--max-connections",
        type=_positive(int),
        default=DEFAULT_MAX_CONNECTIONS,
        metavar="N",
        help="open connections; past it new ones are closed at once (%(default)s)",
    )
    limits.add_argument(
        "--idle-timeout",
        type=_positive(float),
        default=DEFAULT_IDLE_TIMEOUT,
        metavar="S",
        help="close a connection silent for S seconds with no ack pending (%(default)s)",
    )
    limits.add_argument(
        "--max-frame-entries",
        type=_positive(int),
        default=DEFAULT_MAX_FRAME_ENTRIES,
        metavar="N",
        help="events one frame may carry; packed entries past it are dead-lettered as one, "
        "a longer array closes its connection (%(default)s)",
    )
    limits.add_argument(
        "--max-frame-dead-letters",
        type=_positive(int),
        default=DEFAULT_MAX_FRAME_DEAD_LETTERS,
        metavar="N",
        help="dead letters one frame may make; the rest are counted in one more (%(default)s)",
    )
    limits.add_argument(
        "--max-connections-per-peer",
        type=_positive(int),
        metavar="N",
        help="open connections from one address; past it new ones are closed at once "
        "(half of --max-connections)",
    )
    limits.add_argument(
        "--frame-timeout",
        type=_positive(float),
        default=DEFAULT_FRAME_TIMEOUT,
        metavar="S",
        help="close a connection that has not finished a frame S seconds after it began "
        "(%(default)s)",
    )
    limits.add_argument(
        "--write-timeout",
        type=_positive(float),
        default=DEFAULT_WRITE_TIMEOUT,
        metavar="S",
        help="close a connection that has not taken its acks within S seconds (%(default)s)",
    )
    limits.add_argument(
        "--max-buffered-bytes",
        type=_positive(int),
        default=DEFAULT_MAX_BUFFERED_BYTES,
        metavar="N",
        help="bytes all connections may hold read and not yet acknowledged; past it they "
        "stop reading until some are (%(default)s)",
    )
    limits.add_argument(
        "--max-new-nodes",
        type=_positive(int),
        default=DEFAULT_MAX_NEW_NODES,
        metavar="N",
        help="nodes one connection may bring that are neither in the registry nor seen "
        "before; records of further ones are dead-lettered (%(default)s)",
    )
    limits.add_argument(
        "--retention-days",
        type=_positive(int),
        metavar="D",
        help="dead-letter logs dated before the oldest day the store keeps "
        "(LOGDECK_RETENTION_DAYS, 7) or more than LOGDECK_MAX_SKEW (1d) ahead",
    )
    _add_connection_flags(accumulator)
    accumulator.set_defaults(handler=_accumulator)

    indexer = commands.add_parser("indexer", help="Kafka to Elasticsearch, exactly once per log_id")
    indexer.add_argument(
        "--retention-days", type=int, help="delete daily log indices older than this (7)"
    )
    _add_connection_flags(indexer)
    indexer.set_defaults(handler=_indexer)

    simulate = commands.add_parser("simulate", help="simulated microservice nodes")
    from simulators.cli import configure

    configure(simulate)
    simulate.set_defaults(handler=_simulate)

    stack = commands.add_parser("stack", help="local Kafka and Elasticsearch on 127.0.0.1")
    stack.add_argument("action", choices=["up", "down", "status", "fetch"])
    stack.set_defaults(handler=_stack)

    alerter = commands.add_parser("alerter", help="alerts on ERROR, FATAL and other rules")
    alerter.add_argument("--rules", type=Path, help="rules file (TOML); built-in rules if absent")
    alerter.add_argument(
        "--instance",
        default="0",
        help="this copy's stable name when several run (0); its Kafka transactional ids",
    )
    _add_connection_flags(alerter)
    alerter.set_defaults(handler=_alerter)

    monitor = commands.add_parser("monitor", help="node registry and heartbeat failure detection")
    monitor.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        help="silence after which a node is DOWN (default: 3 heartbeat intervals)",
    )
    _add_connection_flags(monitor)
    monitor.set_defaults(handler=_monitor)

    console = commands.add_parser(
        "console", help="terminal console: nodes, live logs, alerts, search"
    )
    console.add_argument("--read-only", action="store_true", help="no acknowledging or resolving")
    _add_keys_flag(console)
    console.add_argument(
        "--list-keys", action="store_true", help="print every binding id with its keys and exit"
    )
    _add_connection_flags(console)
    console.set_defaults(handler=_console)

    demo = commands.add_parser(
        "demo",
        help="the whole system with simulated nodes and the console (embedded unless "
        "--kafka or --elasticsearch is given)",
    )
    demo.add_argument("--nodes", type=int, default=5, help="simulated nodes (%(default)s)")
    demo.add_argument(
        "--rate", type=float, default=5.0, help="logs per second per node (%(default)s)"
    )
    demo.add_argument("--port", type=int, help="the accumulator's port (24224)")
    _add_keys_flag(demo)
    _add_connection_flags(demo)
    demo.set_defaults(handler=_demo)

    _add_deadletter(commands)
    return parser


def _add_deadletter(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
        _add_connection_flags(parser)
        parser.set_defaults(handler=_deadletter)


def main(argv: list[str] | None = None) -> int:
    from backend.security import SecurityError
    from simulators.options import OptionsError

    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except (SecurityError, OptionsError) as error:
        print(f"logdeck: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
