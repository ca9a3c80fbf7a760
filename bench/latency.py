"""Service → searchable: how long a log takes from leaving a service to showing in a search.

The accumulator and the indexer run as subprocesses on the real Kafka and Elasticsearch.
A background sender in a process of its own keeps `--rate` simulated logs per second
flowing through the accumulator, while probe logs (a log_id each) leave a separate
sender one by one; a watcher searches for the outstanding probes every 50 ms, without
forcing a refresh, so a probe counts as searchable when a console's search would find it.

The baseline is Elasticsearch alone: the same probes indexed one by one straight into
the same index template (no refresh either), timed until a search finds each. Its figure
is mostly the 1 s refresh interval, which bounds what any pipeline in front can reach.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from elasticsearch import AsyncElasticsearch

from backend.forward.sender import AckSender
from backend.schemas import now_iso
from backend.store.elasticsearch import ElasticsearchStore, daily_index
from bench.common import (
    Accumulator,
    BenchError,
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
from bench.servers import drop_indices, drop_topics, elasticsearch_version

PROBE_EVERY_S = 0.1
POLL_S = 0.05
TARGET_RATE = 10_000
TARGET_P99_MS = 1500.0
"""Service -> searchable at `TARGET_RATE` logs/s: p99 below this."""


def probe(number: int, rate: int) -> dict[str, Any]:
    return {
        "log_id": f"latency-{rate}-{number}",
        "node_id": "latency-probe-01",
        "log_level": "INFO",
        "message_type": "LOG",
        "message": f"latency probe {number}",
        "service_name": "LatencyProbe",
        "timestamp": now_iso(),
    }


class Watcher:
    """Searches for the probes not found yet, every `POLL_S`, and notes when each shows."""

    def __init__(self, es: AsyncElasticsearch, pattern: str, expected: int) -> None:
        self._es = es
        self._pattern = pattern
        self._expected = expected
        self.sent: dict[str, float] = {}
        self.found: dict[str, float] = {}

    async def run(self, deadline: float) -> None:
        """Until every expected probe is found, or `deadline` (monotonic) passes."""
        while len(self.found) < self._expected and time.monotonic() < deadline:
            waiting = [log_id for log_id in self.sent if log_id not in self.found]
            if waiting:
                response = await self._es.search(
                    index=self._pattern,
                    query={"terms": {"log_id": waiting}},
                    source_includes=["log_id"],
                    size=len(waiting),
                    allow_no_indices=True,
                    ignore_unavailable=True,
                )
                now = time.perf_counter()
                for hit in response["hits"]["hits"]:
                    self.found.setdefault(hit["_source"]["log_id"], now)
            await asyncio.sleep(POLL_S)

    def latencies_ms(self) -> list[float]:
        return sorted((self.found[key] - self.sent[key]) * 1000 for key in self.found)


async def through_pipeline(
    settings: Any, es: AsyncElasticsearch, rate: int, probes: int, workdir: Path
) -> list[float]:
    deadline = deadline_in(120 + probes * PROBE_EVERY_S)
    with contextlib.ExitStack() as services:
        accumulator = services.enter_context(
            Accumulator(settings, workdir / f"accumulator-{rate}.log")
        )
        services.enter_context(logdeck_service("indexer", settings, workdir / f"idx-{rate}.log"))
        await accumulator.listening(deadline)
        port = accumulator.port
        background = multiprocessing.get_context("spawn").Process(
            target=background_process, args=(port, rate, 7), daemon=True
        )
        background.start()
        try:
            await asyncio.sleep(3)  # the background at its rate, the indexer caught up
            watcher = Watcher(es, settings.indices.logs_pattern, probes)
            watching = asyncio.create_task(watcher.run(deadline))
            sender = AckSender("logdeck", "127.0.0.1", port, batch_size=1)
            for number in range(probes):
                record = probe(number, rate)
                watcher.sent[record["log_id"]] = time.perf_counter()
                await sender.emit("log", record)
                await asyncio.sleep(PROBE_EVERY_S)
            await sender.close()
            await watching
        finally:
            background.terminate()
            background.join(10)
    if len(watcher.found) < probes:
        raise BenchError(f"only {len(watcher.found)} of {probes} probes became searchable")
    return watcher.latencies_ms()


async def elasticsearch_alone(
    settings: Any, es: AsyncElasticsearch, probes: int, deadline: float
) -> list[float]:
    store = ElasticsearchStore(settings.elasticsearch, settings.indices)
    try:
        await store.ensure_schema()
    finally:
        await store.close()
    watcher = Watcher(es, settings.indices.logs_pattern, probes)
    watching = asyncio.create_task(watcher.run(deadline))
    for number in range(probes):
        record = probe(number, 0)
        watcher.sent[record["log_id"]] = time.perf_counter()
        await es.index(
            index=daily_index(settings.indices.logs_prefix, record["timestamp"]),
            id=record["log_id"],
            document=record,
        )
        await asyncio.sleep(PROBE_EVERY_S)
    await watching
    return watcher.latencies_ms()


def describe(values: Sequence[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "p50": percentile(ordered, 0.5),
        "p95": percentile(ordered, 0.95),
        "p99": percentile(ordered, 0.99),
        "max": ordered[-1],
        "mean": statistics.fmean(ordered),
        "count": len(ordered),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    settings = bench_settings("latency")
    es = AsyncElasticsearch(settings.elasticsearch, request_timeout=30)
    info = stack_machine(await elasticsearch_version(es, settings.elasticsearch))
    code = await announce(
        f"logdeck latency benchmark: service -> searchable, {args.probes} probes at each of "
        f"{', '.join(f'{rate:,}' for rate in args.rates)} logs/s, namespace {settings.namespace}",
        info,
    )
    measured: dict[str, Any] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="logdeck-bench-latency-") as folder:
            for rate in args.rates:
                latencies = await through_pipeline(settings, es, rate, args.probes, Path(folder))
                measured[str(rate)] = describe(latencies)
                print(f"  pipeline at {rate:>6,} logs/s: {_line(measured[str(rate)])}")
        alone = await elasticsearch_alone(settings, es, args.probes, deadline_in(120))
        measured["elasticsearch_alone"] = describe(alone)
        print(f"  Elasticsearch alone:          {_line(measured['elasticsearch_alone'])}")
    finally:
        await drop_indices(es, settings)
        await es.close()
        await drop_topics(settings)
    baseline = measured["elasticsearch_alone"]
    rows = [
        [
            f"service -> searchable {share} at {int(rate):,} logs/s",
            f"{measured[rate][share]:,.0f} ms",
            f"{baseline[share]:,.0f} ms",
            f"{measured[rate][share] / baseline[share]:.1f}x",
            *_target(int(rate), share, measured[rate][share]),
        ]
        for rate in map(str, args.rates)
        for share in ("p50", "p95", "p99")
    ]
    print()
    print(render_table(["figure", "value", "ES alone", "ratio", "target", "met?"], rows))
    return {
        "benchmark": "latency",
        "timestamp": timestamp(),
        "machine": info,
        "namespace": settings.namespace,
        "code": code,
        "target": {"rate": TARGET_RATE, "p99_ms": TARGET_P99_MS},
        "settings": {"rates": args.rates, "probes": args.probes, "probe_every_s": PROBE_EVERY_S},
        "latency_ms": measured,
    }


def _target(rate: int, share: str, value: float) -> list[str]:
    """The target cell and whether it was met, for the one figure that has a target."""
    if rate != TARGET_RATE or share != "p99":
        return ["-", verdict(None)]
    return [f"< {TARGET_P99_MS:,.0f} ms", verdict(value < TARGET_P99_MS)]


def _line(figures: dict[str, float]) -> str:
    return (
        f"p50 {figures['p50']:,.0f} ms, p95 {figures['p95']:,.0f} ms, "
        f"p99 {figures['p99']:,.0f} ms, max {figures['max']:,.0f} ms"
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = bench_parser("latency", "How long a log takes from a service until a search finds it.")
    parser.add_argument(
        "--rates", type=int, nargs="+", default=[1_000, 10_000], help="background logs/s"
    )
    parser.add_argument("--probes", type=int, default=200, help="probes per rate (%(default)s)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    return run_and_record(run, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
