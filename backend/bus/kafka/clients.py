"""What every aiokafka client of the bus shares: its security settings and how it starts."""

from __future__ import annotations

from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    ClusterAuthorizationFailedError,
    GroupAuthorizationFailedError,
    KafkaError,
    TopicAuthorizationFailedError,
    TransactionalIdAuthorizationFailed,
)

from backend.bus.base import BusUnavailable

ClientOptions = dict[str, Any]
"""Security settings for every aiokafka client (`KafkaSecurity.client_options`)."""

AUTHORIZATION_ERRORS = (
    TopicAuthorizationFailedError,
    GroupAuthorizationFailedError,
    ClusterAuthorizationFailedError,
    TransactionalIdAuthorizationFailed,
)


def refused(error: KafkaError, what: str, otherwise: str) -> BusUnavailable:
    """`BusUnavailable` for `error`: `what` was not allowed by Kafka when the broker's ACLs
    refused it (a right to grant, not an outage to wait out), else `otherwise`."""
    if isinstance(error, AUTHORIZATION_ERRORS):
        return BusUnavailable(f"{what} is not allowed by Kafka (no ACL grants it): {error}")
    return BusUnavailable(f"{otherwise}: {error}")


async def started(producer: AIOKafkaProducer, bootstrap: str) -> AIOKafkaProducer:
    """`producer`, started; closed again and `BusUnavailable` if Kafka cannot be reached."""
    try:
        await producer.start()
    except KafkaError as error:
        await producer.stop()
        raise refused(error, "writing", f"Kafka at {bootstrap} unreachable") from error
    return producer
