"""Helpers for tests on both backends: launching logdeck commands, reading the bus and store."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from aiokafka.admin import AIOKafkaAdminClient
from elasticsearch import Elasticsearch

from backend.backends import open_bus, open_store
from backend.bus import Incoming
from backend.config import Settings
from backend.schemas import Alert, Log, NodeEntry
from backend.store import Store, StoreUnavailable
from backend.store.query import LogQuery

T = TypeVar("T")

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


async def until(check: Callable[[], bool], within: float, what: str, every: float = 0.2) -> None:
    """`wait_until` for async tests: let the loop run until `check`, a bounded while."""
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within:.0f} s waiting for {what}")
        await asyncio.sleep(every)


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((host, port)) == 0


class Process:
    """A logdeck command run as its own process, its output kept in a log file."""

    def __init__(
        self, args: list[str], log_path: Path, env: Mapping[str, str] | None = None
    ) -> None:
        """`env`: variables set on top of the test's own (a role's credentials)."""
        self.args = args
        self.log_path = log_path
        self._log = log_path.open("ab")
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "launch", *args],
            cwd=ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"},
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
    """The flags that put a logdeck command on the test's backend and namespace."""
    if settings.embedded is not None:
        where = ["--embedded", str(settings.embedded)]
    else:
        where = ["--kafka", settings.kafka, "--elasticsearch", settings.elasticsearch]
    return [*where, "--namespace", settings.namespace, "--partitions", str(settings.partitions)]


