"""Credentials reach the clients, bad settings are named, and no secret is ever shown."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from backend.config import Indices, Settings
from backend.security import (
    ElasticsearchAuth,
    ForwardSecurity,
    KafkaSecurity,
    Secret,
    SecurityError,
)
from backend.store.elasticsearch import ElasticsearchStore
from launch.cli import main as cli_main
from simulators.options import NodeOptions
from simulators.senders import AckedSender, open_sender
from tests.unit.test_forward_handshake import make_certificate

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "pa55-w0rd-never-shown"
SASL = {
    "LOGDECK_KAFKA_SECURITY_PROTOCOL": "sasl_ssl",
    "LOGDECK_KAFKA_SASL_MECHANISM": "scram-sha-512",
    "LOGDECK_KAFKA_USERNAME": "svc-indexer",
    "LOGDECK_KAFKA_PASSWORD": PASSWORD,
}


def test_plaintext_is_the_default_and_adds_nothing() -> None:
    assert KafkaSecurity.from_env({}).client_options() == {}
    assert ElasticsearchAuth.from_env({}).client_options() == {}


def test_sasl_over_tls_reaches_the_kafka_clients() -> None:
    options = KafkaSecurity.from_env(SASL).client_options()
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == (
        "svc-indexer",
        PASSWORD,
    )
    assert options["ssl_context"].verify_mode.name == "CERT_REQUIRED"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"LOGDECK_KAFKA_SECURITY_PROTOCOL": "TLS"}, "use one of PLAINTEXT, SSL"),
        ({"LOGDECK_KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}, "needs LOGDECK_KAFKA_USERNAME"),
        ({**SASL, "LOGDECK_KAFKA_SASL_MECHANISM": "GSSAPI"}, "use one of PLAIN, SCRAM"),
        ({"LOGDECK_KAFKA_CA_FILE": "/no/such/ca.pem"}, "LOGDECK_KAFKA_CA_FILE=/no/such/ca.pem"),
    ],
)
def test_kafka_settings_that_cannot_work_are_named(env: dict[str, str], message: str) -> None:
    with pytest.raises(SecurityError, match=message):
        KafkaSecurity.from_env(env)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"LOGDECK_ELASTICSEARCH_USERNAME": "elastic"}, "go together"),
        (
            {
                "LOGDECK_ELASTICSEARCH_USERNAME": "elastic",
                "LOGDECK_ELASTICSEARCH_PASSWORD": "x",
                "LOGDECK_ELASTICSEARCH_API_KEY": "k",
            },
            "not both",
        ),
    ],
)
def test_elasticsearch_settings_that_cannot_work_are_named(
    env: dict[str, str], message: str
) -> None:
    with pytest.raises(SecurityError, match=message):
        ElasticsearchAuth.from_env(env)


def test_settings_never_show_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {**SASL, "LOGDECK_ELASTICSEARCH_API_KEY": "api-key-never-shown"}.items():
        monkeypatch.setenv(name, value)
    settings = Settings.from_env()
    shown = f"{settings!r} {settings} {settings.kafka_security} {settings.elasticsearch_auth}"
    assert PASSWORD not in shown and "api-key-never-shown" not in shown
    assert "***" in shown
    assert settings.kafka_security.password == Secret(PASSWORD)


async def _authorization_sent(auth: ElasticsearchAuth) -> str:
    """The Authorization header the store sends to a server that records it."""
    seen: list[str] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        seen.extend(
            line.split(":", 1)[1].strip()
            for line in head.split("\r\n")
            if line.lower().startswith("authorization:")
        )
        body = b'{"status":"green"}'
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Elastic-Product: "
            b"Elasticsearch\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    store = ElasticsearchStore(f"http://127.0.0.1:{port}", Indices.for_namespace("t"), auth=auth)
    try:
        await store.healthy()
    finally:
        await store.close()
        server.close()
    return seen[0] if seen else ""


async def test_basic_auth_and_api_keys_reach_elasticsearch() -> None:
    basic = ElasticsearchAuth(username="elastic", password=Secret(PASSWORD))
    expected = base64.b64encode(f"elastic:{PASSWORD}".encode()).decode()
    assert await _authorization_sent(basic) == f"Basic {expected}"
    assert await _authorization_sent(ElasticsearchAuth(api_key=Secret("a2V5"))) == "ApiKey a2V5"


def test_a_service_that_cannot_reach_kafka_says_so_without_the_password() -> None:
    env = {**os.environ, **SASL, "LOGDECK_KAFKA": "127.0.0.1:1", "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "launch", "monitor", "--namespace", "secrets"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    time.sleep(4)
    process.terminate()
    output = process.communicate(timeout=30)[0].decode()
    assert "127.0.0.1:1" in output, output
    assert PASSWORD not in output


def test_the_forward_protocol_is_plain_by_default() -> None:
    security = ForwardSecurity.from_env({})
    assert security == ForwardSecurity()
    assert security.shared_key is None and security.hostname == socket.gethostname()
    assert security.server_ssl_context() is None and security.client_ssl_context() is None
    assert not security.for_clients
    assert security.describe() == "TLS off, shared key off"


def test_forward_shared_key_hostname_and_tls_come_from_the_environment(tmp_path: Path) -> None:
    cert, key = make_certificate(tmp_path)
    security = ForwardSecurity.from_env(
        {
            "LOGDECK_FORWARD_SHARED_KEY": PASSWORD,
            "LOGDECK_FORWARD_HOSTNAME": "acc-01",
            "LOGDECK_FORWARD_TLS_CERT_FILE": str(cert),
            "LOGDECK_FORWARD_TLS_KEY_FILE": str(key),
            "LOGDECK_FORWARD_TLS_CA_FILE": str(cert),
        }
    )
    assert security.shared_key == Secret(PASSWORD) and security.hostname == "acc-01"
    server = security.server_ssl_context()
    client = security.client_ssl_context()
    assert server is not None and client is not None
    assert client.verify_mode.name == "CERT_REQUIRED" and client.check_hostname
    assert security.for_clients
    assert security.describe() == "TLS on, shared key on"
    assert PASSWORD not in f"{security!r} {security} {security.describe()}"


def test_a_shared_key_alone_is_enough_for_the_handshake_without_tls() -> None:
    security = ForwardSecurity.from_env({"LOGDECK_FORWARD_SHARED_KEY": "k"})
    assert security.for_clients and security.client_variables() == ["LOGDECK_FORWARD_SHARED_KEY"]
    assert security.describe() == "TLS off, shared key on"


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (
            {"LOGDECK_FORWARD_TLS_CERT_FILE": "cert"},
            "CERT_FILE and LOGDECK_FORWARD_TLS_KEY_FILE go",
        ),
        ({"LOGDECK_FORWARD_TLS_KEY_FILE": "key"}, "CERT_FILE and LOGDECK_FORWARD_TLS_KEY_FILE go"),
        (
            {"LOGDECK_FORWARD_TLS_CERT_FILE": "missing", "LOGDECK_FORWARD_TLS_KEY_FILE": "key"},
            "LOGDECK_FORWARD_TLS_CERT_FILE=.*missing: no such file",
        ),
        (
            {"LOGDECK_FORWARD_TLS_CERT_FILE": "key", "LOGDECK_FORWARD_TLS_KEY_FILE": "key"},
            "LOGDECK_FORWARD_TLS_CERT_FILE=.*key.pem: not a readable PEM certificate",
        ),
        (
            {"LOGDECK_FORWARD_TLS_CERT_FILE": "cert", "LOGDECK_FORWARD_TLS_KEY_FILE": "other_key"},
            "LOGDECK_FORWARD_TLS_KEY_FILE=.*: not the readable, unencrypted private key",
        ),
        (
            {"LOGDECK_FORWARD_TLS_CERT_FILE": "cert", "LOGDECK_FORWARD_TLS_KEY_FILE": "cert"},
            "LOGDECK_FORWARD_TLS_KEY_FILE=",
        ),
        (
            {"LOGDECK_FORWARD_TLS_CA_FILE": "missing"},
            "LOGDECK_FORWARD_TLS_CA_FILE=.*: no such file",
        ),
        (
            {"LOGDECK_FORWARD_TLS_CA_FILE": "key"},
            "LOGDECK_FORWARD_TLS_CA_FILE=.*: not a readable PEM certificate",
        ),
    ],
)
def test_forward_settings_that_cannot_work_are_named(
    tmp_path: Path, names: dict[str, str], message: str
) -> None:
    cert, key = make_certificate(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    _, other_key = make_certificate(other)
    files = {"cert": cert, "key": key, "other_key": other_key, "missing": tmp_path / "missing"}
    env = {name: str(files[which]) for name, which in names.items()}
    with pytest.raises(SecurityError, match=message):
        ForwardSecurity.from_env(env)


def test_settings_carry_forward_security_without_showing_the_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LOGDECK_FORWARD_SHARED_KEY", PASSWORD)
    settings = Settings.from_env()
    assert settings.forward_security.shared_key == Secret(PASSWORD)
    assert PASSWORD not in f"{settings!r} {settings}"


def test_simulate_refuses_fluent_logger_against_a_secured_accumulator(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LOGDECK_FORWARD_SHARED_KEY", PASSWORD)
    assert cli_main(["simulate", "--nodes", "1", "--duration", "0.1"]) == 2
    error = capsys.readouterr().err
    assert "LOGDECK_FORWARD_SHARED_KEY is set" in error and "--acks" in error
    assert PASSWORD not in error


async def test_the_simulators_ack_sender_takes_the_forward_settings(tmp_path: Path) -> None:
    cert, _ = make_certificate(tmp_path)
    security = ForwardSecurity(shared_key=Secret("k"), hostname="n1", ca_file=cert)
    sender = open_sender(NodeOptions(acks=True), security)
    assert isinstance(sender, AckedSender)
    inner = sender._sender  # what the node hands its records to
    assert (inner._shared_key, inner._hostname) == ("k", "n1")
    assert inner._ssl is not None and inner._ssl.verify_mode.name == "CERT_REQUIRED"
    with pytest.raises(SecurityError, match="LOGDECK_FORWARD_TLS_CA_FILE is set"):
        open_sender(NodeOptions(), ForwardSecurity(ca_file=cert))
