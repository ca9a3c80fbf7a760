"""The consumer lag of each service of the pipeline: what the console's header shows.

A service's lag is the records its consumer groups have not committed yet: logs not yet
indexed, logs not yet judged by the rules, heartbeats not yet read. None for a service
that has never run here (its group has committed nothing).
"""

from __future__ import annotations

from typing import Final

from backend.bus import Bus
from backend.config import Settings

SERVICES: Final = {
    "indexer": ("indexer",),
    "alerter": ("alerter-rules", "alerter"),
    "monitor": ("monitor",),
    "notifier": ("notifier",),
}
"""Each service, and the roles of its consumer groups (see `Topics.consumed_by`)."""


async def pipeline_lag(bus: Bus, settings: Settings) -> dict[str, int | None]:
    """Service -> its consumer lag, in `SERVICES` order (`BusUnavailable` if not known)."""
    groups = {
        settings.group(role): settings.topics.consumed_by(role)
        for roles in SERVICES.values()
        for role in roles
    }
    lags = await bus.lags(groups)
    by_service: dict[str, int | None] = {}
    for service, roles in SERVICES.items():
        known = [lag for role in roles if (lag := lags[settings.group(role)]) is not None]
        by_service[service] = sum(known) if known else None
    return by_service
