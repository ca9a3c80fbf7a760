"""Ten million logs through the real stack: disk per million logs, searches at 1M and 10M.

`logdeck accumulator` and `logdeck indexer` run as subprocesses on the real Kafka and
Elasticsearch, in a namespace of this run's own. Sender processes generate simulated logs
as they go (8 services x 8 nodes, the default level mix, fresh ids and message fields for
every log, so nothing repeats that would not repeat in real traffic) and send them through
`AckSender` (PackedForward, acks). Log i of N is stamped at its share of `--span-hours`
ending at the run's start, so time follows send order as in a live system and the
console's time ranges find what they would.

Sending stops at the checkpoint (1M by default) until Elasticsearch counts every log
sent; the console's searches (bench/search.py's query set, timed by its code) are then
measured there, and again at N. At both points the index is refreshed and flushed and its
merges allowed to settle, then the disk is read: the `.log` segment files of the logs
topic's partition directories in the broker's log dir (backend/stack/layout.py), and the
primaries' store size of the namespace's log indices, each per million logs, beside the
JSON bytes of the records as sent. A line of progress every 10 s; a hard deadline ends
the run with what got where. Topics, indices and the index template are deleted at the end
(`--keep` keeps them).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import multiprocessing
import queue
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.context import SpawnContext, SpawnProcess
from pathlib import Path
from typing import Any

import msgspec
from aiokafka import AIOKafkaConsumer
from elasticsearch import ApiError, AsyncElasticsearch, TransportError

from backend.bus.kafka.bus import KafkaBus
from backend.config import Settings
from backend.forward.sender import AckSender
from backend.schemas import encode, iso_millis
from backend.stack.layout import Layout
from backend.store.elasticsearch import ElasticsearchStore
from backend.store.query import LogQuery
from bench.common import (
    RESULTS,
    Accumulator,
    BenchError,
    Service,
    bench_parser,
    bench_settings,
    deadline_in,
    fleet,
    logdeck_service,
    render_table,
    run_and_record,
    verdict,
)
from bench.machine import announce, stack_machine, timestamp
from bench.search import WARMUP, Timing, es_size, queries, time_queries
from bench.servers import TopicSize, check_servers, drop_indices, drop_topics
from simulators.traffic import PROFILES

INGEST_RESULTS = RESULTS / "ingest.json"

DEFAULT_LOGS = 10_000_000
DEFAULT_CHECKPOINT = 1_000_000
DEFAULT_DEADLINE_MIN = 45.0
DEFAULT_SPAN_HOURS = 24.0
DEFAULT_REPEAT = 20
MIN_REPEAT = 5
DEFAULT_SEARCH_BUDGET_MIN = 10.0
NODES_PER_SERVICE = 8
ACK_BATCH = 1000
POLL_S = 0.5
PROGRESS_S = 10.0
STALL_S = 180.0
"""Nothing sent, produced or indexed for this long ends the run."""
SETTLE_S = 120.0
"""At most this long waiting for Elasticsearch's merges before the disk is read."""
STORE_STATS_S = 11.0
"""Elasticsearch caches an index's store size for 10 s (`index.store.stats_refresh_interval`):
waiting longer after the last write makes the size it reports the files' size now."""
TALLY_TIMEOUT_S = 60.0
FREE_BYTES_PER_LOG = 1500
"""Free disk asked for per log: about 2.5 times what Kafka and Elasticsearch take together."""
TARGET_RATE = 20_000
"""Logs/s sent -> searchable over the whole run."""
TARGET_SEARCH_P95_MS = 100.0
"""Every console query's p95 at the last point: the slowest query's."""
EXPECTED_RATE = 10_000
"""Logs/s end to end on the 2-CPU machine of the recorded runs, for the duration estimate."""
MB = 1_000_000


