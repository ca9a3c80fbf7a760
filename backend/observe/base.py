"""The console's view of logdeck: live feeds from the bus, history from the store.

The console depends on this interface only, so it runs the same on Kafka and
Elasticsearch, on the embedded backend, and in tests on a fake. Feeds are async
iterators of batches: a consumer gets many records per UI update, never one message
per record.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from backend.schemas import Alert, Log, NodeEntry, RetiredNode, Silence
from backend.store.query import LogQuery, SearchResult


@dataclass(frozen=True, slots=True)
class ServiceHealth:
    """Whether the console can reach one backing service, and since when."""

    name: str
    up: bool
    since: datetime
    detail: str = ""
    dropped_unread: int = 0
    """Records the service's retention deleted before every consumer group had read them."""


class Observer(Protocol):
    async def start(self) -> None: ...

    async def close(self) -> None: ...

    def health(self) -> tuple[ServiceHealth, ...]:
        """Current reachability of the bus and the store."""

    def dead_letters(self) -> int | None:
        """Dead letters not replayed yet; None until the dead-letter topic has been read."""

    def lag(self) -> dict[str, int | None]:
        """Each pipeline service's consumer lag (see `backend.observe.pipeline`); empty
        until first read, None for a service that never ran."""

    def logs(self) -> AsyncIterator[list[Log]]:
        """New logs from now on, in batches; the first batch may be empty, and says the
        tail has started (what is logged after it will come)."""

    def nodes(self) -> AsyncIterator[list[NodeEntry | RetiredNode]]:
        """The whole registry first, then the entries that change and the nodes retired."""

    async def forget_node(self, node_id: str, by: str) -> None:
        """Ask the monitor to retire a DOWN node now (`BusUnavailable` if the bus is away)."""

    def alerts(self) -> AsyncIterator[list[Alert]]:
        """Every current alert first, then the alerts that change."""

    async def acknowledge(self, alert: Alert, by: str, note: str | None = None) -> None: ...

    async def annotate(self, alert: Alert, by: str, note: str) -> None:
        """Add a note to the alert's history, in any state."""

    async def unacknowledge(self, alert: Alert, by: str) -> None: ...

    async def resolve(self, alert: Alert, by: str) -> None: ...

    def silences(self) -> AsyncIterator[list[Silence]]:
        """Every silence (ended ones too), then each one added or changed."""

    async def add_silence(self, silence: Silence) -> None: ...

    async def expire_silence(self, silence_id: str) -> None:
        """End the silence now; one already ended is left as it is."""

    async def search(self, query: LogQuery) -> SearchResult: ...
