"""The bus and the store a service runs on, as its settings say: real or embedded.

The only place that chooses between them, so every service, the console and the tests
get the same pair from the same settings.
"""

from __future__ import annotations

from dataclasses import replace

from backend.bus import Bus
from backend.config import BUS_FILE, STORE_FILE, Settings
from backend.store import Store


def open_bus(settings: Settings) -> Bus:
    if settings.embedded is None:
        from backend.bus.kafka.bus import KafkaBus

        return KafkaBus(settings.kafka, settings.partitions, settings.kafka_security)
    from backend.bus.embedded import DEFAULT_RETENTION, EmbeddedBus

    settings.embedded.mkdir(parents=True, exist_ok=True)
    retention = DEFAULT_RETENTION
    if settings.bus_max_bytes is not None:
        retention = replace(retention, max_bytes=settings.bus_max_bytes)
    return EmbeddedBus(settings.embedded / BUS_FILE, settings.partitions, retention)


def open_store(settings: Settings) -> Store:
    if settings.embedded is None:
        from backend.store.elasticsearch import ElasticsearchStore

        return ElasticsearchStore(
            settings.elasticsearch, settings.indices, auth=settings.elasticsearch_auth
        )
    from backend.store.embedded import EmbeddedStore

    settings.embedded.mkdir(parents=True, exist_ok=True)
    return EmbeddedStore(settings.embedded / STORE_FILE, settings.retention_days)
