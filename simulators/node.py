"""One simulated microservice node, run as its own process so a test can kill it like a real one.

    python -m simulators.node --node-id payment-01 --service PaymentService --rate 50

A node registers, heartbeats UP every interval, logs at a steady rate (scheduled on the
monotonic clock, so it neither drifts nor slows down under load) and, when it ends
gracefully (duration over, SIGTERM or SIGINT), heartbeats DOWN and flushes its sender.
Fault flags make it misbehave on purpose: stop heartbeating, crash without a DOWN
heartbeat, or burst errors.

With `--ledger DIR` it appends to `DIR/<node_id>.ids` every log_id its sender has
confirmed: acknowledged by the accumulator (`--acks`), written to the socket
(fluent-logger), or queued (fluent-logger's async sender). Tests compare it with what
reached Elasticsearch.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import math
import os
import random
import signal
import sys
import time
from collections import Counter, deque
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import IO, Any, Protocol

import fluent.asyncsender
import fluent.sender
import msgspec

from backend.config import DEFAULT_ACCUMULATOR_HOST, DEFAULT_ACCUMULATOR_PORT
from backend.forward.sender import AckSender
from backend.runner import until_stopped
from backend.schemas import Heartbeat, Level, Log, NodeStatus, Registration, now_iso
from simulators.traffic import Traffic

log = logging.getLogger("logdeck.simulator")


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


@dataclass(frozen=True, slots=True)
class NodeOptions:
    """What every node of a run shares; `logdeck simulate` passes it on to each process."""

    rate: float = 10.0
    duration: float = 0.0
    host: str = DEFAULT_ACCUMULATOR_HOST
    port: int = DEFAULT_ACCUMULATOR_PORT
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
        return cls(**{f.name: getattr(args, f.name) for f in fields(cls)})

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


def _positive(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be above 0, got {text}")
    return value


def _non_negative(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {text}")
    return value


def add_node_options(parser: argparse.ArgumentParser) -> None:
    """The flags of `NodeOptions`, shared by `simulators.node` and `logdeck simulate`."""
    d = NodeOptions()
    load = parser.add_argument_group("load")
    load.add_argument(
        "--rate", type=_non_negative, default=d.rate, help="logs per second per node (%(default)s)"
    )
    load.add_argument(
        "--duration",
        type=_non_negative,
        default=d.duration,
        help="seconds to run, 0 = until Ctrl+C or SIGTERM (%(default)s)",
    )
    load.add_argument(
        "--heartbeat-interval",
        type=_positive,
        default=d.heartbeat_interval,
        help="seconds between heartbeats (%(default)s)",
    )
    load.add_argument("--seed", type=int, help="seed for reproducible content")

    target = parser.add_argument_group("accumulator")
    target.add_argument("--host", default=d.host, help="accumulator host (%(default)s)")
    target.add_argument("--port", type=int, default=d.port, help="accumulator port (%(default)s)")
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
        type=_non_negative,
        default=d.close_timeout,
        help="seconds to wait at exit for unsent records (%(default)s)",
    )
    target.add_argument(
        "--ledger", type=Path, metavar="DIR", help="append confirmed log_ids to DIR/<node_id>.ids"
    )

    faults = parser.add_argument_group("fault injection")
    faults.add_argument(
        "--stop-heartbeats-after",
        type=_non_negative,
        metavar="T",
        help="stop heartbeating after T s, keep logging",
    )
    faults.add_argument(
        "--crash-after",
        type=_non_negative,
        metavar="T",
        help="exit abruptly (status 1, no DOWN heartbeat) after T s",
    )
    faults.add_argument(
        "--error-burst",
        type=ErrorBurst.parse,
        metavar="COUNT@T",
        help="at T s, send COUNT ERROR logs with one error code",
    )


class Sender(Protocol):
    """A record sender that can say which log_ids it has safely taken."""

    async def emit(self, label: str, record: dict[str, Any]) -> None: ...

    def take_confirmed(self) -> list[str]:
        """Log ids confirmed since the last call."""
        ...

    @property
    def unconfirmed(self) -> int:
        """Log ids emitted but not (yet) confirmed."""
        ...

    async def close(self) -> None:
        """Send what is left; may be cancelled, leaving `unconfirmed` records unsent."""
        ...


class AckedSender:
    """`AckSender`, whose acknowledgements confirm records in the order they were emitted."""

    def __init__(self, options: NodeOptions) -> None:
        self._sender = AckSender(options.tag_prefix, options.host, options.port)
        self._ids: deque[str | None] = deque()
        self._taken = 0

    async def emit(self, label: str, record: dict[str, Any]) -> None:
        await self._sender.emit(label, record)
        # No await between the record entering the sender and this append: same order.
        self._ids.append(record.get("log_id"))

    def take_confirmed(self) -> list[str]:
        newly = self._sender.acked - self._taken
        self._taken += newly
        popped = [self._ids.popleft() for _ in range(newly)]
        return [log_id for log_id in popped if log_id]

    @property
    def unconfirmed(self) -> int:
        return sum(1 for log_id in self._ids if log_id)

    async def close(self) -> None:
        await self._sender.close()


class FluentLoggerSender:
    """fluent-logger's sender, whose failed sends stay buffered until a later send succeeds."""

    def __init__(self, options: NodeOptions) -> None:
        module = fluent.asyncsender if options.fluent_async else fluent.sender
        self._sender = module.FluentSender(
            options.tag_prefix,
            host=options.host,
            port=options.port,
            nanosecond_precision=True,
            buffer_overflow_handler=self._on_overflow,
        )
        self._where = f"{options.host}:{options.port}"
        self._pending: list[str] = []
        self._confirmed: list[str] = []
        self._overflows = 0
        self._failing = False

    async def emit(self, label: str, record: dict[str, Any]) -> None:
        overflows = self._overflows
        sent = self._sender.emit(label, record)
        log_id = record.get("log_id")
        if log_id:
            self._pending.append(log_id)
        if sent:
            self._confirm_pending()
            if self._failing:
                log.info("sending to %s again; buffered records went out", self._where)
                self._failing = False
            return
        error = self._sender.last_error
        self._sender.clear_last_error()
        if self._overflows != overflows:
            self._pending.clear()
        elif not self._failing:
            log.warning(
                "cannot send to %s (%s); fluent-logger buffers up to 1 MiB and retries "
                "with the next record",
                self._where,
                error,
            )
            self._failing = True

    def take_confirmed(self) -> list[str]:
        confirmed, self._confirmed = self._confirmed, []
        return confirmed

    @property
    def unconfirmed(self) -> int:
        return len(self._pending)

    async def close(self) -> None:
        overflows = self._overflows
        self._sender.close()
        if self._overflows == overflows:
            self._confirm_pending()

    def _confirm_pending(self) -> None:
        self._confirmed += self._pending
        self._pending = []

    def _on_overflow(self, pending: bytes) -> None:
        self._overflows += 1
        log.warning(
            "fluent-logger dropped %d bytes of buffered records: %s unreachable",
            len(pending),
            self._where,
        )


