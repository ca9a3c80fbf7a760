"""Ingest throughput on the real servers, each figure beside the ceiling of this machine.

* The accumulator (a subprocess, so it has a core of its own) from the first byte a client
  sends until Kafka holds every record, once with AckSender (PackedForward, chunk acks)
  and once with fluent-logger (Message mode, as plain Python services send), against
  aiokafka producing the same records straight to Kafka with the accumulator's settings.
* The indexer (a subprocess) draining a pre-filled topic into Elasticsearch, against a
  plain sequential `_bulk` of the same documents into the same index template.

Kafka is counted by its end offsets and Elasticsearch by `_count` after `_refresh`, so
the clock stops when the data is really there. Everything runs in a fresh namespace whose
topics, indices and index templates are deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import pstats
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import fluent.sender
import msgspec
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from elasticsearch import AsyncElasticsearch

from backend.bus.kafka.bus import KafkaBus
from backend.config import Settings
from backend.forward.sender import AckSender
from backend.schemas import Log, encode, now_iso
from backend.store.elasticsearch import ElasticsearchStore, daily_index
from bench.common import (
    Accumulator,
    Arrival,
    BenchError,
    Phase,
    Service,
    bench_parser,
    bench_settings,
    deadline_in,
    failed,
    finish,
    fleet,
    logdeck_service,
    new_run,
    render_table,
    run_and_record,
    running,
    verdict,
    watch,
)
from bench.machine import announce, stack_machine, timestamp
from bench.servers import TopicSize, check_servers, drop_indices, drop_topics

DEFAULT_RECORDS = 200_000
QUICK_RECORDS = 20_000

ACK_BATCH = 1000
BULK_BATCH = 5000
NODES_PER_SERVICE = 3
KAFKA_POLL_S = 0.025
ES_POLL_S = 0.25

TARGET_ACCUMULATOR_RATE = 50_000
TARGET_ACCUMULATOR_RATIO = 0.60
TARGET_ACCUMULATOR_PER_CPU = 100_000
TARGET_KCAT_RATIO = 0.35
TARGET_INDEXER_RATE = 30_000
TARGET_INDEXER_RATIO = 0.8

# The accumulator's producer settings (backend/bus/kafka.py), for the direct baseline.
_PRODUCER_SETTINGS: dict[str, Any] = {
    "enable_idempotence": True,
    "acks": "all",
    "linger_ms": 5,
    "max_batch_size": 512 * 1024,
    "max_request_size": 2 * 1024 * 1024,
}
_encode_json = msgspec.json.Encoder().encode


@dataclass(frozen=True, slots=True)
class Corpus:
    """The same logs in each shape a phase needs, made before any clock starts."""

    logs: list[Log]
    records: list[dict[str, Any]]
    values: list[bytes]
    headers: list[tuple[str, bytes]]
    ingested_at: str

    @classmethod
    def generate(cls, count: int, seed: int) -> Corpus:
        """`count` simulated logs from 3 nodes of each service, in the default level mix."""
        rng = random.Random(seed)
        nodes = fleet(rng, NODES_PER_SERVICE)
        logs = [rng.choice(nodes).log() for _ in range(count)]
        ingested_at = now_iso()
        return cls(
            logs=logs,
            records=[msgspec.to_builtins(log) for log in logs],
            values=[encode(log) for log in logs],
            # What the accumulator adds, so the direct baseline sends as many bytes.
            headers=[
                ("ingested_at", ingested_at.encode()),
                ("accumulator", b"bench"),
                ("tag", b"bench.log"),
            ],
            ingested_at=ingested_at,
        )

    def levels(self) -> dict[str, int]:
        return dict(Counter(str(log.log_level) for log in self.logs))

    def bulk_bodies(self, logs_prefix: str) -> list[bytes]:
        """NDJSON `_bulk` bodies of `BULK_BATCH` creates, as the indexer would store them."""
        bodies: list[bytes] = []
        for start in range(0, len(self.logs), BULK_BATCH):
            lines: list[bytes] = []
            for log, record in zip(
                self.logs[start : start + BULK_BATCH],
                self.records[start : start + BULK_BATCH],
                strict=True,
            ):
                index = daily_index(logs_prefix, log.timestamp)
                lines.append(_encode_json({"create": {"_index": index, "_id": log.log_id}}))
                lines.append(_encode_json({**record, "ingested_at": self.ingested_at}))
            bodies.append(b"\n".join(lines) + b"\n")
        return bodies


@dataclass(frozen=True, slots=True)
class Measured:
    """One run: `rate` is its figure, in records per second, over the span `basis` names."""

    records: int
    seconds: float
    rate: float
    basis: str = "whole run"
    startup_seconds: float | None = None
    cpu_seconds: float | None = None
    sustained_rate: float | None = None
    """Records per second from the first seen to the last: start-up left out."""

    @property
    def per_cpu_second(self) -> float | None:
        """None when the run took less CPU than /proc can show (a clock tick, 10 ms)."""
        return self.records / self.cpu_seconds if self.cpu_seconds else None

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "records_per_cpu_second": self.per_cpu_second}


@dataclass(frozen=True, slots=True)
class Figure:
    """A row of the table: a value against its baseline and its targets."""

    name: str
    unit: str
    value: float | None
    baseline: float | None = None
    targets: list[tuple[str, bool]] = field(default_factory=list)

    @property
    def ratio(self) -> float | None:
        return self.value / self.baseline if self.value is not None and self.baseline else None

    @property
    def met(self) -> bool | None:
        return all(ok for _, ok in self.targets) if self.targets else None

    def cells(self) -> list[str]:
        ratio = self.ratio
        return [
            self.name,
            f"{self.value:,.0f} {self.unit}" if self.value is not None else "-",
            f"{self.baseline:,.0f} {self.unit}" if self.baseline else "-",
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
            "ratio": self.ratio,
            "targets": [{"target": text, "met": ok} for text, ok in self.targets],
            "met": self.met,
        }


@dataclass(frozen=True, slots=True)
class Namespaces:
    """One namespace per role, so no phase sees another's data."""

    base: str
    ingest: Settings
    indexer: Settings
    bulk: Settings

    @classmethod
    def fresh(cls) -> Namespaces:
        base = new_run()
        return cls(base, *(bench_settings(role, base) for role in ("ingest", "indexer", "bulk")))

    def all(self) -> tuple[Settings, ...]:
        return self.ingest, self.indexer, self.bulk


