"""ERROR -> alert latency through the real pipeline, under a steady background of logs.

The accumulator and the alerter run as subprocesses on the real Kafka. A background
sender, in a process of its own, keeps `--rate` simulated logs per second flowing through
the accumulator (the default level mix, so the alerter folds hundreds of ERRORs, WARNs
and bursts a second while it is measured). Meanwhile probe ERRORs, each with an error
code of its own so that each opens an alert, leave a separate sender one by one; the
clock runs from just before a probe is handed to its sender until the alert's first
snapshot is readable on the alerts topic (read_committed: once the alerter's transaction
has committed).

Both clocks are this process's `perf_counter`, so no clock skew enters the figures.
Everything runs in a fresh namespace whose topics are deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer

from backend.alerting.service import BATCH_RECORDS
from backend.bus.kafka.bus import KafkaBus
from backend.config import Settings
from backend.forward.sender import AckSender
from backend.schemas import Alert, InvalidRecord, decode_as, now_iso
from bench.common import (
    START_TIMEOUT_S,
    Accumulator,
    BenchError,
    Phase,
    Service,
    bench_parser,
    bench_settings,
    deadline_in,
    logdeck_service,
    percentile,
    render_table,
    run_and_record,
    verdict,
)
from bench.load import background_process
from bench.machine import announce, stack_machine, timestamp
from bench.servers import TopicSize, check_kafka, drop_topics

DEFAULT_ALERTS = 1000
QUICK_ALERTS = 200
DEFAULT_RATE = 5000.0
DEFAULT_PROBE_RATE = 50.0

TARGET_P99_MS = 250.0
TARGET_BACKGROUND_SHARE = 0.95
"""Share of `--rate` the background must reach for the run to count as under that load."""

PROBE_SERVICE = "BenchProbe"
PROBE_NODE = "bench-probe-01"
WARM_UP_S = 2.0
SETTLE_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class Latencies:
    """Milliseconds from each probe's send to its alert, sorted."""

    values: list[float]

    def at(self, share: float) -> float:
        return percentile(self.values, share)

    def to_json(self) -> dict[str, float]:
        return {
            "p50": self.at(0.50),
            "p90": self.at(0.90),
            "p99": self.at(0.99),
            "max": self.values[-1],
            "mean": sum(self.values) / len(self.values),
        }


class AlertWatch:
    """Reads the alerts topic as consoles do (committed only) and times each probe's alert.

    `rule` names the rule the probes fire (`error` for ERROR probes, `fatal` for FATAL).
    """

    def __init__(self, settings: Settings, rule: str = "error") -> None:
        self._topic = settings.topics.alerts
        self._consumer = AIOKafkaConsumer(
            self._topic,
            bootstrap_servers=settings.kafka,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            isolation_level="read_committed",
            fetch_max_wait_ms=20,
        )
        self._prefix = f"{rule}:{PROBE_SERVICE}:"
        self.seen: dict[str, float] = {}
        self.snapshots = 0

    async def start(self) -> None:
        await self._consumer.start()

    async def stop(self) -> None:
        await self._consumer.stop()

    async def run(self) -> None:
        while True:
            batches = await self._consumer.getmany(timeout_ms=100)
            arrived = time.perf_counter()
            for records in batches.values():
                for record in records:
                    self.snapshots += 1
                    self._note(record.value, arrived)

    def _note(self, value: bytes, arrived: float) -> None:
        try:
            alert = decode_as(value, Alert)
        except InvalidRecord:
            return
        if alert.fingerprint.startswith(self._prefix):
            self.seen.setdefault(alert.fingerprint.removeprefix(self._prefix), arrived)


class Probes:
    """ERRORs (or `level`) with an error code each, sent one by one as a service would,
    times kept."""

    def __init__(self, port: int, level: str = "ERROR") -> None:
        # A chunk per record: the probe leaves at once instead of waiting to fill a batch.
        self._sender = AckSender("logdeck", "127.0.0.1", port, batch_size=1)
        self._level = level
        self.sent: dict[str, float] = {}

    async def send(self, code: str) -> None:
        record = {
            "log_id": f"probe-{code}",
            "node_id": PROBE_NODE,
            "log_level": self._level,
            "message_type": "LOG",
            "message": f"probe {code}",
            "service_name": PROBE_SERVICE,
            "timestamp": now_iso(),
            "error_details": {"error_code": code, "error_message": f"probe {code}"},
        }
        self.sent[code] = time.perf_counter()
        await self._sender.emit("log", record)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(30):
                await self._sender.close()


