"""The `logdeck` command: one subcommand per part of the system."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from launch.deadletter import add_deadletter
from launch.forget import add_forget
from launch.search import add_search
from launch.services import (
    add_accumulator,
    add_alerter,
    add_indexer,
    add_monitor,
    add_notifier,
)
from launch.silences import add_maintenance, add_silence
from launch.tail import add_tail
from launch.terminal import add_console, add_demo

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="logdeck",
        description="Distributed logging: Forward accumulator, Kafka, Elasticsearch, console.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_accumulator(commands)
    add_indexer(commands)
    _add_simulate(commands)
    _add_stack(commands)
    add_alerter(commands)
    add_monitor(commands)
    add_notifier(commands)
    add_console(commands)
    add_demo(commands)
    add_deadletter(commands)
    add_silence(commands)
    add_maintenance(commands)
    add_forget(commands)
    add_tail(commands)
    add_search(commands)
    return parser


def _add_simulate(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from simulators.cli import configure

    simulate = commands.add_parser("simulate", help="simulated microservice nodes")
    configure(simulate)
    simulate.set_defaults(handler=_simulate)


def _add_stack(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from backend.stack.env import ROLES

    stack = commands.add_parser("stack", help="local Kafka and Elasticsearch on 127.0.0.1")
    stack.add_argument("action", choices=["up", "down", "status", "fetch", "env"])
    stack.add_argument(
        "--cluster",
        action="store_true",
        help="three Kafka and three Elasticsearch nodes (Kafka 127.0.0.1:19092,19094,19096; "
        "Elasticsearch http://127.0.0.1:19200-19202) instead of one of each",
    )
    stack.add_argument(
        "--role",
        metavar="ROLE",
        help="env: only the variables a service of ROLE needs (" + ", ".join(ROLES) + "); "
        "without it, on the cluster, the admin principal's",
    )
    stack.add_argument(
        "--namespace",
        metavar="NAME",
        help="up --cluster: create NAME's topics and grant each role its ACLs on them "
        "(default logdeck)",
    )
    stack.set_defaults(handler=_stack)


def _simulate(args: argparse.Namespace) -> int:
    from simulators.cli import run

    return run(args)


def _stack(args: argparse.Namespace) -> int:
    from backend.stack.commands import stack_main

    return stack_main(args.action, cluster=args.cluster, role=args.role, namespace=args.namespace)


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