# The logs -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Timeline:
    """Log i of `total` is stamped at its share of the span: time follows send order."""

    start_ms: int
    span_ms: int
    total: int

    @classmethod
    def ending_now(cls, hours: float, total: int) -> Timeline:
        end_ms = int(datetime.now(UTC).replace(microsecond=0).timestamp() * 1000)
        span_ms = int(hours * 3_600_000)
        return cls(end_ms - span_ms, span_ms, total)

    def stamp(self, index: int, jitter: float) -> str:
        ms = self.start_ms + int((index + jitter) * self.span_ms / self.total)
        return iso_millis(datetime.fromtimestamp(ms / 1000, UTC))

    def newest(self, count: int) -> datetime:
        """No log among the first `count` is stamped later: where time ranges end."""
        ms = self.start_ms + math.ceil(count * self.span_ms / self.total)
        return datetime.fromtimestamp(ms / 1000, UTC)


@dataclass(frozen=True, slots=True)
class Slice:
    """Logs `start` to `stop` of the run, for one sender process."""

    port: int
    start: int
    stop: int
    timeline: Timeline
    seed: int


def sender_main(job: Slice, sent: Any, first_at: Any, results: Any) -> None:
    """A sender process: its slice through the accumulator, then its tally on `results`.

    `sent` (a shared int) counts the records handed to the sender, `first_at` (a shared
    double) is `time.monotonic()` at the first: one clock for every process of the machine.
    """
    asyncio.run(_send_slice(job, sent, first_at, results))


async def _send_slice(job: Slice, sent: Any, first_at: Any, results: Any) -> None:
    rng = random.Random(job.seed * 1_000_003 + job.start)
    nodes = fleet(rng, NODES_PER_SERVICE)  # named as bench.search's queries expect
    sender = AckSender("logdeck", "127.0.0.1", job.port, batch_size=ACK_BATCH)
    raw = 0
    levels: Counter[str] = Counter()
    replace, to_builtins, stamp = msgspec.structs.replace, msgspec.to_builtins, job.timeline.stamp
    first_at.value = time.monotonic()
    for index in range(job.start, job.stop):
        log = replace(rng.choice(nodes).log(), timestamp=stamp(index, rng.random()))
        raw += len(encode(log))  # the JSON the accumulator puts on Kafka
        levels[log.log_level] += 1
        await sender.emit("log", to_builtins(log))
        if (index + 1 - job.start) % ACK_BATCH == 0:
            sent.value = index + 1 - job.start
            await asyncio.sleep(0)
    sent.value = job.stop - job.start
    await sender.close()
    results.put(
        {
            "start": job.start,
            "stop": job.stop,
            "raw_json_bytes": raw,
            "levels": dict(levels),
            "cpu_seconds": time.process_time(),
        }
    )


