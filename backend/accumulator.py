"""The log accumulator (Fluentd's role): Forward protocol in, validated records to the bus.

Each record is checked against its shape and routed by its message_type to its topic,
keyed by node_id, with ingest metadata in the record headers (the body keeps the shape of
DESIGN.md exactly). Anything that does not fit goes to the dead-letter topic with the
reason and the raw bytes (at most `DEAD_LETTER_RAW_BYTES` of them, so a dead letter always
fits a Kafka record). A read's records are safe, and its chunks acknowledged, only
once the bus has acknowledged every one of them; until then the accumulator retries.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from backend.bus import Bus, BusUnavailable, Delivery, Outgoing, Publisher
from backend.bus.ready import ensure_topics_retrying
from backend.config import Settings
from backend.forward.admission import (
    DEFAULT_MAX_NEW_NODES,
    Admission,
    KnownNodes,
    NodeAccess,
)
from backend.forward.protocol import (
    DEFAULT_MAX_FRAME_BYTES,
    DEFAULT_MAX_FRAME_ENTRIES,
    Frame,
    StreamError,
    repack,
)
from backend.forward.server import (
    DEFAULT_FRAME_TIMEOUT,
    DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAX_BUFFERED_BYTES,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_WRITE_TIMEOUT,
    ForwardServer,
)
from backend.frame_routing import DEFAULT_MAX_FRAME_DEAD_LETTERS, FrameRouting
from backend.memory import return_big_buffers
from backend.retry import Backoff, retrying
from backend.runner import ServiceError
from backend.schemas import (
    MAX_RECORD_BYTES,
    NOT_UTF8,
    DeadLetter,
    Heartbeat,
    InvalidRecord,
    Log,
    Message,
    Registration,
    encode,
    now_iso,
    validate_record,
)
from backend.window import TimeWindow, WindowAt

log = logging.getLogger("logdeck.accumulator")

DEAD_LETTER_RAW_BYTES = 64 * 1024
"""Raw bytes kept in one dead letter; the rest is cut, and the reason says so."""


def _text(value: str) -> str:
    """`value` as valid UTF-8 text: bytes the client sent that were not are shown as escapes."""
    return value.encode("utf-8", "backslashreplace").decode("utf-8")


class Router:
    """Turns frames into bus records: validated messages to their topics, the rest dead."""

    TEXT_CHARS = 1024
    """Characters kept of a dead letter's reason, tag, peer and node_id (msgspec quotes the
    value in its reason): past this, with the raw bytes cut too, it still fits a record."""

    def __init__(self, settings: Settings, source: str) -> None:
        topics = settings.topics
        self._topic_of: dict[type[Any], str] = {
            Log: topics.logs,
            Heartbeat: topics.heartbeats,
            Registration: topics.registrations,
        }
        self._deadletter = topics.deadletter
        self._source = source
        self._window = TimeWindow.of(settings)
        self.counts: Counter[str] = Counter()

    def route(
        self, items: Sequence[Frame | StreamError], peer: str, access: NodeAccess | None = None
    ) -> list[Outgoing]:
        """Records for `items`; `access` says which nodes the sender may speak for."""
        received_at = now_iso()
        # The window's clock, as in the header.
        window = self._window.at(datetime.fromisoformat(received_at))
        headers_base = (
            ("ingested_at", received_at.encode()),
            ("accumulator", self._source.encode()),
        )
        out: list[Outgoing] = []
        for item in items:
            if isinstance(item, StreamError):
                out.append(self._dead(item.reason, item.raw, received_at, peer, None, None))
                continue
            headers = (*headers_base, ("tag", item.tag.encode("utf-8", "replace")))
            headers_size = sum(len(name) + len(value) for name, value in headers)
            for rejected in item.rejected:
                out.append(
                    self._dead(rejected.reason, rejected.raw, received_at, peer, item.tag, None)
                )
            for entry in item.entries:
                try:
                    message = (
                        entry.record if entry.raw is not None else validate_record(entry.record)
                    )
                except InvalidRecord as error:
                    node = entry.record.get("node_id")
                    out.append(
                        self._dead(
                            str(error),
                            repack(entry.as_map()),
                            received_at,
                            peer,
                            item.tag,
                            node if isinstance(node, str) else None,
                        )
                    )
                    continue
                try:
                    body = encode(message)
                    key = message.node_id.encode()
                except UnicodeEncodeError:
                    node = message.node_id
                    out.append(
                        self._dead(
                            NOT_UTF8,
                            repack(entry.as_map()),
                            received_at,
                            peer,
                            item.tag,
                            node,
                        )
                    )
                    continue
                refused = self._refusal(message, len(body) + len(key) + headers_size, window)
                if refused is None and access is not None:
                    refused = access.refusal(message.node_id)
                if refused is not None:
                    out.append(
                        self._dead(
                            refused,
                            repack(entry.as_map()),
                            received_at,
                            peer,
                            item.tag,
                            message.node_id,
                        )
                    )
                    continue
                topic = self._topic_of[type(message)]
                self.counts[topic] += 1
                out.append(Outgoing(topic, key, body, headers))
        return out

    def _refusal(self, message: Message, size: int, window: WindowAt) -> str | None:
        """Why a valid message is still refused: Kafka would not take its record (`size`
        bytes with key and headers), or the store would not keep it; None if neither."""
        if size > MAX_RECORD_BYTES:
            return (
                f"record is {size} bytes (JSON, key and headers); "
                f"at most {MAX_RECORD_BYTES} fit a Kafka record"
            )
        return window.refusal(message.timestamp)

    def _dead(
        self,
        reason: str,
        raw: bytes,
        received_at: str,
        peer: str,
        tag: str | None,
        node_id: str | None,
    ) -> Outgoing:
        self.counts[self._deadletter] += 1
        reason = self._cut(_text(reason)) or "rejected"
        if len(raw) > DEAD_LETTER_RAW_BYTES:
            reason += f" (raw cut to the first {DEAD_LETTER_RAW_BYTES} of {len(raw)} bytes)"
            raw = raw[:DEAD_LETTER_RAW_BYTES]
        node_id = self._cut(_text(node_id)) if node_id is not None else None
        letter = DeadLetter(
            reason=reason,
            source="accumulator",
            raw=raw,
            received_at=received_at,
            tag=self._cut(_text(tag)) if tag is not None else None,
            peer=self._cut(_text(peer)),
            node_id=node_id,
        )
        key = node_id.encode() if node_id else None
        return Outgoing(self._deadletter, key, encode(letter))

    def _cut(self, text: str) -> str:
        if len(text) <= self.TEXT_CHARS:
            return text
        return f"{text[: self.TEXT_CHARS]}... (cut to {self.TEXT_CHARS} of {len(text)} characters)"


class BusSink:
    """The server's sink: route, publish, and retry until the bus has acknowledged."""

    def __init__(self, routing: FrameRouting, publisher: Publisher) -> None:
        self._routing = routing
        self._publisher = publisher

    async def submit(
        self, items: list[Frame | StreamError], peer: str, access: NodeAccess | None = None
    ) -> Delivery:
        records = await self._routing.route(items, peer, access)
        delivery = await self._enqueue(records)
        return asyncio.ensure_future(self._confirm(records, delivery))

    async def _enqueue(self, records: list[Outgoing]) -> Delivery:
        return await retrying(
            lambda: self._publisher.enqueue(records),
            what=f"publishing {len(records)} records to the bus",
            retry_on=(BusUnavailable,),
            log=log,
        )

    async def _confirm(self, records: list[Outgoing], delivery: Delivery) -> None:
        backoff = Backoff()
        while True:
            try:
                await delivery
                return
            except BusUnavailable as error:
                delay = backoff.next_delay()
                log.warning(
                    "the bus lost %d records (%s); resending in %.1f s", len(records), error, delay
                )
                await asyncio.sleep(delay)
                delivery = await self._enqueue(records)


