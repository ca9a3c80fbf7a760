"""`logdeck stack up | down | status | fetch`: the local Kafka and Elasticsearch."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

from backend.stack import elasticsearch, kafka, provision
from backend.stack.errors import StackError
from backend.stack.layout import ELASTICSEARCH_VERSION, KAFKA_VERSION, Layout
from backend.stack.server import Server, State

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_NOT_RUNNING = 3


def _servers(layout: Layout) -> tuple[Server, Server]:
    return kafka.server(layout), elasticsearch.server(layout)


def fetch(layout: Layout) -> int:
    """Download and unpack only, so CI can warm its caches before the tests."""
    kafka_new = provision.fetch_kafka(layout)
    elasticsearch_new = provision.fetch_elasticsearch(layout)
    for name, new, path in (
        (f"Kafka {KAFKA_VERSION}", kafka_new, layout.kafka_lib),
        (f"Elasticsearch {ELASTICSEARCH_VERSION}", elasticsearch_new, layout.elasticsearch_home),
    ):
        print(f"{name:<22} {'fetched' if new else 'cached':<8} {path}")
    return 0


def up(layout: Layout) -> int:
    """Launch both servers at once, then wait for each, so the slower start hides the faster."""
    servers = _servers(layout)
    for srv in servers:
        if srv.pid() is None:
            srv.check_ports_free()
    provision.fetch(layout)
    since = time.monotonic()
    launchers = (kafka.launch_kafka(layout), elasticsearch.launch_elasticsearch(layout))
    for srv, launcher in zip(servers, launchers, strict=True):
        took = srv.wait_ready(launcher, since)
        note = "already running" if launcher is None else f"up in {took:.1f} s"
        print(f"{srv.status().line()}  ({note})", flush=True)
    return 0


def down(layout: Layout) -> int:
    """Stop whatever of ours runs; nothing running is not an error."""
    for srv in reversed(_servers(layout)):
        pid = srv.stop()
        outcome = "not running" if pid is None else f"stopped (was pid {pid})"
        print(f"{srv.name:<13} {outcome}")
    return 0


def status(layout: Layout) -> int:
    """Exit 0 only when both servers run and answer, so scripts can gate on it."""
    states = [srv.status() for srv in _servers(layout)]
    for state in states:
        print(state.line())
    return 0 if all(s.state is State.RUNNING for s in states) else EXIT_NOT_RUNNING


HANDLERS: dict[str, Callable[[Layout], int]] = {
    "up": up,
    "down": down,
    "status": status,
    "fetch": fetch,
}
ACTIONS = tuple(HANDLERS)


def stack_main(action: str) -> int:
    """Run one stack action; print one line on stderr and return non-zero on a StackError."""
    handler = HANDLERS.get(action)
    if handler is None:
        print(
            f"logdeck stack: unknown action {action!r}; use one of {', '.join(ACTIONS)}",
            file=sys.stderr,
        )
        return EXIT_USAGE
    try:
        return handler(Layout.default())
    except StackError as error:
        print(f"logdeck stack: {error}", file=sys.stderr)
        return EXIT_ERROR
