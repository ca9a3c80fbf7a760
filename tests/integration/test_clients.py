"""Real Forward clients reach the bus through the accumulator: fluent-logger and the ack sender."""

from __future__ import annotations

import asyncio
import json
from collections import Counter

import pytest
from fluent import asyncsender, sender

from backend.config import Settings
from backend.forward.sender import AckSender
from tests.integration.harness import (
    Process,
    Stored,
    read_topic,
    read_topic_async,
    wait_until,
)
from tests.records import make_log

pytestmark = pytest.mark.integration

LEVELS = ("INFO", "WARN", "ERROR", "FATAL")


def log_ids_on_the_bus(settings: Settings, expected: int) -> Counter[str]:
    records = read_topic(settings, settings.topics.logs, expected)
    return Counter(json.loads(record.value)["log_id"] for record in records)


@pytest.mark.parametrize("nanosecond_precision", [False, True], ids=["seconds", "nanoseconds"])
@pytest.mark.parametrize("module", [sender, asyncsender], ids=["FluentSender", "asyncsender"])
def test_fluent_logger_reaches_the_bus(
    settings: Settings, accumulator: Process, module: object, nanosecond_precision: bool
) -> None:
    fluent = module.FluentSender(  # type: ignore[attr-defined]
        "logdeck",
        host="127.0.0.1",
        port=settings.accumulator_port,
        nanosecond_precision=nanosecond_precision,
    )
    logs = [make_log(f"{settings.namespace}-node", LEVELS[i % 4]) for i in range(40)]
    try:
        for record in logs:
            assert fluent.emit("log", record), fluent.last_error
    finally:
        fluent.close()
    assert log_ids_on_the_bus(settings, len(logs)) == Counter(record["log_id"] for record in logs)


async def test_ack_sender_reaches_the_bus_with_every_chunk_acknowledged(
    settings: Settings, accumulator: Process
) -> None:
    client = AckSender("logdeck", port=settings.accumulator_port, batch_size=100)
    logs = [make_log(f"{settings.namespace}-node", LEVELS[i % 4]) for i in range(1000)]
    for record in logs:
        await client.emit("log", record)
    await asyncio.wait_for(client.close(), 30)
    assert client.acked == client.emitted == len(logs)
    records = await read_topic_async(settings, settings.topics.logs, len(logs))
    assert Counter(json.loads(r.value)["log_id"] for r in records) == Counter(
        r["log_id"] for r in logs
    )


async def test_unacknowledged_chunk_is_resent_and_stored_once(
    settings: Settings, stored: Stored, accumulator: Process, indexer: Process
) -> None:
    """A proxy swallows the accumulator's first ack and drops the connection."""
    dropped = asyncio.Event()

    async def relay(
        client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(
            "127.0.0.1", settings.accumulator_port
        )

        async def pump(
            reader: asyncio.StreamReader, writer: asyncio.StreamWriter, acks: bool
        ) -> None:
            while data := await reader.read(65536):
                if acks and not dropped.is_set():
                    dropped.set()  # the chunk reached Kafka, but the client never hears so
                    client_writer.close()
                    upstream_writer.close()
                    return
                writer.write(data)
                await writer.drain()

        await asyncio.gather(
            pump(client_reader, upstream_writer, False),
            pump(upstream_reader, client_writer, True),
            return_exceptions=True,
        )
        client_writer.close()
        upstream_writer.close()

    proxy = await asyncio.start_server(relay, "127.0.0.1", 0)
    port = proxy.sockets[0].getsockname()[1]
    client = AckSender("logdeck", port=port, batch_size=50, ack_timeout=2.0)
    logs = [make_log(f"{settings.namespace}-node", LEVELS[i % 4]) for i in range(200)]
    try:
        for record in logs:
            await client.emit("log", record)
        await asyncio.wait_for(client.close(), 60)
    finally:
        proxy.close()
    assert dropped.is_set()
    assert client.acked == len(logs)

    records = await read_topic_async(settings, settings.topics.logs, len(logs) + 1)
    on_the_bus = Counter(json.loads(r.value)["log_id"] for r in records)
    assert set(on_the_bus) == {r["log_id"] for r in logs}
    assert sum(on_the_bus.values()) > len(logs), "the unacknowledged chunk was not sent again"

    ids = [r["log_id"] for r in logs]
    await asyncio.to_thread(
        wait_until,
        lambda: stored.logs()[0] >= len(ids),
        60,
        "logs in the store",
    )
    total, stored_ids = await asyncio.to_thread(stored.logs)
    assert total == len(ids) and sorted(stored_ids) == sorted(ids)