async def wait_for_alerts(
    seen: Mapping[str, float],
    codes: Sequence[str],
    deadline: float,
    checks: Sequence[Service],
    background: BaseProcess,
    what: str = "alerts seen",
) -> None:
    """Until every code is in `seen` (code -> arrival), or `deadline`; a dead process fails."""
    phase = Phase(what, len(codes))
    while time.monotonic() < deadline:
        arrived = sum(code in seen for code in codes)
        phase.update(arrived)
        if arrived == len(codes):
            phase.finish(f"{arrived:,} of {len(codes):,}")
            return
        for service in checks:
            service.check_running()
        if not background.is_alive():
            raise BenchError(f"the background sender exited with status {background.exitcode}")
        await asyncio.sleep(0.1)
    phase.finish(f"{sum(code in seen for code in codes):,} of {len(codes):,}")


@dataclass(frozen=True, slots=True)
class Run:
    latencies: Latencies
    probes: int
    missing: int
    background_rate: float
    span_seconds: float
    alerter_cpu_seconds: float
    accumulator_cpu_seconds: float
    snapshots: int


async def measure(settings: Settings, args: argparse.Namespace, workdir: Path) -> Run:
    await KafkaBus(settings.kafka, settings.partitions).ensure_topics(
        settings.topics.all(), settings.topics.compacted()
    )
    with (
        Accumulator(settings, workdir / "accumulator.log") as accumulator,
        logdeck_service("alerter", settings, workdir / "alerter.log") as alerter,
    ):
        await accumulator.listening()
        port = accumulator.port
        watch = AlertWatch(settings)
        offsets = AIOKafkaConsumer(bootstrap_servers=settings.kafka, enable_auto_commit=False)
        logs_on_topic = TopicSize(offsets, settings).total
        probes = Probes(port)
        await watch.start()
        await offsets.start()
        watching = asyncio.create_task(watch.run())
        background = multiprocessing.get_context("spawn").Process(
            target=background_process, args=(port, args.rate, args.seed), daemon=True
        )
        background.start()
        try:
            await probes.send("WARMUP")
            await wait_for_alerts(
                watch.seen,
                ["WARMUP"],
                deadline_in(START_TIMEOUT_S),
                [accumulator, alerter],
                background,
            )
            if "WARMUP" not in watch.seen:
                raise BenchError("the alerter raised no alert for the warm-up probe in time")
            await asyncio.sleep(WARM_UP_S)

            codes = [f"P{index:05d}" for index in range(args.alerts)]
            logs_before = await logs_on_topic()
            alerter_cpu = alerter.cpu_seconds()
            accumulator_cpu = accumulator.cpu_seconds()
            started = time.perf_counter()
            phase = Phase(f"probes at {args.probe_rate:g}/s", len(codes))
            for index, code in enumerate(codes):
                await probes.send(code)
                phase.update(index + 1)
                pause = started + (index + 1) / args.probe_rate - time.perf_counter()
                await asyncio.sleep(max(0.0, pause))
            phase.finish(f"{len(codes):,} sent in {time.perf_counter() - started:.1f} s")
            await wait_for_alerts(
                watch.seen, codes, deadline_in(SETTLE_TIMEOUT_S), [accumulator, alerter], background
            )
            span = time.perf_counter() - started
            logs_after = await logs_on_topic()
            alerter_cpu = alerter.cpu_seconds() - alerter_cpu
            accumulator_cpu = accumulator.cpu_seconds() - accumulator_cpu
        finally:
            background.terminate()
            watching.cancel()
            await asyncio.gather(watching, return_exceptions=True)
            await asyncio.to_thread(background.join, 10)
            await probes.close()
            await watch.stop()
            await offsets.stop()
    measured = [code for code in codes if code in watch.seen]
    if not measured:
        raise BenchError("no probe raised an alert")
    values = sorted((watch.seen[code] - probes.sent[code]) * 1000 for code in measured)
    background_records = logs_after - logs_before - len(measured)
    return Run(
        latencies=Latencies(values),
        probes=len(codes),
        missing=len(codes) - len(measured),
        background_rate=background_records / span,
        span_seconds=span,
        alerter_cpu_seconds=alerter_cpu,
        accumulator_cpu_seconds=accumulator_cpu,
        snapshots=watch.snapshots,
    )