def open_sender(options: NodeOptions) -> Sender:
    return AckedSender(options) if options.acks else FluentLoggerSender(options)


class Ledger:
    """The log_ids a node's sender confirmed, one per line, for tests to check delivery."""

    def __init__(self, directory: Path, node_id: str) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self._file: IO[str] = (directory / f"{node_id}.ids").open("a", encoding="utf-8")

    def append(self, log_ids: list[str]) -> None:
        if log_ids:
            self._file.write("\n".join(log_ids) + "\n")
            self._file.flush()

    def close(self) -> None:
        self._file.close()


@dataclass(slots=True)
class NodeReport:
    node_id: str
    service_name: str
    levels: Counter[Level] = field(default_factory=Counter)
    heartbeats: int = 0
    seconds: float = 0.0
    unconfirmed: int = 0
    ended: str = "running"

    @property
    def logs(self) -> int:
        return sum(self.levels.values())

    def line(self, kind: str = "summary") -> str:
        """One `key=value` line: easy to read, and easy for the fleet to add up."""
        rate = self.logs / self.seconds if self.seconds > 0 else 0.0
        levels = " ".join(f"{level}={self.levels[level]}" for level in Level)
        return (
            f"{kind} node_id={self.node_id} service={self.service_name} logs={self.logs} "
            f"{levels} seconds={self.seconds:.2f} rate={rate:.1f} "
            f"heartbeats={self.heartbeats} unconfirmed={self.unconfirmed} ended={self.ended}"
        )


