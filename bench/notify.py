"""FATAL -> notification latency: from a service's FATAL to a webhook holding the alert.

The accumulator, the alerter and `logdeck notifier` run as subprocesses on the real
Kafka, under `--rate` background logs per second (as in `bench.alerts`). Probe FATALs, each
with an error code of its own so that each opens an alert, leave one by one; the clock
runs from just before a probe is handed to its sender until a webhook server in this
process receives the notification (Alertmanager's webhook format, routed by service,
`group_wait_s = 0`).

Beside it, in the same run and for the same probes, the baseline: the moment each alert's
first snapshot was readable on the alerts topic, which is what the notifier reads. The
difference is the notifier's own share. Both clocks are this process's `perf_counter`.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from backend.bus.kafka.bus import KafkaBus
from backend.config import Settings
from bench.alerts import PROBE_SERVICE, AlertWatch, Latencies, Probes, wait_for_alerts
from bench.common import (
    START_TIMEOUT_S,
    Accumulator,
    BenchError,
    Phase,
    bench_parser,
    bench_settings,
    deadline_in,
    free_port,
    logdeck_service,
    render_table,
    run_and_record,
    verdict,
)
from bench.load import background_process
from bench.machine import announce, stack_machine, timestamp
from bench.servers import check_kafka, drop_topics

DEFAULT_PROBES = 500
QUICK_PROBES = 100
DEFAULT_RATE = 5000.0
DEFAULT_PROBE_RATE = 20.0
TARGET_P99_MS = 1000.0
SETTLE_TIMEOUT_S = 60.0
WARM_UP_S = 2.0


class Hook:
    """A webhook receiver: the first arrival of each probe's firing notification, by code."""

    def __init__(self) -> None:
        self.seen: dict[str, float] = {}
        self.messages = 0
        self.port = free_port()
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self._receive)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _receive(self, request: web.Request) -> web.Response:
        body = await request.json()
        arrived = time.perf_counter()
        self.messages += 1
        for alert in body.get("alerts", []):
            labels = alert.get("labels", {})
            code = labels.get("error_code")
            if alert.get("status") == "firing" and code and labels.get("service") == PROBE_SERVICE:
                self.seen.setdefault(code, arrived)
        return web.Response(text="ok")


def notify_config(port: int) -> str:
    """The probes' service to the hook, at once; other alerts to nobody."""
    return f"""\
[[receiver]]
name = "bench"
type = "webhook"
url = "http://127.0.0.1:{port}/hook"
max_per_minute = 100000

[[route]]
receiver = "bench"
match = {{ service = "{PROBE_SERVICE}" }}
group_wait_s = 0
repeat_interval_s = 86400
"""


@dataclass(frozen=True, slots=True)
class Run:
    to_webhook: Latencies
    to_bus: Latencies
    probes: int
    missing: int
    messages: int
    notifier_cpu_seconds: float
    span_seconds: float


async def measure(settings: Settings, args: argparse.Namespace, workdir: Path) -> Run:
    await KafkaBus(settings.kafka, settings.partitions).ensure_topics(
        settings.topics.all(), settings.topics.compacted()
    )
    hook = Hook()
    await hook.start()
    config = workdir / "notify.toml"
    config.write_text(notify_config(hook.port))
    with (
        Accumulator(settings, workdir / "accumulator.log") as accumulator,
        logdeck_service("alerter", settings, workdir / "alerter.log") as alerter,
        logdeck_service(
            "notifier", settings, workdir / "notifier.log", "--config", str(config)
        ) as notifier,
    ):
        await accumulator.listening()
        services = [accumulator, alerter, notifier]
        watch = AlertWatch(settings, rule="fatal")
        probes = Probes(accumulator.port, level="FATAL")
        await watch.start()
        watching = asyncio.create_task(watch.run())
        background = multiprocessing.get_context("spawn").Process(
            target=background_process,
            args=(accumulator.port, args.rate, args.seed),
            daemon=True,
        )
        background.start()
        try:
            await probes.send("WARMUP")
            await wait_for_alerts(
                hook.seen,
                ["WARMUP"],
                deadline_in(START_TIMEOUT_S),
                services,
                background,
                "warm-up notification",
            )
            if "WARMUP" not in hook.seen:
                raise BenchError("the warm-up probe reached no webhook in time")
            await asyncio.sleep(WARM_UP_S)

            codes = [f"N{index:05d}" for index in range(args.probes)]
            notifier_cpu = notifier.cpu_seconds()
            started = time.perf_counter()
            phase = Phase(f"probes at {args.probe_rate:g}/s", len(codes))
            for index, code in enumerate(codes):
                await probes.send(code)
                phase.update(index + 1)
                pause = started + (index + 1) / args.probe_rate - time.perf_counter()
                await asyncio.sleep(max(0.0, pause))
            phase.finish(f"{len(codes):,} sent in {time.perf_counter() - started:.1f} s")
            await wait_for_alerts(
                hook.seen,
                codes,
                deadline_in(SETTLE_TIMEOUT_S),
                services,
                background,
                "notifications received",
            )
            span = time.perf_counter() - started
            notifier_cpu = notifier.cpu_seconds() - notifier_cpu
        finally:
            background.terminate()
            watching.cancel()
            await asyncio.gather(watching, return_exceptions=True)
            await asyncio.to_thread(background.join, 10)
            await probes.close()
            await watch.stop()
            await hook.stop()
    measured = [code for code in codes if code in hook.seen and code in watch.seen]
    if not measured:
        raise BenchError("no probe's notification reached the webhook")
    return Run(
        to_webhook=Latencies(sorted((hook.seen[c] - probes.sent[c]) * 1000 for c in measured)),
        to_bus=Latencies(sorted((watch.seen[c] - probes.sent[c]) * 1000 for c in measured)),
        probes=len(codes),
        missing=len(codes) - len(measured),
        messages=hook.messages,
        notifier_cpu_seconds=notifier_cpu,
        span_seconds=span,
    )


