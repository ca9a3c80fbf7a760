"""How far the monitor has read each partition it owns: no silence is judged beyond that."""

from __future__ import annotations

import time
from collections.abc import Sequence

from backend.bus import Incoming, Lane, Subscription
from backend.bus.partitioning import partition_of
from backend.monitor.registry import Observed


class Progress:
    """How far the monitor has read each partition it owns, on the monitor's clock.

    A partition is caught up when the subscription reports the time up to which it has
    read everything published to it (`Subscription.read_through`); that time, moved to
    the monitor's clock, becomes the partition's horizon. When the bus stops answering
    or the monitor falls behind, horizons stop moving, and so does the judging of
    silence. `since` is when a partition was first caught up after the monitor gained
    it: the start of every node's grace.
    """

    def __init__(self, subscription: Subscription, topics: Sequence[str]) -> None:
        self._subscription = subscription
        self._topics = tuple(topics)
        self._owned: frozenset[Lane] = frozenset()
        self._caught_up: set[Lane] = set()
        self._horizon: dict[Lane, float] = {}
        self._since: dict[Lane, float] = {}
        self._seen_on: dict[str, dict[str, int]] = {}
        self._lanes: dict[str, tuple[Lane, ...]] = {}

    @property
    def owned(self) -> int:
        return len(self._owned)

    @property
    def caught_up(self) -> int:
        return len(self._caught_up)

    async def refresh(self, now: float) -> set[Lane]:
        """Take in the assignment and how far each owned partition is read; the gained ones."""
        owned = self._subscription.assignment()
        gained = set(owned - self._owned)
        lost = self._owned - owned
        for lane in lost:
            self._horizon.pop(lane, None)
            self._since.pop(lane, None)
        if gained or lost:
            self._lanes.clear()  # a rebalance may follow a change of partition counts
        self._owned = owned
        self._caught_up = set()
        wall = time.time()
        for lane in owned:
            through = await self._subscription.read_through(lane)
            if through is None:
                continue
            self._caught_up.add(lane)
            # A horizon stays true once reached (those records were read), so it only grows.
            horizon = now - max(0.0, wall - through)
            self._horizon[lane] = max(horizon, self._horizon.get(lane, horizon))
            self._since.setdefault(lane, now)
        return gained

    def note(self, node_id: str, record: Incoming) -> None:
        """Where this node's records really are (its partition in each topic)."""
        seen = self._seen_on.setdefault(node_id, {})
        if seen.get(record.topic) != record.partition:
            seen[record.topic] = record.partition
            self._lanes.pop(node_id, None)

    def forget(self, node_id: str) -> None:
        """A retired node: nothing about it is kept."""
        self._seen_on.pop(node_id, None)
        self._lanes.pop(node_id, None)

    def lanes(self, node_id: str) -> tuple[Lane, ...] | None:
        """The node's partition in each topic: as seen, else where its key hashes to.

        The guess follows Kafka's default partitioner (murmur2 of the key), which the
        accumulator uses; None while the topics' partition counts are not known yet.
        """
        cached = self._lanes.get(node_id)
        if cached is not None:
            return cached
        seen = self._seen_on.get(node_id, {})
        lanes = []
        for topic in self._topics:
            partition = seen.get(topic)
            if partition is None:
                count = self._subscription.partition_count(topic)
                if not count:
                    return None
                partition = partition_of(node_id.encode(), count)
            lanes.append((topic, partition))
        found = self._lanes[node_id] = tuple(lanes)
        return found

    def observe(self, node_id: str) -> Observed | None:
        """How far everything about `node_id` is read; None if any of it is not owned or read."""
        lanes = self.lanes(node_id)
        if lanes is None or any(lane not in self._horizon for lane in lanes):
            return None
        return Observed(
            horizon=min(self._horizon[lane] for lane in lanes),
            since=max(self._since[lane] for lane in lanes),
        )