# Clients ------------------------------------------------------------------------------------


async def send_acked(port: int, records: Sequence[dict[str, Any]]) -> None:
    """AckSender as a busy service uses it: yielding to its event loop now and then."""
    sender = AckSender("bench", "127.0.0.1", port, batch_size=ACK_BATCH)
    for index, record in enumerate(records, 1):
        await sender.emit("log", record)
        if index % ACK_BATCH == 0:
            await asyncio.sleep(0)
    await sender.close()


def send_fluent(port: int, records: Sequence[dict[str, Any]]) -> None:
    """fluent-logger's blocking FluentSender, one Message per emit (run it in a thread)."""
    sender = fluent.sender.FluentSender(
        "bench", host="127.0.0.1", port=port, nanosecond_precision=True, timeout=30.0
    )
    try:
        for record in records:
            if not sender.emit("log", record):
                raise BenchError(f"fluent-logger could not send: {sender.last_error}")
    finally:
        sender.close()


async def produce_direct(producer: Any, topic: str, corpus: Corpus) -> None:
    for log, value in zip(corpus.logs, corpus.values, strict=True):
        await producer.send(topic, value, key=log.node_id.encode(), headers=corpus.headers)
    await producer.flush()


async def write_bulks(es: AsyncElasticsearch, bodies: Sequence[bytes]) -> None:
    for body in bodies:
        response = await es.bulk(operations=body, filter_path="errors,items.*.error")  # type: ignore[arg-type]
        if response.body.get("errors"):
            errors = [
                result["error"]
                for item in response.body.get("items", [])
                for result in item.values()
                if "error" in result
            ]
            raise BenchError(f"_bulk refused documents, first: {errors[:1]}")