class Senders:
    """The sender processes of one phase, each with a contiguous part of its logs."""

    def __init__(
        self,
        context: SpawnContext,
        count: int,
        port: int,
        start: int,
        stop: int,
        timeline: Timeline,
        seed: int,
    ) -> None:
        bounds = [start + (stop - start) * part // count for part in range(count + 1)]
        self._results = context.Queue()
        self._sent = [context.Value("q", 0, lock=False) for _ in range(count)]
        self._first = [context.Value("d", 0.0, lock=False) for _ in range(count)]
        self._processes: list[SpawnProcess] = []
        for part in range(count):
            slice_ = Slice(port, bounds[part], bounds[part + 1], timeline, seed)
            process = context.Process(
                target=sender_main,
                args=(slice_, self._sent[part], self._first[part], self._results),
                name=f"volume-sender-{part}",
                daemon=True,
            )
            process.start()
            self._processes.append(process)

    def sent(self) -> int:
        return sum(int(value.value) for value in self._sent)

    def first_at(self) -> float | None:
        """When the first record of the phase went to a sender (monotonic clock)."""
        started = [float(value.value) for value in self._first if value.value]
        return min(started) if started else None

    def check(self) -> None:
        for process in self._processes:
            if process.exitcode not in (None, 0):
                raise BenchError(f"{process.name} exited with status {process.exitcode}")

    async def tallies(self) -> list[dict[str, Any]]:
        """What each sender sent, once all are done (they are: every log is searchable)."""
        tallies: list[dict[str, Any]] = []
        until = time.monotonic() + TALLY_TIMEOUT_S
        while len(tallies) < len(self._processes):
            try:
                tallies.append(await asyncio.to_thread(self._results.get, True, 1.0))
            except queue.Empty:
                self.check()
                if time.monotonic() > until:
                    raise BenchError(
                        f"a sender did not report what it sent in {TALLY_TIMEOUT_S:.0f} s"
                    ) from None
        for process in self._processes:
            await asyncio.to_thread(process.join, 10)
        return tallies

    def stop(self) -> None:
        for process in self._processes:
            if process.is_alive():
                process.terminate()
            process.join(10)


# Watching -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Counts:
    sent: int
    kafka: int
    elasticsearch: int

    def line(self) -> str:
        return (
            f"sent {self.sent:,}, in Kafka {self.kafka:,}, "
            f"searchable in Elasticsearch {self.elasticsearch:,}"
        )


@dataclass(slots=True)
class Watcher:
    """Counts what got where, prints a line every `PROGRESS_S`, ends a stalled run."""

    es: AsyncElasticsearch
    settings: Settings
    size: TopicSize
    services: list[Service]
    deadline: float
    deadline_min: float
    total: int
    started: float = field(default_factory=time.monotonic)
    last: Counts = field(default_factory=lambda: Counts(0, 0, 0))
    es_error: str | None = None
    """Why the last `_count` failed, if it did (a new index's shard not started yet, say)."""

    async def counts(self, senders: Senders, sent_before: int) -> Counts:
        """Sent, on the logs topic, and searchable now (`_count` without a refresh).

        A failed `_count` leaves Elasticsearch's figure as it was: if it keeps failing,
        nothing moves and the stall check ends the run with the error.
        """
        searchable = self.last.elasticsearch
        try:
            response = await self.es.count(
                index=self.settings.indices.logs_pattern,
                allow_no_indices=True,
                ignore_unavailable=True,
            )
            searchable, self.es_error = int(response["count"]), None
        except (ApiError, TransportError) as error:
            self.es_error = str(error)
        try:
            kafka = await self.size.total()
        except TimeoutError:
            raise BenchError("Kafka did not tell the logs topic's end offsets in 10 s") from None
        self.last = Counts(sent_before + senders.sent(), kafka, searchable)
        return self.last

    def check_deadline(self) -> None:
        if time.monotonic() > self.deadline:
            raise BenchError(
                f"deadline of {self.deadline_min:g} min reached, run aborted: {self.last.line()} "
                f"of {self.total:,} (raise --deadline or lower --logs)"
            )

    async def until_searchable(self, target: int, senders: Senders, sent_before: int) -> float:
        """Until Elasticsearch counts `target` logs; when it did (monotonic clock)."""
        printed_at, printed = time.monotonic(), self.last
        grew_at, seen = printed_at, self.last
        while True:
            self.check_deadline()
            counts = await self.counts(senders, sent_before)
            now = time.monotonic()
            if counts.elasticsearch >= target:
                return now
            for service in self.services:
                service.check_running()
            senders.check()
            if counts != seen:
                grew_at, seen = now, counts
            elif now - grew_at > STALL_S:
                error = f"; Elasticsearch: {self.es_error}" if self.es_error else ""
                raise BenchError(f"nothing moved for {STALL_S:.0f} s: {counts.line()}{error}")
            if now - printed_at >= PROGRESS_S:
                self.progress(counts, printed, now - printed_at)
                printed_at, printed = now, counts
            await asyncio.sleep(POLL_S)

    def progress(self, counts: Counts, before: Counts, seconds: float) -> None:
        elapsed = int(time.monotonic() - self.started)
        rates = [
            (now - then) / seconds
            for now, then in (
                (counts.sent, before.sent),
                (counts.kafka, before.kafka),
                (counts.elasticsearch, before.elasticsearch),
            )
        ]
        eta = (
            f", {(self.total - counts.elasticsearch) / rates[2] / 60:.1f} min of sending to go"
            if rates[2] > 0
            else ""
        )
        print(
            f"  {elapsed // 60:3d}:{elapsed % 60:02d}  sent {counts.sent:>11,}  "
            f"Kafka {counts.kafka:>11,}  Elasticsearch {counts.elasticsearch:>11,}  "
            f"| {rates[0]:,.0f} / {rates[1]:,.0f} / {rates[2]:,.0f} logs/s{eta}",
            flush=True,
        )


# Disk and searches at a point ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Disk:
    logs: int
    raw_json_bytes: int
    kafka_segment_bytes: int | None
    """The `.log` segment files of the logs topic: the records as the broker keeps them."""
    kafka_allocated_bytes: int | None
    """Every file of the topic's partition directories (indexes too), in allocated blocks."""
    elasticsearch_store_bytes: int | None
    """The primaries' store of the namespace's log indices, after refresh, flush and merges."""
    elasticsearch_segments: int | None

    def per_million(self, size: int | None) -> float | None:
        """Megabytes per million logs (which is also bytes per log)."""
        return size / self.logs * 1_000_000 / MB if size is not None else None

    def to_json(self) -> dict[str, Any]:
        return {
            "logs": self.logs,
            "raw_json_bytes": self.raw_json_bytes,
            "kafka_segment_bytes": self.kafka_segment_bytes,
            "kafka_allocated_bytes": self.kafka_allocated_bytes,
            "elasticsearch_store_bytes": self.elasticsearch_store_bytes,
            "elasticsearch_segments": self.elasticsearch_segments,
            "mb_per_million_logs": {
                "raw_json": self.per_million(self.raw_json_bytes),
                "kafka": self.per_million(self.kafka_segment_bytes),
                "elasticsearch": self.per_million(self.elasticsearch_store_bytes),
            },
        }


def kafka_topic_bytes(data_dir: Path, topic: str, partitions: int) -> tuple[int, int] | None:
    """Segment bytes and allocated bytes of `topic` in the broker's log dir; None if not there."""
    directories = [data_dir / f"{topic}-{partition}" for partition in range(partitions)]
    if not all(directory.is_dir() for directory in directories):
        return None
    files = [path for directory in directories for path in directory.iterdir() if path.is_file()]
    segments = sum(path.stat().st_size for path in files if path.suffix == ".log")
    allocated = sum(path.stat().st_blocks * 512 for path in files)
    return segments, allocated


async def settle(es: AsyncElasticsearch, pattern: str) -> int | None:
    """Refresh, flush, and wait (bounded) for merges to end; the number of segments."""
    await es.indices.refresh(index=pattern)
    await es.indices.flush(index=pattern)
    until = time.monotonic() + SETTLE_S
    while time.monotonic() < until:
        stats = await es.indices.stats(index=pattern, metric="merge,segments")
        primaries = stats["_all"]["primaries"]
        if primaries["merges"]["current"] == 0:
            segments: int = primaries["segments"]["count"]
            return segments
        await asyncio.sleep(1)
    return None


@dataclass(frozen=True, slots=True)
class Point:
    """Disk and searches with `logs` stored."""

    logs: int
    disk: Disk
    searches: dict[str, Timing]
    round_seconds: float
    """One round of every query, timed before the runs (it warms the caches too)."""
    runs: int


async def search_round(store: ElasticsearchStore, named: list[tuple[str, LogQuery]]) -> float:
    started = time.monotonic()
    for _, query in named:
        await store.search_logs(query)
    return time.monotonic() - started


async def measure_at(
    es: AsyncElasticsearch,
    store: ElasticsearchStore,
    settings: Settings,
    logs: int,
    raw_bytes: int,
    timeline: Timeline,
    repeat: int,
    budget_s: float,
    kafka_dir: Path,
) -> Point:
    pattern = settings.indices.logs_pattern
    print(
        f"  with {logs:,} logs stored (sending paused): refresh, flush, merges settling, "
        "then disk and searches"
    )
    segments = await settle(es, pattern)
    await asyncio.sleep(STORE_STATS_S)
    kafka = kafka_topic_bytes(kafka_dir, settings.topics.logs, settings.partitions)
    disk = Disk(
        logs,
        raw_bytes,
        kafka[0] if kafka else None,
        kafka[1] if kafka else None,
        await es_size(es, pattern),
        segments,
    )
    named = queries(timeline.newest(logs))
    round_s = await search_round(store, named)
    runs = max(MIN_REPEAT, min(repeat, int(budget_s / round_s) - WARMUP))
    if runs < repeat:
        print(
            f"  a round of the {len(named)} queries takes {round_s:.1f} s: {runs} runs each "
            f"(not {repeat}) to stay within the search budget of {budget_s / 60:g} min"
        )
    timings = await time_queries({"elasticsearch": store}, named, runs)
    searches = {name: by_store["elasticsearch"] for name, by_store in timings.items()}
    return Point(logs, disk, searches, round_s, runs)


# The run ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PhaseRun:
    """Logs `start` to `stop`: from the first handed to a sender until all are searchable."""

    start: int
    stop: int
    seconds: float
    sender_cpu_seconds: float

    @property
    def rate(self) -> float:
        return (self.stop - self.start) / self.seconds

    def to_json(self) -> dict[str, Any]:
        return {
            "start": self.start,
            "stop": self.stop,
            "seconds": self.seconds,
            "logs_per_second": self.rate,
            "sender_cpu_seconds": self.sender_cpu_seconds,
        }


@dataclass(slots=True)
class Outcome:
    phases: list[PhaseRun] = field(default_factory=list)
    points: list[Point] = field(default_factory=list)
    levels: Counter[str] = field(default_factory=Counter)
    raw_bytes: int = 0
    accumulator_cpu_seconds: float = 0.0
    indexer_cpu_seconds: float = 0.0

    @property
    def logs(self) -> int:
        return self.phases[-1].stop if self.phases else 0

    @property
    def rate(self) -> float:
        return self.logs / sum(phase.seconds for phase in self.phases)


async def send_and_measure(
    args: argparse.Namespace,
    settings: Settings,
    es: AsyncElasticsearch,
    workdir: Path,
    kafka_dir: Path,
    deadline: float,
) -> Outcome:
    await KafkaBus(settings.kafka, settings.partitions).ensure_topics(
        settings.topics.all(), settings.topics.compacted()
    )
    timeline = Timeline.ending_now(args.span_hours, args.logs)
    stops = [args.checkpoint, args.logs] if 0 < args.checkpoint < args.logs else [args.logs]
    context = multiprocessing.get_context("spawn")
    outcome = Outcome()
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka, enable_auto_commit=False)
    store = ElasticsearchStore(settings.elasticsearch, settings.indices, request_timeout=120)
    await consumer.start()
    try:
        with (
            Accumulator(settings, workdir / "accumulator.log") as accumulator,
            logdeck_service("indexer", settings, workdir / "indexer.log") as indexer,
        ):
            await accumulator.listening()
            watcher = Watcher(
                es,
                settings,
                TopicSize(consumer, settings),
                [accumulator, indexer],
                deadline,
                args.deadline,
                args.logs,
            )
            start = 0
            for stop in stops:
                print(f"sending logs {start:,} to {stop:,} ({args.senders} sender(s))")
                senders = Senders(
                    context, args.senders, accumulator.port, start, stop, timeline, args.seed
                )
                try:
                    searchable_at = await watcher.until_searchable(stop, senders, start)
                    tallies = await senders.tallies()
                    first_at = senders.first_at()
                finally:
                    senders.stop()
                assert first_at is not None  # every log is searchable, so one was sent
                phase = PhaseRun(
                    start,
                    stop,
                    searchable_at - first_at,
                    sum(tally["cpu_seconds"] for tally in tallies),
                )
                outcome.phases.append(phase)
                outcome.raw_bytes += sum(tally["raw_json_bytes"] for tally in tallies)
                for tally in tallies:
                    outcome.levels.update(tally["levels"])
                print(
                    f"  {stop:,} logs searchable: logs {start:,} to {stop:,} in "
                    f"{phase.seconds:.1f} s = {phase.rate:,.0f} logs/s sent -> searchable; "
                    f"{watcher.last.kafka:,} records in Kafka"
                )
                watcher.check_deadline()
                try:
                    async with asyncio.timeout_at(deadline):
                        point = await measure_at(
                            es,
                            store,
                            settings,
                            stop,
                            outcome.raw_bytes,
                            timeline,
                            args.repeat,
                            args.search_budget * 60,
                            kafka_dir,
                        )
                except TimeoutError:
                    watcher.check_deadline()
                    raise
                outcome.points.append(point)
                start = stop
            outcome.accumulator_cpu_seconds = accumulator.cpu_seconds()
            outcome.indexer_cpu_seconds = indexer.cpu_seconds()
    finally:
        await store.close()
        await consumer.stop()
    return outcome


