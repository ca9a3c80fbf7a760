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
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import msgspec

from backend.runner import until_stopped
from backend.schemas import Heartbeat, Level, Log, NodeStatus, Registration, now_iso
from simulators.options import ErrorBurst, NodeOptions, add_node_options, non_negative
from simulators.senders import Sender, open_sender
from simulators.traffic import Traffic

log = logging.getLogger("logdeck.simulator")


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
        type=non_negative,
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
