"""Kafka 4.1 in KRaft combined mode (broker and controller in one JVM) on loopback: one node,
or a cluster of nodes that are each broker and controller."""

from __future__ import annotations

import base64
import os
import ssl
import struct
import subprocess
import time
import uuid

from backend.bus.kafka.replication import replication_for
from backend.stack import process, provision
from backend.stack.env import ROLES
from backend.stack.errors import StackError
from backend.stack.java import java_home
from backend.stack.kafka_secured import (
    broker_context,
    certificates,
    format_flags,
    passwords_file,
    secrets,
    secured_settings,
)
from backend.stack.kafka_wire import fetch_brokers
from backend.stack.layout import HOST, KAFKA_PORT, Layout
from backend.stack.principals import ensure_passwords
from backend.stack.server import Server
from backend.stack.tls import ensure_certificates
from backend.stack.topology import KafkaNode, Topology, single

START_TIMEOUT = 60.0
CLUSTER_START_TIMEOUT = 180.0
"""Six JVMs starting at once on a small machine, and a quorum to elect."""
STOP_TIMEOUT = 30.0
HEAP = ("-Xms256m", "-Xmx512m")
CLUSTER_HEAP = ("-Xms256m", "-Xmx384m")
MAIN_CLASS = "kafka.Kafka"
STORAGE_TOOL = "kafka.tools.StorageTool"


def kafka_ready(
    bootstrap: str = f"{HOST}:{KAFKA_PORT}",
    timeout: float = 2.0,
    brokers: int = 1,
    context: ssl.SSLContext | None = None,
) -> bool:
    """True if the broker answers a Metadata request listing at least `brokers` brokers
    (over TLS with `context`)."""
    host, _, port = bootstrap.rpartition(":")
    try:
        return len(fetch_brokers(host, int(port), timeout, context)) >= brokers
    except (OSError, ValueError, struct.error):  # ssl.SSLError is an OSError
        return False


def render_server_properties(topology: Topology, node: KafkaNode) -> str:
    """server.properties of a node that is broker and controller, all on 127.0.0.1.

    Every node of the topology is a controller; the internal topics keep as many copies
    as the topics logdeck creates (`replication_for`). A secured topology's listeners
    replace the PLAINTEXT ones (`secured_settings`).
    """
    plaintext = f"PLAINTEXT://{HOST}:{node.port}"
    controller = f"CONTROLLER://{HOST}:{node.controller_port}"
    replication = replication_for(len(topology.kafka))
    factor, min_isr = str(replication.factor), str(replication.min_insync)
    secured = secured_settings(topology, node) if topology.secrets is not None else {}
    settings = {
        "process.roles": "broker,controller",
        "node.id": str(node.node_id),
        "controller.quorum.bootstrap.servers": ",".join(
            f"{HOST}:{peer.controller_port}" for peer in topology.kafka
        ),
        "listeners": f"{plaintext},{controller}",
        # Kafka 4 wants the controller listener advertised too (dynamic quorum, KIP-853).
        "advertised.listeners": f"{plaintext},{controller}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(node.data),
        "offsets.topic.replication.factor": factor,
        "transaction.state.log.replication.factor": factor,
        "transaction.state.log.min.isr": min_isr,
        "share.coordinator.state.topic.replication.factor": factor,
        "share.coordinator.state.topic.min.isr": min_isr,
        "group.initial.rebalance.delay.ms": "0",
        # A broker that dies is fenced, and its partitions led elsewhere, after 4 s without
        # a heartbeat instead of 9: until then every write with acks=all waits on it.
        "broker.session.timeout.ms": "4000",
        "broker.heartbeat.interval.ms": "1000",
        **secured,
    }
    return "".join(f"{key}={value}\n" for key, value in settings.items())


def render_log4j2() -> str:
    """Log4j 2 properties: INFO and up into kafka.logs.dir/server.log, rolled at 50 MB."""
    return (
        "appender.server.type=RollingFile\n"
        "appender.server.name=server\n"
        "appender.server.fileName=${sys:kafka.logs.dir}/server.log\n"
        "appender.server.filePattern=${sys:kafka.logs.dir}/server.log.%i\n"
        "appender.server.layout.type=PatternLayout\n"
        "appender.server.layout.pattern=[%d] %p %m (%c)%n\n"
        "appender.server.policies.type=Policies\n"
        "appender.server.policies.size.type=SizeBasedTriggeringPolicy\n"
        "appender.server.policies.size.size=50MB\n"
        "appender.server.strategy.type=DefaultRolloverStrategy\n"
        "appender.server.strategy.max=3\n"
        "rootLogger.level=INFO\n"
        "rootLogger.appenderRef.server.ref=server\n"
    )


