"""The Kafka bus's health probe asks the way its clients do, and answers False in time."""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
from aiokafka.errors import KafkaConnectionError

from backend.bus.kafka.bus import KafkaBus
from backend.security import KafkaSecurity, Secret

SASL_SSL = KafkaSecurity(
    protocol="SASL_SSL",
    sasl_mechanism="SCRAM-SHA-512",
    username="svc-console",
    password=Secret("pa55-w0rd"),
)


class RecordingAdmin:
    """An admin client that records how it was made and what was asked of it."""

    made: ClassVar[list[RecordingAdmin]] = []
    refuse: ClassVar[bool] = False

    def __init__(self, **options: Any) -> None:
        self.options = options
        self.closed = False
        RecordingAdmin.made.append(self)

    async def start(self) -> None:
        if self.refuse:
            raise KafkaConnectionError("Unable to bootstrap")

    async def describe_cluster(self) -> dict[str, Any]:
        return {"brokers": [{"node_id": 1, "host": "kafka", "port": 9093}]}

    async def close(self) -> None:
        self.closed = True


@pytest.fixture
def admins(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[RecordingAdmin]]:
    monkeypatch.setattr("backend.bus.kafka.health.AIOKafkaAdminClient", RecordingAdmin)
    RecordingAdmin.made = []
    RecordingAdmin.refuse = False
    yield RecordingAdmin


async def test_the_probe_asks_with_the_configured_security(
    admins: type[RecordingAdmin],
) -> None:
    assert await KafkaBus("kafka:9093", security=SASL_SSL).healthy()
    [admin] = admins.made
    options = admin.options
    assert options["bootstrap_servers"] == "kafka:9093"
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == (
        "svc-console",
        "pa55-w0rd",
    )
    assert isinstance(options["ssl_context"], ssl.SSLContext)
    assert admin.closed


async def test_a_broker_that_refuses_the_probe_is_unhealthy(
    admins: type[RecordingAdmin],
) -> None:
    admins.refuse = True
    assert not await KafkaBus("kafka:9093", security=SASL_SSL).healthy()
    [admin] = admins.made
    assert admin.closed


async def test_a_broker_that_never_answers_is_unhealthy_within_the_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("backend.bus.kafka.health._TIMEOUT_S", 0.3)
    with socket.socket() as silent:  # takes the connection, never answers a request
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        started = time.monotonic()
        healthy = await KafkaBus(f"127.0.0.1:{port}").healthy()
        elapsed = time.monotonic() - started
    assert not healthy
    assert elapsed < 2.0