def figures(run: Run, args: argparse.Namespace) -> list[dict[str, Any]]:
    lat = run.latencies
    return [
        {"figure": "ERROR -> alert p50", "value": f"{lat.at(0.5):.0f} ms", "target": "-"},
        {"figure": "ERROR -> alert p90", "value": f"{lat.at(0.9):.0f} ms", "target": "-"},
        {
            "figure": "ERROR -> alert p99",
            "value": f"{lat.at(0.99):.0f} ms",
            "target": f"< {TARGET_P99_MS:.0f} ms",
            "met": lat.at(0.99) < TARGET_P99_MS,
        },
        {"figure": "ERROR -> alert max", "value": f"{lat.values[-1]:.0f} ms", "target": "-"},
        {
            "figure": "alerts measured",
            "value": f"{len(lat.values):,} of {run.probes:,}",
            "target": f">= {min(DEFAULT_ALERTS, args.alerts):,}, none missing",
            "met": run.missing == 0 and len(lat.values) >= min(DEFAULT_ALERTS, args.alerts),
        },
        {
            "figure": "background through the accumulator",
            "value": f"{run.background_rate:,.0f} logs/s",
            "target": f">= {TARGET_BACKGROUND_SHARE:.0%} of {args.rate:,.0f}/s",
            "met": run.background_rate >= TARGET_BACKGROUND_SHARE * args.rate,
        },
        {
            "figure": "alerter CPU",
            "value": f"{run.alerter_cpu_seconds / run.span_seconds:.0%} of a core",
            "target": "-",
        },
    ]


def render(rows: list[dict[str, Any]]) -> str:
    cells = [
        [
            row["figure"],
            row["value"],
            row["target"],
            verdict(row.get("met")),
        ]
        for row in rows
    ]
    return render_table(["figure", "value", "target", "met?"], cells)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    settings = bench_settings("alerts")
    await check_kafka(settings)
    info = stack_machine("not used")
    code = await announce(
        f"logdeck alert latency benchmark: {args.alerts:,} alerts at {args.probe_rate:g}/s "
        f"under {args.rate:,.0f} logs/s, namespace {settings.namespace}, {info['nproc']} CPUs, "
        f"Kafka {settings.kafka}",
        info,
    )
    try:
        with tempfile.TemporaryDirectory(prefix="logdeck-bench-") as workdir:
            result = await measure(settings, args, Path(workdir))
    finally:
        await drop_topics(settings)
    rows = figures(result, args)
    print()
    print(render(rows))
    if result.missing:
        print(f"\n{result.missing:,} probes raised no alert within {SETTLE_TIMEOUT_S:.0f} s")
    return {
        "benchmark": "alerts",
        "timestamp": timestamp(),
        "namespace": settings.namespace,
        "machine": info,
        "code": code,
        "settings": {
            "alerts": args.alerts,
            "probe_rate": args.probe_rate,
            "background_rate": args.rate,
            "partitions": settings.partitions,
            "alerter_batch_records": BATCH_RECORDS,
            "seed": args.seed,
        },
        "run": {
            "probes": result.probes,
            "missing": result.missing,
            "latency_ms": result.latencies.to_json(),
            "background_logs_per_second": result.background_rate,
            "span_seconds": result.span_seconds,
            "alerter_cpu_seconds": result.alerter_cpu_seconds,
            "accumulator_cpu_seconds": result.accumulator_cpu_seconds,
            "alert_snapshots_read": result.snapshots,
        },
        "figures": rows,
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = bench_parser(
        "alerts", "ERROR -> alert latency through accumulator, Kafka and alerter, under load."
    )
    parser.add_argument("--alerts", type=int, help=f"probe alerts (default {DEFAULT_ALERTS:,})")
    parser.add_argument(
        "--quick", action="store_true", help=f"smoke run with {QUICK_ALERTS:,} probe alerts"
    )
    parser.add_argument(
        "--rate", type=float, default=DEFAULT_RATE, help="background logs/s (%(default)g)"
    )
    parser.add_argument(
        "--probe-rate", type=float, default=DEFAULT_PROBE_RATE, help="probes/s (%(default)g)"
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the background traffic")
    args = parser.parse_args(argv)
    if args.alerts is None:
        args.alerts = QUICK_ALERTS if args.quick else DEFAULT_ALERTS
    if args.alerts < 1 or args.probe_rate <= 0 or args.rate < 0:
        parser.error("--alerts and --probe-rate must be above 0, --rate not below 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    return run_and_record(run, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
