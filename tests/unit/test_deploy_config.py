"""The production deployment agrees with the design and with the code.

docker-compose.yml, deploy/fluentd/fluent.conf and deploy/kibana/saved-objects.ndjson are
read as data and checked against the names the code derives (backend.config), the flags
the command lines accept, the tags a simulated node really sends, the topics the built-in
accumulator would route those records to, and what the indexer, alerter and monitor decode.
No Docker is needed: nothing here starts a container.
"""

from __future__ import annotations

import asyncio
import json
import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import elasticsearch
import msgspec
import pytest
import yaml

from backend.accumulator import Router
from backend.bus import Incoming, Outgoing
from backend.config import (
    DEFAULT_ACCUMULATOR_PORT,
    DEFAULT_ELASTICSEARCH,
    DEFAULT_KAFKA,
    DEFAULT_NAMESPACE,
    Indices,
    Settings,
    Topics,
)
from backend.forward.protocol import Entry, Frame
from backend.indexer import Indexer
from backend.notify.config import load_notify_config
from backend.schemas import DeadLetter, Heartbeat, Level, Log, Registration, decode_as, now_iso
from backend.stack.layout import ELASTICSEARCH_VERSION, KAFKA_VERSION
from backend.store import BulkOutcome, Snapshot
from backend.store.base import StoredLog
from backend.store.elasticsearch import LOG_MAPPINGS
from launch.cli import build_parser
from simulators import node as node_cli
from simulators.node import Node
from simulators.options import ErrorBurst, NodeOptions
from simulators.traffic import PROFILES

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
FLUENT_CONF = ROOT / "deploy" / "fluentd" / "fluent.conf"
SAVED_OBJECTS = ROOT / "deploy" / "kibana" / "saved-objects.ndjson"

TOPICS = Topics.for_namespace(DEFAULT_NAMESPACE)
INDICES = Indices.for_namespace(DEFAULT_NAMESPACE)
KIBANA_PORT = 5601
LOGDECK_ROLES = {"indexer", "alerter", "monitor", "notifier", "console"}
ALERTMANAGER_PORT = 9093
NODE_MODULE = ["python", "-m", "simulators.node"]


# --- fluent.conf, read the way Fluentd reads it ---------------------------------------------


@dataclass
class Section:
    """One directive (`<match logdeck.log>`) or section (`<buffer tag>`) of a Fluentd config."""

    name: str
    arg: str = ""
    params: dict[str, str] = field(default_factory=dict)
    children: list[Section] = field(default_factory=list)

    def child(self, name: str) -> Section:
        found = [c for c in self.children if c.name == name]
        assert len(found) == 1, f"<{self.name} {self.arg}> needs exactly one <{name}>"
        return found[0]

    def json(self, key: str, default: Any = None) -> Any:
        return json.loads(self.params[key]) if key in self.params else default


def parse_fluent_conf(text: str) -> Section:
    """Directives, nested sections and `key value` lines; `#` starts a comment line."""
    root = Section("ROOT")
    stack = [root]
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        closing = re.fullmatch(r"</(\S+)>", line)
        opening = re.fullmatch(r"<(\S+)(?:\s+(.*))?>", line)
        if closing:
            assert stack[-1].name == closing.group(1), f"line {number}: unbalanced {line}"
            stack.pop()
        elif opening:
            section = Section(opening.group(1), (opening.group(2) or "").strip())
            stack[-1].children.append(section)
            stack.append(section)
        else:
            key, _, value = line.partition(" ")
            assert key not in stack[-1].params, f"line {number}: {key} given twice"
            stack[-1].params[key] = value.strip()
    assert len(stack) == 1, f"<{stack[-1].name}> is never closed"
    return root


