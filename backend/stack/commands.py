"""`logdeck stack up | down | status | fetch | env`: the local Kafka and Elasticsearch, as
one node each or (`--cluster`) as a cluster of three each."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

from backend.config import DEFAULT_NAMESPACE
from backend.stack import elasticsearch, kafka, provision, topology
from backend.stack.acls import open_namespace
from backend.stack.env import ROLES, env_lines
from backend.stack.errors import StackError
from backend.stack.layout import ELASTICSEARCH_VERSION, KAFKA_VERSION, Layout
from backend.stack.server import Server, State, stop_all
from backend.stack.topology import Topology

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_NOT_RUNNING = 3
NAME_WIDTH = 13
SECURED_PARTITIONS = 6
"""The partitions of the topics `up` creates on a secured stack: the services' default."""


def servers(stack: Topology) -> list[Server]:
    """Every server of the stack, Kafka's first."""
    return [
        *(kafka.node_server(stack, node) for node in stack.kafka),
        *(elasticsearch.node_server(stack, node) for node in stack.elasticsearch),
    ]


def _name_width(every: list[Server]) -> int:
    return max(NAME_WIDTH, *(len(srv.name) for srv in every))


def fetch(stack: Topology) -> int:
    """Download and unpack only, so CI can warm its caches before the tests."""
    layout = stack.layout
    kafka_new = provision.fetch_kafka(layout)
    elasticsearch_new = provision.fetch_elasticsearch(layout)
    for name, new, path in (
        (f"Kafka {KAFKA_VERSION}", kafka_new, layout.kafka_lib),
        (f"Elasticsearch {ELASTICSEARCH_VERSION}", elasticsearch_new, layout.elasticsearch_home),
    ):
        print(f"{name:<22} {'fetched' if new else 'cached':<8} {path}")
    return 0


def up(stack: Topology, namespace: str = DEFAULT_NAMESPACE) -> int:
    """Launch every server at once, then wait for each, so the slower starts hide the faster;
    on a secured stack, then create `namespace`'s topics and its roles' ACLs."""
    every = servers(stack)
    for srv in every:
        if srv.pid() is None:
            srv.check_ports_free()
    provision.fetch(stack.layout)
    since = time.monotonic()
    launchers = [*kafka.launch_nodes(stack), *elasticsearch.launch_nodes(stack)]
    width = _name_width(every)
    for srv, launcher in zip(every, launchers, strict=True):
        took = srv.wait_ready(launcher, since)
        note = "already running" if launcher is None else f"up in {took:.1f} s"
        print(f"{srv.status().line(width)}  ({note})", flush=True)
    if stack.secrets is not None:
        open_namespace(stack, namespace, SECURED_PARTITIONS)
        print(f"namespace {namespace}: topics and each role's ACLs in place", flush=True)
    return 0


def down(stack: Topology) -> int:
    """Stop whatever of ours runs; nothing running is not an error."""
    every = list(reversed(servers(stack)))
    width = _name_width(every)
    for srv, pid in zip(every, stop_all(every), strict=True):
        outcome = "not running" if pid is None else f"stopped (was pid {pid})"
        print(f"{srv.name:<{width}} {outcome}")
    return 0


def status(stack: Topology) -> int:
    """Exit 0 only when every server runs and answers, so scripts can gate on it."""
    every = servers(stack)
    width = _name_width(every)
    states = [srv.status() for srv in every]
    for state in states:
        print(state.line(width))
    return 0 if all(s.state is State.RUNNING for s in states) else EXIT_NOT_RUNNING


def _running(stack: Topology) -> bool:
    return any(srv.pid() is not None for srv in servers(stack))


def env(layout: Layout, cluster: bool, role: str | None) -> int:
    """Print the variables that reach the running stack: the cluster if asked for, else
    the single stack if it runs, else the cluster."""
    if role is not None and role not in ROLES:
        print(
            f"logdeck stack env: unknown role {role!r}; use one of {', '.join(ROLES)}",
            file=sys.stderr,
        )
        return EXIT_USAGE
    candidates = [topology.cluster(layout)]
    if not cluster:
        candidates.insert(0, topology.single(layout))
    for stack in candidates:
        if _running(stack):
            try:
                lines = env_lines(stack, role)
            except KeyError:
                print(
                    f"logdeck stack env: {stack.name} has no password for "
                    f"{role or 'its admin'}; it was made before it had principals",
                    file=sys.stderr,
                )
                return EXIT_ERROR
            print("\n".join(lines))
            return 0
    start = "logdeck stack up --cluster" if cluster else "logdeck stack up [--cluster]"
    print(f"logdeck stack env: no stack runs; start one with `{start}`", file=sys.stderr)
    return EXIT_NOT_RUNNING


HANDLERS: dict[str, Callable[[Topology], int]] = {
    "up": up,
    "down": down,
    "status": status,
    "fetch": fetch,
}
ACTIONS = (*HANDLERS, "env")


def stack_main(
    action: str,
    *,
    cluster: bool = False,
    role: str | None = None,
    namespace: str | None = None,
) -> int:
    """Run one stack action; print one line on stderr and return non-zero on a StackError."""
    layout = Layout.default()
    if action != "env" and role is not None:
        print("logdeck stack: --role applies to `env` only", file=sys.stderr)
        return EXIT_USAGE
    if namespace is not None and not (action == "up" and cluster):
        print("logdeck stack: --namespace applies to `up --cluster` only", file=sys.stderr)
        return EXIT_USAGE
    if action == "env":
        return env(layout, cluster, role)
    if action == "up" and cluster:
        return _guarded(lambda: up(topology.cluster(layout), namespace or DEFAULT_NAMESPACE))
    handler = HANDLERS.get(action)
    if handler is None:
        print(
            f"logdeck stack: unknown action {action!r}; use one of {', '.join(ACTIONS)}",
            file=sys.stderr,
        )
        return EXIT_USAGE
    return _guarded(
        lambda: handler(topology.cluster(layout) if cluster else topology.single(layout))
    )


def _guarded(run: Callable[[], int]) -> int:
    try:
        return run()
    except StackError as error:
        print(f"logdeck stack: {error}", file=sys.stderr)
        return EXIT_ERROR
