"""Elasticsearch 8.19 (the integ-test distribution) as a single node on loopback.

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

START_TIMEOUT = 120.0
STOP_TIMEOUT = 30.0
JAVA_OPTS = "-Xms512m -Xmx512m"
CLUSTER_NAME = "logdeck"
MAIN_CLASS = "org.elasticsearch.bootstrap.Elasticsearch"

# Loopback requests must not go through an HTTP proxy from the environment.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def elasticsearch_ready(
    url: str = f"http://{HOST}:{ELASTICSEARCH_PORT}", timeout: float = 2.0
) -> bool:
    """True if the cluster health is yellow or green."""
    try:
        with _DIRECT.open(f"{url.rstrip('/')}/_cluster/health", timeout=timeout) as response:
            health = json.load(response)
    except (OSError, ValueError):
        return False
    return isinstance(health, dict) and health.get("status") in ("yellow", "green")


def render_elasticsearch_yml(layout: Layout) -> str:
    """elasticsearch.yml of a single node bound to 127.0.0.1 only."""
    settings = {
        "cluster.name": CLUSTER_NAME,
        "node.name": f"{CLUSTER_NAME}-1",
        "discovery.type": "single-node",
        # Also binds the transport port (9300-9399) to loopback.
        "network.host": HOST,
        "http.port": str(ELASTICSEARCH_PORT),
        "path.data": str(layout.elasticsearch_data),
        "path.logs": str(layout.elasticsearch_logs),
        # The distribution ships x-pack-security, on by default with TLS and passwords.
        "xpack.security.enabled": "false",
        "cluster.routing.allocation.disk.threshold_enabled": "false",
        # Tests delete indices by wildcard.
        "action.destructive_requires_name": "false",
    }
    return "".join(f"{key}: {json.dumps(value)}\n" for key, value in settings.items())


def server(layout: Layout | None = None) -> Server:
    layout = layout or Layout.default()
    return Server(
        name="Elasticsearch",
        host=HOST,
        ports=(ELASTICSEARCH_PORT,),
        pid_file=layout.elasticsearch / "elasticsearch.pid",
        markers=(MAIN_CLASS, f"-Des.path.home={layout.elasticsearch_home}"),
        log=layout.elasticsearch_logs / f"{CLUSTER_NAME}.log",
        console_log=layout.elasticsearch_logs / "startup.out",
        ready=elasticsearch_ready,
        start_timeout=START_TIMEOUT,
        stop_timeout=STOP_TIMEOUT,
    )


def _as_service_user(layout: Layout) -> list[str]:
    """The setpriv prefix that drops root, after handing our directories to that user."""
    ids = provision.service_user()
    if ids is None:
        return []
    uid, gid = ids
    if shutil.which("setpriv") is None:
        raise StackError(
            f"`setpriv` (util-linux) is required to run Elasticsearch as {provision.SERVICE_USER!r}"
        )
    for ancestor in layout.root.parents:
        if not ancestor.stat().st_mode & stat.S_IXOTH:
            raise StackError(
                f"Elasticsearch runs as {provision.SERVICE_USER!r}, who cannot enter {ancestor}; "
                "choose another LOGDECK_STACK_DIR"
            )
    for tree in (layout.elasticsearch, layout.elasticsearch_home):
        provision.chown_tree(tree, uid, gid)
    return ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups"]


def launch_elasticsearch(layout: Layout) -> int | None:
    """Start the node without waiting; return the launcher's pid, or None if ours already runs.

    The launcher (`bin/elasticsearch -d`) starts the server, waits for it to be up, then
    exits; the server writes its own pid file.
    """
    node = server(layout)
    if node.pid() is not None:
        return None
    node.check_ports_free()
    provision.fetch_elasticsearch(layout)
    for directory in (layout.elasticsearch_data, layout.elasticsearch_logs):
        directory.mkdir(parents=True, exist_ok=True)
    (layout.elasticsearch_home / "config" / "elasticsearch.yml").write_text(
        render_elasticsearch_yml(layout), encoding="utf-8"
    )
    node.pid_file.unlink(missing_ok=True)
    command = [
        *_as_service_user(layout),
        str(layout.elasticsearch_home / "bin" / "elasticsearch"),
        "-d",
        "-p",
        str(node.pid_file),
    ]
    env = {**os.environ, "ES_JAVA_HOME": str(java_home()), "ES_JAVA_OPTS": JAVA_OPTS}
    env.pop("ES_PATH_CONF", None)
    return process.spawn_detached(
        command, log=node.console_log, cwd=layout.elasticsearch_logs, env=env
    )


def start_elasticsearch(layout: Layout | None = None) -> float:
    """Start Elasticsearch if needed and wait until it answers; return the seconds that took."""
    layout = layout or Layout.default()
    since = time.monotonic()
    return server(layout).wait_ready(launch_elasticsearch(layout), since)


def stop_elasticsearch(layout: Layout | None = None) -> int | None:
    """Stop our Elasticsearch if it runs; return the pid it had."""
    return server(layout).stop()
