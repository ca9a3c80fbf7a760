"""The silences as of the records read so far: what a notifier, monitor or console keeps
current from a tail of the silences topic."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from typing import Protocol

from backend.schemas import Alert, InvalidRecord, Silence, decode_as
from backend.silences.matching import active_maintenance, is_active, moment, silencing

log = logging.getLogger("logdeck.silences")


class Record(Protocol):
    """A record of the silences topic, as any bus hands it over."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes: ...


class SilenceBook:
    """The latest record of every silence, by silence_id; no I/O and no clock of its own."""

    def __init__(self, records: Iterable[Record] = ()) -> None:
        self._silences: dict[str, Silence] = {}
        for record in records:
            self.apply(record)

    def __len__(self) -> int:
        return len(self._silences)

    def apply(self, record: Record) -> Silence | None:
        """Take one record of the topic (read in order); the silence it holds, if any.

        A tombstone (no value) forgets its key; a record that is not a silence is skipped
        with a warning, so one bad record cannot hide the others.
        """
        if not record.value:
            self._silences.pop(record.key.decode() if record.key else "", None)
            return None
        try:
            silence = decode_as(record.value, Silence)
        except InvalidRecord as error:
            where = f"{record.topic}[{record.partition}]@{record.offset}"
            log.warning("skipped %s: not a silence: %s", where, error)
            return None
        self.put(silence)
        return silence

    def put(self, silence: Silence) -> None:
        """Take a silence already decoded (the console's feed hands them over so)."""
        self._silences[silence.silence_id] = silence

    def get(self, silence_id: str) -> Silence | None:
        return self._silences.get(silence_id)

    def silences(self) -> list[Silence]:
        """Every silence, expired ones too, in no particular order."""
        return list(self._silences.values())

    def listing(self, at: datetime) -> list[Silence]:
        """Active silences first (soonest to end first), then the rest (latest ended first)."""
        active = [s for s in self._silences.values() if is_active(s, at)]
        others = [s for s in self._silences.values() if not is_active(s, at)]
        active.sort(key=lambda silence: moment(silence.ends_at))
        others.sort(key=lambda silence: moment(silence.ends_at), reverse=True)
        return active + others

    def silencing(self, alert: Alert, at: datetime) -> Silence | None:
        """The silence that covers `alert` at `at`, if any (see `matching.silencing`)."""
        return silencing(self._silences.values(), alert, at)

    def maintenance(self, at: datetime) -> set[str]:
        """The nodes under a maintenance window at `at`."""
        return active_maintenance(self._silences.values(), at)
