"""A new console's history: from a store of a million logs, how soon its newest are on screen.

N simulated logs spread over the hour before the run (`bench.search`'s corpus) are stored
through `index_logs` into Elasticsearch, in a namespace of this run's own, and into a fresh
embedded store. Then, round after round, the real console (`LogdeckApp` on `LiveObserver`,
headless) is started on each store and timed until its feed holds the history (the newest
1,000 logs of the last 15 minutes) and the screen has been repainted. Beside it, in the
same rounds, the bare query the console makes (`search_logs(history_query(now))`) on a new
store client: what the store takes, so what the console adds is visible.

Nothing is published while a console starts (a quiet live tail), so the feed holds exactly
the stored history, which is checked. The namespace's topics and indices are deleted at the
end, and the embedded store's folder.
"""

from __future__ import annotations

import argparse
import gc
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from elasticsearch import AsyncElasticsearch

from backend.backends import open_bus, open_store
from backend.bus.embedded import EmbeddedBus
from backend.config import STORE_FILE, Settings
from backend.observe.live import LiveObserver
from backend.schemas import Log, iso_millis
from backend.store.base import Store
from backend.store.elasticsearch import ElasticsearchStore
from backend.store.embedded import EmbeddedStore
from backend.store.query import LogQuery, SearchResult
from bench.common import (
    BenchError,
    bench_parser,
    bench_settings,
    percentile,
    render_table,
    run_and_record,
    verdict,
)
from bench.machine import announce, stack_machine, timestamp
from bench.search import Corpus, ingest
from bench.servers import check_kafka, drop_indices, drop_topics, elasticsearch_version
from console.app import LogdeckApp
from console.history import HISTORY, HISTORY_WINDOW, history_query

DEFAULT_LOGS = 1_000_000
QUICK_LOGS = 50_000
MIN_LOGS = 10 * HISTORY
"""Enough for a full history in the last 15 minutes of the hour, whenever a round runs."""
DEFAULT_RUNS = 10
QUICK_RUNS = 3
SPAN = timedelta(hours=1)
BATCH = 5000
SIZE = (160, 48)
POLL_S = 0.002
"""How often the feed is looked at while the console starts: the figures' resolution."""
SHOW_TIMEOUT_S = 30.0
TARGET_S = 1.0


class TimedObserver(LiveObserver):
    """The real observer, noting when its log feed started and when each search ran,
    in seconds from the console's start."""

    def __init__(self, settings: Settings, started: float) -> None:
        self.bus = open_bus(settings)
        super().__init__(settings, self.bus, open_store(settings))
        self._started = started
        self.tail_s: float | None = None
        self.searches: list[tuple[float, float]] = []

    def _since(self) -> float:
        return time.perf_counter() - self._started

    async def logs(self) -> AsyncIterator[list[Log]]:
        async for batch in super().logs():
            if self.tail_s is None:
                self.tail_s = self._since()
            yield batch

    async def search(self, query: LogQuery) -> SearchResult:
        asked = self._since()
        result = await super().search(query)
        self.searches.append((asked, self._since()))
        return result


@dataclass(frozen=True, slots=True)
class Start:
    """One console start: when the rows were on screen, and what happened before."""

    seconds: float
    tail_s: float
    searches: list[tuple[float, float]]
    rows: int
    rows_are_the_history: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "seconds": self.seconds,
            "tail_started_s": self.tail_s,
            "searches_s": [[asked, answered] for asked, answered in self.searches],
            "rows": self.rows,
            "rows_are_the_history": self.rows_are_the_history,
        }


async def start_console(settings: Settings, history: frozenset[str]) -> Start:
    """Seconds from creating the console to its feed showing `history`, repainted.

    The clock starts before the observer and the app are made, as `logdeck console` makes
    them (its imports are not counted); the feed is looked at every `POLL_S`, and once it
    holds the history one more `pause(0)` lets the screen repaint with it.
    """
    started = time.perf_counter()
    observer = TimedObserver(settings, started)
    app = LogdeckApp(observer)
    try:
        async with app.run_test(size=SIZE) as pilot:
            entries = app.main.feed.view
            while len(entries.entries) < len(history):
                if time.perf_counter() - started > SHOW_TIMEOUT_S:
                    raise BenchError(
                        f"{len(entries.entries)} of {len(history)} history rows shown "
                        f"after {SHOW_TIMEOUT_S:g} s"
                    )
                await pilot.pause(POLL_S)
            await pilot.pause(0)
            seconds = time.perf_counter() - started
            shown = frozenset(log.log_id for log in entries.entries)
    finally:
        if isinstance(observer.bus, EmbeddedBus):
            await observer.bus.close()
    return Start(
        seconds, observer.tail_s or 0.0, list(observer.searches), len(shown), shown == history
    )


