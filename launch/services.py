"""The service commands: accumulator, indexer, alerter, monitor and notifier, each on the bus
(and store) its connection flags name, until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

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
from backend.monitor.registry import (
    DEFAULT_FLAP_COUNT,
    DEFAULT_FLAP_WINDOW_S,
    DEFAULT_RETIRE_AFTER_S,
    DEFAULT_RETIRE_GOODBYE_S,
)
from launch.flags import add_connection_flags, positive, settings_of


def add_accumulator(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    accumulator = commands.add_parser(
        "accumulator", help="Fluentd Forward protocol server that publishes to the bus"
    )
    accumulator.add_argument("--host", help="listen address (127.0.0.1)")
    accumulator.add_argument("--port", type=int, help="listen port (24224)")
    limits = accumulator.add_argument_group("limits (each logged when hit)")
    limits.add_argument(
        "--max-frame-bytes",
        type=positive(int),
        default=DEFAULT_MAX_FRAME_BYTES,
        metavar="N",
        help="largest Forward message (a larger one is dead-lettered and closes its "
        "connection) and largest gzip output (a larger one is dead-lettered) (%(default)s)",
    )
    limits.add_argument(
        "--max-connections",
        type=positive(int),
        default=DEFAULT_MAX_CONNECTIONS,
        metavar="N",
        help="open connections; past it new ones are closed at once (%(default)s)",
    )
    limits.add_argument(
        "--idle-timeout",
        type=positive(float),
        default=DEFAULT_IDLE_TIMEOUT,
        metavar="S",
        help="close a connection silent for S seconds with no ack pending (%(default)s)",
    )
    limits.add_argument(
        "--max-frame-entries",
        type=positive(int),
        default=DEFAULT_MAX_FRAME_ENTRIES,
        metavar="N",
        help="events one frame may carry; packed entries past it are dead-lettered as one, "
        "a longer array closes its connection (%(default)s)",
    )
    limits.add_argument(
        "--max-frame-dead-letters",
        type=positive(int),
        default=DEFAULT_MAX_FRAME_DEAD_LETTERS,
        metavar="N",
        help="dead letters one frame may make; the rest are counted in one more (%(default)s)",
    )
    limits.add_argument(
        "--max-connections-per-peer",
        type=positive(int),
        metavar="N",
        help="open connections from one address; past it new ones are closed at once "
        "(half of --max-connections)",
    )
    limits.add_argument(
        "--frame-timeout",
        type=positive(float),
        default=DEFAULT_FRAME_TIMEOUT,
        metavar="S",
        help="close a connection that has not finished a frame S seconds after it began "
        "(%(default)s)",
    )
    limits.add_argument(
        "--write-timeout",
        type=positive(float),
        default=DEFAULT_WRITE_TIMEOUT,
        metavar="S",
        help="close a connection that has not taken its acks within S seconds (%(default)s)",
    )
    limits.add_argument(
        "--max-buffered-bytes",
        type=positive(int),
        default=DEFAULT_MAX_BUFFERED_BYTES,
        metavar="N",
        help="bytes all connections may hold read and not yet acknowledged; past it they "
        "stop reading until some are (%(default)s)",
    )
    limits.add_argument(
        "--max-new-nodes",
        type=positive(int),
        default=DEFAULT_MAX_NEW_NODES,
        metavar="N",
        help="nodes one connection may bring that are neither in the registry nor seen "
        "before; records of further ones are dead-lettered (%(default)s)",
    )
    limits.add_argument(
        "--retention-days",
        type=positive(int),
        metavar="D",
        help="dead-letter logs dated before the oldest day the store keeps "
        "(LOGDECK_RETENTION_DAYS, 7) or more than LOGDECK_MAX_SKEW (1d) ahead",
    )
    add_connection_flags(accumulator)
    accumulator.set_defaults(handler=_accumulator)


def add_indexer(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    indexer = commands.add_parser("indexer", help="the bus to the store, exactly once per log_id")
    indexer.add_argument(
        "--retention-days", type=int, help="delete daily log indices older than this (7)"
    )
    add_connection_flags(indexer)
    indexer.set_defaults(handler=_indexer)


def add_alerter(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    alerter = commands.add_parser("alerter", help="alerts on ERROR, FATAL and other rules")
    alerter.add_argument("--rules", type=Path, help="rules file (TOML); built-in rules if absent")
    alerter.add_argument(
        "--instance",
        default="0",
        help="this copy's stable name when several run (0); its Kafka transactional ids",
    )
    add_connection_flags(alerter)
    alerter.set_defaults(handler=_alerter)


def add_monitor(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    monitor = commands.add_parser("monitor", help="node registry and heartbeat failure detection")
    monitor.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        help="silence after which a node is DOWN (default: 3 heartbeat intervals)",
    )
    monitor.add_argument(
        "--flap-count",
        type=positive(int),
        default=DEFAULT_FLAP_COUNT,
        metavar="N",
        help="a node DOWN more than N times within --flap-window is flapping: one FLAPPING "
        "alert instead of a NODE_DOWN per fall (%(default)s)",
    )
    monitor.add_argument(
        "--flap-window",
        type=positive(float),
        default=DEFAULT_FLAP_WINDOW_S,
        metavar="SECONDS",
        help="the window of --flap-count, and how long a flapping node must go without "
        "falling to stop flapping (%(default)g)",
    )
    monitor.add_argument(
        "--retire-after",
        type=positive(float),
        default=DEFAULT_RETIRE_AFTER_S,
        metavar="SECONDS",
        help="a node DOWN this long is retired: dropped from the registry, its NODE_DOWN "
        "cleared (%(default)g)",
    )
    monitor.add_argument(
        "--retire-goodbye",
        type=positive(float),
        default=DEFAULT_RETIRE_GOODBYE_S,
        metavar="SECONDS",
        help="the same for a node that said goodbye with a DOWN heartbeat (%(default)g)",
    )
    add_connection_flags(monitor)
    monitor.set_defaults(handler=_monitor)


def add_notifier(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    notifier = commands.add_parser(
        "notifier", help="alerts to Alertmanager, webhooks, Slack and email"
    )
    notifier.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="receivers and routes (TOML) ($LOGDECK_NOTIFY, then ~/.config/logdeck/notify.toml)",
    )
    add_connection_flags(notifier)
    notifier.set_defaults(handler=_notifier)


def _accumulator(args: argparse.Namespace) -> int:
    from backend.accumulator import run_accumulator
    from backend.backends import open_bus
    from backend.runner import configure_logging, serve

    configure_logging(args.verbose)
    settings = settings_of(args)
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


def _indexer(args: argparse.Namespace) -> int:
    from backend.backends import open_bus, open_store
    from backend.indexer import run_indexer
    from backend.runner import configure_logging, serve

    configure_logging(args.verbose)
    settings = settings_of(args)
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
    settings = settings_of(args)
    return serve(
        lambda stop: run_alerter(settings, open_bus(settings), stop, rules, instance=args.instance)
    )


def _monitor(args: argparse.Namespace) -> int:
    from backend.backends import open_bus
    from backend.monitor.service import MonitorOptions, run_monitor
    from backend.runner import configure_logging, serve

    configure_logging(args.verbose)
    settings = settings_of(args)
    options = MonitorOptions(
        timeout_s=args.timeout,
        flap_count=args.flap_count,
        flap_window_s=args.flap_window,
        retire_after_s=args.retire_after,
        retire_goodbye_s=args.retire_goodbye,
    )
    return serve(lambda stop: run_monitor(settings, open_bus(settings), stop, options))


def _notifier(args: argparse.Namespace) -> int:
    from backend.backends import open_bus
    from backend.notify.config import NotifyConfigError, default_config_path, load_notify_config
    from backend.notify.service import run_notifier
    from backend.runner import configure_logging, serve

    configure_logging(args.verbose)
    try:
        config = load_notify_config(args.config or default_config_path())
    except NotifyConfigError as error:
        print(f"logdeck notifier: {error}", file=sys.stderr)
        return 2
    settings = settings_of(args)
    return serve(lambda stop: run_notifier(settings, open_bus(settings), stop, config))
