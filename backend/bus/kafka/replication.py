"""How many copies a topic keeps, from how many brokers the cluster has."""

from __future__ import annotations

from typing import NamedTuple

MOST_REPLICAS = 3


class Replication(NamedTuple):
    factor: int
    min_insync: int
    """Replicas that must have a record before an acks=all producer hears it was written."""


def replication_for(brokers: int) -> Replication:
    """Three copies where there are three brokers, written to two before the ack, so one
    broker may fail without losing an acknowledged record or stopping the producers;
    one copy on a single broker (a test or a laptop)."""
    factor = max(1, min(MOST_REPLICAS, brokers))
    return Replication(factor, 2 if factor >= MOST_REPLICAS else 1)
