"""How a node hands its records over: fluent-logger (as plain services do) or AckSender.

Against an accumulator with a shared key or TLS (`LOGDECK_FORWARD_*`), only AckSender
will do: fluent-logger supports neither, so choosing it then is an error, not a fleet of
nodes whose records all bounce.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Any, Protocol

import fluent.asyncsender
import fluent.sender

from backend.forward.sender import AckSender
from backend.security import ForwardSecurity
from simulators.options import NodeOptions, check_sender_security

log = logging.getLogger("logdeck.simulator")


class Sender(Protocol):
    """A record sender that can say which log_ids it has safely taken."""

    async def emit(self, label: str, record: dict[str, Any]) -> None: ...

    def take_confirmed(self) -> list[str]:
        """Log ids confirmed since the last call."""
        ...

    @property
    def unconfirmed(self) -> int:
        """Log ids emitted but not (yet) confirmed."""
        ...

    async def close(self) -> None:
        """Send what is left; may be cancelled, leaving `unconfirmed` records unsent."""
        ...


class AckedSender:
    """`AckSender`, whose acknowledgements confirm records in the order they were emitted."""

    def __init__(self, options: NodeOptions, security: ForwardSecurity | None = None) -> None:
        security = ForwardSecurity() if security is None else security
        self._sender = AckSender(
            options.tag_prefix,
            options.host,
            options.port,
            shared_key=security.shared_key.reveal() if security.shared_key else None,
            hostname=security.hostname,
            user=security.client_user(),
            ssl=security.client_ssl_context(),
            standby=[(options.host, options.standby_port)] if options.standby_port else (),
        )
        self._ids: deque[str | None] = deque()
        self._taken = 0

    async def emit(self, label: str, record: dict[str, Any]) -> None:
        await self._sender.emit(label, record)
        # No await between the record entering the sender and this append: same order.
        self._ids.append(record.get("log_id"))

    def take_confirmed(self) -> list[str]:
        newly = self._sender.acked - self._taken
        self._taken += newly
        popped = [self._ids.popleft() for _ in range(newly)]
        return [log_id for log_id in popped if log_id]

    @property
    def unconfirmed(self) -> int:
        return sum(1 for log_id in self._ids if log_id)

    async def close(self) -> None:
        await self._sender.close()


class FluentLoggerSender:
    """fluent-logger's sender, whose failed sends stay buffered until a later send succeeds."""

    def __init__(self, options: NodeOptions) -> None:
        module = fluent.asyncsender if options.fluent_async else fluent.sender
        self._sender = module.FluentSender(
            options.tag_prefix,
            host=options.host,
            port=options.port,
            nanosecond_precision=True,
            buffer_overflow_handler=self._on_overflow,
        )
        self._where = f"{options.host}:{options.port}"
        self._pending: list[str] = []
        self._confirmed: list[str] = []
        self._overflows = 0
        self._failing = False

    async def emit(self, label: str, record: dict[str, Any]) -> None:
        overflows = self._overflows
        sent = self._sender.emit(label, record)
        log_id = record.get("log_id")
        if log_id:
            self._pending.append(log_id)
        if sent:
            self._confirm_pending()
            if self._failing:
                log.info("sending to %s again; buffered records went out", self._where)
                self._failing = False
            return
        error = self._sender.last_error
        self._sender.clear_last_error()
        if self._overflows != overflows:
            self._pending.clear()
        elif not self._failing:
            log.warning(
                "cannot send to %s (%s); fluent-logger buffers up to 1 MiB and retries "
                "with the next record",
                self._where,
                error,
            )
            self._failing = True

    def take_confirmed(self) -> list[str]:
        confirmed, self._confirmed = self._confirmed, []
        return confirmed

    @property
    def unconfirmed(self) -> int:
        return len(self._pending)

    async def close(self) -> None:
        overflows = self._overflows
        self._sender.close()
        if self._overflows == overflows:
            self._confirm_pending()

    def _confirm_pending(self) -> None:
        self._confirmed += self._pending
        self._pending = []

    def _on_overflow(self, pending: bytes) -> None:
        self._overflows += 1
        log.warning(
            "fluent-logger dropped %d bytes of buffered records: %s unreachable",
            len(pending),
            self._where,
        )


def open_sender(options: NodeOptions, security: ForwardSecurity | None = None) -> Sender:
    """The sender `options` choose; `security` defaults to the `LOGDECK_FORWARD_*` variables."""
    security = ForwardSecurity.from_env() if security is None else security
    check_sender_security(options, security)
    return AckedSender(options, security) if options.acks else FluentLoggerSender(options)