# Phases -------------------------------------------------------------------------------------


def phase_deadline(records: int) -> float:
    """A minute to start, plus a second per thousand records: ample at any sane speed."""
    return deadline_in(60.0 + records / 1000)


async def kafka_direct(settings: Settings, consumer: Any, corpus: Corpus) -> Measured:
    """The ceiling: aiokafka producing the corpus straight into the topic, timed like the rest.

    Its CPU time is this process's (the producer's, plus a cheap offset poll every 25 ms).
    """
    deadline = phase_deadline(len(corpus.logs))
    topic = settings.topics.logs
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka, **_PRODUCER_SETTINGS)
    await producer.start()
    try:
        await producer.partitions_for(topic)
        grown = await TopicSize(consumer, settings).growth()
        phase = Phase("Kafka <- aiokafka direct (baseline)", len(corpus.logs))
        cpu_before = time.process_time()
        started = time.perf_counter()
        async with running(produce_direct(producer, topic, corpus)) as sending:
            arrival = await _watch_kafka(grown, corpus, started, deadline, phase, [failed(sending)])
            cpu = time.process_time() - cpu_before
            await finish(sending, deadline)
    finally:
        await producer.stop()
    phase.finish(
        f"{arrival.target:,} records in {arrival.seconds:.2f} s = {arrival.rate:,.0f}/s, "
        f"{cpu:.2f} CPU s"
    )
    return Measured(arrival.target, arrival.seconds, arrival.rate, cpu_seconds=cpu)


async def kafka_kcat(settings: Settings, consumer: Any, corpus: Corpus, workdir: Path) -> Measured:
    """The second ceiling: kcat (librdkafka, C) producing the same keyed records and headers.

    The records are written to a file first, so the clock covers kcat's run only: from its
    start until Kafka holds every record (acks=all, idempotent, as the accumulator's).
    """
    kcat = shutil.which("kcat")
    if kcat is None:
        raise BenchError("kcat is not installed: run scripts/setup (Debian package kcat)")
    source = workdir / "kcat-input"
    with source.open("wb") as out:
        for log, value in zip(corpus.logs, corpus.values, strict=True):
            out.write(log.node_id.encode() + b"\t" + value + b"\n")
    headers = [arg for name, value in corpus.headers for arg in ("-H", f"{name}={value.decode()}")]
    command = [
        kcat, "-P", "-b", settings.kafka, "-t", settings.topics.logs, "-K", "\t",
        "-X", "acks=all", "-X", "enable.idempotence=true", "-X", "linger.ms=5",
        "-z", "none", *headers, "-l", str(source),
    ]  # fmt: skip
    deadline = phase_deadline(len(corpus.logs))
    grown = await TopicSize(consumer, settings).growth()
    phase = Phase("Kafka <- kcat (baseline)", len(corpus.logs))
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    communicating = asyncio.ensure_future(process.communicate())

    def check() -> None:
        if communicating.done() and process.returncode:
            error = communicating.result()[1].decode(errors="replace").strip()
            raise BenchError(f"kcat failed ({process.returncode}): {error[-500:]}")

    arrival = await _watch_kafka(grown, corpus, started, deadline, phase, [check])
    await finish(communicating, deadline)
    phase.finish(f"{arrival.target:,} records in {arrival.seconds:.2f} s = {arrival.rate:,.0f}/s")
    return Measured(arrival.target, arrival.seconds, arrival.rate)


async def through_accumulator(
    accumulator: Service,
    size: TopicSize,
    label: str,
    send: Callable[[], Awaitable[None]],
    corpus: Corpus,
) -> Measured:
    """From the first byte `send` writes until Kafka holds every record; the CPU it took."""
    deadline = phase_deadline(len(corpus.logs))
    grown = await size.growth()
    phase = Phase(label, len(corpus.logs))
    cpu_before = accumulator.cpu_seconds()
    started = time.perf_counter()
    async with running(send()) as sending:
        arrival = await _watch_kafka(
            grown, corpus, started, deadline, phase, [failed(sending), accumulator.check_running]
        )
        cpu = accumulator.cpu_seconds() - cpu_before
        await finish(sending, deadline)
    phase.finish(
        f"{arrival.target:,} records in {arrival.seconds:.2f} s = {arrival.rate:,.0f}/s, "
        f"{cpu:.2f} CPU s"
    )
    return Measured(arrival.target, arrival.seconds, arrival.rate, cpu_seconds=cpu)


