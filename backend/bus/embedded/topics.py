"""The topics of a bus file and the lanes of their partitions, as one process knows them."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from backend.bus.base import Lane
from backend.bus.embedded.schema import marks
from backend.sqlite import transaction


@dataclass(frozen=True, slots=True)
class Topic:
    name: str
    compacted: bool
    lanes: tuple[int, ...]
    """The lane of each partition, by partition number."""

    def lane(self, partition: int) -> int | None:
        """The lane of `partition`; None if the topic has no such partition."""
        return self.lanes[partition] if 0 <= partition < len(self.lanes) else None


class Topics:
    """What this process knows of the file's topics: a cache, since topics are never deleted
    nor resized, so what is known of them stays true.

    The methods that take a connection run on the worker thread; they remember only what
    the file holds once committed (a topic read in a transaction that may roll back is not).
    `partitions` is the count for the topics created here.
    """

    def __init__(self, partitions: int) -> None:
        self.partitions = partitions
        self._topics: dict[str, Topic] = {}
        self._lane_names: dict[int, Lane] = {}

    def get(self, name: str) -> Topic | None:
        """The topic, if known."""
        return self._topics.get(name)

    def has_all(self, names: Iterable[str]) -> bool:
        return all(name in self._topics for name in names)

    def lane_name(self, lane: int) -> Lane | None:
        """The topic and partition of a known lane."""
        return self._lane_names.get(lane)

    def ensure(
        self, names: Sequence[str], compacted: frozenset[str], conn: sqlite3.Connection
    ) -> None:
        """Create the topics among `names` the file does not hold yet."""
        with transaction(conn, write=True):
            for name in names:
                self.create(conn, name, name in compacted)
        self.remember(self._load(conn, names))

    def create(self, conn: sqlite3.Connection, name: str, compacted: bool) -> None:
        """Create `name` with `partitions` lanes unless it exists (in the caller's transaction)."""
        created = conn.execute(
            "INSERT OR IGNORE INTO topics (name, partitions, compacted) VALUES (?, ?, ?)",
            (name, self.partitions, int(compacted)),
        )
        if created.rowcount == 1:
            conn.executemany(
                "INSERT INTO lanes (topic, partition, next_offset) VALUES (?, ?, 0)",
                [(name, partition) for partition in range(self.partitions)],
            )

    def for_write(self, conn: sqlite3.Connection, names: set[str]) -> dict[str, Topic]:
        """The topics `names`, created (not compacted) where missing, like Kafka's auto-create.

        Inside the caller's write transaction: `remember` them once it has committed.
        """
        topics = {name: self._topics[name] for name in names if name in self._topics}
        missing = [name for name in names if name not in topics]
        if missing:
            for name in missing:
                self.create(conn, name, False)
            topics.update(self._load(conn, missing))
        return topics

    def known(self, conn: sqlite3.Connection, names: Sequence[str]) -> dict[str, Topic]:
        """The topics among `names` that exist, as committed (so cached)."""
        missing = [name for name in names if name not in self._topics]
        if missing:
            self.remember(self._load(conn, missing))
        return {name: self._topics[name] for name in names if name in self._topics}

    def all(self, conn: sqlite3.Connection) -> list[Topic]:
        """Every topic the file holds."""
        with transaction(conn, write=False):
            names = [name for (name,) in conn.execute("SELECT name FROM topics")]
            return list(self.known(conn, names).values())

    def remember(self, topics: dict[str, Topic]) -> None:
        for topic in topics.values():
            for partition, lane in enumerate(topic.lanes):
                self._lane_names[lane] = (topic.name, partition)
            self._topics[topic.name] = topic

    def _load(self, conn: sqlite3.Connection, names: Sequence[str]) -> dict[str, Topic]:
        """The topics among `names` the file holds (no cache: the caller may roll back)."""
        if not names:
            return {}
        found: dict[str, tuple[bool, list[int]]] = {}
        rows = conn.execute(
            "SELECT t.name, t.compacted, l.id FROM topics t JOIN lanes l ON l.topic = t.name"
            f" WHERE t.name IN ({marks(len(names))}) ORDER BY t.name, l.partition",
            tuple(names),
        )
        for name, compacted, lane in rows:
            found.setdefault(name, (bool(compacted), []))[1].append(lane)
        return {
            name: Topic(name, compacted, tuple(lanes)) for name, (compacted, lanes) in found.items()
        }
