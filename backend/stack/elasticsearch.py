"""Elasticsearch 8.19 (the integ-test distribution) on loopback: a single node, or a
cluster of nodes that discover each other on their transport ports.

That distribution has only the core modules plus security (see STACK.md); it has no
bundled JDK and refuses to run as root, so root runs it as an unprivileged user.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import time
import urllib.request

from backend.stack import process, provision
from backend.stack.errors import StackError
from backend.stack.java import java_home
from backend.stack.layout import ELASTICSEARCH_PORT, HOST, Layout
from backend.stack.server import Server
from backend.stack.topology import ElasticsearchNode, Topology, single

START_TIMEOUT = 120.0
CLUSTER_START_TIMEOUT = 240.0
"""Six JVMs starting at once on a small machine, and a master to elect."""
STOP_TIMEOUT = 30.0
JAVA_OPTS = "-Xms512m -Xmx512m"
MAIN_CLASS = "org.elasticsearch.bootstrap.Elasticsearch"

# Loopback requests must not go through an HTTP proxy from the environment.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def elasticsearch_ready(
    url: str = f"http://{HOST}:{ELASTICSEARCH_PORT}", timeout: float = 2.0, nodes: int = 1
) -> bool:
    """True if the cluster health is yellow or green with at least `nodes` nodes joined."""
    try:
        with _DIRECT.open(f"{url.rstrip('/')}/_cluster/health", timeout=timeout) as response:
            health = json.load(response)
    except (OSError, ValueError):
        return False
    return (
        isinstance(health, dict)
        and health.get("status") in ("yellow", "green")
        and health.get("number_of_nodes", 0) >= nodes
    )


def render_elasticsearch_yml(topology: Topology, node: ElasticsearchNode) -> str:
    """elasticsearch.yml of a node bound to 127.0.0.1 only: a single node, or one of a
    cluster that finds its peers on their transport ports and elects its first master
    among them."""
    settings: dict[str, object] = {
        "cluster.name": topology.name,
        "node.name": node.node_name,
    }
    if len(topology.elasticsearch) == 1:
        settings["discovery.type"] = "single-node"
    else:
        settings["discovery.seed_hosts"] = [
            f"{HOST}:{peer.transport_port}" for peer in topology.elasticsearch
        ]
        settings["cluster.initial_master_nodes"] = [
            peer.node_name for peer in topology.elasticsearch
        ]
    # Also binds the transport port (9300-9399 unless set) to loopback.
    settings["network.host"] = HOST
    settings["http.port"] = str(node.http_port)
    if node.transport_port is not None:
        settings["transport.port"] = str(node.transport_port)
    settings |= {
        "path.data": str(node.data),
        "path.logs": str(node.logs),
        # The distribution ships x-pack-security, on by default with TLS and passwords.
        "xpack.security.enabled": "false",
        "cluster.routing.allocation.disk.threshold_enabled": "false",
        # Tests delete indices by wildcard.
        "action.destructive_requires_name": "false",
    }
    return "".join(f"{key}: {json.dumps(value)}\n" for key, value in settings.items())


def _identity(topology: Topology, node: ElasticsearchNode) -> tuple[str, ...]:
    """A JVM option naming a cluster node's folder: the nodes share Elasticsearch's home
    and nothing else on the command line tells them apart."""
    return () if len(topology.elasticsearch) == 1 else (f"-Dlogdeck.node={node.home}",)


def node_server(topology: Topology, node: ElasticsearchNode) -> Server:
    """A node is ready once its cluster is yellow or green with every node joined."""
    url, nodes = f"http://{HOST}:{node.http_port}", len(topology.elasticsearch)
    home = topology.layout.elasticsearch_home
    return Server(
        name=node.name,
        host=HOST,
        ports=(node.http_port,)
        if node.transport_port is None
        else (node.http_port, node.transport_port),
        pid_file=node.home / "elasticsearch.pid",
        markers=(MAIN_CLASS, f"-Des.path.home={home}", *_identity(topology, node)),
        log=node.logs / f"{topology.name}.log",
        console_log=node.logs / "startup.out",
        ready=lambda: elasticsearch_ready(url, nodes=nodes),
        start_timeout=START_TIMEOUT if nodes == 1 else CLUSTER_START_TIMEOUT,
        stop_timeout=STOP_TIMEOUT,
    )


def server(layout: Layout | None = None) -> Server:
    """The Elasticsearch of `stack up`."""
    topology = single(layout or Layout.default())
    return node_server(topology, topology.elasticsearch[0])


def _as_service_user(topology: Topology, node: ElasticsearchNode) -> list[str]:
    """The setpriv prefix that drops root, after handing our directories to that user."""
    ids = provision.service_user()
    if ids is None:
        return []
    uid, gid = ids
    if shutil.which("setpriv") is None:
        raise StackError(
            f"`setpriv` (util-linux) is required to run Elasticsearch as {provision.SERVICE_USER!r}"
        )
    for ancestor in node.home.parents:
        if not ancestor.stat().st_mode & stat.S_IXOTH:
            raise StackError(
                f"Elasticsearch runs as {provision.SERVICE_USER!r}, who cannot enter {ancestor}; "
                "choose another LOGDECK_STACK_DIR"
            )
    for tree in (node.home, topology.layout.elasticsearch_home):
        provision.chown_tree(tree, uid, gid)
    return ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups"]


def _write_config(topology: Topology, node: ElasticsearchNode) -> None:
    """A cluster node gets a copy of the distribution's config folder of its own (its
    keystore too is its own); the single node writes into the distribution's."""
    shipped = topology.layout.elasticsearch_home / "config"
    if node.config != shipped:
        shutil.copytree(
            shipped,
            node.config,
            ignore=shutil.ignore_patterns("elasticsearch.yml", "elasticsearch.keystore"),
            dirs_exist_ok=True,
        )
    (node.config / "elasticsearch.yml").write_text(
        render_elasticsearch_yml(topology, node), encoding="utf-8"
    )


