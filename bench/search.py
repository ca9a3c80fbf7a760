"""The console's searches on the embedded store (SQLite + FTS5), beside Elasticsearch.

N simulated logs (24 nodes, 3 of each service, the default level mix) with timestamps spread
evenly over the 24 hours before the run are stored through `Store.index_logs` in batches,
first in a fresh `EmbeddedStore` file, then, as the baseline, through `ElasticsearchStore` into
a namespace of this run's own on the Elasticsearch of `LOGDECK_ELASTICSEARCH`. Then every
search the console makes (text, level, service, node, time range, combinations, first page and
page 5), each with its total and histogram, runs `--repeat` times against both stores, in
turns: p50 and p95 of the time `search_logs` takes, as the console waits for it.

The embedded store is searched through a second `EmbeddedStore` on the same file, as the
console's process opens it while the indexer's writes. The namespace's indices and index
template are deleted at the end, and the SQLite file with its folder.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import shutil
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
from elasticsearch import AsyncElasticsearch

from backend.schemas import Level, iso_millis
from backend.store.base import Store, StoredLog
from backend.store.elasticsearch import ElasticsearchStore
from backend.store.embedded import EmbeddedStore
from backend.store.query import LogQuery, SearchResult
from bench.common import (
    BenchError,
    Phase,
    bench_parser,
    bench_settings,
    fleet,
    percentile,
    render_table,
    run_and_record,
    verdict,
)
from bench.machine import announce, library_versions, machine, timestamp
from bench.servers import drop_indices, elasticsearch_version

DEFAULT_LOGS = 1_000_000
DEFAULT_BATCH = 5000
DEFAULT_REPEAT = 20
WARMUP = 2
NODES_PER_SERVICE = 3

TARGET_INGEST_RATE = 60_000
TARGET_SEARCH_P95_MS = 100.0


# The corpus and the queries -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Corpus:
    logs: list[StoredLog]
    end: datetime
    """The newest timestamp: time ranges are anchored here, so both stores see the same hits."""

    @classmethod
    def generate(cls, count: int, seed: int, span: timedelta = timedelta(hours=24)) -> Corpus:
        """`count` logs with timestamps spread at random over the `span` before now."""
        rng = random.Random(seed)
        nodes = fleet(rng, NODES_PER_SERVICE)
        end = datetime.now(UTC).replace(microsecond=0)
        span_ms = int(span.total_seconds() * 1000)
        start_ms = int(end.timestamp() * 1000) - span_ms
        offsets = sorted(rng.randrange(span_ms) for _ in range(count))
        ingested_at = iso_millis(end)
        logs = [
            StoredLog(
                msgspec.structs.replace(
                    rng.choice(nodes).log(),
                    timestamp=iso_millis(datetime.fromtimestamp((start_ms + ms) / 1000, UTC)),
                ),
                ingested_at,
            )
            for ms in offsets
        ]
        return cls(logs, end)

    def levels(self) -> dict[str, int]:
        return dict(Counter(str(item.log.log_level) for item in self.logs))


def queries(end: datetime) -> list[tuple[str, LogQuery]]:
    """The console's searches: every filter alone, text of each kind, combinations, pages."""

    def last(**delta: float) -> dict[str, Any]:
        return {"since": end - timedelta(**delta), "until": end}

    severe = frozenset({Level.ERROR, Level.FATAL})
    warn = frozenset({Level.WARN})
    return [
        ("everything", LogQuery()),
        ("everything, page 5", LogQuery(page=5)),
        ("level ERROR+FATAL", LogQuery(levels=severe)),
        ("level ERROR+FATAL, page 5", LogQuery(levels=severe, page=5)),
        ("service PaymentService", LogQuery(services=frozenset({"PaymentService"}))),
        ("node auth-02", LogQuery(nodes=frozenset({"auth-02"}))),
        ("last 15 min", LogQuery(**last(minutes=15))),
        ("last 1 h", LogQuery(**last(hours=1))),
        ("last 24 h", LogQuery(**last(hours=24))),
        ("last 24 h, page 5", LogQuery(**last(hours=24), page=5)),
        ("text: declined", LogQuery(text="declined")),
        ("text: order (a third of the logs)", LogQuery(text="order")),
        ("text: order, page 5", LogQuery(text="order", page=5)),
        ('text: "gateway returned" (phrase)', LogQuery(text='"gateway returned"')),
        ("text: PAY-502 (error code)", LogQuery(text="PAY-502")),
        ("text: ord* (prefix)", LogQuery(text="ord*")),
        ("text: timed | unreachable", LogQuery(text="timed | unreachable")),
        ("text: order -cancelled", LogQuery(text="order -cancelled")),
        ("text + level: order, WARN", LogQuery(text="order", levels=warn)),
        (
            "text + service + 1 h: slow, OrderService",
            LogQuery(text="slow", services=frozenset({"OrderService"}), **last(hours=1)),
        ),
        (
            "level + service + 24 h, page 5",
            LogQuery(levels=warn, services=frozenset({"OrderService"}), **last(hours=24), page=5),
        ),
        (
            "level + node + 15 min",
            LogQuery(levels=severe, nodes=frozenset({"payment-01"}), **last(minutes=15)),
        ),
        ("text + node, page 5", LogQuery(text="order", nodes=frozenset({"order-02"}), page=5)),
    ]


