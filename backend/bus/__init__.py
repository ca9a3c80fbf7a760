"""The pub-sub layer: one interface, on Kafka (`kafka`) or on one SQLite file (`embedded`)."""

from backend.bus.base import (
    Bus,
    BusUnavailable,
    Delivery,
    Incoming,
    Lane,
    Outgoing,
    Publisher,
    Subscription,
)

__all__ = [
    "Bus",
    "BusUnavailable",
    "Delivery",
    "Incoming",
    "Lane",
    "Outgoing",
    "Publisher",
    "Subscription",
]