def _pattern_regex(pattern: str) -> str:
    """Fluentd's tag patterns: `*` one part, `**` any parts (`a.**` matches `a`), `{a,b}`."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^.]+")
            i += 1
        elif pattern[i] == "{":
            end = pattern.index("}", i)
            alternatives = pattern[i + 1 : end].split(",")
            out.append("(?:" + "|".join(_pattern_regex(a) for a in alternatives) + ")")
            i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    regex = "".join(out)
    return regex.replace(r"\..*", r"(?:\..*)?").replace(r".*\.", r"(?:.*\.)?")


def matches(patterns: str, tag: str) -> bool:
    return any(re.fullmatch(_pattern_regex(p), tag) for p in patterns.split())


def route(conf: Section, tag: str) -> tuple[list[Section], Section]:
    """The filters an event of `tag` passes, in order, and the output that takes it."""
    filters: list[Section] = []
    for directive in conf.children:
        if directive.name == "filter" and matches(directive.arg, tag):
            filters.append(directive)
        elif directive.name == "match" and matches(directive.arg, tag):
            return filters, directive
    raise AssertionError(f"no <match> takes tag {tag!r}: Fluentd would drop it")


def kafka_outputs(conf: Section) -> list[Section]:
    return [d for d in conf.children if d.name == "match" and d.params.get("@type") == "kafka2"]


def added_fields(filters: list[Section]) -> dict[str, str]:
    fields: dict[str, str] = {}
    for directive in filters:
        if directive.params.get("@type") == "record_transformer":
            fields |= directive.child("record").params
    return fields


def kafka2_record(output: Section, filters: list[Section], record: dict[str, Any]) -> Incoming:
    """What the kafka2 output puts on Kafka for `record`: its topic, key, JSON body, headers."""
    body = dict(record)
    for name in added_fields(filters):
        body[name] = now_iso()  # the Ruby expressions all make a timestamp (checked below)
    headers = dict(output.json("headers", {}))
    for name, path in output.json("headers_from_record", {}).items():
        headers[name] = str(body[path.removeprefix("$.")])
    for path in output.json("exclude_fields", []):
        body.pop(path.removeprefix("$."), None)
    key = body.get(output.params["message_key_key"])
    return Incoming(
        topic=output.params["default_topic"],
        partition=0,
        offset=0,
        key=key.encode() if isinstance(key, str) else None,
        value=json.dumps(body).encode(),
        headers=tuple((name, value.encode()) for name, value in headers.items()),
        timestamp_ms=0,
    )


# --- docker-compose.yml ------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return loaded


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose["services"]
    return found


@pytest.fixture(scope="module")
def conf() -> Section:
    return parse_fluent_conf(FLUENT_CONF.read_text())


@pytest.fixture(scope="module")
def saved_objects() -> list[dict[str, Any]]:
    lines = [line for line in SAVED_OBJECTS.read_text().splitlines() if line.strip()]
    return [json.loads(line) for line in lines]


def interpolated(value: Any) -> str:
    """A compose value with `${VAR:-default}` read as its default."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", str(value))


def published(service: dict[str, Any]) -> list[tuple[str, int, int, str]]:
    """(host address, host port, container port, protocol) of each published port."""
    ports = []
    for entry in service.get("ports", []):
        spec, _, protocol = str(entry).partition("/")
        address, host_port, container_port = spec.rsplit(":", 2)
        ports.append((address, int(host_port), int(container_port), protocol or "tcp"))
    return ports


def listeners(value: str) -> dict[str, tuple[str, int]]:
    found = {}
    for item in value.split(","):
        name, _, address = item.partition("://")
        host, _, port = address.rpartition(":")
        found[name] = (host, int(port))
    return found


def kafka_env(services: dict[str, dict[str, Any]]) -> dict[str, str]:
    return {k: str(v) for k, v in services["kafka"]["environment"].items()}


def internal_kafka(services: dict[str, dict[str, Any]]) -> str:
    """The address other containers use: the advertised inter-broker listener."""
    env = kafka_env(services)
    host, port = listeners(env["KAFKA_ADVERTISED_LISTENERS"])[
        env["KAFKA_INTER_BROKER_LISTENER_NAME"]
    ]
    return f"{host}:{port}"


def command(service: dict[str, Any]) -> list[str]:
    value = service.get("command", [])
    return [str(part) for part in value] if isinstance(value, list) else str(value).split()


