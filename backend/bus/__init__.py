"""The pub-sub layer: one interface, with Kafka as the real implementation."""

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
