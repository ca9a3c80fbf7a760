"""The commands that open the console on this terminal: `console` on running services,
`demo` with the whole system in this process."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from backend.config import default_data_dir
from launch.flags import add_connection_flags, positive, settings_of
from simulators.chaos import DEFAULT_LIFE_S


def add_console(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    console = commands.add_parser(
        "console", help="terminal console: nodes, live logs, alerts, search"
    )
    console.add_argument("--read-only", action="store_true", help="no acknowledging or resolving")
    _add_keys_flag(console)
    console.add_argument(
        "--list-keys",
        action="store_true",
        help="print every binding id with its keys (--keys applied) and exit",
    )
    add_connection_flags(console)
    console.set_defaults(handler=_console)


def add_demo(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
    demo.add_argument(
        "--life",
        type=positive(float),
        default=DEFAULT_LIFE_S,
        metavar="SECONDS",
        help="how long a node lives, about, before it crashes or restarts (%(default)g)",
    )
    _add_keys_flag(demo)
    add_connection_flags(demo)
    demo.set_defaults(handler=_demo)


def _add_keys_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--keys",
        type=Path,
        metavar="FILE",
        help="remapped keys, a TOML [keys] table of binding id = keys (default: "
        "~/.config/logdeck/keys.toml if it exists; `logdeck console --list-keys` lists the ids)",
    )


def _console(args: argparse.Namespace) -> int:
    from backend.backends import open_bus, open_store
    from backend.observe.live import LiveObserver
    from console.keymap import KeymapError
    from console.run import print_bindings, run_console, user_keymap

    try:
        keymap = user_keymap(args.keys)
    except KeymapError as error:
        print(f"logdeck console: {error}", file=sys.stderr)
        return 2
    if args.list_keys:
        print_bindings(sys.stdout, keymap)
        return 0
    settings = settings_of(args)
    observer = LiveObserver(settings, open_bus(settings), open_store(settings))
    return run_console(observer, read_only=args.read_only, keymap=keymap)


def _demo(args: argparse.Namespace) -> int:
    from backend.security import ForwardSecurity
    from console.keymap import KeymapError
    from console.run import user_keymap
    from launch.demo import DemoOptions, run_demo

    settings = settings_of(args)
    if args.kafka is None and args.elasticsearch is None and settings.embedded is None:
        settings = replace(settings, embedded=default_data_dir())
    # The demo's own accumulator on loopback, for its own nodes (fluent-logger, plain TCP).
    settings = replace(settings, forward_security=ForwardSecurity())
    try:
        keymap = user_keymap(args.keys)
    except KeymapError as error:
        print(f"logdeck demo: {error}", file=sys.stderr)
        return 2
    options = DemoOptions(nodes=args.nodes, rate=args.rate, life_s=args.life, keymap=keymap)
    return run_demo(settings, options)
