"""Fixtures for tests on both backends: the real Kafka and Elasticsearch of `logdeck stack
up`, and the embedded bus and store in the test's own folder. Every test that takes
`settings` runs once on each."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from backend.config import Settings
from tests.integration.harness import (
    Process,
    Stored,
    connection_flags,
    drop_test_topics,
    free_port,
    new_namespace,
    port_open,
    wait_until,
)

pytestmark = pytest.mark.integration


BACKENDS = ("kafka", "embedded")


@pytest.fixture(scope="session")
def servers() -> Iterator[Settings]:
    """The real Kafka and Elasticsearch of `logdeck stack up`, checked once.

    The tests' topics are deleted at the end, and any an interrupted run left at the start.
    """
    settings = Settings.from_env()
    host, _, port = settings.kafka.rpartition(":")
    if not port_open(int(port), host):
        pytest.fail(f"Kafka is not answering at {settings.kafka}: start it with `logdeck stack up`")
    try:
        Elasticsearch(settings.elasticsearch).cluster.health(
            wait_for_status="yellow", timeout="30s"
        )
    except Exception as error:
        pytest.fail(
            f"Elasticsearch is not answering at {settings.elasticsearch} ({error}): "
            "start it with `logdeck stack up`"
        )
    asyncio.run(drop_test_topics(settings.kafka))
    yield settings
    asyncio.run(drop_test_topics(settings.kafka))


@pytest.fixture(params=BACKENDS)
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Each test on each backend, in a namespace of its own: it sees only its own data."""
    namespace = new_namespace()
    port = free_port()
    if request.param == "embedded":
        return Settings(
            embedded=tmp_path / "data", namespace=namespace, partitions=3, accumulator_port=port
        )
    servers: Settings = request.getfixturevalue("servers")
    return Settings(
        kafka=servers.kafka,
        elasticsearch=servers.elasticsearch,
        namespace=namespace,
        partitions=3,
        accumulator_port=port,
    )


@pytest.fixture
def stored(settings: Settings) -> Iterator[Stored]:
    probe = Stored(settings)
    yield probe
    probe.drop()


Launch = Callable[..., Process]


@pytest.fixture
def launch(tmp_path: Path, settings: Settings) -> Iterator[Launch]:
    """Start a logdeck command in the test's namespace; everything is stopped at the end."""
    started: list[Process] = []

    def start(command: str, *extra: str, name: str | None = None) -> Process:
        args = [command, *extra]
        if command in ("accumulator", "indexer", "alerter", "monitor", "console"):
            args += connection_flags(settings)
        if command == "accumulator" and "--port" not in extra:
            args += ["--port", str(settings.accumulator_port)]
        process = Process(args, tmp_path / f"{name or command}-{len(started)}.log")
        started.append(process)
        return process

    yield start
    for process in reversed(started):
        process.stop()


@pytest.fixture
def accumulator(launch: Launch, settings: Settings) -> Process:
    process = launch("accumulator")
    wait_until(
        lambda: port_open(settings.accumulator_port) or process.popen.poll() is not None,
        60,
        "the accumulator to listen",
    )
    assert process.popen.poll() is None, process.output()
    return process


@pytest.fixture
def indexer(launch: Launch) -> Process:
    return launch("indexer")