async def bare_query(settings: Settings) -> tuple[float, float, frozenset[str]]:
    """The console's history query on a new store client, then again on the same client:
    seconds of each, and the log_ids found."""
    store = open_store(settings)
    try:
        asked = time.perf_counter()
        result = await store.search_logs(history_query(datetime.now(UTC)))
        cold = time.perf_counter() - asked
        asked = time.perf_counter()
        await store.search_logs(history_query(datetime.now(UTC)))
        warm = time.perf_counter() - asked
    finally:
        await store.close()
    return cold, warm, frozenset(log.log_id for log in result.logs)


@dataclass(slots=True)
class Measured:
    """Every round on one store."""

    name: str
    in_window: int
    first: Start | None = None
    starts: list[Start] = field(default_factory=list)
    cold_s: list[float] = field(default_factory=list)
    warm_s: list[float] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        starts = self.starts
        return {
            "logs_in_last_15_min": self.in_window,
            "first_start_in_process": self.first.to_json() if self.first else None,
            "console_s": spread([s.seconds for s in starts]),
            "tail_started_s": spread([s.tail_s for s in starts]),
            "first_answer_s": spread([s.searches[0][1] for s in starts if s.searches]),
            "searches": spread([float(len(s.searches)) for s in starts]),
            "bare_query_new_client_s": spread(self.cold_s),
            "bare_query_same_client_s": spread(self.warm_s),
            "starts": [s.to_json() for s in starts],
            "bare_query_runs_s": [
                [cold, warm] for cold, warm in zip(self.cold_s, self.warm_s, strict=True)
            ],
        }


def spread(values: Sequence[float]) -> dict[str, float | int]:
    if not values:
        return {"count": 0}
    return {
        "count": len(values),
        "p50": percentile(values, 0.50),
        "p95": percentile(values, 0.95),
        "max": max(values),
        "mean": statistics.fmean(values),
    }


async def measure(stores: dict[str, Settings], in_window: int, runs: int) -> list[Measured]:
    """A first round (kept apart: the first app of a process), then `runs` rounds; in each,
    every store's bare query and then a console start on it."""
    measured = {name: Measured(name, in_window) for name in stores}
    for turn in range(runs + 1):
        for name, settings in stores.items():
            cold, warm, history = await bare_query(settings)
            if len(history) != HISTORY:
                raise BenchError(f"{name}: the history query found {len(history)} logs")
            start = await start_console(settings, history)
            if not start.rows_are_the_history:
                raise BenchError(f"{name}: the feed shows other logs than the stored history")
            mine = measured[name]
            if turn == 0:
                mine.first = start
                continue
            mine.starts.append(start)
            mine.cold_s.append(cold)
            mine.warm_s.append(warm)
            print(
                f"  round {turn}/{runs}, {name:<13} console {start.seconds * 1000:7.1f} ms "
                f"(tail {start.tail_s * 1000:6.1f} ms, {len(start.searches)} searches, "
                f"first answer {start.searches[0][1] * 1000:7.1f} ms), "
                f"bare query {cold * 1000:6.1f} ms",
                flush=True,
            )
    return list(measured.values())


async def fill(stores: dict[str, Settings], corpus: Corpus, es: AsyncElasticsearch) -> None:
    """The corpus into each store, searchable when this returns."""
    for name, settings in stores.items():
        store: Store
        if settings.embedded is None:
            store = ElasticsearchStore(settings.elasticsearch, settings.indices)
        else:
            store = EmbeddedStore(settings.embedded / STORE_FILE)
        try:
            await store.ensure_schema()
            await ingest(store, corpus, BATCH, f"{name} <- index_logs")
        finally:
            await store.close()
        if settings.embedded is None:
            await es.indices.refresh(index=settings.indices.logs_pattern)
        bus = open_bus(settings)
        await bus.ensure_topics(settings.topics.all(), settings.topics.compacted())
        if isinstance(bus, EmbeddedBus):
            await bus.close()


# The run ------------------------------------------------------------------------------------


def figure_rows(results: Sequence[Measured], logs: int) -> list[dict[str, Any]]:
    """Per store: the console's p50, p95 and max beside the bare query's, and the target."""
    rows = []
    for result in results:
        console = [s.seconds for s in result.starts]
        bare = result.cold_s
        for share, name in ((0.5, "p50"), (0.95, "p95"), (1.0, "max")):
            value = percentile(console, share)
            rows.append(
                {
                    "figure": f"history on screen {name}, {result.name}, {logs:,} logs",
                    "value_ms": value * 1000,
                    "baseline_ms": percentile(bare, share) * 1000,
                    "baseline": "bare history query, new client",
                    "target": f"< {TARGET_S:g} s" if name == "p95" else "-",
                    "met": value < TARGET_S if name == "p95" else None,
                }
            )
    return rows


