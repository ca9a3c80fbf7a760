"""The Kafka bus's health on the real broker: up while it runs, down on a closed port."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from backend.backends import open_bus
from backend.config import Settings
from tests.integration.harness import free_port

pytestmark = pytest.mark.integration


def test_the_kafka_bus_is_healthy_while_kafka_runs(servers: Settings) -> None:
    assert asyncio.run(open_bus(servers).healthy())


def test_the_kafka_bus_is_unhealthy_on_a_closed_port(servers: Settings) -> None:
    closed = replace(servers, kafka=f"127.0.0.1:{free_port()}")
    assert not asyncio.run(open_bus(closed).healthy())
