"""The capacity model: docs/capacity.md shows what the committed results give, and the
arithmetic follows the load."""

from __future__ import annotations

from dataclasses import replace

from bench.capacity import DOC, END, START, Load, Measured, render, rows, with_table

MEASURED = Measured(
    accumulator_per_cpu_s=50_000,
    indexer_per_cpu_s=40_000,
    es_bulk_per_core=25_000,
    kafka_produce_per_core=200_000,
    kafka_mb_per_million=300,
    es_mb_per_million=300,
    cores=2,
    sources="test",
)


def counts(load: Load) -> dict[str, str]:
    return {what: count for what, count, _ in rows(MEASURED, load)}


def test_the_document_shows_the_model_of_the_committed_results() -> None:
    document = DOC.read_text()
    fresh = with_table(document, render(Measured.read()))
    assert fresh == document, "the results changed: python -m bench.capacity --write"
    assert document.count(START) == document.count(END) == 1


def test_processes_follow_the_load_at_the_planned_utilisation() -> None:
    load = Load(logs_per_s=1_000_000, nodes=100_000, utilisation=0.5)
    found = counts(load)
    assert found["records in"] == "1,100,000/s"
    assert found["accumulators"].startswith("44 ")  # 1.1 M / (50 k x 0.5)
    assert found["indexers"] == "50 processes"  # 1 M / (40 k x 0.5)
    assert found["partitions of `logs`"] == "64"  # the next power of two above 50
    doubled = counts(replace(load, logs_per_s=2_000_000))
    assert doubled["indexers"] == "100 processes"
    assert doubled["partitions of `logs`"] == "128"


def test_disk_counts_every_copy_for_every_day_kept() -> None:
    found = counts(Load(logs_per_s=1_000_000, retention_days=7, replication=3, es_replicas=1))
    # 86,400 M logs a day x 300 MB per M = 25.9 TB per copy a day
    assert found["Kafka disk"] == "77.8 TB a day, 544 TB kept"
    assert found["Elasticsearch disk"] == "51.8 TB a day, 363 TB kept"
    assert found["Kafka brokers"] == "46"  # 544 TB / 12 TB
    assert found["Kafka brokers, a day kept"] == "7"  # 77.8 TB / 12 TB
