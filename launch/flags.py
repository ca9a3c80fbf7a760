"""What every service command shares: the connection flags, the settings they give, and
numbers that must be positive."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from backend.config import Settings, default_data_dir


def settings_of(args: argparse.Namespace) -> Settings:
    """The settings of the LOGDECK_* variables, overridden by the command's flags."""
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


def add_connection_flags(parser: argparse.ArgumentParser) -> None:
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


def positive(kind: type[int] | type[float]) -> Callable[[str], int | float]:
    """An argparse type: a number of `kind` greater than 0."""

    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
        return value

    return parse
