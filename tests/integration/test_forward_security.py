"""A real `logdeck accumulator` with a shared key and TLS (`LOGDECK_FORWARD_*`).

A client written here from the Forward protocol spec (raw TLS socket, msgpack, hashlib;
not our AckSender) passes the HELO / PING / PONG handshake and its PackedForward chunk
reaches the logs topic. AckSender and `logdeck simulate --acks` with the key and the CA
deliver everything. A wrong key gets a PONG that says no, with the reason, and a client
that does not speak TLS gets nothing in; neither puts a record on the bus, and the
accumulator logs and counts each refusal. Without these variables the accumulator is as
before, which the other integration tests cover.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import ssl
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgpack
import pytest

from backend.config import Settings
from backend.forward.sender import AckSender
from backend.retry import Backoff
from tests.integration.conftest import Launch
from tests.integration.harness import (
    Process,
    Stored,
    ledger_ids,
    port_open,
    read_topic_async,
    snapshot,
    wait_until,
)
from tests.records import make_log
from tests.unit.test_forward_handshake import make_certificate

pytestmark = pytest.mark.integration

SHARED_KEY = "integration-shared-key-never-logged"
SERVER_HOSTNAME = "accumulator.test"


@dataclass
class Secured:
    process: Process
    port: int
    ca_file: Path

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))


@pytest.fixture
def secured(
    settings: Settings, launch: Launch, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Secured:
    """The accumulator with TLS and a shared key; the CA variable is set for clients too."""
    cert, key = make_certificate(tmp_path)
    for name, value in {
        "LOGDECK_FORWARD_SHARED_KEY": SHARED_KEY,
        "LOGDECK_FORWARD_HOSTNAME": SERVER_HOSTNAME,
        "LOGDECK_FORWARD_TLS_CERT_FILE": str(cert),
        "LOGDECK_FORWARD_TLS_KEY_FILE": str(key),
        "LOGDECK_FORWARD_TLS_CA_FILE": str(cert),
    }.items():
        monkeypatch.setenv(name, value)
    process = launch("accumulator")
    port = settings.accumulator_port
    wait_until(lambda: port_open(port) or process.popen.poll() is not None, 60, "the accumulator")
    assert process.popen.poll() is None, process.output()
    # The port can open a moment before the start-up line reaches the log file.
    wait_until(
        lambda: "TLS on, shared key on" in process.output() or process.popen.poll() is not None,
        10,
        "the accumulator's start-up line",
    )
    assert "TLS on, shared key on" in process.output()
    return Secured(process, port, cert)


def sha512_hex(*parts: bytes) -> str:
    return hashlib.sha512(b"".join(parts)).hexdigest()


class SpecClient:
    """The client side of the spec's "Handshake Messages", written out step by step."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.unpacker = msgpack.Unpacker(raw=False)

    @classmethod
    async def connect(cls, port: int, context: ssl.SSLContext | None) -> SpecClient:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", port, ssl=context), 10
        )
        return cls(reader, writer)

    async def receive(self) -> Any:
        """The next message, or None when the server closes the connection."""
        while True:
            for message in self.unpacker:
                return message
            data = await asyncio.wait_for(self.reader.read(4096), 10)
            if not data:
                return None
            self.unpacker.feed(data)

    async def handshake(self, key: str, hostname: str = "spec-client.test") -> tuple[Any, bytes]:
        """Read HELO, send PING; returns the PONG and the salt the PING used."""
        helo = await self.receive()
        assert helo[0] == "HELO" and helo[1]["auth"] == "" and helo[1]["keepalive"] is True
        nonce = helo[1]["nonce"]
        assert isinstance(nonce, bytes) and len(nonce) >= 16  # sent as bin
        salt = os.urandom(16)
        digest = sha512_hex(salt, hostname.encode(), nonce, key.encode())
        ping = ["PING", hostname, salt, digest, "", ""]
        self.writer.write(msgpack.packb(ping, use_bin_type=True))
        await self.writer.drain()
        pong = await self.receive()
        if pong is not None and pong[1] is True:
            # The server proves it knows the key: sha512_hex(salt + its hostname + nonce + key).
            assert pong[3] == SERVER_HOSTNAME
            assert pong[4] == sha512_hex(salt, pong[3].encode(), nonce, key.encode())
        return pong, salt

    def send_chunk(self, tag: str, records: list[dict[str, Any]]) -> str:
        """One PackedForward frame asking for an ack; returns its chunk id."""
        chunk = uuid.uuid4().hex
        entries = b"".join(msgpack.packb([1_700_000_000, record]) for record in records)
        option = {"chunk": chunk, "size": len(records)}
        self.writer.write(msgpack.packb([tag, entries, option], use_bin_type=True))
        return chunk

    def close(self) -> None:
        self.writer.close()


