"""The secured cluster's pure parts: its brokers' listeners and authorizer, the
certificates and passwords it makes once, each role's ACLs and the credentials `stack env`
gives it. The cluster itself is exercised in tests/integration/test_cluster.py."""

from __future__ import annotations

import shlex
import ssl
import stat
import subprocess
from pathlib import Path

import pytest
from aiokafka.errors import ClusterAuthorizationFailedError, KafkaConnectionError

from backend.bus.kafka.clients import refused
from backend.config import Settings
from backend.security import KafkaSecurity
from backend.stack import commands
from backend.stack.env import ROLES, env_lines
from backend.stack.kafka import render_server_properties
from backend.stack.kafka_secured import certificates, format_flags, passwords_file
from backend.stack.layout import Layout
from backend.stack.principals import ADMIN, ensure_passwords, load_passwords
from backend.stack.rights import Grant, role_grants
from backend.stack.tls import ensure_certificates
from backend.stack.topology import cluster, single

LAYOUT = Layout(Path("/srv/stack"))


def properties(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines())


# --- brokers ----------------------------------------------------------------------------


def test_clients_get_sasl_ssl_and_the_brokers_mutual_tls() -> None:
    stack = cluster(LAYOUT)
    config = properties(render_server_properties(stack, stack.kafka[2]))
    assert config["listeners"] == (
        "CLIENT://127.0.0.1:19096,INTERNAL://127.0.0.1:19103,CONTROLLER://127.0.0.1:19097"
    )
    assert config["listener.security.protocol.map"] == (
        "CLIENT:SASL_SSL,INTERNAL:SSL,CONTROLLER:SSL"
    )
    assert config["inter.broker.listener.name"] == "INTERNAL"
    assert config["sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert config["listener.name.internal.ssl.client.auth"] == "required"
    assert config["listener.name.controller.ssl.client.auth"] == "required"
    assert config["ssl.keystore.location"] == "/srv/stack/cluster/secrets/tls/broker.pem"
    assert config["ssl.truststore.type"] == "PEM"


def test_the_cluster_denies_what_no_acl_allows() -> None:
    stack = cluster(LAYOUT)
    config = properties(render_server_properties(stack, stack.kafka[0]))
    assert config["authorizer.class.name"].endswith("StandardAuthorizer")
    assert config["allow.everyone.if.no.acl.found"] == "false"
    assert config["super.users"] == "User:admin;User:CN=logdeck-broker"


def test_the_single_stack_stays_open() -> None:
    stack = single(LAYOUT)
    config = properties(render_server_properties(stack, stack.kafka[0]))
    assert config["listener.security.protocol.map"] == "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
    assert not {key for key in config if "ssl" in key or "sasl" in key or "authorizer" in key}
    assert env_lines(stack, "indexer") == [
        "export LOGDECK_KAFKA=127.0.0.1:9092",
        "export LOGDECK_ELASTICSEARCH=http://127.0.0.1:9200",
    ]


# --- secrets ----------------------------------------------------------------------------


def test_each_principal_gets_its_own_password_once_readable_by_its_owner(
    tmp_path: Path,
) -> None:
    stack = cluster(Layout(tmp_path))
    made = ensure_passwords(passwords_file(stack), ROLES)
    assert set(made) == {ADMIN, *ROLES}
    assert len(set(made.values())) == len(made)
    assert stat.S_IMODE(passwords_file(stack).stat().st_mode) == 0o600
    assert (
        ensure_passwords(passwords_file(stack), ROLES)
        == made
        == load_passwords(passwords_file(stack))
    )
    flags = format_flags(stack)
    assert flags[:2] == ["--add-scram", f"SCRAM-SHA-512=[name=admin,password={made[ADMIN]}]"]
    assert len(flags) == 2 * len(made)


def test_the_broker_certificate_is_for_loopback_signed_by_the_ca_and_made_once(
    tmp_path: Path,
) -> None:
    made = ensure_certificates(tmp_path / "tls")
    text = subprocess.run(
        ["openssl", "x509", "-in", str(made.broker_certificate), "-noout", "-text"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "IP Address:127.0.0.1" in text
    assert "DNS:localhost" in text
    assert "TLS Web Client Authentication" in text
    verified = subprocess.run(
        ["openssl", "verify", "-CAfile", str(made.ca), str(made.broker_certificate)],
        capture_output=True,
        text=True,
    )
    assert verified.returncode == 0, verified.stderr
    context = ssl.create_default_context(cafile=str(made.ca))
    context.load_cert_chain(str(made.broker_keystore))  # key and chain in one file
    for secret in (made.ca_key, made.broker_key, made.broker_keystore):
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    before = made.broker_keystore.read_bytes()
    ensure_certificates(tmp_path / "tls")
    assert made.broker_keystore.read_bytes() == before
    assert sorted(p.name for p in made.folder.iterdir()) == [
        "broker.crt",
        "broker.key",
        "broker.pem",
        "ca.key",
        "ca.pem",
    ]


# --- rights -----------------------------------------------------------------------------


def _rights(role: str, namespace: str = "shop") -> set[tuple[str, str, str]]:
    return {(g.resource, g.name, g.operation) for g in role_grants(namespace)[role]}


def test_every_role_has_a_principal_and_may_describe_the_namespace_only() -> None:
    grants = role_grants("shop")
    assert set(grants) == set(ROLES)
    for role_grant in grants.values():
        assert Grant("TOPIC", "PREFIXED", "shop.", "DESCRIBE") in role_grant
        assert not [g for g in role_grant if g.operation in ("CREATE", "ALTER", "DELETE")]


def test_the_read_only_console_reads_what_the_console_reads_and_writes_nothing() -> None:
    console, read_only = _rights("console"), _rights("console-read-only")
    assert {r for r in console if r[2] != "WRITE" and r[2] != "IDEMPOTENT_WRITE"} == read_only
    assert ("TOPIC", "shop.alert-commands", "WRITE") in console
    assert not {r for r in read_only if "WRITE" in r[2]}
    assert ("GROUP", "shop.indexer", "DESCRIBE") in read_only


def test_services_write_only_their_own_topics() -> None:
    def writes(role: str) -> set[str]:
        return {name for kind, name, op in _rights(role) if kind == "TOPIC" and op == "WRITE"}

    assert writes("accumulator") == {
        "shop.logs",
        "shop.heartbeats",
        "shop.registrations",
        "shop.deadletter",
    }
    assert writes("indexer") == {"shop.deadletter"}
    assert writes("alerter") == {"shop.alerts", "shop.alert-commands"}
    assert writes("notifier") == {"shop.notifications"}


def test_groups_and_transactional_ids_follow_the_namespaces_names() -> None:
    assert ("GROUP", "indexer", "READ") in _rights("indexer", "logdeck")
    assert ("GROUP", "shop.indexer", "READ") in _rights("indexer")
    alerter = role_grants("shop")["alerter"]
    assert Grant("TRANSACTIONAL_ID", "PREFIXED", "shop.alerter", "WRITE") in alerter
    identity = f"{Settings(namespace='shop').group('alerter-rules')}-1"
    assert identity.startswith("shop.alerter")


# --- what `stack env` gives ------------------------------------------------------------


def test_env_gives_each_role_its_own_credentials_and_the_ca(tmp_path: Path) -> None:
    stack = cluster(Layout(tmp_path))
    passwords = ensure_passwords(passwords_file(stack), ROLES)
    for role in (*ROLES, None):
        variables = dict(shlex.split(line)[1].split("=", 1) for line in env_lines(stack, role))
        principal = role or ADMIN
        assert variables["LOGDECK_KAFKA_USERNAME"] == principal
        assert variables["LOGDECK_KAFKA_PASSWORD"] == passwords[principal]
        assert variables["LOGDECK_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
        assert variables["LOGDECK_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
        assert variables["LOGDECK_KAFKA_CA_FILE"] == str(certificates(stack).ca)


def test_env_output_is_what_the_services_read(tmp_path: Path) -> None:
    stack = cluster(Layout(tmp_path))
    ensure_passwords(passwords_file(stack), ROLES)
    ensure_certificates(certificates(stack).folder)
    variables = dict(shlex.split(line)[1].split("=", 1) for line in env_lines(stack, "monitor"))
    options = KafkaSecurity.from_env(variables).client_options()
    assert options["sasl_plain_username"] == "monitor"
    assert options["security_protocol"] == "SASL_SSL"


def test_namespace_belongs_to_up_on_the_cluster(capsys: pytest.CaptureFixture[str]) -> None:
    assert commands.stack_main("up", namespace="shop") == commands.EXIT_USAGE
    assert "--namespace applies to `up --cluster` only" in capsys.readouterr().err


# --- what a refusal says ----------------------------------------------------------------


def test_a_missing_acl_reads_as_a_refusal_not_an_outage() -> None:
    denied = refused(ClusterAuthorizationFailedError(), "writing", "Kafka unreachable")
    assert str(denied).startswith("writing is not allowed by Kafka (no ACL grants it)")
    down = refused(KafkaConnectionError("gone"), "writing", "Kafka unreachable")
    assert str(down).startswith("Kafka unreachable: ")