def indexer_alone() -> float | None:
    """The indexer's whole-run rate from bench/results/ingest.json, when there is one."""
    with contextlib.suppress(OSError, ValueError, KeyError, StopIteration):
        figures = json.loads(INGEST_RESULTS.read_text())["figures"]
        value: float = next(
            figure["value"]
            for figure in figures
            if figure["figure"].startswith("indexer Kafka -> Elasticsearch")
        )
        return value
    return None


@dataclass(frozen=True, slots=True)
class Figure:
    name: str
    unit: str
    value: float | None
    baseline: float | None
    baseline_name: str
    targets: list[tuple[str, bool]] = field(default_factory=list)

    @property
    def ratio(self) -> float | None:
        return self.value / self.baseline if self.value is not None and self.baseline else None

    @property
    def met(self) -> bool | None:
        return all(ok for _, ok in self.targets) if self.targets else None

    def cells(self) -> list[str]:
        decimals = 1 if self.unit == "ms" else 0
        ratio = self.ratio

        def number(value: float | None) -> str:
            return f"{value:,.{decimals}f} {self.unit}" if value is not None else "-"

        return [
            self.name,
            number(self.value),
            f"{number(self.baseline)} ({self.baseline_name})" if self.baseline else "-",
            f"{ratio:.0%}" if ratio is not None else "-",
            "; ".join(text for text, _ in self.targets) or "-",
            verdict(self.met),
        ]

    def to_json(self) -> dict[str, Any]:
        return {
            "figure": self.name,
            "unit": self.unit,
            "value": self.value,
            "baseline": self.baseline,
            "baseline_name": self.baseline_name,
            "ratio": self.ratio,
            "targets": [{"target": text, "met": ok} for text, ok in self.targets],
            "met": self.met,
        }


