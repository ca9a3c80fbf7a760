"""Kafka 4.1 in KRaft combined mode (broker and controller in one JVM) on loopback."""

from __future__ import annotations

import base64
import os
import struct
import subprocess
import time
import uuid

from backend.stack import process, provision
from backend.stack.errors import StackError
from backend.stack.java import java_home
from backend.stack.kafka_wire import fetch_brokers
from backend.stack.layout import HOST, KAFKA_CONTROLLER_PORT, KAFKA_PORT, Layout
from backend.stack.server import Server

START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
HEAP = ("-Xms256m", "-Xmx512m")
MAIN_CLASS = "kafka.Kafka"
STORAGE_TOOL = "kafka.tools.StorageTool"


def kafka_ready(bootstrap: str = f"{HOST}:{KAFKA_PORT}", timeout: float = 2.0) -> bool:
    """True if the broker answers a Metadata request listing at least one broker."""
    host, _, port = bootstrap.rpartition(":")
    try:
        return bool(fetch_brokers(host, int(port), timeout))
    except (OSError, ValueError, struct.error):
        return False


def render_server_properties(layout: Layout) -> str:
    """server.properties of a single node that is its own controller, all on 127.0.0.1."""
    plaintext = f"PLAINTEXT://{HOST}:{KAFKA_PORT}"
    controller = f"CONTROLLER://{HOST}:{KAFKA_CONTROLLER_PORT}"
    settings = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.bootstrap.servers": f"{HOST}:{KAFKA_CONTROLLER_PORT}",
        "listeners": f"{plaintext},{controller}",
        # Kafka 4 wants the controller listener advertised too (dynamic quorum, KIP-853).
        "advertised.listeners": f"{plaintext},{controller}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(layout.kafka_data),
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
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


def server(layout: Layout | None = None) -> Server:
    layout = layout or Layout.default()
    return Server(
        name="Kafka",
        host=HOST,
        ports=(KAFKA_PORT, KAFKA_CONTROLLER_PORT),
        pid_file=layout.kafka / "kafka.pid",
        markers=(MAIN_CLASS, str(layout.kafka / "server.properties")),
        log=layout.kafka_logs / "server.log",
        console_log=layout.kafka_logs / "kafka.out",
        ready=kafka_ready,
        start_timeout=START_TIMEOUT,
        stop_timeout=STOP_TIMEOUT,
    )


def _java_command(layout: Layout, main_class: str, *args: str) -> list[str]:
    return [
        str(java_home() / "bin" / "java"),
        *HEAP,
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={layout.kafka / 'log4j2.properties'}",
        f"-Dkafka.logs.dir={layout.kafka_logs}",
        "-cp",
        f"{layout.kafka_lib}/*",
        main_class,
        *args,
    ]


def _prepare(layout: Layout) -> None:
    """Write the configuration and format the storage once (a restart keeps its data)."""
    for directory in (layout.kafka_data, layout.kafka_logs):
        directory.mkdir(parents=True, exist_ok=True)
    properties = layout.kafka / "server.properties"
    properties.write_text(render_server_properties(layout), encoding="utf-8")
    (layout.kafka / "log4j2.properties").write_text(render_log4j2(), encoding="utf-8")
    if (layout.kafka_data / "meta.properties").exists():
        return
    cluster = new_cluster_id()
    command = _java_command(
        layout, STORAGE_TOOL, "format", "-t", cluster, "-c", str(properties), "--standalone"
    )
    formatted = subprocess.run(command, capture_output=True, text=True)
    if formatted.returncode != 0:
        output = (formatted.stderr or formatted.stdout).strip().splitlines()
        reason = output[-1] if output else f"exit {formatted.returncode}"
        raise StackError(f"Kafka storage format failed in {layout.kafka_data}: {reason}")


def launch_kafka(layout: Layout) -> int | None:
    """Start the broker without waiting; return its pid, or None if ours already runs."""
    kafka = server(layout)
    if kafka.pid() is not None:
        return None
    kafka.check_ports_free()
    provision.fetch_kafka(layout)
    _prepare(layout)
    pid = process.spawn_detached(
        _java_command(layout, MAIN_CLASS, str(layout.kafka / "server.properties")),
        log=kafka.console_log,
        cwd=layout.kafka,
        env=os.environ,
    )
    kafka.pid_file.write_text(f"{pid}\n", encoding="utf-8")
    return pid


def start_kafka(layout: Layout | None = None) -> float:
    """Start Kafka if needed and wait until it answers; return the seconds that took."""
    layout = layout or Layout.default()
    since = time.monotonic()
    return server(layout).wait_ready(launch_kafka(layout), since)


def stop_kafka(layout: Layout | None = None) -> int | None:
    """Stop our Kafka if it runs; return the pid it had."""
    return server(layout).stop()
