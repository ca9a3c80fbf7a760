"""One validation at the door, on both backends: what the accumulator acknowledges as valid,
the indexer stores field for field; what a store could not hold, or would keep on a day
of its own outside the retention, is dead-lettered by the accumulator with the reason.

Each refused record here was once acknowledged and then lost: NaN and infinities written
as null, years the stores refuse (9999 with an offset even stopped the embedded indexer),
names longer than Elasticsearch's terms and ids, a log larger than a Kafka record (resent
forever, its chunk never acknowledged), and logs dated decades ahead or long past the
retention.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from backend.config import Settings
from backend.forward.sender import AckSender
from backend.schemas import DeadLetter, decode_as, iso_millis, validate_record
from tests.integration.harness import Process, Stored, read_topic, wait_until
from tests.records import make_log

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC)


def accepted() -> list[dict[str, Any]]:
    """Values at the edges that both stores hold."""
    return [
        make_log(message="m" * 900_000),
        make_log(level="WARN", response_time_ms=3.4e38, threshold_limit_ms=-0.0),
        make_log(level="WARN", response_time_ms=2**64 - 1, threshold_limit_ms=1),
        make_log(message="nul \x00 escape \x1b[31m bell \x07 line\u2028sep", node_id="n\x01"),
        make_log(message="", log_id="x" * 500 + NOW.strftime("%H%M%S%f")),
        make_log(service_name="s" * 512, level="ERROR"),
        make_log(timestamp=(NOW + timedelta(hours=5, minutes=30)).strftime("%Y-%m-%dT%H:%M+05:30")),
        make_log(timestamp=NOW.strftime("%Y-%m-%dT%H:%M:%S.%f123Z")),
        make_log(timestamp=iso_millis(NOW + timedelta(hours=23))),
        make_log(timestamp=iso_millis(NOW - timedelta(days=6))),
    ]


def refused() -> list[tuple[dict[str, Any], str]]:
    """Records the accumulator must dead-letter, with a part of each reason."""
    nan, inf = float("nan"), float("inf")
    return [
        (make_log(level="WARN", response_time_ms=nan), "`response_time_ms` must be a finite"),
        (make_log(response_time_ms=inf), "`response_time_ms` must be a finite"),
        (make_log(level="WARN", threshold_limit_ms=-inf), "`threshold_limit_ms` must be a finite"),
        (make_log(level="WARN", response_time_ms=1e39), "`response_time_ms` must be a finite"),
        (make_log(timestamp="0001-01-01T00:00:00.000Z"), "outside 1970-2099"),
        (make_log(timestamp="9999-12-31T23:59:59.999Z"), "outside 1970-2099"),
        (make_log(timestamp="9999-12-31T23:59:59-01:00"), "outside 1970-2099"),
        (make_log(timestamp=NOW.strftime("%Y-%m-%d %H:%M:%SZ")), "not ISO 8601"),
        (make_log(log_id="i" * 513), "`log_id` is 513 bytes"),
        (make_log(node_id="n" * 40_000, message="m"), "`node_id` is 40000 bytes"),
        (make_log(message="m" * 1_500_000), "key and headers); at most 1000000 fit"),
        (make_log(timestamp="2099-01-01T00:00:00.000Z"), "timestamp too far ahead"),
        (make_log(timestamp=iso_millis(NOW + timedelta(days=2))), "timestamp too far ahead"),
        (make_log(timestamp=iso_millis(NOW - timedelta(days=30))), "timestamp older than"),
    ]


async def send(settings: Settings, records: list[dict[str, Any]]) -> None:
    """Every record through the acknowledging sender; all of its chunks acknowledged."""
    client = AckSender("logdeck", port=settings.accumulator_port, batch_size=5)
    for record in records:
        await client.emit("log", record)
    await asyncio.wait_for(client.close(), 60)
    assert client.acked == client.emitted == len(records)


def test_what_is_acknowledged_as_valid_is_stored_and_the_rest_dead_lettered_with_why(
    settings: Settings, accumulator: Process, indexer: Process, stored: Stored
) -> None:
    good, bad = accepted(), refused()
    heartbeat = {
        "node_id": "ahead-01",
        "message_type": "HEARTBEAT",
        "status": "UP",
        "timestamp": "2099-01-01T00:00:00.000Z",
    }
    mixed = [*good, *(record for record, _ in bad), heartbeat]
    asyncio.run(send(settings, mixed))

    letters = [
        decode_as(record.value, DeadLetter)
        for record in read_topic(settings, settings.topics.deadletter, len(bad) + 1, 60)
    ]
    assert len(letters) == len(bad) + 1, [letter.reason for letter in letters]
    assert {letter.source for letter in letters} == {"accumulator"}

    def reason_of(name: str) -> str:
        """The reason of the letter whose raw bytes (perhaps cut) name `name`."""
        [reason] = [letter.reason for letter in letters if name.encode() in letter.raw]
        return reason

    for record, why in bad:
        assert why in reason_of(record["log_id"]), (why, reason_of(record["log_id"]))
    assert reason_of("ahead-01").startswith("timestamp too far ahead")

    wait_until(lambda: stored.logs()[0] >= len(good), 90, f"{len(good)} logs in the store")
    expected = {record["log_id"]: validate_record(record) for record in good}
    logs = {log.log_id: log for log in stored.full_logs()}
    assert logs == expected
    later = read_topic(settings, settings.topics.deadletter, len(letters) + 1, 3)
    assert [decode_as(r.value, DeadLetter).reason for r in later[len(letters) :]] == []