# Measuring ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ingested:
    logs: int
    seconds: float
    cpu_seconds: float | None
    size_bytes: int | None

    @property
    def rate(self) -> float:
        return self.logs / self.seconds

    def to_json(self) -> dict[str, Any]:
        return {
            "logs": self.logs,
            "seconds": self.seconds,
            "logs_per_second": self.rate,
            "cpu_seconds": self.cpu_seconds,
            "size_bytes": self.size_bytes,
        }


@dataclass(frozen=True, slots=True)
class Timing:
    """The milliseconds of each run of one query on one store, and what it found."""

    runs_ms: list[float]
    total: int
    shown: int
    bars: int
    note: str | None

    @property
    def p50(self) -> float:
        return percentile(self.runs_ms, 0.50)

    @property
    def p95(self) -> float:
        return percentile(self.runs_ms, 0.95)

    def to_json(self) -> dict[str, Any]:
        return {
            "p50_ms": self.p50,
            "p95_ms": self.p95,
            "max_ms": max(self.runs_ms),
            "runs_ms": self.runs_ms,
            "total": self.total,
            "logs_on_page": self.shown,
            "histogram_bars": self.bars,
            "note": self.note,
        }


async def ingest(store: Store, corpus: Corpus, batch: int, label: str) -> tuple[float, float]:
    """`index_logs` batch after batch; wall and CPU seconds of this process."""
    logs = corpus.logs
    phase = Phase(label, len(logs))
    cpu = time.process_time()
    started = time.perf_counter()
    for start in range(0, len(logs), batch):
        outcome = await store.index_logs(logs[start : start + batch])
        if outcome.rejected or outcome.stored != len(logs[start : start + batch]):
            raise BenchError(
                f"{label}: {outcome.stored} stored, first refusals {outcome.rejected[:1]}"
            )
        phase.update(start + batch)
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu
    phase.finish(f"{len(logs):,} logs in {seconds:.1f} s = {len(logs) / seconds:,.0f}/s")
    return seconds, cpu