class Stored:
    """What a test's services stored, read through the interfaces they use, on either backend.

    Elasticsearch shows a write after a refresh, which every read here asks for first; a
    daily index the indexer has just created answers 503 until its shard is started, which
    is waited out (for at most 10 s).
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def logs(self) -> tuple[int, list[str]]:
        """How many log documents are stored (duplicates count), and their log_ids."""
        return self._read(self._logs)

    def log_ids(self) -> list[str]:
        return self.logs()[1]

    def full_logs(self) -> list[Log]:
        """Every stored log document as the store gives it back, field for field."""
        return self._read(self._full_logs)

    def nodes(self) -> dict[str, NodeEntry]:
        return {entry.node_id: entry for entry in self._read(lambda store: store.stored_nodes())}

    def alerts(self) -> dict[str, Alert]:
        return {alert.alert_id: alert for alert in self._read(lambda store: store.stored_alerts())}

    def refresh(self) -> None:
        if self.settings.embedded is None:
            with Elasticsearch(self.settings.elasticsearch_urls, request_timeout=30) as es:
                es.indices.refresh(
                    index=f"{self.settings.namespace}-*",
                    allow_no_indices=True,
                    ignore_unavailable=True,
                )

    def drop(self) -> None:
        """Delete what the test stored (the embedded files go with the test's folder)."""
        if self.settings.embedded is None:
            with Elasticsearch(self.settings.elasticsearch_urls, request_timeout=30) as es:
                es.indices.delete(
                    index=f"{self.settings.namespace}-*",
                    allow_no_indices=True,
                    ignore_unavailable=True,
                )

    @staticmethod
    async def _full_logs(store: Store) -> list[Log]:
        return [log async for batch in store.export_logs() for log in batch]

    @staticmethod
    async def _logs(store: Store) -> tuple[int, list[str]]:
        ids = [log.log_id for log in await Stored._full_logs(store)]
        total = (await store.search_logs(LogQuery(page_size=1))).total
        return total, ids

    def _read(self, read: Callable[[Store], Awaitable[T]]) -> T:
        async def once() -> T:
            store = open_store(self.settings)
            try:
                return await read(store)
            finally:
                await store.close()

        for _ in range(50):
            self.refresh()
            try:
                return asyncio.run(once())
            except StoreUnavailable:
                time.sleep(0.2)
        return asyncio.run(once())


async def read_topic_async(
    settings: Settings, topic: str, expected: int, within: float = 30
) -> list[Incoming]:
    """At least `expected` records from the start of `topic` (or all there are `within` s)."""
    subscription = open_bus(settings).subscription([topic], None)
    await subscription.start()
    records: list[Incoming] = []
    deadline = time.monotonic() + within
    try:
        while len(records) < expected and time.monotonic() < deadline:
            records += await subscription.poll(5000, timeout_ms=500)
    finally:
        await subscription.stop()
    return records


def read_topic(
    settings: Settings, topic: str, expected: int, timeout: float = 30
) -> list[Incoming]:
    return asyncio.run(read_topic_async(settings, topic, expected, timeout))


def snapshot(settings: Settings, topic: str) -> list[Incoming]:
    """Every record `topic` holds now, on the test's bus."""
    return asyncio.run(open_bus(settings).snapshot(topic))


def ledger_ids(ledger: Path) -> list[str]:
    return [line for path in sorted(ledger.glob("*.ids")) for line in path.read_text().split()]


TEST_TOPIC = re.compile(r"^t([0-9a-f]{4})[0-9a-f]{6}\.")
"""A topic of a test's own namespace: `t`, its session's four hex digits, six more."""

SESSIONS = Path(tempfile.gettempdir()) / "logdeck-test-sessions"
"""One file per running test session, named by its digits, holding its process id."""

SESSION = f"{os.getpid() & 0xFFFF:04x}"
"""This session's digits: the first four of every namespace it makes."""


def new_namespace() -> str:
    """A fresh namespace for one test, marked as this session's."""
    SESSIONS.mkdir(exist_ok=True)
    (SESSIONS / SESSION).write_text(str(os.getpid()))
    return f"t{SESSION}{uuid.uuid4().hex[:6]}"


def _running_elsewhere(session: str) -> bool:
    """Whether another live test session owns namespaces with these digits."""
    try:
        pid = int((SESSIONS / session).read_text())
    except (OSError, ValueError):
        return False
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


async def drop_test_topics(kafka: str, options: Mapping[str, Any] | None = None) -> int:
    """Delete the test namespaces' topics on `kafka`, but those of other running sessions.

    Each test writes to fresh topics; left behind, thousands of partitions make the broker
    slow to start and to recover after the fault tests kill it. Two sessions may share the
    broker, so a session only deletes its own and those whose session has ended.
    """
    admin = AIOKafkaAdminClient(
        bootstrap_servers=kafka, request_timeout_ms=120_000, **(options or {})
    )
    await admin.start()
    try:
        stale = [
            topic
            for topic in await admin.list_topics()
            if (match := TEST_TOPIC.match(topic)) and not _running_elsewhere(match.group(1))
        ]
        for start in range(0, len(stale), 500):
            await admin.delete_topics(stale[start : start + 500], timeout_ms=120_000)
        return len(stale)
    finally:
        await admin.close()


UNCONFIRMED = re.compile(r"^fleet: .* unconfirmed=(\d+)", re.MULTILINE)


def assert_exactly_once(
    stored: Stored, fleets: Sequence[Process], sent: list[str], within: float
) -> None:
    """Every acknowledged log stored once; others only if the nodes never heard either way.

    A node that ends while Kafka is still catching up leaves records unconfirmed (each
    fleet's summary counts them): they may have been stored or not, but never twice.
    """
    unconfirmed = sum(int(UNCONFIRMED.findall(fleet.output())[-1]) for fleet in fleets)
    wait_until(lambda: stored.logs()[0] >= len(sent), within, f"{len(sent)} logs in the store")
    total, ids = stored.logs()
    missing, duplicated = len(set(sent) - set(ids)), total - len(set(ids))
    extra = len(set(ids) - set(sent))
    print(
        f"acknowledged {len(sent)}, stored {len(set(ids))}, duplicated {duplicated}, "
        f"missing {missing}; unconfirmed {unconfirmed}, of which stored {extra}"
    )
    assert (missing, duplicated) == (0, 0)
    assert extra <= unconfirmed