def _launch_node(topology: Topology, node: ElasticsearchNode, srv: Server) -> int:
    for directory in (node.data, node.logs):
        directory.mkdir(parents=True, exist_ok=True)
    _write_config(topology, node)
    srv.pid_file.unlink(missing_ok=True)
    command = [
        *_as_service_user(topology, node),
        str(topology.layout.elasticsearch_home / "bin" / "elasticsearch"),
        "-d",
        "-p",
        str(srv.pid_file),
    ]
    env = {
        **os.environ,
        "ES_JAVA_HOME": str(java_home()),
        "ES_JAVA_OPTS": " ".join((JAVA_OPTS, *_identity(topology, node))),
        "ES_PATH_CONF": str(node.config),
    }
    return process.spawn_detached(command, log=srv.console_log, cwd=node.logs, env=env)


def launch_nodes(topology: Topology) -> list[int | None]:
    """Start the nodes not running, without waiting; for each, the launcher's pid, or None
    if the node already ran.

    The launcher (`bin/elasticsearch -d`) starts the server, waits for it to be up, then
    exits; the server writes its own pid file.
    """
    servers = [node_server(topology, node) for node in topology.elasticsearch]
    if all(srv.pid() is not None for srv in servers):
        return [None] * len(servers)
    for srv in servers:
        if srv.pid() is None:
            srv.check_ports_free()
    provision.fetch_elasticsearch(topology.layout)
    return [
        None if srv.pid() is not None else _launch_node(topology, node, srv)
        for node, srv in zip(topology.elasticsearch, servers, strict=True)
    ]


def launch_elasticsearch(layout: Layout) -> int | None:
    """Start the Elasticsearch of `stack up` without waiting; the launcher's pid, or None if
    ours already runs."""
    return launch_nodes(single(layout))[0]


def start_elasticsearch(layout: Layout | None = None) -> float:
    """Start Elasticsearch if needed and wait until it answers; return the seconds that took."""
    layout = layout or Layout.default()
    since = time.monotonic()
    return server(layout).wait_ready(launch_elasticsearch(layout), since)


def stop_elasticsearch(layout: Layout | None = None) -> int | None:
    """Stop our Elasticsearch if it runs; return the pid it had."""
    return server(layout).stop()
