"""The capacity model of docs/capacity.md: what 1,000,000 logs/s from 100,000 nodes takes,
worked out from the per-core figures measured on this machine (bench/results/ingest.json,
volume.json), so the document changes when the measurements do.

`python -m bench.capacity` prints the table; `--write` puts it into docs/capacity.md
between its markers. Nothing is measured here: it is arithmetic on results files.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import RESULTS

DOC = Path(__file__).resolve().parents[1] / "docs" / "capacity.md"
START, END = "<!-- capacity:start -->", "<!-- capacity:end -->"


@dataclass(frozen=True, slots=True)
class Load:
    """What is asked of the system, and the headroom kept on every machine."""

    logs_per_s: float = 1_000_000
    nodes: int = 100_000
    heartbeat_s: float = 1.0
    replication: int = 3
    es_replicas: int = 1
    retention_days: int = 7
    utilisation: float = 0.7
    """Busy share of a core a deployment plans for: room for bursts and a failed peer."""
    broker_disk_tb: float = 12.0
    es_node_disk_tb: float = 8.0
    shard_gb: float = 40.0


@dataclass(frozen=True, slots=True)
class Measured:
    """Per-core figures from the results files (lower bounds where a server shared the
    machine's two cores with its client)."""

    accumulator_per_cpu_s: float
    indexer_per_cpu_s: float
    es_bulk_per_core: float
    kafka_produce_per_core: float
    kafka_mb_per_million: float
    es_mb_per_million: float
    cores: int
    sources: str

    @classmethod
    def read(cls, folder: Path = RESULTS) -> Measured:
        ingest = json.loads((folder / "ingest.json").read_text())
        volume = json.loads((folder / "volume.json").read_text())
        runs = ingest["runs"]
        cores = int(ingest["machine"]["nproc"])
        disk = {figure["figure"].split(":")[0]: figure["value"] for figure in volume["figures"]}
        return cls(
            accumulator_per_cpu_s=runs["accumulator_packed_forward"]["records_per_cpu_second"],
            indexer_per_cpu_s=runs["indexer"]["records_per_cpu_second"],
            es_bulk_per_core=runs["plain_bulk"]["rate"] / cores,
            kafka_produce_per_core=runs["kafka_kcat"]["rate"] / cores,
            kafka_mb_per_million=disk["Kafka"],
            es_mb_per_million=disk["Elasticsearch"],
            cores=cores,
            sources=f"ingest.json ({_commit(ingest)}), volume.json ({_commit(volume)})",
        )


def _commit(results: dict[str, Any]) -> str:
    code = results.get("code") or {}
    return f"commit {str(code.get('commit', '?'))[:7]}, {results.get('timestamp', '?')}"


def rows(measured: Measured, load: Load = Load()) -> list[tuple[str, str, str]]:
    """(what, how many, the arithmetic) for each part of the deployment."""
    heartbeats = load.nodes / load.heartbeat_s
    records = load.logs_per_s + heartbeats
    per_day_m = load.logs_per_s * 86_400 / 1e6  # millions of logs a day

    def cores(work: float, per_core: float) -> int:
        return math.ceil(work / (per_core * load.utilisation))

    accumulators = cores(records, measured.accumulator_per_cpu_s)
    indexers = cores(load.logs_per_s, measured.indexer_per_cpu_s)
    partitions = 2 ** math.ceil(math.log2(max(accumulators, indexers)))
    es_writes = load.logs_per_s * (1 + load.es_replicas)
    es_cores = cores(es_writes, measured.es_bulk_per_core)
    es_day_tb = per_day_m * measured.es_mb_per_million * (1 + load.es_replicas) / 1e6
    es_total_tb = es_day_tb * load.retention_days
    es_nodes = max(math.ceil(es_total_tb / load.es_node_disk_tb), math.ceil(es_cores / 16))
    primary_day_gb = per_day_m * measured.es_mb_per_million / 1e3
    shards_hour = math.ceil(primary_day_gb / 24 / load.shard_gb)
    kafka_day_tb = per_day_m * measured.kafka_mb_per_million * load.replication / 1e6
    kafka_total_tb = kafka_day_tb * load.retention_days
    kafka_cores = cores(records * load.replication, measured.kafka_produce_per_core)
    brokers = max(math.ceil(kafka_total_tb / load.broker_disk_tb), math.ceil(kafka_cores / 16), 3)
    brokers_one_day = max(
        math.ceil(kafka_day_tb / load.broker_disk_tb), math.ceil(kafka_cores / 16), 3
    )
    pct = f"{load.utilisation:.0%}"
    return [
        (
            "records in",
            f"{records:,.0f}/s",
            f"{load.logs_per_s:,.0f} logs + {load.nodes:,} nodes x 1 heartbeat per "
            f"{load.heartbeat_s:g} s",
        ),
        (
            "accumulators",
            f"{accumulators} processes (one core each)",
            f"{records:,.0f} / ({measured.accumulator_per_cpu_s:,.0f} records per CPU-second "
            f"x {pct})",
        ),
        (
            "indexers",
            f"{indexers} processes",
            f"{load.logs_per_s:,.0f} / ({measured.indexer_per_cpu_s:,.0f} logs per CPU-second "
            f"x {pct})",
        ),
        (
            "partitions of `logs`",
            f"{partitions}",
            "≥ the indexers (a group member per partition at most), next power of two",
        ),
        (
            "Kafka disk",
            f"{kafka_day_tb:,.1f} TB a day, {kafka_total_tb:,.0f} TB kept",
            f"{per_day_m:,.0f} M logs a day x {measured.kafka_mb_per_million:,.0f} MB per M "
            f"x {load.replication} replicas x {load.retention_days} days",
        ),
        (
            "Kafka brokers",
            f"{brokers}",
            f"disk: {kafka_total_tb:,.0f} TB / {load.broker_disk_tb:g} TB a broker; CPU: "
            f"{records * load.replication:,.0f} replica writes/s / "
            f"({measured.kafka_produce_per_core:,.0f} per core x {pct}) = {kafka_cores} cores",
        ),
        (
            "Kafka brokers, a day kept",
            f"{brokers_one_day}",
            f"disk: {kafka_day_tb:,.1f} TB / {load.broker_disk_tb:g} TB a broker, when Kafka "
            "keeps only what a consumer's outage needs and Elasticsearch the week",
        ),
        (
            "Elasticsearch disk",
            f"{es_day_tb:,.1f} TB a day, {es_total_tb:,.0f} TB kept",
            f"{per_day_m:,.0f} M logs x {measured.es_mb_per_million:,.0f} MB per M x "
            f"{1 + load.es_replicas} copies x {load.retention_days} days",
        ),
        (
            "Elasticsearch data nodes",
            f"{es_nodes}",
            f"disk: {es_total_tb:,.0f} TB / {load.es_node_disk_tb:g} TB a node; CPU: "
            f"{es_writes:,.0f} copies indexed/s / ({measured.es_bulk_per_core:,.0f} per core "
            f"x {pct}) = {es_cores} cores, 16 a node",
        ),
        (
            "shards",
            f"{shards_hour} primaries an hour",
            f"{primary_day_gb:,.0f} GB of primaries a day / 24 / {load.shard_gb:g} GB a shard: "
            f"hourly indices, or rollover at {load.shard_gb:g} GB",
        ),
    ]


def render(measured: Measured, load: Load = Load()) -> str:
    lines = [
        f"From {measured.sources}, measured on {measured.cores} cores.",
        "",
        "| part | how many | arithmetic |",
        "| --- | --- | --- |",
        *(f"| {what} | {count} | {how} |" for what, count, how in rows(measured, load)),
    ]
    return "\n".join(lines)


def with_table(document: str, table: str) -> str:
    """`document` with what lies between its markers replaced by `table`."""
    head, _, rest = document.partition(START)
    _, _, tail = rest.partition(END)
    return f"{head}{START}\n{table}\n{END}{tail}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.capacity", description=__doc__)
    parser.add_argument("--write", action="store_true", help=f"update {DOC.name}")
    args = parser.parse_args(argv)
    table = render(Measured.read())
    if args.write:
        DOC.write_text(with_table(DOC.read_text(), table))
        print(f"{DOC} updated")
    else:
        print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
