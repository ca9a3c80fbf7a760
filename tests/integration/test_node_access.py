"""No client speaks for every node: a cap on new nodes per connection, and users limited
to their nodes, on a real `logdeck accumulator` on both backends.

One frame of heartbeats from `ghost-0` to `ghost-19999` used to put 20,000 nodes in the
registry. Now a connection brings at most `--max-new-nodes` nodes the accumulator has not
seen; the rest are dead-lettered, folded per frame, and the frame is still acknowledged.
Under user auth (`LOGDECK_FORWARD_USERS_FILE`) a user writes only for the node patterns it
is given, and a wrong password gets a refusing PONG and nothing on the bus.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from backend.config import Settings
from backend.forward.sender import AckSender
from backend.retry import Backoff
from backend.schemas import now_iso
from tests.integration.conftest import Launch
from tests.integration.harness import Process, Stored, port_open, snapshot, wait_until
from tests.records import make_log

pytestmark = pytest.mark.integration

MAX_NEW = 50
GHOSTS = 20_000
SHARED_KEY = "node-access-shared-key"
PASSWORD = "payments-password-never-logged"


def started(process: Process, settings: Settings) -> Process:
    port = settings.accumulator_port
    wait_until(lambda: port_open(port) or process.popen.poll() is not None, 60, "the accumulator")
    assert process.popen.poll() is None, process.output()
    return process


def heartbeat(node_id: str) -> dict[str, str]:
    return {"node_id": node_id, "message_type": "HEARTBEAT", "status": "UP", "timestamp": now_iso()}


def letters(settings: Settings) -> list[dict[str, str]]:
    return [json.loads(r.value) for r in snapshot(settings, settings.topics.deadletter)]


async def test_one_connection_brings_at_most_its_budget_of_new_nodes(
    settings: Settings, launch: Launch, indexer: Process, stored: Stored
) -> None:
    accumulator = started(launch("accumulator", "--max-new-nodes", str(MAX_NEW)), settings)
    launch("monitor")  # keeps the registry, which the indexer stores
    client = AckSender("logdeck", port=settings.accumulator_port, batch_size=GHOSTS)
    for n in range(GHOSTS):
        await client.emit("heartbeat", heartbeat(f"ghost-{n}"))
    await asyncio.wait_for(client.close(), 60)
    assert client.acked == GHOSTS, "the frame must be acknowledged, ghosts and all"

    admitted = sorted(f"ghost-{n}" for n in range(MAX_NEW))
    beats = await asyncio.to_thread(snapshot, settings, settings.topics.heartbeats)
    assert sorted(json.loads(beat.value)["node_id"] for beat in beats) == admitted
    await asyncio.to_thread(
        wait_until, lambda: len(stored.nodes()) >= MAX_NEW, 60, f"{MAX_NEW} nodes stored"
    )
    assert sorted(await asyncio.to_thread(stored.nodes)) == admitted

    refused = await asyncio.to_thread(letters, settings)
    assert 1 < len(refused) <= 101, "dead letters are folded past 100 a frame"
    assert all("--max-new-nodes" in letter["reason"] for letter in refused), refused[:2]
    folded = [letter for letter in refused if "counted in this one" in letter["reason"]]
    counted = int(folded[0]["reason"].split()[0])
    assert counted + len(refused) - 1 == GHOSTS - MAX_NEW
    assert "--max-new-nodes" in accumulator.output()


@pytest.fixture
def users_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "users.toml"
    path.write_text(
        '[[user]]\nname = "payments"\npassword_env = "PAYMENTS_PASSWORD"\nnodes = ["payment-*"]\n'
    )
    monkeypatch.setenv("PAYMENTS_PASSWORD", PASSWORD)
    monkeypatch.setenv("LOGDECK_FORWARD_SHARED_KEY", SHARED_KEY)
    monkeypatch.setenv("LOGDECK_FORWARD_USERS_FILE", str(path))
    return path


async def test_a_user_writes_only_for_its_nodes_and_a_wrong_password_gets_nothing_in(
    settings: Settings, launch: Launch, indexer: Process, stored: Stored, users_file: Path
) -> None:
    accumulator = started(launch("accumulator"), settings)
    assert "shared key on, 1 users" in accumulator.output()

    client = AckSender(
        "logdeck",
        port=settings.accumulator_port,
        shared_key=SHARED_KEY,
        user=("payments", PASSWORD),
    )
    own = [make_log("payment-01", level) for level in ("INFO", "WARN", "ERROR", "FATAL")]
    other = make_log("order-01", "ERROR")
    for record in [*own, other]:
        await client.emit("log", record)
    await asyncio.wait_for(client.close(), 30)
    assert client.acked == len(own) + 1

    await asyncio.to_thread(
        wait_until, lambda: len(stored.log_ids()) >= len(own), 60, "the user's logs stored"
    )
    assert sorted(await asyncio.to_thread(stored.log_ids)) == sorted(
        record["log_id"] for record in own
    )
    [refused] = await asyncio.to_thread(letters, settings)
    assert refused["node_id"] == "order-01"
    assert refused["reason"] == (
        "user 'payments' may not send for node 'order-01' (allowed: payment-*)"
    )

    intruder = AckSender(
        "logdeck",
        port=settings.accumulator_port,
        shared_key=SHARED_KEY,
        user=("payments", "guessed"),
        ack_timeout=1,
        backoff=Backoff(initial=0.05, maximum=0.2),
    )
    await intruder.emit("log", make_log("payment-02"))
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(2):
            await intruder.close()
    assert intruder.acked == 0
    assert intruder.refusal == "refused by the server: username/password mismatch"
    assert "username/password mismatch" in accumulator.output()
    assert PASSWORD not in accumulator.output() and "guessed" not in accumulator.output()
    assert len(await asyncio.to_thread(letters, settings)) == 1
