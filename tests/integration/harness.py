"""Helpers for tests on the real servers: launching logdeck commands, reading Kafka and ES."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer
from elasticsearch import ApiError, Elasticsearch

from backend.config import Settings

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_until(check: Callable[[], bool], timeout: float, what: str, interval: float = 0.2) -> None:
    """Poll `check` until true; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((host, port)) == 0


class Process:
    """A logdeck command run as its own process, its output kept in a log file."""

    def __init__(self, args: list[str], log_path: Path) -> None:
        self.args = args
        self.log_path = log_path
        self._log = log_path.open("ab")
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "console", *args],
            cwd=ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )

    def kill(self) -> None:
        self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(10)

    def stop(self, timeout: float = 30) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(10)
        self._log.close()
        return self.popen.returncode

    def wait(self, timeout: float) -> int:
        return self.popen.wait(timeout)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


def connection_flags(settings: Settings) -> list[str]:
    return [
        "--kafka",
        settings.kafka,
        "--elasticsearch",
        settings.elasticsearch,
        "--namespace",
        settings.namespace,
        "--partitions",
        str(settings.partitions),
    ]


def stored_log_ids(es: Elasticsearch, settings: Settings) -> list[str]:
    """Every log_id stored in the namespace's log indices, duplicates included.

    A daily index the indexer has just created answers 503 until its shard is started;
    that is waited out (for at most 10 s).
    """
    for _ in range(50):
        try:
            return _all_log_ids(es, settings.indices.logs_pattern)
        except ApiError as error:
            if error.meta.status != 503:
                raise
            time.sleep(0.2)
    return _all_log_ids(es, settings.indices.logs_pattern)


def _all_log_ids(es: Elasticsearch, pattern: str) -> list[str]:
    es.indices.refresh(index=pattern, allow_no_indices=True)
    ids: list[str] = []
    after: list[Any] | None = None
    while True:
        page = es.search(
            index=pattern,
            size=5000,
            sort=[{"log_id": "asc"}, {"_doc": "asc"}],
            source=["log_id"],
            search_after=after,
            allow_no_indices=True,
            ignore_unavailable=True,
        )
        hits = page["hits"]["hits"]
        if not hits:
            return ids
        ids += [hit["_source"]["log_id"] for hit in hits]
        after = hits[-1]["sort"]


async def read_topic_async(
    settings: Settings, topic: str, expected: int, within: float = 30
) -> list[Any]:
    """At least `expected` records from the start of `topic` (or all there are `within` s)."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    records: list[Any] = []
    deadline = time.monotonic() + within
    try:
        while len(records) < expected and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for batch in batches.values():
                records += batch
    finally:
        await consumer.stop()
    return records


def read_topic(settings: Settings, topic: str, expected: int, timeout: float = 30) -> list[Any]:
    return asyncio.run(read_topic_async(settings, topic, expected, timeout))


def ledger_ids(ledger: Path) -> list[str]:
    return [line for path in sorted(ledger.glob("*.ids")) for line in path.read_text().split()]
