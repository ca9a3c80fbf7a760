"""Publishing to Kafka in transactions: records and the consumed offsets commit together."""

from __future__ import annotations

from collections.abc import Sequence

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.errors import IllegalOperation, InvalidProducerEpoch, KafkaError, ProducerFenced

from backend.bus.base import BusUnavailable, Incoming, Outgoing, PublisherFenced
from backend.bus.kafka.clients import ClientOptions, refused, started

_TRANSACTION_TIMEOUT_MS = 10_000
"""How long the broker lets a transaction stay open: a killed service's open transaction
holds back every committed reader of its partitions until the broker aborts it."""
_TRANSACTION_RETRY_MS = 10
"""Kafka 4 answers a transaction's first write that races the markers of the one before
with NOT_ENOUGH_REPLICAS (KIP-890, to clients of the older protocol such as aiokafka),
so this wait comes with nearly every transaction: the default 100 ms would add to every
result's latency."""


class KafkaTransactionalPublisher:
    """Kafka transactions: the records and the group's offsets in one commit.

    Starting a producer with a transactional id bumps the id's epoch: Kafka first settles
    the open transaction of any earlier producer with that id (a crashed or stalled
    instance) and refuses that producer's writes from then on.
    """

    def __init__(
        self, bootstrap: str, transactional_id: str, options: ClientOptions | None = None
    ) -> None:
        self._bootstrap = bootstrap
        self._transactional_id = transactional_id
        self._options = options or {}
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=self._bootstrap,
            transactional_id=self._transactional_id,
            enable_idempotence=True,
            acks="all",
            **self._options,
            retry_backoff_ms=_TRANSACTION_RETRY_MS,
            transaction_timeout_ms=_TRANSACTION_TIMEOUT_MS,
        )
        self._producer = await started(producer, self._bootstrap)

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def commit(
        self, records: Sequence[Outgoing], consumed: Sequence[Incoming], group: str
    ) -> None:
        producer = self._producer
        if producer is None:
            raise RuntimeError("transactional publisher used before start()")
        offsets: dict[TopicPartition, int] = {}
        for done in consumed:
            partition = TopicPartition(done.topic, done.partition)
            offsets[partition] = max(offsets.get(partition, 0), done.offset + 1)
        try:
            async with producer.transaction():
                for record in records:
                    await producer.send(
                        record.topic, record.value, key=record.key, headers=list(record.headers)
                    )
                if offsets:
                    await producer.send_offsets_to_transaction(offsets, group)
        except (ProducerFenced, InvalidProducerEpoch) as error:
            raise PublisherFenced(
                f"another producer took over transactional id {self._transactional_id!r}"
            ) from error
        except KafkaError as error:
            raise refused(error, "a transaction", "Kafka transaction failed") from error
        except IllegalOperation as error:
            raise BusUnavailable(f"Kafka transaction failed: {error!r}") from error
