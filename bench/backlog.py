"""The indexer's memory working off a backlog of large records, on each backend.

The backlog waits on `<ns>.logs` before `logdeck indexer` starts, as after an outage of the
indexer: N logs whose messages are M MB each. The figure is the indexer's peak resident
memory (VmHWM) once the store counts every log. The baseline, in the same run, is the same
number of small logs: what the indexer takes whatever it reads. A third run sets the poll's
byte budget out of reach (`LOGDECK_POLL_BYTES`), so a poll is bounded by its record count
only, as before the budget existed.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from elasticsearch import AsyncElasticsearch

from backend.bus.base import POLL_BYTES, Outgoing
from backend.bus.embedded import EmbeddedBus
from backend.config import BUS_FILE, STORE_FILE, Settings
from backend.schemas import now_iso
from backend.store.embedded import EmbeddedStore
from backend.store.query import LogQuery
from bench.common import (
    Phase,
    bench_parser,
    bench_settings,
    deadline_in,
    logdeck_service,
    render_table,
    run_and_record,
    watch,
)
from bench.machine import code_state, note_busy, stack_machine, timestamp
from bench.servers import check_servers, drop_indices, drop_topics

SMALL_BYTES = 200
NO_BUDGET = 1 << 62
"""A poll budget no backlog reaches: the poll is bounded by its record count only."""
MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Case:
    name: str
    message_bytes: int
    poll_bytes: int


@dataclass(frozen=True, slots=True)
class Measured:
    backend: str
    case: str
    logs: int
    message_bytes: int
    poll_bytes: int
    peak_rss_mib: float
    seconds: float


def backlog(settings: Settings, count: int, message_bytes: int) -> Iterator[Outgoing]:
    """`count` INFO logs from six nodes, whose messages are `message_bytes` long; made one
    at a time, so the bench's own memory stays small."""
    word = "backlog" * 28 + " "  # 197 characters: long tokens keep full-text indexing cheap
    message = (word * (message_bytes // len(word) + 1))[:message_bytes]
    stamp = now_iso()
    for number in range(count):
        node = f"backlog-{number % 6}"
        log = {
            "log_id": uuid.uuid4().hex,
            "node_id": node,
            "log_level": "INFO",
            "message_type": "LOG",
            "message": message,
            "service_name": "BacklogService",
            "timestamp": stamp,
        }
        yield Outgoing(settings.topics.logs, node.encode(), json.dumps(log).encode())


async def fill_embedded(settings: Settings, records: Iterator[Outgoing]) -> None:
    assert settings.embedded is not None
    bus = EmbeddedBus(settings.embedded / BUS_FILE, settings.partitions)
    publisher = bus.publisher()
    try:
        await publisher.start()
        for record in records:
            await publisher.publish([record])
    finally:
        await publisher.stop()
        await bus.close()


async def fill_kafka(settings: Settings, records: Iterator[Outgoing], largest: int) -> None:
    """The logs topic made to take records of `largest` bytes (Kafka's default is 1 MB)."""
    limit = largest + MIB
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka)
    await admin.start()
    try:
        topic = NewTopic(
            settings.topics.logs,
            settings.partitions,
            1,
            topic_configs={"max.message.bytes": str(limit)},
        )
        await admin.create_topics([topic])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka, max_request_size=limit)
    await producer.start()
    try:
        for record in records:
            await producer.send_and_wait(record.topic, record.value, key=record.key)
    finally:
        await producer.stop()


def embedded_count(settings: Settings) -> tuple[Callable[[], Awaitable[int]], Callable[[], Any]]:
    assert settings.embedded is not None
    path = settings.embedded / STORE_FILE
    store = EmbeddedStore(path)

    async def count() -> int:
        if not path.exists():
            return 0
        return (await store.search_logs(LogQuery(page_size=1))).total

    return count, store.close


def elasticsearch_count(
    settings: Settings, es: AsyncElasticsearch
) -> tuple[Callable[[], Awaitable[int]], Callable[[], Any]]:
    pattern = settings.indices.logs_pattern

    async def count() -> int:
        await es.indices.refresh(index=pattern, allow_no_indices=True, ignore_unavailable=True)
        found = await es.count(index=pattern, allow_no_indices=True, ignore_unavailable=True)
        return int(found["count"])

    async def drop() -> None:
        await drop_indices(es, settings)
        await drop_topics(settings)

    return count, drop