async def time_queries(
    stores: dict[str, Store], named: list[tuple[str, LogQuery]], repeat: int
) -> dict[str, dict[str, Timing]]:
    """Every query on every store, `repeat` times after a warm-up, the stores taking turns.

    Elasticsearch's request cache is emptied before each search: the counts of a query
    would come from it on every run after the first, which an index refreshed every second
    under live traffic seldom allows.
    """
    runs: dict[str, dict[str, list[float]]] = {name: {s: [] for s in stores} for name, _ in named}
    last: dict[tuple[str, str], SearchResult] = {}
    phase = Phase("searching", repeat * len(named))
    for turn in range(-WARMUP, repeat):
        for name, query in named:
            for store_name, store in stores.items():
                if isinstance(store, ElasticsearchStore):
                    await store.client.indices.clear_cache(
                        index=store.indices.logs_pattern, request=True
                    )
                started = time.perf_counter()
                result = await store.search_logs(query)
                took = (time.perf_counter() - started) * 1000
                if turn >= 0:
                    runs[name][store_name].append(took)
                last[(name, store_name)] = result
        phase.update((turn + 1) * len(named))
    phase.finish(f"{len(named)} queries x {repeat} runs on {', '.join(stores)}")
    return {
        name: {
            store_name: Timing(
                runs[name][store_name],
                last[(name, store_name)].total,
                len(last[(name, store_name)].logs),
                len(last[(name, store_name)].histogram),
                last[(name, store_name)].note,
            )
            for store_name in stores
        }
        for name, _ in named
    }


async def es_size(es: AsyncElasticsearch, pattern: str) -> int | None:
    with contextlib.suppress(Exception):
        stats = await es.indices.stats(index=pattern, metric="store")
        size: int = stats["_all"]["primaries"]["store"]["size_in_bytes"]
        return size
    return None


def file_size(path: Path) -> int:
    return sum(
        part.stat().st_size
        for part in path.parent.iterdir()
        if part.name.startswith(path.name)  # the file, its -wal and -shm
    )


# The run ------------------------------------------------------------------------------------


async def run(args: argparse.Namespace) -> dict[str, Any]:
    settings = bench_settings("search")
    es = (
        None
        if args.skip_elasticsearch
        else AsyncElasticsearch(settings.elasticsearch, request_timeout=120)
    )
    workdir = Path(tempfile.mkdtemp(prefix="logdeck-bench-search-"))
    path = workdir / "logdeck.db"
    ingested: dict[str, Ingested] = {}
    try:
        es_version = (
            await elasticsearch_version(
                es, settings.elasticsearch, ", or pass --skip-elasticsearch"
            )
            if es
            else None
        )
        info = machine(
            sqlite=sqlite3.sqlite_version,
            elasticsearch=es_version,
            libraries=library_versions("elasticsearch", "msgspec"),
        )
        code = await announce(
            f"logdeck search benchmark: {args.logs:,} logs, batches of {args.batch:,}, "
            f"{info['nproc']} CPUs, SQLite {info['sqlite']}, "
            + (
                f"Elasticsearch {es_version} (namespace {settings.namespace})"
                if es
                else "no Elasticsearch"
            ),
            info,
        )
        phase = Phase("generating simulated logs", args.logs)
        started = time.perf_counter()
        corpus = Corpus.generate(args.logs, args.seed)
        phase.finish(f"{args.logs:,} logs in {time.perf_counter() - started:.1f} s")

        writer = EmbeddedStore(path)
        try:
            await writer.ensure_schema()
            seconds, cpu = await ingest(writer, corpus, args.batch, "embedded <- index_logs")
        finally:
            await writer.close()
        ingested["embedded"] = Ingested(args.logs, seconds, cpu, file_size(path))
        stores: dict[str, Store] = {"embedded": EmbeddedStore(path)}

        if es is not None:
            elastic = ElasticsearchStore(settings.elasticsearch, settings.indices)
            await elastic.ensure_schema()
            started = time.perf_counter()
            seconds, _ = await ingest(elastic, corpus, args.batch, "Elasticsearch <- index_logs")
            await es.indices.refresh(index=settings.indices.logs_pattern)
            seconds = time.perf_counter() - started  # until searchable: the refresh included
            ingested["elasticsearch"] = Ingested(
                args.logs, seconds, None, await es_size(es, settings.indices.logs_pattern)
            )
            stores["elasticsearch"] = elastic
        try:
            timings = await time_queries(stores, queries(corpus.end), args.repeat)
        finally:
            for store in stores.values():
                await store.close()
    finally:
        if es is not None:
            await drop_indices(es, settings)
            await es.close()
        shutil.rmtree(workdir, ignore_errors=True)

    report(ingested, timings)
    return {
        "benchmark": "search",
        "timestamp": timestamp(),
        "logs": args.logs,
        "batch": args.batch,
        "repeat": args.repeat,
        "namespace": settings.namespace if es else None,
        "machine": info,
        "code": code,
        "levels": corpus.levels(),
        "ingest": {name: figure.to_json() for name, figure in ingested.items()},
        "queries": {
            name: {store: timing.to_json() for store, timing in by_store.items()}
            for name, by_store in timings.items()
        },
        "targets": targets(ingested, timings),
    }


