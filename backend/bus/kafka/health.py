"""Whether Kafka answers the bus, asked the way the bus's own clients ask it.

The probe is a short-lived admin client with the clients' security settings (TLS, SASL),
so a broker that only takes authenticated connections is seen as up, and one that refuses
the bus's credentials or certificate is seen as down, as the bus would find it.
"""

from __future__ import annotations

import asyncio

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from backend.bus.kafka.clients import ClientOptions

_TIMEOUT_S = 2.0
"""A console asks every few seconds: a broker slower than this to answer is as good as down."""


async def kafka_healthy(bootstrap: str, options: ClientOptions) -> bool:
    """True if the broker answers a Metadata request listing at least one broker within
    `_TIMEOUT_S`; False, never an error, otherwise."""
    try:
        async with asyncio.timeout(_TIMEOUT_S):
            admin = AIOKafkaAdminClient(
                bootstrap_servers=bootstrap, request_timeout_ms=int(_TIMEOUT_S * 1000), **options
            )
            try:
                await admin.start()
                cluster = await admin.describe_cluster()
            finally:
                await admin.close()
    except (KafkaError, OSError, TimeoutError, ValueError):
        return False
    return bool(cluster["brokers"])