def _say(line: str) -> None:
    """Print a report line for the fleet, which may be gone (its pipe then is broken)."""
    try:
        print(line, flush=True)
    except BrokenPipeError:
        # As the Python docs advise: point stdout at devnull so the exit flush is quiet too.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


class Node:
    """Registration, heartbeats, paced logs and injected faults of one node."""

    def __init__(
        self,
        node_id: str,
        service_name: str,
        options: NodeOptions,
        sender: Sender,
        ledger: Ledger | None = None,
    ) -> None:
        self.node_id = node_id
        self.options = options
        self.report = NodeReport(node_id, service_name)
        self._sender = sender
        self._ledger = ledger
        self._traffic = Traffic(node_id, service_name, random.Random(options.seed))
        self._t0 = time.monotonic()

    async def run(self, stop: asyncio.Event) -> NodeReport:
        """Run until `stop` is set or the duration is over, then heartbeat DOWN and flush."""
        options = self.options
        self._t0 = time.monotonic()
        await self._send(
            "registration", Registration(self.node_id, self.report.service_name, now_iso())
        )
        logs = asyncio.create_task(self._logs())
        side = [asyncio.create_task(self._heartbeats())]
        if options.error_burst is not None:
            side.append(asyncio.create_task(self._error_burst(options.error_burst)))
        if options.crash_after is not None:
            side.append(asyncio.create_task(self._crash(options.crash_after)))
        try:
            if options.duration > 0:
                await until_stopped(self._for_duration(logs), stop)
            else:
                await stop.wait()
            self.report.ended = "signal" if stop.is_set() else "duration"
        finally:
            for task in (logs, *side):
                task.cancel()
            await asyncio.gather(logs, *side, return_exceptions=True)
        self.report.seconds = time.monotonic() - self._t0
        with contextlib.suppress(TimeoutError):
            # Bounded as a whole: with --acks even the DOWN heartbeat waits while the
            # sender's buffer is full of records the accumulator has not acknowledged.
            async with asyncio.timeout(options.close_timeout):
                await self._send("heartbeat", Heartbeat(self.node_id, NodeStatus.DOWN, now_iso()))
                await self._sender.close()
        self._keep_confirmed()
        self.report.unconfirmed = self._sender.unconfirmed
        if self.report.unconfirmed:
            log.warning(
                "%d log lines not confirmed by %s:%d at exit",
                self.report.unconfirmed,
                options.host,
                options.port,
            )
        return self.report

    def elapsed(self) -> float:
        return time.monotonic() - self._t0

    async def _for_duration(self, logs: asyncio.Task[None]) -> None:
        await asyncio.sleep(self.options.duration - self.elapsed())
        await logs

    async def _logs(self) -> None:
        """Log `rate` lines a second, the k-th due at k/rate s, catching up if behind."""
        rate = self.options.rate
        if rate <= 0:
            return
        limit = math.ceil(rate * self.options.duration) if self.options.duration > 0 else None
        sent = 0
        while limit is None or sent < limit:
            delay = sent / rate - self.elapsed()
            if delay > 0:
                await asyncio.sleep(delay)
            due = max(1, int(self.elapsed() * rate) + 1 - sent)  # more than one when behind
            if limit is not None:
                due = min(due, limit - sent)
            for _ in range(due):
                await self._send_log(self._traffic.log())
                sent += 1

    async def _heartbeats(self) -> None:
        interval = self.options.heartbeat_interval
        stop_after = self.options.stop_heartbeats_after
        beat = 0
        while stop_after is None or beat * interval < stop_after:
            await self._send("heartbeat", Heartbeat(self.node_id, NodeStatus.UP, now_iso()))
            self.report.heartbeats += 1
            self._keep_confirmed()
            beat += 1
            await asyncio.sleep(beat * interval - self.elapsed())
        log.warning("heartbeats stopped after %g s (fault injection)", stop_after)

    async def _error_burst(self, burst: ErrorBurst) -> None:
        await asyncio.sleep(burst.at - self.elapsed())
        log.warning("sending %d errors (fault injection)", burst.count)
        for _ in range(burst.count):
            await self._send_log(self._traffic.burst_error())

    async def _crash(self, after: float) -> None:
        await asyncio.sleep(after - self.elapsed())
        self._keep_confirmed()
        self.report.seconds = self.elapsed()
        self.report.unconfirmed = self._sender.unconfirmed
        self.report.ended = "crash"
        _say(self.report.line())
        log.warning("crashing after %g s (fault injection)", after)
        logging.shutdown()
        os._exit(1)

    async def _send_log(self, message: Log) -> None:
        await self._send("log", message)
        self.report.levels[message.log_level] += 1

    async def _send(self, label: str, message: Registration | Log | Heartbeat) -> None:
        await self._sender.emit(label, msgspec.to_builtins(message))

    def _keep_confirmed(self) -> None:
        confirmed = self._sender.take_confirmed()
        if self._ledger is not None:
            self._ledger.append(confirmed)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m simulators.node",
        description="One simulated microservice node: registers, heartbeats and logs.",
    )
    parser.add_argument("--node-id", required=True, help="e.g. payment-01")
    parser.add_argument("--service", required=True, help="e.g. PaymentService")
    parser.add_argument(
        "--progress-every",
        type=_non_negative,
        default=0.0,
        metavar="S",
        help="print a progress line every S seconds (0 = never)",
    )
    parser.add_argument(
        "--parent-pid", type=int, help="end gracefully when this process is gone (fleet use)"
    )
    add_node_options(parser)
    return parser