def figures(outcome: Outcome) -> list[Figure]:
    final = outcome.points[-1]
    disk = final.disk
    raw = disk.per_million(disk.raw_json_bytes)
    at = f"at {final.logs:,} logs"
    result = [
        Figure(
            f"Kafka: logs topic on disk per 1M logs, {at}",
            "MB",
            disk.per_million(disk.kafka_segment_bytes),
            raw,
            "JSON as sent",
        ),
        Figure(
            f"Elasticsearch: log indices' store per 1M logs, {at}",
            "MB",
            disk.per_million(disk.elasticsearch_store_bytes),
            raw,
            "JSON as sent",
        ),
        Figure(
            f"end to end, sent -> searchable, {final.logs:,} logs",
            "logs/s",
            outcome.rate,
            indexer_alone(),
            "indexer alone, ingest.json",
            [(f">= {TARGET_RATE:,} logs/s", outcome.rate >= TARGET_RATE)],
        ),
    ]
    first = outcome.points[0] if len(outcome.points) > 1 else None
    names = list(final.searches)
    median_p50 = statistics.median(final.searches[name].p50 for name in names)
    slowest = max(names, key=lambda name: final.searches[name].p95)
    result += [
        Figure(
            f"search p50, median of {len(names)} console queries, {at}",
            "ms",
            median_p50,
            statistics.median(first.searches[name].p50 for name in names) if first else None,
            f"at {first.logs:,}" if first else "",
        ),
        Figure(
            f"search p95, slowest query ({slowest}), {at}",
            "ms",
            final.searches[slowest].p95,
            first.searches[slowest].p95 if first else None,
            f"at {first.logs:,}" if first else "",
            [
                (
                    f"< {TARGET_SEARCH_P95_MS:g} ms",
                    final.searches[slowest].p95 < TARGET_SEARCH_P95_MS,
                )
            ],
        ),
    ]
    return result


