"""Replaying dead letters through today's decoder and router, so a fixed bug loses nothing.

Each pending letter's raw bytes go through `ForwardDecoder` and the accumulator's
`Router`: what passes now is published to its topic, what still fails is only counted
(its letter stays pending; no new dead letter is written). A letter whose every part
passed is marked replayed, and only after its records were acknowledged: a crash in
between republishes them on the next run, which the indexer (`_id` = log_id) and the
alerter (one match per log_id) take once.

A letter that passes only in part has its passing records published on every run until
the rest passes too; that is the price of never holding good records back.
"""

from __future__ import annotations

import socket
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from backend.accumulator import Router
from backend.bus import Bus, Outgoing
from backend.config import Settings
from backend.deadletters.forms import decode
from backend.deadletters.letters import LetterFilter, StoredLetter, marker, read_pending
from backend.schemas import DeadLetter, InvalidRecord, decode_as

NOT_FORWARD_INPUT: Final = (
    "not replayed: its raw bytes are a Kafka record the indexer refused, not Forward input"
)
_BATCH_LETTERS = 500
_BATCH_RECORDS = 5000

Progress = Callable[[int, int], None]
"""Told (letters done, letters in all) as a replay goes on."""


@dataclass(slots=True)
class ReplaySummary:
    examined: int = 0
    """Letters the filter selected, replayed before or not."""
    skipped: int = 0
    """Replayed before."""
    replayed: int = 0
    """Letters whose every record is now on its topic."""
    published: Counter[str] = field(default_factory=Counter)
    """Records published, per topic."""
    failing: int = 0
    """Letters with something that still fails; they stay pending."""
    partly: int = 0
    """Failing letters some of whose records passed and were published."""
    reasons: Counter[str] = field(default_factory=Counter)
    """Failing letters by reason (a letter failing for two reasons counts under both)."""
    unreadable: int = 0
    """Records of the dead-letter topic that are not dead letters."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """One letter through today's decoder and router."""

    records: list[Outgoing]
    reasons: list[str]


class Replayer:
    """Turns letters into the records the accumulator would publish for them today."""

    def __init__(self, settings: Settings) -> None:
        self._deadletter = settings.topics.deadletter
        self._router = Router(settings, f"deadletter-replay@{socket.gethostname()}")

    def outcome(self, stored: StoredLetter) -> Outcome:
        letter = stored.letter
        if letter.source == "indexer":
            return Outcome([], [NOT_FORWARD_INPUT])
        routed = self._router.route(decode(letter.raw, letter.tag or ""), letter.peer or "")
        records = [record for record in routed if record.topic != self._deadletter]
        reasons = [_reason(record) for record in routed if record.topic == self._deadletter]
        return Outcome(records, reasons)


def _reason(record: Outgoing) -> str:
    try:
        return decode_as(record.value, DeadLetter).reason
    except InvalidRecord as error:
        return str(error)


async def replay(
    bus: Bus, settings: Settings, selected: LetterFilter, progress: Progress | None = None
) -> ReplaySummary:
    """Replay the selected pending letters; `BusUnavailable` if the bus cannot be used."""
    topics = settings.topics
    pending = await read_pending(bus, topics, selected)
    summary = ReplaySummary(
        examined=len(pending.letters) + pending.replayed,
        skipped=pending.replayed,
        unreadable=pending.unreadable,
    )
    replayer = Replayer(settings)
    publisher = bus.publisher()
    await publisher.start()
    try:
        records: list[Outgoing] = []
        markers: list[Outgoing] = []
        total = len(pending.letters)
        for done, stored in enumerate(pending.letters, 1):
            outcome = replayer.outcome(stored)
            records += outcome.records
            published = Counter(record.topic for record in outcome.records)
            summary.published += published
            if outcome.reasons:
                summary.failing += 1
                summary.partly += bool(outcome.records)
                summary.reasons.update(set(outcome.reasons))
            else:
                summary.replayed += 1
                markers.append(marker(topics, stored, dict(published)))
            if done == total or len(markers) >= _BATCH_LETTERS or len(records) >= _BATCH_RECORDS:
                await publisher.publish(records)
                await publisher.publish(markers)  # only once the records are acknowledged
                records, markers = [], []
                if progress is not None:
                    progress(done, total)
    finally:
        await publisher.stop()
    return summary
