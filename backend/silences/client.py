"""Silences on the bus: adding, expiring and listing them, and keeping a book current.

The state is the compacted silences topic, keyed by silence_id: every copy of every
service, and every command line, reads the same silences from it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final

import msgspec

from backend.bus import Bus, Outgoing, Publisher, Subscription
from backend.config import Settings
from backend.schemas import Matcher, MatcherName, Silence, encode, iso_millis
from backend.silences.book import SilenceBook
from backend.silences.matching import active_maintenance, moment
from backend.silences.parsing import end_of, new_silence

_TAIL_RECORDS: Final = 1000


class UnknownSilence(LookupError):
    """No silence has this id."""


def maintenance_of(node_id: str, book: SilenceBook, at: datetime) -> list[Silence]:
    """The maintenance windows of `node_id` in force at `at`."""
    return [silence for silence in book.silences() if node_id in active_maintenance([silence], at)]


class SilenceClient:
    """Reads and writes the silences topic; `close()` when done."""

    def __init__(self, settings: Settings, bus: Bus) -> None:
        self._settings = settings
        self._bus = bus
        self._publisher: Publisher | None = None
        self._topics_ready = False

    async def book(self) -> SilenceBook:
        """Every silence the topic holds now, expired ones too."""
        await self._ensure_topics()
        return SilenceBook(await self._bus.snapshot(self._settings.topics.silences))

    async def add(self, silence: Silence) -> Silence:
        """Publish `silence`; it is in force once the bus has it (`BusUnavailable` if not)."""
        await self._publish(silence)
        return silence

    async def expire(self, silence_id: str, now: datetime) -> tuple[Silence, bool]:
        """End the silence `silence_id` at `now`: the silence, and whether it was in force.

        `UnknownSilence` if no silence has that id; one that has already ended is left as
        it is, so it keeps the time it really ended.
        """
        silence = (await self.book()).get(silence_id)
        if silence is None:
            raise UnknownSilence(silence_id)
        if moment(silence.ends_at) <= now:
            return silence, False
        return await self._end(silence, now), True

    async def start_maintenance(
        self, node_id: str, duration: timedelta, *, by: str, comment: str, now: datetime
    ) -> Silence:
        """Put `node_id` in maintenance until `now + duration`.

        A window already open for the node is extended (or shortened) rather than doubled.
        """
        current = maintenance_of(node_id, await self.book(), now)
        if current:
            window = msgspec.structs.replace(current[0], ends_at=end_of(now, duration))
            for other in current[1:]:
                await self._end(other, now)
            return await self.add(window)
        matcher = Matcher(name=MatcherName.NODE, value=node_id)
        silence = new_silence(
            [matcher], duration, comment=comment, by=by, now=now, maintenance=True
        )
        return await self.add(silence)

    async def end_maintenance(self, node_id: str, now: datetime) -> list[Silence]:
        """End every maintenance window of `node_id` in force; those ended (maybe none)."""
        return [
            await self._end(silence, now)
            for silence in maintenance_of(node_id, await self.book(), now)
        ]

    async def close(self) -> None:
        if self._publisher is not None:
            await self._publisher.stop()
            self._publisher = None

    async def _end(self, silence: Silence, now: datetime) -> Silence:
        ends_at = max(now, moment(silence.starts_at))
        ended = msgspec.structs.replace(silence, ends_at=iso_millis(ends_at))
        await self._publish(ended)
        return ended

    async def _publish(self, silence: Silence) -> None:
        if self._publisher is None:
            await self._ensure_topics()
            publisher = self._bus.publisher()
            await publisher.start()
            self._publisher = publisher
        topic = self._settings.topics.silences
        record = Outgoing(topic, silence.silence_id.encode(), encode(silence))
        await self._publisher.publish([record])

    async def _ensure_topics(self) -> None:
        if not self._topics_ready:
            topics = self._settings.topics
            await self._bus.ensure_topics(topics.all(), topics.compacted())
            self._topics_ready = True


class SilenceWatch:
    """A `SilenceBook` kept current from a tail of the silences topic, for a service's loop.

    `start()` reads the topic whole; each `refresh()` takes what was published since,
    without waiting. Nothing published after `start()` is missed: the tail starts first.
    """

    def __init__(self, settings: Settings, bus: Bus) -> None:
        self._settings = settings
        self._bus = bus
        self._tail: Subscription | None = None
        self._read: dict[int, int] = {}
        self.book = SilenceBook()

    async def start(self) -> None:
        topic = self._settings.topics.silences
        tail = self._bus.tail([topic])
        await tail.start()
        self._tail = tail
        records = await self._bus.snapshot(topic)
        self.book = SilenceBook(records)
        self._read = {}
        for record in records:
            self._read[record.partition] = max(record.offset, self._read.get(record.partition, -1))

    async def refresh(self) -> None:
        """Apply every record published since the last look (`BusUnavailable` if cut off)."""
        if self._tail is None:
            raise RuntimeError("SilenceWatch used before start()")
        for record in await self._tail.poll(_TAIL_RECORDS, timeout_ms=0):
            if record.offset > self._read.get(record.partition, -1):
                self.book.apply(record)

    async def stop(self) -> None:
        if self._tail is not None:
            await self._tail.stop()
            self._tail = None