async def measure(
    backend: str, case: Case, count: int, workdir: Path, es: AsyncElasticsearch | None
) -> Measured:
    """Fill the backlog, start the indexer on it, and time it until every log is stored."""
    settings = bench_settings("backlog")
    if backend == "embedded":
        folder = workdir / f"{backend}-{case.name.replace(' ', '-')}"
        settings = Settings(embedded=folder, namespace=settings.namespace, partitions=6)
    records = backlog(settings, count, case.message_bytes)
    phase = Phase(f"{backend}: {case.name}", count)
    if backend == "embedded":
        await fill_embedded(settings, records)
        stored, cleanup = embedded_count(settings)
    else:
        assert es is not None
        await fill_kafka(settings, records, case.message_bytes)
        stored, cleanup = elasticsearch_count(settings, es)
    log_path = workdir / f"indexer-{backend}-{case.name.replace(' ', '-')}.log"
    env = {"LOGDECK_POLL_BYTES": str(case.poll_bytes)}
    try:
        with logdeck_service("indexer", settings, log_path, env=env) as indexer:
            started = time.perf_counter()
            arrival = await watch(
                stored,
                count,
                started=started,
                deadline=deadline_in(120 + count * case.message_bytes / (5 * MIB)),
                interval=0.25,
                phase=phase,
                checks=[indexer.check_running],
                what=f"{count} logs stored by the indexer",
            )
            peak = indexer.peak_rss_bytes()
    finally:
        await cleanup()
    phase.finish(f"peak RSS {peak / MIB:,.0f} MiB, {arrival.seconds:.1f} s")
    return Measured(
        backend, case.name, count, case.message_bytes, case.poll_bytes, peak / MIB, arrival.seconds
    )


async def run(args: argparse.Namespace) -> dict[str, Any]:
    large = int(args.message_mb * MIB)
    cases = [
        Case("small logs (baseline)", SMALL_BYTES, POLL_BYTES),
        Case("large logs", large, POLL_BYTES),
        Case("large logs, no byte budget", large, NO_BUDGET),
    ]
    backends = ("embedded", "kafka") if args.backend == "both" else (args.backend,)
    print(
        f"logdeck backlog benchmark: {args.logs} logs of {args.message_mb:g} MB waiting for the"
        f" indexer, on {', '.join(backends)}"
    )
    info: dict[str, Any] = {}
    await note_busy(info)
    es = AsyncElasticsearch(Settings.from_env().elasticsearch, request_timeout=300)
    try:
        es_version = "not used"
        if "kafka" in backends:
            es_version = await check_servers(Settings.from_env(), es)
        measured = []
        with tempfile.TemporaryDirectory(prefix="logdeck-bench-backlog-") as folder:
            for backend in backends:
                for case in cases:
                    measured.append(await measure(backend, case, args.logs, Path(folder), es))
    finally:
        await es.close()
    baselines = {m.backend: m.peak_rss_mib for m in measured if m.message_bytes == SMALL_BYTES}
    rows = [
        [
            f"{m.backend}: {m.case}",
            f"{m.peak_rss_mib:,.0f} MiB",
            f"{baselines[m.backend]:,.0f} MiB",
            f"{m.peak_rss_mib / baselines[m.backend]:.1f}x",
            f"{m.seconds:.1f} s",
        ]
        for m in measured
    ]
    print()
    print(render_table(["indexer on the backlog", "peak RSS", "small logs", "ratio", "time"], rows))
    return {
        "benchmark": "backlog",
        "timestamp": timestamp(),
        "machine": stack_machine(es_version),
        "code": code_state(),
        **info,
        "logs": args.logs,
        "message_bytes": large,
        "default_poll_bytes": POLL_BYTES,
        "runs": [asdict(m) for m in measured],
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = bench_parser(
        "backlog", "The indexer's peak memory on a backlog of large logs, beside small ones."
    )
    parser.add_argument("--logs", type=int, default=150, help="logs waiting (%(default)s)")
    parser.add_argument(
        "--message-mb", type=float, default=10.0, help="size of each message (%(default)s MB)"
    )
    parser.add_argument("--backend", choices=("embedded", "kafka", "both"), default="both")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    return run_and_record(run, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