def logdeck_services(services: dict[str, dict[str, Any]]) -> dict[str, list[str]]:
    return {
        name: command(service)
        for name, service in services.items()
        if command(service)[:1] == ["logdeck"]
    }


def node_services(services: dict[str, dict[str, Any]]) -> dict[str, list[str]]:
    return {
        name: command(service)[len(NODE_MODULE) :]
        for name, service in services.items()
        if command(service)[: len(NODE_MODULE)] == NODE_MODULE
    }


def parse_or_fail(parser: Any, argv: list[str], where: str) -> Any:
    try:
        return parser.parse_args(argv)
    except SystemExit:
        pytest.fail(f"{where}: the command line refuses {argv}")


# --- what a simulated node really sends --------------------------------------------------


class RecordingSender:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.sent: list[tuple[str, dict[str, Any]]] = []

    async def emit(self, label: str, record: dict[str, Any]) -> None:
        # fluent-logger and AckSender both tag a record `<tag_prefix>.<label>`.
        self.sent.append((f"{self.prefix}.{label}", record))

    def take_confirmed(self) -> list[str]:
        return []

    @property
    def unconfirmed(self) -> int:
        return 0

    async def close(self) -> None: ...


@pytest.fixture(scope="module")
def sent(services: dict[str, dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """(tag, record) pairs from a short run of a node, with the compose nodes' options."""
    name, argv = sorted(node_services(services).items())[0]
    args = parse_or_fail(node_cli.build_parser(), argv, name)
    options = replace(
        NodeOptions.from_args(args),
        rate=60.0,
        duration=0.25,
        heartbeat_interval=0.05,
        error_burst=ErrorBurst(3, 0.0),
        seed=7,
    )
    sender = RecordingSender(options.tag_prefix)
    node = Node(args.node_id, args.service, options, sender)
    asyncio.run(node.run(asyncio.Event()))
    return sender.sent


def accumulator_route(tag: str, record: dict[str, Any]) -> Outgoing:
    """Where the built-in accumulator would publish this record."""
    router = Router(Settings(namespace=DEFAULT_NAMESPACE), "test")
    [outgoing] = router.route([Frame("Message", tag, [Entry(0.0, record)])], "test")
    return outgoing


# --- Fluentd -------------------------------------------------------------------------------


def test_fluentd_listens_where_the_nodes_send(conf: Section, services: dict[str, Any]) -> None:
    [source] = [d for d in conf.children if d.name == "source"]
    assert source.params["@type"] == "forward"
    assert int(source.params["port"]) == DEFAULT_ACCUMULATOR_PORT
    assert source.params["bind"] == "0.0.0.0"
    fluentd_ports = {(p[1], p[2], p[3]) for p in published(services["fluentd"])}
    port = DEFAULT_ACCUMULATOR_PORT
    assert {(port, port, "tcp"), (port, port, "udp")} <= fluentd_ports
    nodes = node_services(services)
    assert len(nodes) == 3, "three simulated nodes"
    for name, argv in nodes.items():
        args = parse_or_fail(node_cli.build_parser(), argv, name)
        assert (args.host, args.port) == ("fluentd", port), name


def test_every_tag_a_node_sends_goes_where_the_accumulator_would_put_it(
    conf: Section, sent: list[tuple[str, dict[str, Any]]]
) -> None:
    prefix = NodeOptions().tag_prefix
    tags = {tag for tag, _ in sent}
    assert tags == {f"{prefix}.registration", f"{prefix}.log", f"{prefix}.heartbeat"}
    for tag, record in sent:
        filters, output = route(conf, tag)
        expected = accumulator_route(tag, record)
        assert expected.topic != TOPICS.deadletter, f"the simulator sent a bad record: {record}"
        written = kafka2_record(output, filters, record)
        assert (written.topic, written.key) == (expected.topic, expected.key), tag
        assert written.header("tag") == tag.encode()
        assert set(dict(written.headers)) == {name for name, _ in expected.headers}


def test_other_tags_are_dead_lettered_like_the_accumulator_does(conf: Section) -> None:
    required = {f.name for f in msgspec.structs.fields(DeadLetter) if f.required}
    allowed = {f.name for f in msgspec.structs.fields(DeadLetter)}
    for tag in ("logdeck.metrics", "logdeck", "logdeck.log.debug", "app.log", "fluent.info"):
        filters, output = route(conf, tag)
        assert output.params["default_topic"] == TOPICS.deadletter, tag
        [shaper] = [f for f in filters if f.params.get("renew_record") == "true"]
        assert required <= set(added_fields([shaper])) <= allowed
    for tag in ("logdeck.registration", "logdeck.log", "logdeck.heartbeat"):
        filters, output = route(conf, tag)
        assert output.params["default_topic"] != TOPICS.deadletter
        assert not any(f.params.get("renew_record") == "true" for f in filters), tag
    # Fluentd's own log events have a label of their own, or the catch-all would take them.
    assert any(d.name == "label" and d.arg == "@FLUENT_LOG" for d in conf.children)


def test_outputs_write_only_known_topics_durably(
    conf: Section, services: dict[str, dict[str, Any]]
) -> None:
    outputs = kafka_outputs(conf)
    assert {o.params["default_topic"] for o in outputs} == {
        TOPICS.registrations,
        TOPICS.logs,
        TOPICS.heartbeats,
        TOPICS.deadletter,
    }
    mounts = dict(str(v).split(":", 1)[::-1] for v in services["fluentd"]["volumes"])
    buffer_dir = next(target for target, source in mounts.items() if source == "fluentd-buffer")
    paths = []
    for output in outputs:
        where = output.params["@id"]
        assert output.params["brokers"] == internal_kafka(services), where
        assert output.params["required_acks"] == "-1", where
        assert output.params["message_key_key"] == "node_id", where
        # Kafka's default partitioner (murmur2), as aiokafka and the monitor's guesses use.
        assert output.params["partitioner_hash_function"] == "murmur2", where
        assert output.child("format").params["@type"] == "json", where
        buffer = output.child("buffer")
        assert buffer.params["@type"] == "file", where
        assert buffer.params["retry_forever"] == "true", where
        assert buffer.params["flush_at_shutdown"] == "true", where
        # Fluentd reads "0.2s" as 2 s and "200ms" as 200 minutes: plain seconds only.
        assert re.fullmatch(r"\d+(\.\d+)?", buffer.params["flush_interval"]), where
        # kafka2 chunks by the record's `topic` field unless told otherwise: a record could
        # then pick its own topic.
        chunk_keys = [key.strip() for key in buffer.arg.split(",") if key.strip()]
        assert chunk_keys and "topic" not in chunk_keys, where
        paths.append(buffer.params["path"])
        assert Path(buffer.params["path"]).parent == Path(buffer_dir), where
    assert len(set(paths)) == len(paths), "each file buffer needs a path of its own"


def test_ingest_metadata_travels_in_headers_as_the_indexer_reads_it(
    conf: Section, sent: list[tuple[str, dict[str, Any]]]
) -> None:
    logs = [(tag, record) for tag, record in sent if record["message_type"] == "LOG"]
    stamped = []
    for tag, record in logs:
        filters, output = route(conf, tag)
        stamped.append(kafka2_record(output, filters, record))
    for filters, output in (route(conf, tag) for tag in {tag for tag, _ in sent}):
        for name, expression in added_fields(filters).items():
            assert "strftime" in expression, f"{name} is not a timestamp"
            assert name in output.json("headers_from_record", {}), f"{name} stays in the body"
            assert f"$.{name}" in output.json("exclude_fields", [])
    assert all(b"ingested_at" not in record.value for record in stamped)
    store = FakeStore()
    indexer = Indexer(Settings(namespace=DEFAULT_NAMESPACE), store, None, FakeDead())  # type: ignore[arg-type]
    asyncio.run(indexer.process(stamped))
    assert len(store.logs) == len(logs) and not indexer.stats.dead
    for record in stamped:
        stored = store.logs[json.loads(record.value)["log_id"]]
        assert stored.ingested_at is not None
        assert record.header("ingested_at") == stored.ingested_at.encode()


def test_consumers_take_what_kafka2_writes_with_or_without_headers(
    sent: list[tuple[str, dict[str, Any]]],
) -> None:
    """kafka2 writes the record as plain JSON; headers may be missing (older plugins)."""
    decoders = {TOPICS.logs: Log, TOPICS.heartbeats: Heartbeat, TOPICS.registrations: Registration}
    bare = []
    for tag, record in sent:
        topic = accumulator_route(tag, record).topic
        for body in (record, record | {"ingested_at": now_iso()}):
            decode_as(json.dumps(body).encode(), decoders[topic])  # alerter, monitor, indexer
        if topic == TOPICS.logs:
            value = json.dumps(record).encode()
            bare.append(Incoming(topic, 0, len(bare), record["node_id"].encode(), value, (), 0))
    store = FakeStore()
    indexer = Indexer(Settings(namespace=DEFAULT_NAMESPACE), store, None, FakeDead())  # type: ignore[arg-type]
    asyncio.run(indexer.process(bare))
    assert len(store.logs) == len(bare) and not indexer.stats.dead
    assert all(item.ingested_at is None for item in store.logs.values())
    levels = {item.log.log_level for item in store.logs.values()}
    assert Level.ERROR in levels


class FakeStore:
    def __init__(self) -> None:
        self.logs: dict[str, StoredLog] = {}

    async def index_logs(self, logs: list[StoredLog]) -> BulkOutcome:
        self.logs |= {item.log.log_id: item for item in logs}
        return BulkOutcome(stored=len(logs))

    async def put_snapshots(self, snapshots: list[Snapshot]) -> BulkOutcome:
        return BulkOutcome(stored=len(snapshots))

    async def delete_logs_before(self, day: date) -> list[str]:
        return []


class FakeDead:
    async def publish(self, records: list[Outgoing]) -> None:
        raise AssertionError(f"dead letters: {records}")


# --- docker-compose.yml -----------------------------------------------------------------


def test_images_are_the_versions_the_local_stack_runs(services: dict[str, Any]) -> None:
    assert services["kafka"]["image"] == f"apache/kafka:{KAFKA_VERSION}"
    elastic = "docker.elastic.co/elasticsearch/elasticsearch"
    assert services["elasticsearch"]["image"] == f"{elastic}:{ELASTICSEARCH_VERSION}"
    assert services["kibana"]["image"] == f"docker.elastic.co/kibana/kibana:{ELASTICSEARCH_VERSION}"
    client_major = elasticsearch.__versionstr__.split(".")[0]
    assert ELASTICSEARCH_VERSION.split(".")[0] == client_major


def test_ports_are_the_designs_and_on_loopback_only(services: dict[str, Any]) -> None:
    everything = {
        (name, host_port, protocol)
        for name, service in services.items()
        for address, host_port, _, protocol in published(service)
        if address == "127.0.0.1"
    }
    assert len(everything) == sum(len(published(s)) for s in services.values()), "not loopback"
    assert everything == {
        ("kafka", int(DEFAULT_KAFKA.rpartition(":")[2]), "tcp"),
        ("elasticsearch", urlparse(DEFAULT_ELASTICSEARCH).port, "tcp"),
        ("kibana", KIBANA_PORT, "tcp"),
        ("alertmanager", ALERTMANAGER_PORT, "tcp"),
        ("fluentd", DEFAULT_ACCUMULATOR_PORT, "tcp"),
        ("fluentd", DEFAULT_ACCUMULATOR_PORT, "udp"),
    }
    [(_, _, es_inside, _)] = published(services["elasticsearch"])
    [(_, _, kibana_inside, _)] = published(services["kibana"])
    assert (es_inside, kibana_inside) == (9200, KIBANA_PORT)


def test_kafka_is_reached_as_kafka_9092_inside_and_as_the_default_outside(
    services: dict[str, dict[str, Any]],
) -> None:
    env = kafka_env(services)
    assert internal_kafka(services) == "kafka:9092"
    bound = listeners(env["KAFKA_LISTENERS"])
    advertised = listeners(env["KAFKA_ADVERTISED_LISTENERS"])
    [(_, host_port, container_port, _)] = published(services["kafka"])
    [outside] = [name for name, (_, port) in bound.items() if port == container_port]
    assert f"{advertised[outside][0]}:{advertised[outside][1]}" == DEFAULT_KAFKA
    assert advertised[outside][1] == host_port
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert env["KAFKA_LOG_DIRS"] in {str(v).split(":", 1)[1] for v in services["kafka"]["volumes"]}


def test_logdeck_services_run_real_subcommands(services: dict[str, dict[str, Any]]) -> None:
    commands = logdeck_services(services)
    assert set(commands) == LOGDECK_ROLES, "Fluentd replaces the accumulator"
    for name, argv in commands.items():
        args = parse_or_fail(build_parser(), argv[1:], name)
        assert args.command == name
        assert args.kafka == internal_kafka(services), name
        if name in ("indexer", "console"):
            assert urlparse(args.elasticsearch).hostname in services, name
            assert urlparse(args.elasticsearch).port == urlparse(DEFAULT_ELASTICSEARCH).port
        assert args.namespace in (None, DEFAULT_NAMESPACE), "fluent.conf names logdeck.* topics"
        assert not getattr(args, "embedded", None), f"{name} must use Kafka and Elasticsearch"
    for name, service in services.items():
        env = {k: interpolated(v) for k, v in (service.get("environment") or {}).items()}
        assert env.get("LOGDECK_NAMESPACE", DEFAULT_NAMESPACE) == DEFAULT_NAMESPACE, name
        assert not env.get("LOGDECK_EMBEDDED"), name
        if "LOGDECK_PARTITIONS" in env:
            assert int(env["LOGDECK_PARTITIONS"]) == Settings().partitions, name


def test_three_distinct_simulated_nodes(services: dict[str, dict[str, Any]]) -> None:
    parsed = [
        parse_or_fail(node_cli.build_parser(), argv, name)
        for name, argv in node_services(services).items()
    ]
    assert len({args.node_id for args in parsed}) == 3
    assert {args.service for args in parsed} <= {profile.name for profile in PROFILES}


def test_topics_come_from_the_projects_own_names(
    services: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    created: list[tuple[str, int, tuple[str, ...], tuple[str, ...]]] = []

    class RecordingBus:
        def __init__(self, bootstrap: str, partitions: int = 6) -> None:
            self.where = (bootstrap, partitions)

        async def ensure_topics(self, topics: Any, compacted: Any = ()) -> None:
            created.append((*self.where, tuple(topics), tuple(compacted)))

    service = services["topics"]
    for name, value in service["environment"].items():
        monkeypatch.setenv(name, interpolated(value))
    monkeypatch.setattr("backend.bus.kafka.bus.KafkaBus", RecordingBus)
    argv = command(service)
    assert argv[:2] == ["python", "-c"]
    exec(compile(argv[2], "topics", "exec"), {})
    settings = Settings()
    assert created == [
        (internal_kafka(services), settings.partitions, TOPICS.all(), TOPICS.compacted())
    ]


def test_start_order_waits_for_health(services: dict[str, dict[str, Any]]) -> None:
    probes = {
        "kafka": "kafka-broker-api-versions.sh --bootstrap-server localhost:9092",
        "elasticsearch": "_cluster/health",
        "kibana": "api/status",
        "alertmanager": f"http://localhost:{ALERTMANAGER_PORT}/-/ready",
        "fluentd": f'TCPSocket.new("127.0.0.1", {DEFAULT_ACCUMULATOR_PORT})',
    }
    for name, probe in probes.items():
        assert probe in " ".join(services[name]["healthcheck"]["test"]), name
    for name, service in services.items():
        for target, rule in (service.get("depends_on") or {}).items():
            if rule["condition"] == "service_healthy":
                assert "healthcheck" in services[target], f"{name} waits on {target}"
            else:
                assert rule["condition"] == "service_completed_successfully"
                assert services[target]["restart"] in ("no", "on-failure"), target

    def waits_for(name: str) -> dict[str, str]:
        return {
            t: rule["condition"] for t, rule in (services[name].get("depends_on") or {}).items()
        }

    healthy, done = "service_healthy", "service_completed_successfully"
    assert waits_for("topics") == {"kafka": healthy}
    assert waits_for("fluentd") == {"kafka": healthy, "topics": done}
    assert waits_for("indexer") == {"kafka": healthy, "elasticsearch": healthy, "topics": done}
    for name in ("alerter", "monitor"):
        assert waits_for(name) == {"kafka": healthy, "topics": done}, name
    for name in node_services(services):
        assert waits_for(name) == {"fluentd": healthy}, name
    assert waits_for("kibana") == {"elasticsearch": healthy}
    assert waits_for("kibana-setup") == {"kibana": healthy}


def test_state_lives_in_named_volumes(compose: dict[str, Any]) -> None:
    services = compose["services"]
    volumes = set(compose["volumes"])
    mounts = {
        (name, *str(v).split(":")[:2])
        for name, service in services.items()
        for v in service.get("volumes", [])
    }
    assert {
        ("kafka", "kafka-data", "/var/lib/kafka/data"),
        ("elasticsearch", "elasticsearch-data", "/usr/share/elasticsearch/data"),
        ("fluentd", "fluentd-buffer", "/fluentd/buffer"),
    } <= mounts
    assert {"kafka-data", "elasticsearch-data", "fluentd-buffer"} <= volumes
    for _, source, _ in mounts:
        assert source in volumes or (ROOT / source).exists(), f"{source} is neither"


def test_the_notifier_reads_a_mounted_config_that_sends_to_the_stacks_alertmanager(
    services: dict[str, dict[str, Any]],
) -> None:
    notifier = services["notifier"]
    args = parse_or_fail(build_parser(), command(notifier)[1:], "notifier")
    mounts = {
        target: source for source, target, *_ in (str(v).split(":") for v in notifier["volumes"])
    }
    config = load_notify_config(ROOT / mounts[str(args.config)])
    [receiver] = config.receivers
    url = urlparse(receiver.url)
    assert (receiver.type, url.hostname, url.port) == (
        "alertmanager",
        "alertmanager",
        ALERTMANAGER_PORT,
    )
    assert services["alertmanager"]["image"].startswith("prom/alertmanager:v0.25.")
    assert notifier["depends_on"]["alertmanager"]["condition"] == "service_healthy"


def test_console_attaches_to_the_terminal(services: dict[str, dict[str, Any]]) -> None:
    console = services["console"]
    assert console["profiles"] == ["console"]
    assert console["tty"] is True and console["stdin_open"] is True
    assert console["restart"] == "no"


def test_images_are_built_from_the_project(services: dict[str, dict[str, Any]]) -> None:
    logdeck = {name: s for name, s in services.items() if s.get("image") == "logdeck:local"}
    assert set(logdeck_services(services)) | set(node_services(services)) <= set(logdeck)
    for name, service in logdeck.items():
        build = service["build"]
        assert (build["context"], build["dockerfile"]) == (".", "deploy/logdeck/Dockerfile"), name
    dockerfile = (ROOT / "deploy" / "logdeck" / "Dockerfile").read_text()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = [p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]]
    for copied in ("pyproject.toml", "README.md", *packages):
        assert re.search(rf"^COPY .*\b{re.escape(copied)}\b", dockerfile, re.M), copied
    # Editable: a wheel would leave out files beside the code, such as console/app.tcss.
    assert re.search(r"pip install .*-e \.", dockerfile)

    assert services["fluentd"]["build"] == "deploy/fluentd"
    fluentd = (ROOT / "deploy" / "fluentd" / "Dockerfile").read_text()
    assert "gem install fluent-plugin-kafka" in fluentd
    # What `partitioner_hash_function murmur2` loads at run time.
    assert re.search(r"^\s*&& gem install digest-murmurhash\b", fluentd, re.M)
    assert "COPY fluent.conf /fluentd/etc/fluent.conf" in fluentd


# --- Kibana ------------------------------------------------------------------------------


def by_type(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["type"] == kind]


def lens_columns(lens: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    layers = lens["attributes"]["state"]["datasourceStates"]["formBased"]["layers"]
    for layer_id, layer in layers.items():
        for column_id, column in layer["columns"].items():
            yield layer_id, column_id, column


def test_saved_objects_are_importable(
    saved_objects: list[dict[str, Any]], services: dict[str, dict[str, Any]]
) -> None:
    keys = {(o["type"], o["id"]) for o in saved_objects}
    assert len(keys) == len(saved_objects), "duplicate ids"
    for obj in saved_objects:
        assert {"id", "type", "attributes", "references"} <= set(obj)
        assert obj["coreMigrationVersion"].startswith("8.")
        for ref in obj["references"]:
            assert (ref["type"], ref["id"]) in keys, f"{obj['id']} refers to a missing {ref}"
    setup = services["kibana-setup"]
    assert any(v.startswith("./deploy/kibana/saved-objects.ndjson:") for v in setup["volumes"])
    assert "/api/saved_objects/_import" in " ".join(command(setup))


def test_data_view_is_on_the_log_indices(saved_objects: list[dict[str, Any]]) -> None:
    [view] = by_type(saved_objects, "index-pattern")
    assert view["attributes"]["title"] == INDICES.logs_pattern
    time_field = view["attributes"]["timeFieldName"]
    assert LOG_MAPPINGS["properties"][time_field]["type"] == "date"


def test_visualizations_use_fields_the_logs_have(saved_objects: list[dict[str, Any]]) -> None:
    [view] = by_type(saved_objects, "index-pattern")
    mapping = LOG_MAPPINGS["properties"]
    needs = {"terms": "keyword", "date_histogram": "date"}
    lenses = by_type(saved_objects, "lens")
    assert lenses
    for lens in lenses:
        refs = {r["name"]: r["id"] for r in lens["references"]}
        columns = {column_id for _, column_id, _ in lens_columns(lens)}
        for layer_id, _, column in lens_columns(lens):
            assert refs[f"indexpattern-datasource-layer-{layer_id}"] == view["id"]
            if column["operationType"] != "count":
                field_type = mapping[column["sourceField"]]["type"]
                assert field_type == needs[column["operationType"]], column["sourceField"]
        for layer in lens["attributes"]["state"]["visualization"]["layers"]:
            used = {layer["xAccessor"], *layer["accessors"], layer.get("splitAccessor")}
            assert used - {None} <= columns, lens["id"]


def test_dashboard_shows_levels_over_time_and_error_services(
    saved_objects: list[dict[str, Any]],
) -> None:
    [view] = by_type(saved_objects, "index-pattern")
    [dashboard] = by_type(saved_objects, "dashboard")
    lenses = {lens["id"]: lens for lens in by_type(saved_objects, "lens")}
    refs = {r["name"]: r for r in dashboard["references"]}
    shown = []
    for panel in json.loads(dashboard["attributes"]["panelsJSON"]):
        ref = refs[f"{panel['panelIndex']}:{panel['panelRefName']}"]
        assert ref["type"] == panel["type"] == "lens"
        shown.append(lenses[ref["id"]])
    assert {lens["id"] for lens in shown} == set(lenses)

    def fields(lens: dict[str, Any]) -> set[tuple[str, str]]:
        return {
            (c["operationType"], c["sourceField"])
            for _, _, c in lens_columns(lens)
            if c["operationType"] != "count"
        }

    time_field = view["attributes"]["timeFieldName"]
    over_time = {("date_histogram", time_field), ("terms", "log_level")}
    assert any(fields(lens) == over_time for lens in shown)
    [errors] = [lens for lens in shown if fields(lens) == {("terms", "service_name")}]
    query = errors["attributes"]["state"]["query"]["query"]
    assert re.fullmatch(rf'log_level\s*:\s*"{Level.ERROR.value}"', query)
