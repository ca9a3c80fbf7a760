"""The dead letters on the bus, which of them were replayed, and which a person asked for.

A letter is named by where it sits in the dead-letter topic (`partition:offset`); a
successful replay writes a marker under that name to the compacted replay topic. The
dead-letter topic itself is never rewritten, so what is pending is the letters minus
the markers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import msgspec

from backend.bus import Bus, Outgoing
from backend.config import Topics
from backend.schemas import DeadLetter, InvalidRecord, decode_as, encode, now_iso


def letter_key(partition: int, offset: int) -> str:
    """A dead letter's name: where it sits in the dead-letter topic."""
    return f"{partition}:{offset}"


@dataclass(frozen=True, slots=True)
class StoredLetter:
    """A dead letter and where it sits."""

    partition: int
    offset: int
    letter: DeadLetter

    @property
    def key(self) -> str:
        return letter_key(self.partition, self.offset)


class ReplayMarker(msgspec.Struct, frozen=True):
    """Written once a letter's records are on their topics: later replays leave it be."""

    replayed_at: str
    published: dict[str, int]
    """Records published per topic."""


def marker(topics: Topics, stored: StoredLetter, published: dict[str, int]) -> Outgoing:
    value = encode(ReplayMarker(replayed_at=now_iso(), published=published))
    return Outgoing(topics.deadletter_replays, stored.key.encode(), value)


@dataclass(frozen=True, slots=True)
class LetterFilter:
    """Which letters a command is about; empty fields match every letter."""

    reason: str = ""
    """A part of the reason, in any case."""
    since: datetime | None = None
    """Received at or after this moment."""

    def matches(self, letter: DeadLetter) -> bool:
        if self.reason and self.reason.casefold() not in letter.reason.casefold():
            return False
        if self.since is None:
            return True
        try:
            received = datetime.fromisoformat(letter.received_at)
        except ValueError:
            return False
        return received.tzinfo is not None and received >= self.since


@dataclass(slots=True)
class Pending:
    """The letters a filter selects, split into those still pending and those replayed."""

    letters: list[StoredLetter] = field(default_factory=list)
    """Pending, oldest first."""
    replayed: int = 0
    """Selected, but replayed already."""
    unreadable: int = 0
    """Records of the dead-letter topic that are not dead letters at all."""


async def read_pending(bus: Bus, topics: Topics, selected: LetterFilter) -> Pending:
    """The selected letters on the bus now, and which of them were replayed.

    `BusUnavailable` when the bus cannot be reached.
    """
    await bus.ensure_topics(topics.all(), topics.compacted())
    done = {
        record.key.decode("utf-8", "replace")
        for record in await bus.snapshot(topics.deadletter_replays)
        if record.key is not None
    }
    pending = Pending()
    for record in await bus.snapshot(topics.deadletter):
        try:
            letter = decode_as(record.value, DeadLetter)
        except InvalidRecord:
            pending.unreadable += 1
            continue
        if not selected.matches(letter):
            continue
        stored = StoredLetter(record.partition, record.offset, letter)
        if stored.key in done:
            pending.replayed += 1
        else:
            pending.letters.append(stored)
    pending.letters.sort(key=lambda s: (s.letter.received_at, s.partition, s.offset))
    return pending