async def _watch_kafka(
    grown: Callable[[], Awaitable[int]],
    corpus: Corpus,
    started: float,
    deadline: float,
    phase: Phase,
    checks: Sequence[Callable[[], None]],
) -> Arrival:
    return await watch(
        grown,
        len(corpus.logs),
        started=started,
        deadline=deadline,
        interval=KAFKA_POLL_S,
        phase=phase,
        checks=checks,
        what="the records on Kafka",
    )


async def accumulator_runs(
    settings: Settings, consumer: Any, corpus: Corpus, workdir: Path, profile: Path | None
) -> tuple[Measured, Measured]:
    """Both clients, one after the other, through one accumulator."""
    with Accumulator(
        settings,
        workdir / "accumulator.log",
        profile=profile / "accumulator.prof" if profile else None,
    ) as accumulator:
        await accumulator.listening()
        port = accumulator.port
        size = TopicSize(consumer, settings)
        packed = await through_accumulator(
            accumulator,
            size,
            "accumulator <- AckSender (PackedForward)",
            lambda: send_acked(port, corpus.records),
            corpus,
        )
        message = await through_accumulator(
            accumulator,
            size,
            "accumulator <- FluentSender (Message)",
            lambda: asyncio.to_thread(send_fluent, port, corpus.records),
            corpus,
        )
    return packed, message


async def through_indexer(
    settings: Settings, es: AsyncElasticsearch, records: int, workdir: Path, profile: Path | None
) -> Measured:
    """The indexer draining its pre-filled topic, from its launch until ES counts them all."""
    deadline = phase_deadline(records)
    phase = Phase("Elasticsearch <- indexer", records)
    started = time.perf_counter()
    with logdeck_service(
        "indexer",
        settings,
        workdir / "indexer.log",
        profile=profile / "indexer.prof" if profile else None,
    ) as indexer:
        arrival = await _watch_es(
            es, settings, records, started, deadline, phase, [indexer.check_running]
        )
        cpu = indexer.cpu_seconds()
    # Rated over the whole run, as the _bulk baseline is, and from the first documents
    # seen (the process start and group join left out) beside it.
    startup = arrival.first_at - arrival.started
    phase.finish(
        f"{records:,} logs in {arrival.seconds:.2f} s = {arrival.rate:,.0f}/s; "
        f"{arrival.sustained_rate:,.0f}/s after the first, seen at {startup:.2f} s; "
        f"{cpu:.2f} CPU s"
    )
    return Measured(
        records,
        arrival.seconds,
        arrival.rate,
        startup_seconds=startup,
        cpu_seconds=cpu,
        sustained_rate=arrival.sustained_rate,
    )


async def plain_bulk(settings: Settings, es: AsyncElasticsearch, corpus: Corpus) -> Measured:
    """The ceiling: sequential `_bulk` requests of the same documents, same template."""
    deadline = phase_deadline(len(corpus.logs))
    store = ElasticsearchStore(settings.elasticsearch, settings.indices)
    try:
        await store.ensure_schema()
    finally:
        await store.close()
    bodies = corpus.bulk_bodies(settings.indices.logs_prefix)
    phase = Phase("Elasticsearch <- plain _bulk (baseline)", len(corpus.logs))
    started = time.perf_counter()
    async with running(write_bulks(es, bodies)) as writing:
        arrival = await _watch_es(
            es, settings, len(corpus.logs), started, deadline, phase, [failed(writing)]
        )
        await finish(writing, deadline)
    # Nothing to start up here, so rated over the whole run (its first request included).
    phase.finish(f"{arrival.target:,} logs in {arrival.seconds:.2f} s = {arrival.rate:,.0f}/s")
    return Measured(arrival.target, arrival.seconds, arrival.rate)