def new_cluster_id() -> str:
    """What `kafka-storage random-uuid` prints: 16 random bytes, URL-safe base64, no '-' first."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode("ascii")
        if not text.startswith("-"):
            return text


def node_server(topology: Topology, node: KafkaNode) -> Server:
    """A node is ready once its metadata lists every broker of the topology (a secured
    node's asked on its INTERNAL listener, with the brokers' certificate)."""
    brokers = len(topology.kafka)

    def ready() -> bool:
        if topology.secrets is None or node.internal_port is None:
            return kafka_ready(f"{HOST}:{node.port}", brokers=brokers)
        try:
            context = broker_context(topology)
        except OSError:  # no certificate yet
            return False
        return kafka_ready(f"{HOST}:{node.internal_port}", brokers=brokers, context=context)

    return Server(
        name=node.name,
        host=HOST,
        ports=node.ports,
        pid_file=node.home / "kafka.pid",
        markers=(MAIN_CLASS, str(node.properties)),
        log=node.logs / "server.log",
        console_log=node.logs / "kafka.out",
        ready=ready,
        start_timeout=START_TIMEOUT if brokers == 1 else CLUSTER_START_TIMEOUT,
        stop_timeout=STOP_TIMEOUT,
    )


def server(layout: Layout | None = None) -> Server:
    """The Kafka of `stack up`."""
    topology = single(layout or Layout.default())
    return node_server(topology, topology.kafka[0])


def _java_command(topology: Topology, node: KafkaNode, main_class: str, *args: str) -> list[str]:
    return [
        str(java_home() / "bin" / "java"),
        *(HEAP if len(topology.kafka) == 1 else CLUSTER_HEAP),
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={node.home / 'log4j2.properties'}",
        f"-Dkafka.logs.dir={node.logs}",
        "-cp",
        f"{topology.layout.kafka_lib}/*",
        main_class,
        *args,
    ]


def _quorum_flags(topology: Topology) -> list[str]:
    """How `kafka-storage format` learns the controllers: alone, or all of them by
    id, controller address and a directory id shared by every node's format."""
    if len(topology.kafka) == 1:
        return ["--standalone"]
    voters = ",".join(
        # A directory id is a Kafka Uuid, like a cluster id.
        f"{node.node_id}@{HOST}:{node.controller_port}:{new_cluster_id()}"
        for node in topology.kafka
    )
    return ["--initial-controllers", voters]


def _format(topology: Topology) -> None:
    """Format every node's storage with one cluster id, once (a restart keeps its data).

    The nodes are formatted together or not at all: a node formatted alone would belong
    to another cluster.
    """
    nodes = topology.kafka
    formatted = [(node.data / "meta.properties").exists() for node in nodes]
    if all(formatted):
        return
    if any(formatted):
        homes = ", ".join(str(node.home) for node in nodes)
        raise StackError(
            f"only some Kafka nodes of {topology.name} are formatted; "
            f"stop them and delete {homes} to start afresh"
        )
    cluster, quorum = new_cluster_id(), _quorum_flags(topology)
    scram = format_flags(topology) if topology.secrets is not None else []
    runs = [
        (
            node,
            subprocess.Popen(
                _java_command(
                    topology,
                    node,
                    STORAGE_TOOL,
                    "format",
                    "-t",
                    cluster,
                    "-c",
                    str(node.properties),
                    *quorum,
                    *scram,
                ),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            ),
        )
        for node in nodes
    ]
    failures = []
    for node, run in runs:
        out, err = run.communicate()
        if run.returncode != 0:
            output = (err or out).strip().splitlines()
            failures.append(
                f"Kafka storage format failed in {node.data}: "
                + (output[-1] if output else f"exit {run.returncode}")
            )
    if failures:
        raise StackError("; ".join(failures))


def _prepare(topology: Topology) -> None:
    """Write every node's configuration, then format the storage of a new topology; a
    secured one's certificates and passwords are made first, once."""
    if topology.secrets is not None:
        _prepare_secrets(topology)
    for node in topology.kafka:
        for directory in (node.data, node.logs):
            directory.mkdir(parents=True, exist_ok=True)
        node.properties.write_text(render_server_properties(topology, node), encoding="utf-8")
        (node.home / "log4j2.properties").write_text(render_log4j2(), encoding="utf-8")
    _format(topology)


def _prepare_secrets(topology: Topology) -> None:
    """Certificates and passwords for a secured topology; a cluster formatted without
    passwords cannot get them back (they are stored at format time)."""
    folder = secrets(topology)
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    ensure_certificates(certificates(topology).folder)
    formatted = any((node.data / "meta.properties").exists() for node in topology.kafka)
    if formatted and not passwords_file(topology).is_file():
        homes = ", ".join(str(node.home) for node in topology.kafka)
        raise StackError(
            f"{topology.name}'s Kafka was formatted without {passwords_file(topology)}; "
            f"stop it and delete {homes} to start afresh"
        )
    ensure_passwords(passwords_file(topology), ROLES)


def launch_nodes(topology: Topology) -> list[int | None]:
    """Start the nodes not running, without waiting; for each, its pid or None if it ran."""
    servers = [node_server(topology, node) for node in topology.kafka]
    if all(srv.pid() is not None for srv in servers):
        return [None] * len(servers)
    for srv in servers:
        if srv.pid() is None:
            srv.check_ports_free()
    provision.fetch_kafka(topology.layout)
    _prepare(topology)
    pids: list[int | None] = []
    for node, srv in zip(topology.kafka, servers, strict=True):
        if srv.pid() is not None:
            pids.append(None)
            continue
        pid = process.spawn_detached(
            _java_command(topology, node, MAIN_CLASS, str(node.properties)),
            log=srv.console_log,
            cwd=node.home,
            env=os.environ,
        )
        srv.pid_file.write_text(f"{pid}\n", encoding="utf-8")
        pids.append(pid)
    return pids


def launch_kafka(layout: Layout) -> int | None:
    """Start the Kafka of `stack up` without waiting; its pid, or None if ours already runs."""
    return launch_nodes(single(layout))[0]


def start_kafka(layout: Layout | None = None) -> float:
    """Start Kafka if needed and wait until it answers; return the seconds that took."""
    layout = layout or Layout.default()
    since = time.monotonic()
    return server(layout).wait_ready(launch_kafka(layout), since)


def stop_kafka(layout: Layout | None = None) -> int | None:
    """Stop our Kafka if it runs; return the pid it had."""
    return server(layout).stop()
