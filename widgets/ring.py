"""A bounded buffer of the most recent items that counts what it had to drop.

The log feed keeps the last N entries whatever the rate: memory stays flat and the
dropped counter tells the user how much scrolled out, instead of the UI freezing.
Every item gets a sequence number, which counts what arrived and, while items are only
appended, names a row in caches.

Items may also be kept in the order of a key (`merge`): a batch whose items all sort at or
after the newest held is appended, the usual case, at the cost of one comparison; one that
holds a late item is merged into the tail from where that item belongs, so only the items
after it move.
"""

from __future__ import annotations

import heapq
from bisect import bisect_right
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Generic, TypeVar

T = TypeVar("T")
Key = Callable[[T], Any]


class Ring(Generic[T]):
    """The newest `capacity` items, oldest first, with a count of the ones evicted."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self._items: deque[T] = deque(maxlen=capacity)
        self._dropped = 0
        self._end = 0

    @property
    def capacity(self) -> int:
        return self._items.maxlen or 0

    @property
    def dropped(self) -> int:
        """How many items were evicted to make room, since the ring was made."""
        return self._dropped

    @property
    def first_seq(self) -> int:
        """Sequence number of the oldest item held (equals `end_seq` when empty)."""
        return self._end - len(self._items)

    @property
    def end_seq(self) -> int:
        """Sequence number the next item will get."""
        return self._end

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[T]:
        return iter(self._items)

    def __getitem__(self, index: int) -> T:
        return self._items[index]

    def extend(self, items: Iterable[T]) -> int:
        """Append `items`; return how many old items this evicted."""
        batch = list(items)
        return self._put(batch, arrived=len(batch))

    def merge(self, items: Iterable[T], key: Key[T]) -> int:
        """Put `items` in their place by `key` among items already in that order, after
        any that sort equal; return how many of the oldest this evicted."""
        batch = sorted(items, key=key)
        if not batch:
            return 0
        held = self._items
        if not held or key(held[-1]) <= key(batch[0]):
            return self.extend(batch)
        start = bisect_right(held, key(batch[0]), key=key)
        moved = [held.pop() for _ in range(len(held) - start)]
        moved.reverse()
        return self._put(list(heapq.merge(moved, batch, key=key)), arrived=len(batch))

    def _put(self, batch: list[T], *, arrived: int) -> int:
        evicted = max(0, len(self._items) + len(batch) - self.capacity)
        self._items.extend(batch)
        self._end += arrived
        self._dropped += evicted
        return evicted

    def resize(self, capacity: int) -> int:
        """Hold up to `capacity` items from now on, keeping the newest; return how many of
        the oldest this evicted. Sequence numbers go on as they were."""
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        evicted = max(0, len(self._items) - capacity)
        self._items = deque(self._items, maxlen=capacity)
        self._dropped += evicted
        return evicted

    def drain(self) -> list[T]:
        """Take every item out, oldest first."""
        items = list(self._items)
        self._items.clear()
        return items
