"""The pure parts of `logdeck stack`: rendered configs, wire encoding, port and pid checks.

No Kafka or Elasticsearch is needed: sockets and processes here are the test's own.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import stat
import struct
import threading
import time
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from backend.stack import commands, kafka_wire, process, provision
from backend.stack.elasticsearch import elasticsearch_ready, render_elasticsearch_yml
from backend.stack.errors import StackError
from backend.stack.java import java_home, release_major
from backend.stack.kafka import kafka_ready, new_cluster_id, render_log4j2, render_server_properties
from backend.stack.layout import ROOT_STACK_DIR, Layout, default_stack_dir
from backend.stack.server import Server, State
from backend.stack.topology import single

LAYOUT = Layout(Path("/srv/stack"))
SINGLE = single(LAYOUT)


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A socket listening on a free loopback port: 'another program' holding a port."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    yield sock
    sock.close()


@pytest.fixture
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def fake_server(tmp_path: Path, port: int, *, ready: bool = False, timeout: float = 1.0) -> Server:
    return Server(
        name="Kafka",
        host="127.0.0.1",
        ports=(port,),
        pid_file=tmp_path / "kafka.pid",
        markers=("kafka.Kafka",),
        log=tmp_path / "server.log",
        console_log=tmp_path / "kafka.out",
        ready=lambda: ready,
        start_timeout=timeout,
        stop_timeout=5.0,
    )


def properties(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines())


# --- layout and Java ---------------------------------------------------------------------


def test_stack_dir_override_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LOGDECK_STACK_DIR", str(tmp_path))
    assert default_stack_dir() == tmp_path


def test_root_keeps_the_stack_where_the_service_user_can_reach_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("LOGDECK_STACK_DIR", raising=False)
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert default_stack_dir() == ROOT_STACK_DIR


def test_a_user_keeps_the_stack_in_the_xdg_data_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("LOGDECK_STACK_DIR", raising=False)
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert default_stack_dir() == tmp_path / "logdeck" / "stack"


@pytest.mark.parametrize(
    ("release", "major"),
    [
        ('IMPLEMENTOR="Debian"\nJAVA_VERSION="17.0.15"\n', 17),
        ('JAVA_VERSION="25.0.3"', 25),
        ('JAVA_VERSION="1.8.0_392"', 8),
        ("IMPLEMENTOR=x", None),
    ],
)
def test_java_major_version_comes_from_the_release_file(release: str, major: int | None) -> None:
    assert release_major(release) == major


def fake_jdk(root: Path, version: str) -> Path:
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "java").write_text("#!/bin/sh\n", encoding="utf-8")
    (root / "release").write_text(f'JAVA_VERSION="{version}"\n', encoding="utf-8")
    return root


def test_java_home_accepts_a_recent_jdk(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("JAVA_HOME", str(fake_jdk(tmp_path, "21.0.1")))
    assert java_home() == tmp_path


def test_java_home_rejects_an_old_jdk(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("JAVA_HOME", str(fake_jdk(tmp_path, "11.0.2")))
    with pytest.raises(StackError, match=r"is Java 11; Java 17\+ is required"):
        java_home()


def test_java_home_rejects_a_home_without_java(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))
    with pytest.raises(StackError, match="has no bin/java"):
        java_home()


# --- Kafka ----------------------------------------------------------------------------------


def test_kafka_listens_and_advertises_on_loopback_only() -> None:
    config = properties(render_server_properties(SINGLE, SINGLE.kafka[0]))
    for key in ("listeners", "advertised.listeners"):
        assert config[key] == "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093"
    assert config["controller.quorum.bootstrap.servers"] == "127.0.0.1:9093"
    assert config["process.roles"] == "broker,controller"


def test_kafka_internal_topics_fit_one_broker() -> None:
    config = properties(render_server_properties(SINGLE, SINGLE.kafka[0]))
    assert config["log.dirs"] == "/srv/stack/kafka/data"
    for key in (
        "offsets.topic.replication.factor",
        "transaction.state.log.replication.factor",
        "transaction.state.log.min.isr",
        "share.coordinator.state.topic.replication.factor",
        "share.coordinator.state.topic.min.isr",
    ):
        assert config[key] == "1"
    assert config["group.initial.rebalance.delay.ms"] == "0"
    # a dead broker is fenced, and its partitions led elsewhere, within 4 s
    assert int(config["broker.session.timeout.ms"]) <= 4000
    assert int(config["broker.heartbeat.interval.ms"]) * 3 <= int(
        config["broker.session.timeout.ms"]
    )


def test_kafka_logs_go_to_the_logs_dir() -> None:
    config = properties(render_log4j2())
    assert config["appender.server.fileName"] == "${sys:kafka.logs.dir}/server.log"
    assert config["rootLogger.appenderRef.server.ref"] == "server"


def test_cluster_ids_look_like_kafka_random_uuid() -> None:
    for _ in range(200):
        cluster_id = new_cluster_id()
        assert len(cluster_id) == 22
        assert not cluster_id.startswith("-")
        assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16


def test_metadata_request_is_a_v4_request_for_no_topics() -> None:
    request = kafka_wire.metadata_request(correlation_id=7)
    (size,) = struct.unpack_from(">i", request)
    assert size == len(request) - 4
    assert struct.unpack_from(">hhih", request, 4) == (3, 4, 7, len(kafka_wire.CLIENT_ID))
    assert request.endswith(kafka_wire.CLIENT_ID + b"\x00\x00\x00\x00\x00")


def kafka_string(text: str | None) -> bytes:
    if text is None:
        return struct.pack(">h", -1)
    return struct.pack(">h", len(text)) + text.encode()


def test_metadata_response_lists_the_brokers() -> None:
    response = (
        struct.pack(">iii", 7, 0, 1)
        + struct.pack(">i", 1)
        + kafka_string("127.0.0.1")
        + struct.pack(">i", 9092)
        + kafka_string(None)
        + kafka_string("cluster")
        + struct.pack(">ii", 1, 0)
    )
    assert kafka_wire.metadata_brokers(response, correlation_id=7) == [(1, "127.0.0.1", 9092)]
    with pytest.raises(ValueError, match="another request"):
        kafka_wire.metadata_brokers(response, correlation_id=8)


def test_kafka_is_not_ready_when_nothing_listens(free_port: int) -> None:
    assert not kafka_ready(f"127.0.0.1:{free_port}", timeout=0.5)


# --- Elasticsearch ------------------------------------------------------------------------


def test_elasticsearch_binds_loopback_without_security() -> None:
    lines = render_elasticsearch_yml(SINGLE, SINGLE.elasticsearch[0]).splitlines()
    config = {key: json.loads(value) for key, value in (line.split(": ", 1) for line in lines)}
    assert config["network.host"] == "127.0.0.1"
    assert config["http.port"] == "9200"
    assert config["discovery.type"] == "single-node"
    assert config["xpack.security.enabled"] == "false"
    assert config["action.destructive_requires_name"] == "false"
    assert config["path.data"] == "/srv/stack/elasticsearch/data"
    assert config["path.logs"] == "/srv/stack/elasticsearch/logs"


def health_server(status: str, nodes: int = 1) -> HTTPServer:
    class Health(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps({"status": status, "number_of_nodes": nodes}).encode()
            self.send_response(200 if self.path == "/_cluster/health" else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.mark.parametrize(("status", "ready"), [("green", True), ("yellow", True), ("red", False)])
def test_elasticsearch_is_ready_when_health_is_yellow_or_green(status: str, ready: bool) -> None:
    server = health_server(status)
    try:
        assert elasticsearch_ready(f"http://127.0.0.1:{server.server_port}") is ready
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(("joined", "ready"), [(2, False), (3, True)])
def test_a_cluster_is_ready_once_every_node_joined(joined: int, ready: bool) -> None:
    server = health_server("green", nodes=joined)
    try:
        assert elasticsearch_ready(f"http://127.0.0.1:{server.server_port}", nodes=3) is ready
    finally:
        server.shutdown()
        server.server_close()


def test_elasticsearch_is_not_ready_when_nothing_listens(free_port: int) -> None:
    assert not elasticsearch_ready(f"http://127.0.0.1:{free_port}", timeout=0.5)


# --- ports and processes ------------------------------------------------------------------


def test_listening_inodes_reads_proc_net_tcp() -> None:
    table = (
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt"
        "   uid  timeout inode\n"
        "   0: 0100007F:2384 00000000:0000 0A 00000000:00000000 00:00000000 00000000"
        "     0        0 4242 1 0000000000000000 100 0 0 10 0\n"
        "   1: 0100007F:2384 0100007F:C350 01 00000000:00000000 00:00000000 00000000"
        "     0        0 4343 1 0000000000000000 20 4 30 10 -1\n"
        "   2: 0100007F:23F0 00000000:0000 0A 00000000:00000000 00:00000000 00000000"
        "     0        0 4444 1 0000000000000000 100 0 0 10 0\n"
    )
    assert process.listening_inodes(table, 9092) == {4242}


def test_the_owner_of_a_taken_port_is_found(listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    assert process.port_open("127.0.0.1", port)
    assert process.listener_pid(port) == os.getpid()


def test_a_port_taken_by_another_program_is_a_clear_error(
    tmp_path: Path, listener: socket.socket
) -> None:
    port = listener.getsockname()[1]
    with pytest.raises(StackError) as error:
        fake_server(tmp_path, port).check_ports_free()
    message = str(error.value)
    assert message.startswith(f"127.0.0.1:{port} is taken by pid {os.getpid()} (")
    assert message.endswith("not by our Kafka; stop it or free the port")


def test_free_ports_pass(tmp_path: Path, free_port: int) -> None:
    fake_server(tmp_path, free_port).check_ports_free()


def test_a_pid_file_counts_only_for_a_live_process_with_our_markers(tmp_path: Path) -> None:
    pid_file = tmp_path / "server.pid"
    assert process.owned_pid(pid_file, ("python",)) is None
    pid_file.write_text(f"{os.getpid()}\n", encoding="utf-8")
    assert process.owned_pid(pid_file, ()) == os.getpid()
    assert process.owned_pid(pid_file, ("kafka.Kafka",)) is None
    pid_file.write_text("not a pid", encoding="utf-8")
    assert process.owned_pid(pid_file, ()) is None


def test_a_detached_process_outlives_its_starter_and_stops(tmp_path: Path) -> None:
    log = tmp_path / "out.log"
    pid = process.spawn_detached(
        ["sh", "-c", "echo started; exec sleep 60"], log=log, cwd=tmp_path, env=os.environ
    )
    assert process.alive(pid)
    assert os.getsid(pid) != os.getsid(0)
    assert process.wait_until(lambda: log.read_text(encoding="utf-8") == "started\n", 5.0)
    process.terminate_all([pid], timeout=5.0)
    assert not process.alive(pid)


def test_a_server_that_never_answers_names_its_log(tmp_path: Path, free_port: int) -> None:
    server = fake_server(tmp_path, free_port, timeout=1.0)
    with pytest.raises(StackError) as error:
        server.wait_ready(launcher=os.getpid(), since=time.monotonic() - 1.0)
    assert str(error.value) == (
        f"Kafka did not answer on 127.0.0.1:{free_port} within 1 s; see {tmp_path}/server.log"
    )


def test_a_server_that_exits_during_start_up_fails_at_once(tmp_path: Path, free_port: int) -> None:
    server = fake_server(tmp_path, free_port, timeout=60.0)
    started = time.monotonic()
    with pytest.raises(StackError, match=r"^Kafka exited during start-up; see .*server\.log"):
        server.wait_ready(launcher=None, since=started)
    assert time.monotonic() - started < 5.0


def test_a_stopped_server_has_a_status_line(tmp_path: Path, free_port: int) -> None:
    status = fake_server(tmp_path, free_port).status()
    assert status.state is State.STOPPED
    assert status.line().split()[:4] == ["Kafka", "stopped", f"127.0.0.1:{free_port}", "-"]


# --- provisioning -------------------------------------------------------------------------


def test_maven_errors_are_reduced_to_their_reason() -> None:
    output = (
        "\x1b[0m[ERROR] Failed to execute goal org.apache.maven.plugins:maven-dependency-plugin"
        ":2.8:copy (default-cli) on project logdeck-stack-kafka: Unable to find artifact.\n"
        "[ERROR] \n[ERROR] Try downloading the file manually\n"
    )
    assert provision.maven_error(output) == "Unable to find artifact."
    assert provision.maven_error("") == "see `mvn` output"


def test_unzip_keeps_the_executable_bit(tmp_path: Path) -> None:
    archive = tmp_path / "dist.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        script = zipfile.ZipInfo("dist/bin/run")
        script.external_attr = (stat.S_IFREG | 0o755) << 16
        zipped.writestr(script, "#!/bin/sh\n")
        zipped.writestr("dist/config/settings.yml", "a: 1\n")
    provision.unzip(archive, tmp_path / "out")
    assert os.access(tmp_path / "out" / "dist" / "bin" / "run", os.X_OK)
    assert (tmp_path / "out" / "dist" / "config" / "settings.yml").read_text() == "a: 1\n"


# --- commands -----------------------------------------------------------------------------


def test_status_of_an_empty_stack_is_stopped(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LOGDECK_STACK_DIR", str(tmp_path))
    assert commands.stack_main("status") == commands.EXIT_NOT_RUNNING
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[:2] for line in lines] == [
        ["Kafka", "stopped"],
        ["Elasticsearch", "stopped"],
    ]


def test_down_with_nothing_running_succeeds(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LOGDECK_STACK_DIR", str(tmp_path))
    assert commands.stack_main("down") == 0
    assert "not running" in capsys.readouterr().out


def test_a_stack_error_is_one_line_on_stderr(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def no_maven(layout: Layout) -> bool:
        raise StackError("Maven (`mvn`) is required to fetch Kafka 4.1.1 from Maven Central")

    monkeypatch.setenv("LOGDECK_STACK_DIR", str(tmp_path))
    monkeypatch.setattr(provision, "fetch_kafka", no_maven)
    assert commands.stack_main("fetch") == commands.EXIT_ERROR
    captured = capsys.readouterr()
    assert captured.err == (
        "logdeck stack: Maven (`mvn`) is required to fetch Kafka 4.1.1 from Maven Central\n"
    )


def test_an_unknown_action_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert commands.stack_main("restart") == commands.EXIT_USAGE
    assert capsys.readouterr().err.startswith("logdeck stack: unknown action 'restart'")