def report(outcome: Outcome, results: list[Figure]) -> None:
    print()
    print(
        render_table(
            ["figure", "value", "baseline", "ratio", "target", "met?"], [f.cells() for f in results]
        )
    )

    def mb(value: float | None) -> str:
        return f"{value:,.1f} MB" if value is not None else "-"

    print()
    print(
        render_table(
            ["stored logs", "JSON as sent / 1M", "Kafka / 1M", "Elasticsearch / 1M", "ES segments"],
            [
                [
                    f"{point.logs:,}",
                    mb(point.disk.per_million(point.disk.raw_json_bytes)),
                    mb(point.disk.per_million(point.disk.kafka_segment_bytes)),
                    mb(point.disk.per_million(point.disk.elasticsearch_store_bytes)),
                    str(point.disk.elasticsearch_segments or "-"),
                ]
                for point in outcome.points
            ],
        )
    )
    header = ["query"]
    for point in outcome.points:
        header += [f"p50 at {point.logs:,} ({point.runs} runs)", "p95", "hits"]
    rows = []
    for name in outcome.points[-1].searches:
        row = [name]
        for point in outcome.points:
            timing = point.searches[name]
            row += [f"{timing.p50:.1f} ms", f"{timing.p95:.1f} ms", f"{timing.total:,}"]
        rows.append(row)
    print()
    print(render_table(header, rows))
    if outcome.points[-1].disk.kafka_segment_bytes is None:
        print("note: the broker's log dir was not found here, so Kafka's disk is not reported")


