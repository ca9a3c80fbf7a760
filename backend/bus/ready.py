"""Every service's first step on the bus: make sure logdeck's topics exist, however long the
bus takes to answer."""

from __future__ import annotations

import logging

from backend.bus.base import Bus, BusUnavailable
from backend.config import Settings
from backend.retry import retrying


async def ensure_topics_retrying(bus: Bus, settings: Settings, log: logging.Logger) -> None:
    """Create the topics that are missing, retrying with backoff while the bus is unreachable."""
    topics = settings.topics
    await retrying(
        lambda: bus.ensure_topics(topics.all(), topics.compacted()),
        what=f"creating topics on {settings.bus_label}",
        retry_on=(BusUnavailable,),
        log=log,
    )
