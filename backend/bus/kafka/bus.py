"""The bus on Kafka: the one place its clients get the broker's address and security."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from backend.bus.base import Incoming, Lane
from backend.bus.kafka.clients import ClientOptions
from backend.bus.kafka.health import kafka_healthy
from backend.bus.kafka.lag import group_lags
from backend.bus.kafka.publisher import KafkaPublisher
from backend.bus.kafka.snapshot import read_ranges, snapshot
from backend.bus.kafka.subscription import KafkaSubscription, KafkaTail
from backend.bus.kafka.topics import ensure_topics
from backend.bus.kafka.transactions import KafkaTransactionalPublisher
from backend.security import KafkaSecurity


class KafkaBus:
    def __init__(
        self, bootstrap: str, partitions: int = 6, security: KafkaSecurity | None = None
    ) -> None:
        self._bootstrap = bootstrap
        self._partitions = partitions
        self._options: ClientOptions = (security or KafkaSecurity()).client_options()

    async def ensure_topics(self, topics: Sequence[str], compacted: Sequence[str] = ()) -> None:
        """Create the missing topics (see `backend.bus.kafka.topics` on their retention)."""
        await ensure_topics(self._bootstrap, self._options, self._partitions, topics, compacted)

    async def healthy(self) -> bool:
        return await kafka_healthy(self._bootstrap, self._options)

    async def lags(self, groups: Mapping[str, Sequence[str]]) -> dict[str, int | None]:
        return await group_lags(self._bootstrap, self._options, groups)

    async def dropped_unread(self) -> None:
        """Not known: the broker deletes by its retention whatever the groups have read."""
        return None

    async def snapshot(self, topic: str) -> list[Incoming]:
        return await snapshot(self._bootstrap, self._options, topic)

    async def read_ranges(self, ranges: Mapping[Lane, tuple[int, int]]) -> list[Incoming]:
        return await read_ranges(self._bootstrap, self._options, ranges)

    def publisher(self) -> KafkaPublisher:
        return KafkaPublisher(self._bootstrap, self._options)

    def subscription(
        self, topics: Sequence[str], group: str | None, *, from_beginning: bool = True
    ) -> KafkaSubscription:
        return KafkaSubscription(
            self._bootstrap, topics, group, from_beginning, options=self._options
        )

    def transactional_publisher(self, transactional_id: str) -> KafkaTransactionalPublisher:
        return KafkaTransactionalPublisher(self._bootstrap, transactional_id, self._options)

    def tail(self, topics: Sequence[str]) -> KafkaTail:
        return KafkaTail(self._bootstrap, topics, self._options)