async def run_accumulator(
    settings: Settings,
    bus: Bus,
    stop: asyncio.Event,
    port: int | None = None,
    *,
    max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
    max_frame_entries: int = DEFAULT_MAX_FRAME_ENTRIES,
    max_frame_dead_letters: int = DEFAULT_MAX_FRAME_DEAD_LETTERS,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    max_connections_per_peer: int | None = None,
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
    frame_timeout: float = DEFAULT_FRAME_TIMEOUT,
    write_timeout: float = DEFAULT_WRITE_TIMEOUT,
    max_buffered_bytes: int = DEFAULT_MAX_BUFFERED_BYTES,
    max_new_nodes: int = DEFAULT_MAX_NEW_NODES,
) -> None:
    """Serve the Forward protocol until `stop` is set, then flush to the bus."""
    return_big_buffers()
    listen_port = settings.accumulator_port if port is None else port
    await ensure_topics_retrying(bus, settings, log)
    publisher = bus.publisher()
    await retrying(
        publisher.start,
        what=f"connecting to {settings.bus_label}",
        retry_on=(BusUnavailable,),
        log=log,
    )
    router = Router(settings, f"{socket.gethostname()}:{listen_port}")
    security = settings.forward_security
    known = KnownNodes(await _registered_nodes(bus, settings))
    admission = Admission(
        known,
        max_new_nodes,
        security.key_nodes,
        {user.name: user.nodes for user in security.users},
    )
    routing = FrameRouting(router, settings.topics.deadletter, max_frame_dead_letters)
    server = ForwardServer(
        BusSink(routing, publisher),
        settings.accumulator_host,
        listen_port,
        max_frame_bytes=max_frame_bytes,
        max_frame_entries=max_frame_entries,
        max_connections=max_connections,
        max_connections_per_peer=max_connections_per_peer,
        idle_timeout=idle_timeout,
        frame_timeout=frame_timeout,
        write_timeout=write_timeout,
        max_buffered_bytes=max_buffered_bytes,
        ssl=security.server_ssl_context(),
        shared_key=security.shared_key.reveal() if security.shared_key else None,
        hostname=security.hostname,
        users={user.name: user.password.reveal() for user in security.users} or None,
        admission=admission,
        record_type=Message,
    )
    try:
        await server.start()
    except OSError as error:
        await publisher.stop()
        address = f"{settings.accumulator_host}:{listen_port}"
        raise ServiceError(f"accumulator cannot listen on {address}: {error.strerror}") from None
    log.info(
        "accumulator listening on %s:%d, publishing to %s "
        "(frames up to %d bytes and %d entries, %d connections, %d per peer, idle timeout "
        "%g s, frame timeout %g s, write timeout %g s, %d bytes buffered, %d new nodes a "
        "connection over %d known; %s)",
        settings.accumulator_host,
        server.port,
        settings.bus_label,
        max_frame_bytes,
        max_frame_entries,
        max_connections,
        server.max_connections_per_peer,
        idle_timeout,
        frame_timeout,
        write_timeout,
        max_buffered_bytes,
        max_new_nodes,
        len(known),
        security.describe(),
    )
    try:
        await stop.wait()
    finally:
        await server.stop()
        await publisher.stop()
        handshakes = f"; handshakes: {dict(server.handshakes)}" if server.handshakes else ""
        log.info("accumulator stopped; records routed: %s%s", dict(router.counts), handshakes)


async def _registered_nodes(bus: Bus, settings: Settings) -> list[str]:
    """The node ids of the registry, so nodes known before a restart are not new to it
    (a retired node, whose latest record is a tombstone, is new again)."""
    try:
        records = await bus.snapshot(settings.topics.registry)
    except BusUnavailable as error:
        log.warning("registry unreadable (%s): every node counts as new until seen", error)
        return []
    latest = {record.key: bool(record.value) for record in records if record.key}
    return [key.decode("utf-8", "replace") for key, kept in latest.items() if kept]