async def log_ids_on(settings: Settings, topic: str, expected: int) -> Counter[str]:
    records = await read_topic_async(settings, topic, expected)
    return Counter(json.loads(record.value)["log_id"] for record in records)


async def test_a_client_written_from_the_spec_passes_the_handshake_and_is_acked(
    settings: Settings, secured: Secured
) -> None:
    client = await SpecClient.connect(secured.port, secured.client_context())
    try:
        pong, _ = await client.handshake(SHARED_KEY)
        assert pong[:3] == ["PONG", True, ""]
        logs = [make_log(f"{settings.namespace}-spec") for _ in range(20)]
        chunk = client.send_chunk("logdeck.log", logs)
        assert await client.receive() == {"ack": chunk}
    finally:
        client.close()
    assert await log_ids_on(settings, settings.topics.logs, len(logs)) == Counter(
        record["log_id"] for record in logs
    )


async def test_ack_sender_and_simulate_with_the_key_and_ca_deliver_everything(
    settings: Settings,
    secured: Secured,
    stored: Stored,
    indexer: Process,
    launch: Launch,
    tmp_path: Path,
) -> None:
    sender = AckSender(
        "logdeck",
        port=secured.port,
        batch_size=50,
        shared_key=SHARED_KEY,
        hostname="acksender.test",
        ssl=secured.client_context(),
    )
    logs = [make_log(f"{settings.namespace}-ack") for _ in range(500)]
    for record in logs:
        await sender.emit("log", record)
    await asyncio.wait_for(sender.close(), 60)
    assert sender.acked == sender.emitted == len(logs) and sender.refusal is None

    # `logdeck simulate` takes the key and the CA from the same variables.
    ledger = tmp_path / "ledger"
    fleet = launch(
        "simulate",
        "--acks",
        "--port",
        str(secured.port),
        "--nodes",
        "1",
        "--rate",
        "20",
        "--duration",
        "2",
        "--ledger",
        str(ledger),
        "--node-prefix",
        f"{settings.namespace}-",
    )
    assert await asyncio.to_thread(fleet.wait, 90) == 0, fleet.output()
    simulated = ledger_ids(ledger)
    assert simulated, fleet.output()

    sent = {record["log_id"] for record in logs} | set(simulated)
    await asyncio.to_thread(
        wait_until, lambda: sent <= set(stored.log_ids()), 90, f"{len(sent)} logs stored"
    )
    assert SHARED_KEY not in fleet.output() + secured.process.output()


async def test_a_wrong_key_gets_a_pong_that_says_no_and_nothing_reaches_the_bus(
    settings: Settings, secured: Secured
) -> None:
    client = await SpecClient.connect(secured.port, secured.client_context())
    try:
        pong, _ = await client.handshake("not-the-shared-key", hostname="intruder.test")
        assert pong == ["PONG", False, "shared_key mismatch", "", ""]
        client.send_chunk("logdeck.log", [make_log(f"{settings.namespace}-intruder")])
        assert await client.receive() is None  # closed by the server, no ack
    finally:
        client.close()

    sender = AckSender(
        "logdeck",
        port=secured.port,
        shared_key="not-the-shared-key",
        ssl=secured.client_context(),
        ack_timeout=1,
        backoff=Backoff(initial=0.05, maximum=0.2),
    )
    await sender.emit("log", make_log(f"{settings.namespace}-intruder"))
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(2):
            await sender.close()
    assert sender.acked == 0
    assert sender.refusal == "refused by the server: shared_key mismatch"

    await nothing_on_the_bus(settings)
    assert secured.process.stop() == 0
    output = secured.process.output()
    assert "refusing 127.0.0.1:" in output and "shared_key mismatch" in output
    assert "'intruder.test'" in output  # the client's name, to find it by
    assert "'shared_key mismatch': " in output  # counted, in the stop line
    assert SHARED_KEY not in output and "not-the-shared-key" not in output


async def test_a_client_without_tls_gets_nothing_in(settings: Settings, secured: Secured) -> None:
    client = await SpecClient.connect(secured.port, None)
    try:
        client.send_chunk("logdeck.log", [make_log(f"{settings.namespace}-plain")])
        assert await client.receive() is None  # no HELO, no ack: the connection is closed
    finally:
        client.close()
    await nothing_on_the_bus(settings)
    assert secured.process.stop() == 0
    output = secured.process.output()
    assert "TLS handshake failed" in output
    assert "'TLS handshake failed': 1" in output


async def nothing_on_the_bus(settings: Settings) -> None:
    await asyncio.sleep(1)  # time enough for anything that got in to be published
    for topic in (settings.topics.logs, settings.topics.deadletter):
        assert await asyncio.to_thread(snapshot, settings, topic) == [], topic
