"""Kafka's default partitioning, so every bus and every reader agrees where a key lands.

A record with a key goes to partition murmur2(key) mod the partition count, as Kafka's
own clients place it. Readers that own some partitions (the heartbeat monitor, the
alerter's keeper) use the same function to tell which keys are theirs.
"""

from __future__ import annotations

import random
from typing import Final

from aiokafka.partitioner import murmur2

_CACHE_SIZE: Final = 100_000


def key_hash(key: bytes) -> int:
    """The non-negative murmur2 hash Kafka's default partitioner takes modulo the count."""
    return int(murmur2(key)) & 0x7FFFFFFF


def partition_of(key: bytes, count: int) -> int:
    """The partition of `count` a record keyed `key` goes to."""
    return key_hash(key) % count


class KeyHashes:
    """`key_hash` with a bounded cache: publishers see the same node ids over and over."""

    def __init__(self) -> None:
        self._cache: dict[bytes, int] = {}

    def __call__(self, key: bytes | None) -> int:
        """The key's hash; a random one for a record without a key (spread evenly)."""
        if key is None:
            return random.getrandbits(31)
        cached = self._cache.get(key)
        if cached is None:
            if len(self._cache) >= _CACHE_SIZE:
                self._cache.clear()
            cached = self._cache[key] = key_hash(key)
        return cached
