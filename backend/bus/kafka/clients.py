"""What every aiokafka client of the bus shares: its security settings and how it starts."""

from __future__ import annotations

from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from backend.bus.base import BusUnavailable

ClientOptions = dict[str, Any]
"""Security settings for every aiokafka client (`KafkaSecurity.client_options`)."""


async def started(producer: AIOKafkaProducer, bootstrap: str) -> AIOKafkaProducer:
    """`producer`, started; closed again and `BusUnavailable` if Kafka cannot be reached."""
    try:
        await producer.start()
    except KafkaError as error:
        await producer.stop()
        raise BusUnavailable(f"Kafka at {bootstrap} unreachable: {error}") from error
    return producer