async def _watch_parent(parent_pid: int, stop: asyncio.Event) -> None:
    # Polling: a parent's death is an OS fact, not something another task could signal.
    while os.getppid() == parent_pid:  # noqa: ASYNC110
        await asyncio.sleep(0.5)
    log.warning("parent process %d is gone; stopping", parent_pid)
    stop.set()


async def _progress(node: Node, every: float) -> None:
    while True:
        await asyncio.sleep(every)
        node.report.seconds = node.elapsed()
        _say(node.report.line("progress"))


async def _serve(args: argparse.Namespace) -> int:
    options = NodeOptions.from_args(args)
    ledger = Ledger(options.ledger, args.node_id) if options.ledger else None
    node = Node(args.node_id, args.service, options, open_sender(options), ledger)
    stop = asyncio.Event()
    main = asyncio.current_task()
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        if stop.is_set() and main is not None:
            main.cancel()
        stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal)
    helpers = []
    if args.parent_pid is not None:
        helpers.append(asyncio.create_task(_watch_parent(args.parent_pid, stop)))
    if args.progress_every > 0:
        helpers.append(asyncio.create_task(_progress(node, args.progress_every)))
    try:
        report = await node.run(stop)
    except asyncio.CancelledError:
        log.warning("stopped by a second signal before flushing")
        return 130
    finally:
        for helper in helpers:
            helper.cancel()
        if ledger is not None:
            ledger.close()
    _say(report.line())
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format=f"%(asctime)s %(levelname)s {args.node_id}: %(message)s"
    )
    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(_serve(args))
    return 130


if __name__ == "__main__":
    sys.exit(main())