async def _watch_es(
    es: AsyncElasticsearch,
    settings: Settings,
    records: int,
    started: float,
    deadline: float,
    phase: Phase,
    checks: Sequence[Callable[[], None]],
) -> Arrival:
    pattern = settings.indices.logs_pattern

    async def count() -> int:
        scope: dict[str, Any] = {"allow_no_indices": True, "ignore_unavailable": True}
        await es.indices.refresh(index=pattern, **scope)
        response = await es.count(index=pattern, **scope)
        counted: int = response["count"]
        return counted

    return await watch(
        count,
        records,
        started=started,
        deadline=deadline,
        interval=ES_POLL_S,
        phase=phase,
        checks=checks,
        what=f"the logs in {pattern}",
    )


# The run ------------------------------------------------------------------------------------


@dataclass(slots=True)
class Results:
    direct: Measured
    kcat: Measured
    packed: Measured
    message: Measured
    indexer: Measured
    bulk: Measured

    def figures(self) -> list[Figure]:
        packed, message = self.packed, self.message
        ratio = packed.rate / self.direct.rate
        per_cpu = packed.per_cpu_second
        direct_per_cpu = self.direct.per_cpu_second
        indexer, bulk = self.indexer.rate, self.bulk.rate
        return [
            Figure(
                "accumulator <- AckSender (PackedForward)",
                "rec/s",
                packed.rate,
                self.direct.rate,
                [
                    (f">= {TARGET_ACCUMULATOR_RATE:,}/s", packed.rate >= TARGET_ACCUMULATOR_RATE),
                    (f">= {TARGET_ACCUMULATOR_RATIO:.0%}", ratio >= TARGET_ACCUMULATOR_RATIO),
                ],
            ),
            Figure(
                "accumulator <- AckSender vs kcat",
                "rec/s",
                packed.rate,
                self.kcat.rate,
                [
                    (
                        f">= {TARGET_KCAT_RATIO:.0%}",
                        packed.rate >= TARGET_KCAT_RATIO * self.kcat.rate,
                    )
                ],
            ),
            Figure(
                "  accumulator CPU, PackedForward",
                "rec/CPU-s",
                per_cpu,
                direct_per_cpu,
                [(f">= {TARGET_ACCUMULATOR_PER_CPU:,}", per_cpu >= TARGET_ACCUMULATOR_PER_CPU)]
                if per_cpu is not None
                else [],
            ),
            Figure(
                "accumulator <- FluentSender (Message)", "rec/s", message.rate, self.direct.rate
            ),
            Figure(
                "  accumulator CPU, Message",
                "rec/CPU-s",
                message.per_cpu_second,
                direct_per_cpu,
            ),
            Figure(
                "indexer Kafka -> Elasticsearch (whole run)",
                "logs/s",
                indexer,
                bulk,
                [
                    (f">= {TARGET_INDEXER_RATE:,}/s", indexer >= TARGET_INDEXER_RATE),
                    (f">= {TARGET_INDEXER_RATIO:.0%}", indexer >= TARGET_INDEXER_RATIO * bulk),
                ],
            ),
            Figure(
                "  indexer, from the first documents seen",
                "logs/s",
                self.indexer.sustained_rate,
                bulk,
            ),
        ]


async def measure(
    settings: Settings,
    names: Namespaces,
    es: AsyncElasticsearch,
    corpus: Corpus,
    workdir: Path,
    profile: Path | None,
) -> Results:
    bus = KafkaBus(settings.kafka, settings.partitions)
    await bus.ensure_topics(names.indexer.topics.all())
    await bus.ensure_topics([names.bulk.topics.logs])
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka, enable_auto_commit=False)
    await consumer.start()
    try:
        # The baseline run also fills the indexer's topic.
        direct = await kafka_direct(names.indexer, consumer, corpus)
        packed, message = await accumulator_runs(names.ingest, consumer, corpus, workdir, profile)
        kcat = await kafka_kcat(names.bulk, consumer, corpus, workdir)
    finally:
        await consumer.stop()
    indexer = await through_indexer(names.indexer, es, len(corpus.logs), workdir, profile)
    bulk = await plain_bulk(names.bulk, es, corpus)
    return Results(direct, kcat, packed, message, indexer, bulk)


