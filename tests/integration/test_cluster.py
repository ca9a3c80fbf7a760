"""The three-node cluster of `logdeck stack up --cluster`: a pipeline round trip on it, the
copies its topics and indices keep, and Kafka's SASL_SSL and ACLs holding each role to
its rights.

It starts six JVMs: `python -m pytest -m cluster` runs it alone, `-m "not cluster"` skips
it. The cluster is started through the stack's own code and stopped at the end, unless it
already ran before the module started. Every service and client here gets its credentials
from `logdeck stack env --cluster --role ROLE`, as an operator's would.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import subprocess
import sys
import uuid
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from elasticsearch import Elasticsearch

from backend.backends import open_bus, open_store
from backend.bus import BusUnavailable, Outgoing
from backend.config import Settings
from backend.observe.live import LiveObserver
from backend.schemas import Alert, AlertKind, AlertState, Severity, encode, now_iso
from backend.security import KafkaSecurity
from backend.stack import commands, topology
from backend.stack.acls import open_namespace
from backend.stack.env import ROLES
from backend.stack.layout import Layout
from backend.stack.topology import Topology
from console.app import LogdeckApp
from tests.integration import test_notifier
from tests.integration.conftest import Launch
from tests.integration.harness import (
    ROOT,
    Process,
    Stored,
    connection_flags,
    drop_test_topics,
    free_port,
    ledger_ids,
    new_namespace,
    until,
    wait_until,
)
from tests.integration.test_notifier import (
    CODE,
    Hooks,
    codes_told,
    eventually,
    hook_only_config,
    send_fatal,
)
from widgets.alert_queue import AlertQueue

pytestmark = pytest.mark.cluster

hooks = test_notifier.hooks
"""A webhook receiver on 127.0.0.1, the notifier tests' fixture."""