def figures(run: Run) -> list[dict[str, Any]]:
    hook, bus = run.to_webhook, run.to_bus
    rows: list[dict[str, Any]] = []
    for share in (0.5, 0.9, 0.99):
        name = f"p{share * 100:.0f}"
        target = f"< {TARGET_P99_MS:.0f} ms" if share == 0.99 else "-"
        rows.append(
            {
                "figure": f"FATAL -> webhook {name}",
                "value": f"{hook.at(share):.0f} ms",
                "baseline": f"{bus.at(share):.0f} ms",
                "target": target,
                "met": hook.at(share) < TARGET_P99_MS if share == 0.99 else None,
            }
        )
    rows.append(
        {
            "figure": "notifications measured",
            "value": f"{len(hook.values):,} of {run.probes:,}",
            "baseline": "-",
            "target": "none missing",
            "met": run.missing == 0,
        }
    )
    rows.append(
        {
            "figure": "notifier CPU",
            "value": f"{run.notifier_cpu_seconds / run.span_seconds:.0%} of a core",
            "baseline": "-",
            "target": "-",
        }
    )
    return rows


def render(rows: list[dict[str, Any]]) -> str:
    cells = [
        [row["figure"], row["value"], row["baseline"], row["target"], verdict(row.get("met"))]
        for row in rows
    ]
    return render_table(["figure", "value", "alert on the bus", "target", "met?"], cells)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    settings = bench_settings("notify")
    await check_kafka(settings)
    info = stack_machine("not used")
    code = await announce(
        f"logdeck notification latency benchmark: {args.probes:,} FATALs at "
        f"{args.probe_rate:g}/s under {args.rate:,.0f} logs/s, namespace {settings.namespace}",
        info,
    )
    try:
        with tempfile.TemporaryDirectory(prefix="logdeck-bench-") as workdir:
            result = await measure(settings, args, Path(workdir))
    finally:
        await drop_topics(settings)
    rows = figures(result)
    print()
    print(render(rows))
    if result.missing:
        print(f"\n{result.missing:,} probes reached no webhook within {SETTLE_TIMEOUT_S:.0f} s")
    return {
        "benchmark": "notify",
        "timestamp": timestamp(),
        "namespace": settings.namespace,
        "machine": info,
        "code": code,
        "settings": {
            "probes": args.probes,
            "probe_rate": args.probe_rate,
            "background_rate": args.rate,
            "partitions": settings.partitions,
            "seed": args.seed,
        },
        "run": {
            "probes": result.probes,
            "missing": result.missing,
            "webhook_messages": result.messages,
            "to_webhook_ms": result.to_webhook.to_json(),
            "to_alert_on_bus_ms": result.to_bus.to_json(),
            "notifier_cpu_seconds": result.notifier_cpu_seconds,
            "span_seconds": result.span_seconds,
        },
        "figures": rows,
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = bench_parser(
        "notify", "FATAL -> webhook latency through accumulator, alerter and notifier, under load."
    )
    parser.add_argument("--probes", type=int, help=f"probe FATALs (default {DEFAULT_PROBES:,})")
    parser.add_argument(
        "--quick", action="store_true", help=f"smoke run with {QUICK_PROBES:,} probes"
    )
    parser.add_argument(
        "--rate", type=float, default=DEFAULT_RATE, help="background logs/s (%(default)g)"
    )
    parser.add_argument(
        "--probe-rate", type=float, default=DEFAULT_PROBE_RATE, help="probes/s (%(default)g)"
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the background traffic")
    args = parser.parse_args(argv)
    if args.probes is None:
        args.probes = QUICK_PROBES if args.quick else DEFAULT_PROBES
    if args.probes < 1 or args.probe_rate <= 0 or args.rate < 0:
        parser.error("--probes and --probe-rate must be above 0, --rate not below 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    return run_and_record(run, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
