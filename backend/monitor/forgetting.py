"""Asking the monitor to retire a node now: a ForgetNode on the registrations topic.

The request travels with the node's own registrations (same topic, same key), so the
monitor orders it against them; it retires the node only if the node is DOWN and has not
been heard since the request.
"""

from __future__ import annotations

from backend.bus import Bus, Outgoing, Publisher
from backend.config import Settings
from backend.schemas import ForgetNode, encode, now_iso


class NodeForgetter:
    """Publishes requests to forget nodes; `close()` when done."""

    def __init__(self, settings: Settings, bus: Bus) -> None:
        self._settings = settings
        self._bus = bus
        self._publisher: Publisher | None = None

    async def forget(self, node_id: str, by: str) -> ForgetNode:
        """Publish the request (`BusUnavailable` if the bus does not take it)."""
        if self._publisher is None:
            topics = self._settings.topics
            await self._bus.ensure_topics(topics.all(), topics.compacted())
            publisher = self._bus.publisher()
            await publisher.start()
            self._publisher = publisher
        request = ForgetNode(node_id=node_id, by=by, at=now_iso())
        topic = self._settings.topics.registrations
        await self._publisher.publish([Outgoing(topic, node_id.encode(), encode(request))])
        return request

    async def close(self) -> None:
        if self._publisher is not None:
            await self._publisher.stop()
            self._publisher = None