@cache
def stack_env(role: str | None) -> dict[str, str]:
    """What `logdeck stack env --cluster [--role ROLE]` exports, as variables."""
    chosen = ["--role", role] if role else []
    printed = subprocess.run(
        [sys.executable, "-m", "launch", "stack", "env", "--cluster", *chosen],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return dict(shlex.split(line)[1].split("=", 1) for line in printed.splitlines())


def security(role: str | None) -> KafkaSecurity:
    """ROLE's client settings (None: the admin's), read as a service reads its own."""
    return KafkaSecurity.from_env(stack_env(role))


@pytest.fixture(scope="module")
def cluster() -> Iterator[Topology]:
    stack = topology.cluster(Layout.default())
    ran_before = any(srv.pid() is not None for srv in commands.servers(stack))
    assert commands.up(stack) == 0
    stack_env.cache_clear()
    yield stack
    asyncio.run(drop_test_topics(stack.bootstrap, security(None).client_options()))
    if not ran_before:
        commands.down(stack)


@pytest.fixture
def settings(cluster: Topology) -> Settings:
    """Overrides the conftest's: every test here on the cluster, in a namespace of its own
    that the stack opened (topics and ACLs); the test's own clients are the admin."""
    namespace = new_namespace()
    open_namespace(cluster, namespace, partitions=3)
    return Settings(
        kafka=cluster.bootstrap,
        elasticsearch=cluster.elasticsearch_urls,
        namespace=namespace,
        partitions=3,
        accumulator_port=free_port(),
        kafka_security=security(None),
    )


def as_role(settings: Settings, role: str) -> Settings:
    return Settings(
        kafka=settings.kafka,
        elasticsearch=settings.elasticsearch,
        namespace=settings.namespace,
        partitions=settings.partitions,
        kafka_security=security(role),
    )


@pytest.fixture
def launch(tmp_path: Path, settings: Settings) -> Iterator[Launch]:
    """Overrides the conftest's: a service runs as its role's principal, with the
    variables `stack env --role` gives it; a command with no role runs with none."""
    started: list[Process] = []

    def start(command: str, *extra: str, name: str | None = None) -> Process:
        args = [command, *extra]
        if command in ROLES:
            args += connection_flags(settings)
        if command == "accumulator" and "--port" not in extra:
            args += ["--port", str(settings.accumulator_port)]
        env = stack_env(command) if command in ROLES else {}
        process = Process(args, tmp_path / f"{name or command}-{len(started)}.log", env)
        started.append(process)
        return process

    yield start
    for process in reversed(started):
        process.stop()


@pytest.fixture
def indexer_from_env(settings: Settings, tmp_path: Path) -> Iterator[Path]:
    """An indexer that learns where the cluster is, and who it is, only from
    `stack env --role indexer`."""
    python = sys.executable
    script = (
        f'eval "$({python} -m launch stack env --cluster --role indexer)" && '
        f"exec {python} -m launch indexer --namespace {settings.namespace} --partitions 3"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOGDECK_")}
    log = tmp_path / "indexer.log"
    with log.open("ab") as out:
        indexer = subprocess.Popen(
            ["bash", "-c", script],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**env, "PYTHONUNBUFFERED": "1"},
        )
    yield log
    indexer.terminate()
    indexer.wait(30)


def test_logs_sent_through_the_cluster_are_stored_once_and_searched_back(
    settings: Settings,
    stored: Stored,
    accumulator: Process,
    indexer_from_env: Path,
    launch: Launch,
    tmp_path: Path,
) -> None:
    ledger = tmp_path / "ledger"
    fleet = launch(
        "simulate",
        *("--port", str(settings.accumulator_port), "--ledger", str(ledger)),
        *("--node-prefix", f"{settings.namespace}-", "--nodes", "3"),
        *("--rate", "30", "--duration", "5"),
    )
    assert fleet.wait(90) == 0, fleet.output()
    sent = ledger_ids(ledger)
    assert len(sent) >= 3 * 30 * 5 * 0.9, f"only {len(sent)} logs sent"
    wait_until(
        lambda: stored.logs()[0] >= len(sent),
        90,
        f"{len(sent)} logs in the store; indexer said:\n{indexer_from_env.read_text()}",
    )
    total, ids = stored.logs()
    assert total == len(sent)
    assert sorted(ids) == sorted(sent)
    with Elasticsearch(settings.elasticsearch_urls, request_timeout=90) as es:
        health = es.cluster.health(
            index=settings.indices.logs_pattern, wait_for_status="green", timeout="60s"
        )
        assert health["status"] == "green"
        daily = es.indices.get_settings(index=settings.indices.logs_pattern)
    assert {s["settings"]["index"]["number_of_replicas"] for s in daily.body.values()} == {"1"}


async def _topic_copies(settings: Settings) -> dict[str, tuple[set[int], str]]:
    """Each topic's replica counts over its partitions, and its min.insync.replicas."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka, **settings.kafka_security.client_options()
    )
    await admin.start()
    try:
        described = await admin.describe_topics(list(settings.topics.all()))
        wanted = {"min.insync.replicas": None}
        configs = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, t, wanted) for t in settings.topics.all()]
        )
    finally:
        await admin.close()
    min_isr = {
        resource["resource_name"]: entry["config_value"]
        for response in configs
        for resource in response.to_object()["resources"]
        for entry in resource["config_entries"]
    }
    return {
        topic["topic"]: (
            {len(partition["replicas"]) for partition in topic["partitions"]},
            min_isr[topic["topic"]],
        )
        for topic in described
    }


def test_topics_keep_three_copies_and_need_two_for_an_ack(settings: Settings) -> None:
    bus = open_bus(settings)
    asyncio.run(bus.ensure_topics(settings.topics.all(), settings.topics.compacted()))
    copies: dict[str, tuple[set[int], str]] = {}

    def described() -> bool:
        """Until every new topic's partitions reach the metadata the admin client reads."""
        copies.update(asyncio.run(_topic_copies(settings)))
        return all(replicas for replicas, _ in copies.values())

    wait_until(described, 30, "the new topics' partitions in the metadata")
    assert copies == {topic: ({3}, "2") for topic in settings.topics.all()}


async def _ensure_schema(settings: Settings) -> None:
    store = open_store(settings)
    try:
        await store.ensure_schema()
    finally:
        await store.close()


def test_indices_keep_one_replica_on_another_node(settings: Settings, stored: Stored) -> None:
    asyncio.run(_ensure_schema(settings))
    indices = settings.indices
    with Elasticsearch(settings.elasticsearch_urls, request_timeout=90) as es:
        health = es.cluster.health(
            index=[indices.alerts, indices.nodes], wait_for_status="green", timeout="60s"
        )
        assert health["status"] == "green"
        replicas = {
            name: found["settings"]["index"]["number_of_replicas"]
            for name, found in es.indices.get_settings(index=f"{settings.namespace}-*").items()
        }
        template = es.indices.get_index_template(name=indices.logs_prefix.rstrip("-"))
    assert replicas == {indices.alerts: "1", indices.nodes: "1"}
    (logs,) = template["index_templates"]
    assert logs["index_template"]["template"]["settings"]["index"]["number_of_replicas"] == "1"


# --- who gets in, and what each may do ------------------------------------------------


def _healthy(settings: Settings, kafka_security: KafkaSecurity) -> bool:
    bus = open_bus(Settings(kafka=settings.kafka, kafka_security=kafka_security))
    return asyncio.run(bus.healthy())


def test_only_a_principal_with_its_password_gets_in(settings: Settings) -> None:
    indexer = stack_env("indexer")
    wrong = {**indexer, "LOGDECK_KAFKA_PASSWORD": uuid.uuid4().hex}
    assert _healthy(settings, KafkaSecurity.from_env(indexer))
    assert not _healthy(settings, KafkaSecurity())
    assert not _healthy(settings, KafkaSecurity.from_env(wrong))


async def _publish(settings: Settings, topic: str) -> None:
    publisher = open_bus(settings).publisher()
    await publisher.start()
    try:
        async with asyncio.timeout(30):
            await publisher.publish([Outgoing(topic, b"key", b"{}")])
    finally:
        await publisher.stop()


def test_the_indexer_writes_dead_letters_but_not_alert_commands(settings: Settings) -> None:
    indexer = as_role(settings, "indexer")
    asyncio.run(_publish(indexer, settings.topics.deadletter))
    with pytest.raises(BusUnavailable, match="not allowed by Kafka") as refused:
        asyncio.run(_publish(indexer, settings.topics.alert_commands))
    assert "TopicAuthorizationFailed" in str(refused.value)


def _alert(namespace: str) -> Alert:
    at = now_iso()
    return Alert(
        alert_id=uuid.uuid4().hex,
        fingerprint=f"LOG_LEVEL|{namespace}-payment|PAY-500",
        kind=AlertKind.LOG_LEVEL,
        severity=Severity.ERROR,
        node_id=f"{namespace}-payment-01",
        service_name="payment",
        summary="payment failed",
        first_seen=at,
        last_seen=at,
        count=1,
        state=AlertState.OPEN,
    )


async def test_a_read_only_consoles_acknowledgement_is_refused_by_kafka_and_shown(
    settings: Settings,
) -> None:
    """The console is not started with --read-only: the refusal is Kafka's alone."""
    alert = _alert(settings.namespace)
    record = Outgoing(settings.topics.alerts, alert.alert_id.encode(), encode(alert))
    alerter = open_bus(as_role(settings, "alerter")).publisher()
    await alerter.start()
    try:
        await alerter.publish([record])
    finally:
        await alerter.stop()
    reader = as_role(settings, "console-read-only")
    app = LogdeckApp(LiveObserver(reader, open_bus(reader), open_store(reader)))
    async with app.run_test(size=(160, 48)) as pilot:
        alerts = app.screen.query_one(AlertQueue)
        await until(lambda: alert.alert_id in alerts.alerts, 60, "the alert in the console")
        alerts.focus()
        alerts.move_cursor(row=0)
        await pilot.pause()
        await pilot.press("a")

        def refusals() -> list[str]:
            return [n.message for n in app._notifications if "not allowed by Kafka" in n.message]

        await until(lambda: bool(refusals()), 30, "the console to say Kafka refused")
        assert refusals()[0].startswith("acknowledge failed: writing is not allowed by Kafka")
    commands_sent = await open_bus(settings).snapshot(settings.topics.alert_commands)
    assert commands_sent == []


async def test_the_notifier_on_its_own_principal_tells_a_webhook_of_a_fatal(
    settings: Settings, tmp_path: Path, hooks: Hooks, accumulator: Process, launch: Launch
) -> None:
    """The alerter and the notifier with their roles' rights alone: the alert is raised,
    the webhook told, and the notifier's record of it written to its topic."""
    launch("alerter")
    notifier = launch("notifier", "--config", str(hook_only_config(tmp_path, hooks)))
    await send_fatal(settings, f"{settings.namespace}-payment-01")
    await until(lambda: CODE in codes_told(hooks), 90, "the FATAL at the webhook")
    bus = open_bus(settings)  # the admin's

    async def recorded() -> bool:
        return bool(await bus.snapshot(settings.topics.notifications))

    await eventually(recorded, 30, "the notifier's record of what it told")
    assert "not allowed by Kafka" not in notifier.output()
