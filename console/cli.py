"""The `logdeck` command: one subcommand per part of the system."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from pathlib import Path

from backend.config import Settings

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
        "--namespace", help="prefix of topics, indices and groups (LOGDECK_NAMESPACE, logdeck)"
    )
    group.add_argument(
        "--partitions", type=int, help="partitions of new topics (LOGDECK_PARTITIONS, 6)"
    )
    group.add_argument("-v", "--verbose", action="store_true", help="debug logging")


def _accumulator(args: argparse.Namespace) -> int:
    from backend.accumulator import run_accumulator
    from backend.bus.kafka import KafkaBus
    from backend.runner import configure_logging, serve

    configure_logging(args.verbose)
    settings = _settings(args)
    bus = KafkaBus(settings.kafka, settings.partitions)
    return serve(lambda stop: run_accumulator(settings, bus, stop))


def _indexer(args: argparse.Namespace) -> int:
    from backend.bus.kafka import KafkaBus
    from backend.indexer import run_indexer
    from backend.runner import configure_logging, serve
    from backend.store.elasticsearch import ElasticsearchStore

    configure_logging(args.verbose)
    settings = _settings(args)

    async def service(stop: asyncio.Event) -> None:
        store = ElasticsearchStore(settings.elasticsearch, settings.indices)
        await run_indexer(settings, KafkaBus(settings.kafka, settings.partitions), store, stop)

    return serve(service)


def _alerter(args: argparse.Namespace) -> int:
    from backend.alerting.rules import RulesError, load_rules
    from backend.alerting.service import run_alerter
    from backend.bus.kafka import KafkaBus
    from backend.runner import configure_logging, serve

    configure_logging(args.verbose)
    try:
        rules = load_rules(args.rules)
    except RulesError as error:
        print(f"logdeck alerter: {error}", file=sys.stderr)
        return 2
    settings = _settings(args)
    bus = KafkaBus(settings.kafka, settings.partitions)
    return serve(lambda stop: run_alerter(settings, bus, stop, rules))


def _monitor(args: argparse.Namespace) -> int:
    from backend.bus.kafka import KafkaBus
    from backend.monitor.service import MonitorOptions, run_monitor
    from backend.runner import configure_logging, serve

    configure_logging(args.verbose)
    settings = _settings(args)
    bus = KafkaBus(settings.kafka, settings.partitions)
    options = MonitorOptions(timeout_s=args.timeout)
    return serve(lambda stop: run_monitor(settings, bus, stop, options))


def _console(args: argparse.Namespace) -> int:
    from backend.observe.live import LiveObserver
    from console.app import LogdeckApp

    settings = _settings(args)
    app = LogdeckApp(LiveObserver(settings), read_only=args.read_only)
    app.run()
    return app.return_code or 0


def _stack(args: argparse.Namespace) -> int:
    from backend.stack.commands import stack_main

    return stack_main(args.action)


def _simulate(args: argparse.Namespace) -> int:
    from simulators.cli import run

    return run(args)


def _not_yet(name: str) -> Handler:
    def handler(args: argparse.Namespace) -> int:
        print(f"logdeck {name}: not available in this release yet", file=sys.stderr)
        return 2

    return handler


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
    _add_connection_flags(console)
    console.set_defaults(handler=_console)

    for name, text in (("demo", "the whole system on the embedded backend"),):
        planned = commands.add_parser(name, help=f"{text} (not available yet)")
        planned.set_defaults(handler=_not_yet(name))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
