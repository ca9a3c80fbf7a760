"""Credentials reach the clients, bad settings are named, and no secret is ever shown."""

from __future__ import annotations

import asyncio
import base64
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from backend.config import Indices, Settings
from backend.security import ElasticsearchAuth, KafkaSecurity, Secret, SecurityError
from backend.store.elasticsearch import ElasticsearchStore

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
        [sys.executable, "-m", "console", "monitor", "--namespace", "secrets"],
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
