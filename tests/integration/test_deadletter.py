"""Dead letters of a fixed bug are replayed into the store, once, on both backends.

The letters are the ones the accumulator wrote while it took Node's `compressed: "text"`
for an unknown compression: the plain packed entries, kept whole. One chunk is there
twice (its client resent it after a lost ack) and one letter holds a record that is
still invalid today.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from typing import Any

import msgpack

from backend.backends import open_bus, open_store
from backend.bus import Outgoing
from backend.config import Settings
from backend.observe.live import LiveObserver
from backend.schemas import DeadLetter, encode, now_iso
from tests.integration.conftest import Launch
from tests.integration.harness import Process, Stored, connection_flags, snapshot, wait_until
from tests.records import make_log

TEXT_BUG = "unsupported compression 'text'"
LEVELS = ("INFO", "INFO", "WARN", "INFO", "ERROR", "INFO", "FATAL")


def packed(records: list[dict[str, Any]]) -> bytes:
    """PackedForward entries as Node's fluent-logger sends them: `[time, record]` arrays."""
    return b"".join(msgpack.packb([int(time.time()), record]) for record in records)


def old_letter(raw: bytes) -> DeadLetter:
    """A dead letter exactly as the accumulator wrote one for a "text" chunk."""
    return DeadLetter(
        reason=TEXT_BUG,
        source="accumulator",
        raw=raw,
        received_at=now_iso(),
        tag="logdeck.log",
        peer="127.0.0.1:53124",
    )


def publish_letters(settings: Settings, letters: list[DeadLetter]) -> None:
    async def run() -> None:
        bus = open_bus(settings)
        await bus.ensure_topics(settings.topics.all(), settings.topics.compacted())
        publisher = bus.publisher()
        await publisher.start()
        try:
            topic = settings.topics.deadletter
            await publisher.publish([Outgoing(topic, None, encode(each)) for each in letters])
        finally:
            await publisher.stop()
            close = getattr(bus, "close", None)
            if close is not None:
                await close()

    asyncio.run(run())


def run_command(launch: Launch, settings: Settings, *args: str) -> str:
    process: Process = launch("deadletter", *args, *connection_flags(settings))
    code = process.wait(180)
    output = process.output()
    assert code == 0, output
    return output


def summary_of(output: str) -> dict[str, str]:
    """The `name: value` lines of a replay's summary."""
    lines = (line.split(": ", 1) for line in output.splitlines() if ": " in line)
    return {name: value for name, value in lines if not name.startswith(" ")}


def pending_count(settings: Settings, expected: int) -> int | None:
    """What the console's observer counts, once it says `expected` (or after 60 s)."""

    async def run() -> int | None:
        observer = LiveObserver(settings, open_bus(settings), open_store(settings))
        await observer.start()
        try:
            for _ in range(300):
                if observer.dead_letters() == expected:
                    break
                await asyncio.sleep(0.2)
            return observer.dead_letters()
        finally:
            await observer.close()

    return asyncio.run(run())


def test_dead_letters_of_a_fixed_bug_are_replayed_once(
    settings: Settings, launch: Launch, indexer: Process, stored: Stored
) -> None:
    chunks = [
        [make_log(f"node-{n}-{i}", LEVELS[i % len(LEVELS)]) for i in range(size)]
        for n, size in enumerate((8, 7, 5))
    ]
    invalid = make_log("node-bad", "DEBUG")
    letters = [old_letter(packed(chunk)) for chunk in chunks]
    letters.insert(2, old_letter(packed(chunks[1])))  # the same chunk, resent and dead again
    letters.append(old_letter(packed([invalid])))
    publish_letters(settings, letters)
    sent = {record["log_id"] for chunk in chunks for record in chunk}
    assert pending_count(settings, 5) == 5

    output = run_command(launch, settings, "replay")
    first = summary_of(output)
    logs_topic = settings.topics.logs
    assert first["examined"] == "5 dead letters"
    assert first["skipped"] == "0 (replayed before)"
    assert first["replayed"] == "4"
    assert first["published"] == f"27 records ({logs_topic} 27)"
    assert first["still failing"] == "1"
    [reason] = [line for line in output.splitlines() if line.startswith("  ")]
    assert reason.split()[0] == "1" and "DEBUG" in reason

    wait_until(lambda: stored.logs()[0] >= len(sent), 60, f"{len(sent)} logs in the store")
    time.sleep(2)  # the resent chunk's copies, indexed after the first ones
    total, ids = stored.logs()
    assert (total, len(set(ids))) == (len(sent), len(sent))
    assert set(ids) == sent

    second = summary_of(run_command(launch, settings, "replay"))
    assert second["examined"] == "5 dead letters"
    assert second["skipped"] == "4 (replayed before)"
    assert second["replayed"] == "0"
    assert second["published"] == "0 records"
    assert second["still failing"] == "1"
    assert len(snapshot(settings, logs_topic)) == 27
    time.sleep(2)
    assert stored.logs() == (total, ids)

    listed = json.loads(run_command(launch, settings, "list", "--json"))
    assert (listed["pending"], listed["replayed"]) == (1, 4)
    [left] = listed["letters"]
    assert left["reason"] == TEXT_BUG and left["form"] == "entries"
    assert msgpack.unpackb(base64.b64decode(left["raw"]))[1] == invalid
    assert pending_count(settings, 1) == 1
