"""The flags every simulated node takes, shared by `logdeck simulate` and one node."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, fields, replace
from pathlib import Path

from backend.config import DEFAULT_ACCUMULATOR_HOST, DEFAULT_ACCUMULATOR_PORT
from backend.security import ForwardSecurity, SecurityError


@dataclass(frozen=True, slots=True)
class ErrorBurst:
    """`COUNT@T`: at T seconds, COUNT errors with one error code."""

    count: int
    at: float

    @classmethod
    def parse(cls, text: str) -> ErrorBurst:
        count, sep, at = text.partition("@")
        try:
            burst = cls(int(count), float(at))
        except ValueError:
            burst = None
        if not sep or burst is None or burst.count < 1 or burst.at < 0:
            raise argparse.ArgumentTypeError(f"expected COUNT@SECONDS (e.g. 50@10), got {text!r}")
        return burst

    def __str__(self) -> str:
        return f"{self.count}@{self.at:g}"


class OptionsError(ValueError):
    """Flags that cannot work together; the command stops with the message."""


@dataclass(frozen=True, slots=True)
class NodeOptions:
    """What every node of a run shares; `logdeck simulate` passes it on to each process."""

    rate: float = 10.0
    duration: float = 0.0
    host: str = DEFAULT_ACCUMULATOR_HOST
    port: int = DEFAULT_ACCUMULATOR_PORT
    standby_port: int | None = None
    tag_prefix: str = "logdeck"
    heartbeat_interval: float = 1.0
    acks: bool = False
    fluent_async: bool = False
    ledger: Path | None = None
    close_timeout: float = 30.0
    seed: int | None = None
    stop_heartbeats_after: float | None = None
    crash_after: float | None = None
    error_burst: ErrorBurst | None = None

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> NodeOptions:
        """The options of the flags; `OptionsError` for flags that cannot work together."""
        options = cls(**{f.name: getattr(args, f.name) for f in fields(cls)})
        if options.standby_port is not None and not options.acks:
            raise OptionsError("--standby-port needs --acks: fluent-logger has no failover")
        return options

    def without_faults(self) -> NodeOptions:
        return replace(self, stop_heartbeats_after=None, crash_after=None, error_burst=None)

    def to_argv(self) -> list[str]:
        """The command-line flags that give these options back."""
        argv: list[str] = []
        for f in fields(self):
            value = getattr(self, f.name)
            flag = "--" + f.name.replace("_", "-")
            if value is True:
                argv.append(flag)
            elif value is not None and value is not False:
                argv += [flag, str(value)]
        return argv


def check_sender_security(options: NodeOptions, security: ForwardSecurity) -> None:
    """fluent-logger (the default sender) speaks neither TLS nor the shared-key handshake."""
    if options.acks or not security.for_clients:
        return
    names = security.client_variables()
    raise SecurityError(
        f"{' and '.join(names)} {'are' if len(names) > 1 else 'is'} set, but fluent-logger "
        "(the default sender) supports neither the shared-key handshake nor TLS: add --acks"
    )


def positive(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be above 0, got {text}")
    return value


def non_negative(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {text}")
    return value


def add_node_options(parser: argparse.ArgumentParser) -> None:
    """The flags of `NodeOptions`, shared by `simulators.node` and `logdeck simulate`."""
    d = NodeOptions()
    load = parser.add_argument_group("load")
    load.add_argument(
        "--rate", type=non_negative, default=d.rate, help="logs per second per node (%(default)s)"
    )
    load.add_argument(
        "--duration",
        type=non_negative,
        default=d.duration,
        help="seconds to run, 0 = until Ctrl+C or SIGTERM (%(default)s)",
    )
    load.add_argument(
        "--heartbeat-interval",
        type=positive,
        default=d.heartbeat_interval,
        help="seconds between heartbeats (%(default)s)",
    )
    load.add_argument("--seed", type=int, help="seed for reproducible content")

    target = parser.add_argument_group("accumulator")
    target.add_argument("--host", default=d.host, help="accumulator host (%(default)s)")
    target.add_argument("--port", type=int, default=d.port, help="accumulator port (%(default)s)")
    target.add_argument(
        "--standby-port",
        type=int,
        help="another accumulator on the host, taken at once when the first fails (--acks)",
    )
    target.add_argument(
        "--tag-prefix", default=d.tag_prefix, help="tags are PREFIX.log etc. (%(default)s)"
    )
    kind = target.add_mutually_exclusive_group()
    kind.add_argument(
        "--acks",
        action="store_true",
        help="at-least-once: acknowledged PackedForward chunks, resent until acknowledged",
    )
    kind.add_argument(
        "--fluent-async", action="store_true", help="fluent-logger's background-thread sender"
    )
    target.add_argument(
        "--close-timeout",
        type=non_negative,
        default=d.close_timeout,
        help="seconds to wait at exit for unsent records (%(default)s)",
    )
    target.add_argument(
        "--ledger", type=Path, metavar="DIR", help="append confirmed log_ids to DIR/<node_id>.ids"
    )

    faults = parser.add_argument_group("fault injection")
    faults.add_argument(
        "--stop-heartbeats-after",
        type=non_negative,
        metavar="T",
        help="stop heartbeating after T s, keep logging",
    )
    faults.add_argument(
        "--crash-after",
        type=non_negative,
        metavar="T",
        help="exit abruptly (status 1, no DOWN heartbeat) after T s",
    )
    faults.add_argument(
        "--error-burst",
        type=ErrorBurst.parse,
        metavar="COUNT@T",
        help="at T s, send COUNT ERROR logs with one error code",
    )