def targets(ingested: dict[str, Ingested], timings: dict[str, dict[str, Timing]]) -> dict[str, Any]:
    rate = ingested["embedded"].rate
    worst = max(by_store["embedded"].p95 for by_store in timings.values())
    return {
        "ingest": {
            "target": f">= {TARGET_INGEST_RATE:,} logs/s",
            "value": rate,
            "met": rate >= TARGET_INGEST_RATE,
        },
        "search_p95": {
            "target": f"< {TARGET_SEARCH_P95_MS:.0f} ms for every query",
            "worst_ms": worst,
            "met": worst < TARGET_SEARCH_P95_MS,
        },
    }


def report(ingested: dict[str, Ingested], timings: dict[str, dict[str, Timing]]) -> None:
    es = "elasticsearch" in ingested
    rows = [
        [
            f"ingest, {name}",
            f"{figure.rate:,.0f} logs/s",
            f"{figure.seconds:.1f} s",
            f"{figure.size_bytes / 1e6:,.0f} MB" if figure.size_bytes else "-",
        ]
        for name, figure in ingested.items()
    ]
    print()
    print(render_table(["store", "rate", "time", "size"], rows))
    header = ["query", "embedded p50", "p95", "hits"]
    if es:
        header += ["Elasticsearch p50", "p95", "hits"]
    header.append(f"p95 < {TARGET_SEARCH_P95_MS:.0f} ms?")
    rows = []
    for name, by_store in timings.items():
        mine = by_store["embedded"]
        row = [name, f"{mine.p50:.1f} ms", f"{mine.p95:.1f} ms", f"{mine.total:,}"]
        if es:
            theirs = by_store["elasticsearch"]
            row += [f"{theirs.p50:.1f} ms", f"{theirs.p95:.1f} ms", f"{theirs.total:,}"]
        row.append(verdict(mine.p95 < TARGET_SEARCH_P95_MS))
        rows.append(row)
    print()
    print(render_table(header, rows))
    notes = {note for by_store in timings.values() for t in by_store.values() if (note := t.note)}
    for note in sorted(notes):
        print(f"note: {note}")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = bench_parser(
        "search", "The console's searches on the embedded store, beside Elasticsearch."
    )
    parser.add_argument("--logs", type=int, default=DEFAULT_LOGS, help="logs stored (1,000,000)")
    parser.add_argument(
        "--batch", type=int, default=DEFAULT_BATCH, help="logs per index_logs call (5,000)"
    )
    parser.add_argument(
        "--repeat", type=int, default=DEFAULT_REPEAT, help="timed runs of each query (20)"
    )
    parser.add_argument(
        "--skip-elasticsearch", action="store_true", help="the embedded store alone"
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the simulated traffic")
    args = parser.parse_args(argv)
    if args.logs < 1 or args.batch < 1 or args.repeat < 1:
        parser.error("--logs, --batch and --repeat must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    return run_and_record(run, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
