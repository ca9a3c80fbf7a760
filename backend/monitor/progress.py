"""How far the monitor has read each partition it owns: no silence is judged beyond that."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from aiokafka import TopicPartition
from aiokafka.errors import IllegalStateError
from aiokafka.partitioner import murmur2

from backend.bus import Incoming
from backend.monitor.registry import Observed


class Progress:
    """How far the monitor has read each partition it owns, on the monitor's clock.

    A partition is caught up when the consumer's position has reached the end offset
    (the last stable offset: the subscription reads committed records only) that the
    broker's latest fetch response reported for it. Everything written before that
    response has then been read, so the response's time becomes the partition's horizon.
    Fetch responses come at least every fetch wait (0.5 s) while the broker answers; when
    it stops answering or the monitor falls behind, horizons stop moving, and so does the
    judging of silence. `since` is when a partition was first caught up after the
    monitor gained it: the start of every node's grace.
    """

    def __init__(self, consumer: Any, topics: Sequence[str]) -> None:
        self._consumer = consumer
        self._topics = tuple(topics)
        self._owned: set[TopicPartition] = set()
        self._caught_up: set[TopicPartition] = set()
        self._horizon: dict[TopicPartition, float] = {}
        self._since: dict[TopicPartition, float] = {}
        self._seen_on: dict[str, dict[str, int]] = {}
        self._lanes: dict[str, tuple[TopicPartition, ...]] = {}

    @property
    def owned(self) -> int:
        return len(self._owned)

    @property
    def caught_up(self) -> int:
        return len(self._caught_up)

    async def refresh(self, now: float) -> set[TopicPartition]:
        """Take in the assignment and how far each owned partition is read; the gained ones."""
        owned = set(self._consumer.assignment())
        gained = owned - self._owned
        lost = self._owned - owned
        for partition in lost:
            self._horizon.pop(partition, None)
            self._since.pop(partition, None)
        if gained or lost:
            self._lanes.clear()  # a rebalance may follow a change of partition counts
        self._owned = owned
        self._caught_up = set()
        wall = time.time()
        for partition in owned:
            age = await self._read_through(partition, wall)
            if age is None:
                continue
            self._caught_up.add(partition)
            # A horizon stays true once reached (those records were read), so it only grows.
            horizon = now - max(0.0, age)
            self._horizon[partition] = max(horizon, self._horizon.get(partition, horizon))
            self._since.setdefault(partition, now)
        return gained

    async def _read_through(self, partition: TopicPartition, wall: float) -> float | None:
        """Seconds since the fetch response whose end the position has reached, if it has."""
        consumer = self._consumer
        if partition not in consumer.assignment():
            return None
        polled_ms = consumer.last_poll_timestamp(partition)
        end = consumer.last_stable_offset(partition)
        if end is None or end < 0:
            end = consumer.highwater(partition)
        if polled_ms is None or end is None:
            return None  # not fetched yet since it was assigned
        try:
            position = await consumer.position(partition)
        except IllegalStateError:
            return None  # revoked meanwhile
        return wall - polled_ms / 1000 if position >= end else None

    def note(self, node_id: str, record: Incoming) -> None:
        """Where this node's records really are (its partition in each topic)."""
        seen = self._seen_on.setdefault(node_id, {})
        if seen.get(record.topic) != record.partition:
            seen[record.topic] = record.partition
            self._lanes.pop(node_id, None)

    def lanes(self, node_id: str) -> tuple[TopicPartition, ...] | None:
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
                count = len(self._consumer.partitions_for_topic(topic) or ())
                if not count:
                    return None
                partition = (murmur2(node_id.encode()) & 0x7FFFFFFF) % count
            lanes.append(TopicPartition(topic, partition))
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
