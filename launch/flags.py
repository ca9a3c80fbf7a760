"""What every service command shares: the connection flags, the settings they give, the
filter expression of the commands that print logs, and numbers that must be positive."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from backend.config import Settings, default_data_dir
from backend.logfilter import Expression, parse_expression

EXPRESSION_HELP = (
    'which logs, every term required: words and "phrases" the message contains (any case); '
    "level:ERROR, service:Pay*, node:payment-01, code:PAY-500 (or log_level:, service_name:, "
    "node_id:, error_code:; * stands for any characters); response_time_ms>1000 (or >=, <, "
    "<=, =; threshold_limit_ms too); - before a term leaves its logs out. Quote the whole "
    "expression for the shell; put -- before one that starts with -, and EXPRESSION before "
    "an --embedded without DIR"
)


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


def add_log_output_flags(parser: argparse.ArgumentParser) -> None:
    """EXPRESSION and --json, as `tail` and `search` take them."""
    parser.add_argument("expression", nargs="*", metavar="EXPRESSION", help=EXPRESSION_HELP)
    parser.add_argument(
        "--json", action="store_true", help="one JSON object per log, with the log's own fields"
    )


def expression_of(args: argparse.Namespace) -> Expression:
    """The EXPRESSION words as one expression; `ExpressionError` says what is wrong."""
    return parse_expression(" ".join(args.expression))


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