def render(rows: Sequence[dict[str, Any]], results: Sequence[Measured]) -> str:
    cells = [
        [
            row["figure"],
            f"{row['value_ms']:,.1f} ms",
            f"{row['baseline_ms']:,.1f} ms",
            row["target"],
            verdict(row["met"]),
        ]
        for row in rows
    ]
    for result in results:
        starts = result.starts

        def median(values: list[float]) -> str:
            return f"{statistics.median(values) * 1000:,.1f} ms" if values else "-"

        cells.append(
            [
                f"  {result.name}: tail started / first answer, median",
                median([s.tail_s for s in starts]),
                median([s.searches[0][1] for s in starts if s.searches]),
                "-",
                "-",
            ]
        )
        cells.append(
            [
                f"  {result.name}: searches per start / last answer, median",
                f"{statistics.median([len(s.searches) for s in starts]):g}",
                median([s.searches[-1][1] for s in starts if s.searches]),
                "-",
                "-",
            ]
        )
    return render_table(["figure", "console", "bare query", "target", "met?"], cells)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    settings = bench_settings("history")
    workdir = Path(tempfile.mkdtemp(prefix="logdeck-bench-history-"))
    stores = {"Elasticsearch": settings}
    if not args.skip_embedded:
        stores["embedded"] = replace(settings, embedded=workdir)
    es = AsyncElasticsearch(settings.elasticsearch, request_timeout=120)
    try:
        await check_kafka(settings)
        es_version = await elasticsearch_version(es, settings.elasticsearch)
        info = {**stack_machine(es_version), "sqlite": sqlite3.sqlite_version}
        code = await announce(
            f"logdeck history benchmark: {args.logs:,} logs over the last hour, "
            f"{args.runs} console starts on {' and '.join(stores)}, namespace "
            f"{settings.namespace}, {info['nproc']} CPUs",
            info,
        )
        corpus = Corpus.generate(args.logs, args.seed, SPAN)
        since = iso_millis(corpus.end - HISTORY_WINDOW)
        in_window = sum(1 for item in corpus.logs if item.log.timestamp >= since)
        levels = corpus.levels()
        await fill(stores, corpus, es)
        del corpus  # a million objects the console's garbage collection need not walk
        gc.collect()
        results = await measure(stores, in_window, args.runs)
    finally:
        await drop_indices(es, settings)
        await es.close()
        await drop_topics(settings)
        shutil.rmtree(workdir, ignore_errors=True)
    rows = figure_rows(results, args.logs)
    print()
    print(render(rows, results))
    print(
        "\nconsole: from making the observer and the app to the history rows repainted "
        "(headless); bare query: search_logs(history_query(now)) on a new client"
    )
    return {
        "benchmark": "history",
        "timestamp": timestamp(),
        "namespace": settings.namespace,
        "machine": info,
        "code": code,
        "settings": {
            "logs": args.logs,
            "span_hours": SPAN.total_seconds() / 3600,
            "history": HISTORY,
            "history_window_minutes": HISTORY_WINDOW.total_seconds() / 60,
            "runs": args.runs,
            "quick": args.quick,
            "size": list(SIZE),
            "poll_s": POLL_S,
            "live_tail": "quiet (nothing published)",
            "seed": args.seed,
        },
        "levels": levels,
        "stores": {result.name: result.to_json() for result in results},
        "figures": rows,
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = bench_parser(
        "history", "How soon a new console shows its history from a store of a million logs."
    )
    parser.add_argument("--logs", type=int, help=f"logs stored (default {DEFAULT_LOGS:,})")
    parser.add_argument("--runs", type=int, help=f"console starts per store ({DEFAULT_RUNS})")
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"smoke run: {QUICK_LOGS:,} logs, {QUICK_RUNS} starts per store",
    )
    parser.add_argument("--skip-embedded", action="store_true", help="Elasticsearch only")
    parser.add_argument("--seed", type=int, default=1, help="seed of the simulated traffic")
    args = parser.parse_args(argv)
    if args.logs is None:
        args.logs = QUICK_LOGS if args.quick else DEFAULT_LOGS
    if args.runs is None:
        args.runs = QUICK_RUNS if args.quick else DEFAULT_RUNS
    if args.logs < MIN_LOGS or args.runs < 1:
        parser.error(f"--logs must be at least {MIN_LOGS:,} and --runs at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    return run_and_record(run, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
