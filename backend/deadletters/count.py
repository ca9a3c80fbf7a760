"""How many dead letters wait for a replay, counted while both topics are read from the start.

Markers live in a compacted topic and stay; letters age out of theirs. So pending is not
letters minus markers but letters minus the markers that name a letter this reader has
seen. Letters are read in offset order per partition, which lets a partition's letters
be kept as a range and a count instead of one entry per letter: a marker names one of
them exactly when its offset is inside the range. A marker read before its letter waits
until the range reaches it; one below the range names a letter gone before the reader
started.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

from backend.bus import Incoming
from backend.config import Topics


@dataclass(slots=True)
class _Range:
    first: int
    last: int


@dataclass(slots=True)
class PendingCount:
    topics: Topics
    letters: int = 0
    matched: int = 0
    _ranges: dict[int, _Range] = field(default_factory=dict)
    _markers: set[str] = field(default_factory=set)
    _waiting: dict[int, list[int]] = field(default_factory=dict)

    @property
    def pending(self) -> int:
        return self.letters - self.matched

    def add(self, record: Incoming) -> None:
        if record.topic == self.topics.deadletter:
            self._letter(record.partition, record.offset)
        elif record.topic == self.topics.deadletter_replays and record.key is not None:
            self._marker(record.key.decode("utf-8", "replace"))

    def _letter(self, partition: int, offset: int) -> None:
        self.letters += 1
        span = self._ranges.get(partition)
        if span is None:
            span = self._ranges[partition] = _Range(offset, offset)
        span.last = max(span.last, offset)
        waiting = self._waiting.get(partition)
        while waiting and waiting[0] <= span.last:
            if heapq.heappop(waiting) >= span.first:
                self.matched += 1

    def _marker(self, key: str) -> None:
        if key in self._markers:
            return
        partition_text, _, offset_text = key.partition(":")
        try:
            partition, offset = int(partition_text), int(offset_text)
        except ValueError:
            return
        self._markers.add(key)
        span = self._ranges.get(partition)
        if span is None or offset > span.last:
            heapq.heappush(self._waiting.setdefault(partition, []), offset)
        elif offset >= span.first:
            self.matched += 1