def hotspots(profile: Path, top: int = 15) -> None:
    """The functions that used the most time of their own in a cProfile dump."""
    if not profile.exists():
        print(f"  (no profile at {profile})")
        return
    print(f"\nhotspots of {profile.name} (own time):")
    pstats.Stats(str(profile), stream=sys.stdout).sort_stats("tottime").print_stats(top)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    names = Namespaces.fresh()
    settings = names.ingest
    es = AsyncElasticsearch(settings.elasticsearch, request_timeout=120)
    try:
        es_version = await check_servers(settings, es)
        info = stack_machine(es_version)
        code = await announce(
            f"logdeck ingest benchmark: {args.records:,} records, namespace {names.base}*, "
            f"{info['nproc']} CPUs, Kafka {settings.kafka}, Elasticsearch {es_version}",
            info,
        )
        phase = Phase("generating simulated logs", args.records)
        started = time.perf_counter()
        corpus = Corpus.generate(args.records, args.seed)
        phase.finish(f"{args.records:,} logs in {time.perf_counter() - started:.1f} s")
        with tempfile.TemporaryDirectory(prefix="logdeck-bench-") as workdir:
            results = await measure(settings, names, es, corpus, Path(workdir), args.profile)
    finally:
        await drop_indices(es, *names.all())
        await es.close()
        await drop_topics(*names.all())
    figures = results.figures()
    header = ["figure", "value", "baseline", "ratio", "target", "met?"]
    print()
    print(render_table(header, [figure.cells() for figure in figures]))
    print(
        "\nbaselines: rec/s  aiokafka producing the same records straight to Kafka, with the "
        "accumulator's producer settings; vs kcat: `kcat -P` of the same records from a file\n"
        "           rec/CPU-s  the CPU time that direct producer took\n"
        "           logs/s  sequential _bulk requests of 5,000 creates into the same index template"
    )
    return {
        "benchmark": "ingest",
        "timestamp": timestamp(),
        "records": args.records,
        "quick": args.quick,
        "profiled": args.profile is not None,
        "namespace": names.base,
        "machine": info,
        "code": code,
        "levels": corpus.levels(),
        "settings": {
            "ack_batch": ACK_BATCH,
            "bulk_batch": BULK_BATCH,
            "partitions": settings.partitions,
            "kafka_poll_s": KAFKA_POLL_S,
            "es_poll_s": ES_POLL_S,
        },
        "runs": {
            "kafka_direct": results.direct.to_json(),
            "kafka_kcat": results.kcat.to_json(),
            "accumulator_packed_forward": results.packed.to_json(),
            "accumulator_message": results.message.to_json(),
            "indexer": results.indexer.to_json(),
            "plain_bulk": results.bulk.to_json(),
        },
        "figures": [figure.to_json() for figure in figures],
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = bench_parser(
        "ingest", "Accumulator and indexer throughput on the real Kafka and Elasticsearch."
    )
    parser.add_argument("--records", type=int, help=f"logs per phase (default {DEFAULT_RECORDS:,})")
    parser.add_argument(
        "--quick", action="store_true", help=f"smoke run with {QUICK_RECORDS:,} logs per phase"
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="run the services under cProfile, dumps in DIR (inflates their CPU figures)",
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the simulated traffic")
    args = parser.parse_args(argv)
    if args.records is None:
        args.records = QUICK_RECORDS if args.quick else DEFAULT_RECORDS
    if args.records < 1:
        parser.error("--records must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    status = run_and_record(run, args)
    if status:
        return status
    if args.profile:
        for name in ("accumulator", "indexer"):
            hotspots(args.profile / f"{name}.prof")
    return 0


if __name__ == "__main__":
    sys.exit(main())