async def run(args: argparse.Namespace) -> dict[str, Any]:
    settings = bench_settings("volume")
    layout = Layout.default()
    es = AsyncElasticsearch(settings.elasticsearch, request_timeout=120)
    deadline = deadline_in(args.deadline * 60)
    try:
        es_version = await check_servers(settings, es)
        info = stack_machine(es_version)
        free = shutil.disk_usage(layout.root if layout.root.exists() else "/").free
        if free < args.logs * FREE_BYTES_PER_LOG:
            wanted = args.logs * FREE_BYTES_PER_LOG / 1e9
            raise BenchError(
                f"{free / 1e9:.1f} GB free on the stack's disk; {args.logs:,} logs want "
                f"{wanted:.1f} GB (what Kafka and Elasticsearch take, with room to spare)"
            )
        code = await announce(
            f"logdeck volume benchmark: {args.logs:,} logs"
            + (f", checkpoint at {args.checkpoint:,}" if 0 < args.checkpoint < args.logs else "")
            + f", namespace {settings.namespace}, {info['nproc']} CPUs, "
            f"Elasticsearch {es_version}",
            info,
        )
        print(
            f"expect about {args.logs / EXPECTED_RATE / 60:.1f} min of sending at "
            f"~{EXPECTED_RATE:,} logs/s, plus the searches (at most {args.search_budget:g} min "
            f"at each point); deadline {args.deadline:g} min; "
            f"Kafka's log dir {layout.kafka_data}"
        )
        with tempfile.TemporaryDirectory(prefix="logdeck-bench-volume-") as folder:
            outcome = await send_and_measure(
                args, settings, es, Path(folder), layout.kafka_data, deadline
            )
    finally:
        if args.keep:
            print(
                f"kept: topics {settings.namespace}.*, indices {settings.namespace}-* and index "
                f"template {settings.indices.logs_prefix.rstrip('-')}"
            )
        else:
            await drop_indices(es, settings)
            await drop_topics(settings)
        await es.close()
    results = figures(outcome)
    report(outcome, results)
    return {
        "benchmark": "volume",
        "timestamp": timestamp(),
        "logs": args.logs,
        "checkpoint": args.checkpoint if 0 < args.checkpoint < args.logs else None,
        "namespace": settings.namespace,
        "kept": args.keep,
        "machine": info,
        "code": code,
        "settings": {
            "senders": args.senders,
            "ack_batch": ACK_BATCH,
            "nodes": NODES_PER_SERVICE * len(PROFILES),
            "span_hours": args.span_hours,
            "partitions": settings.partitions,
            "repeat": args.repeat,
            "search_budget_min": args.search_budget,
            "deadline_min": args.deadline,
            "seed": args.seed,
        },
        "levels": dict(outcome.levels),
        "phases": [phase.to_json() for phase in outcome.phases],
        "end_to_end_logs_per_second": outcome.rate,
        "cpu_seconds": {
            "accumulator": outcome.accumulator_cpu_seconds,
            "indexer": outcome.indexer_cpu_seconds,
            "senders": sum(phase.sender_cpu_seconds for phase in outcome.phases),
        },
        "points": {
            str(point.logs): {
                "disk": point.disk.to_json(),
                "search_round_seconds": point.round_seconds,
                "search_runs": point.runs,
                "searches": {name: timing.to_json() for name, timing in point.searches.items()},
            }
            for point in outcome.points
        },
        "figures": [figure.to_json() for figure in results],
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = bench_parser(
        "volume", "N logs through the real stack: disk per million logs, searches at 1M and N."
    )
    parser.add_argument(
        "--logs", type=int, default=DEFAULT_LOGS, help="logs sent (%(default)s: ~30 min)"
    )
    parser.add_argument(
        "--checkpoint",
        type=int,
        default=DEFAULT_CHECKPOINT,
        help="pause there to measure searches and disk (%(default)s; 0: only at --logs)",
    )
    parser.add_argument(
        "--deadline",
        type=float,
        default=DEFAULT_DEADLINE_MIN,
        metavar="MIN",
        help="abort the run after this many minutes (%(default)s)",
    )
    parser.add_argument("--senders", type=int, default=1, help="sender processes (%(default)s)")
    parser.add_argument(
        "--span-hours",
        type=float,
        default=DEFAULT_SPAN_HOURS,
        help="the logs' timestamps cover this many hours up to the start (%(default)s)",
    )
    parser.add_argument(
        "--repeat", type=int, default=DEFAULT_REPEAT, help="timed runs of each query (20)"
    )
    parser.add_argument(
        "--search-budget",
        type=float,
        default=DEFAULT_SEARCH_BUDGET_MIN,
        metavar="MIN",
        help="at most this long searching at each point: fewer runs (not under "
        f"{MIN_REPEAT}) when a round of the queries is slow (%(default)s)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the topics and indices")
    parser.add_argument("--seed", type=int, default=1, help="seed of the simulated traffic")
    args = parser.parse_args(argv)
    if args.logs < 1 or args.senders < 1 or args.repeat < 1 or args.checkpoint < 0:
        parser.error("--logs, --senders and --repeat must be at least 1, --checkpoint at least 0")
    if args.deadline <= 0 or args.search_budget <= 0 or not 0 < args.span_hours <= 24 * 6:
        parser.error(
            "--deadline and --search-budget must be positive, --span-hours within the retention"
        )
    return args


def main(argv: Sequence[str] | None = None) -> int:
    return run_and_record(run, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
