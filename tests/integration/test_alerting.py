"""The alerter on each backend: folding, shared acknowledgements, kill -9, rules files."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from backend.alerting import latest_alerts
from backend.alerting.client import AlertClient
from backend.backends import open_bus
from backend.bus import Bus, Outgoing
from backend.config import Settings
from backend.forward.sender import AckSender
from backend.schemas import (
    Alert,
    AlertEventKind,
    AlertKind,
    AlertState,
    ClearAlert,
    RaiseAlert,
    Severity,
    encode,
    now_iso,
)
from tests.integration.conftest import Launch
from tests.integration.harness import ROOT, Process, connection_flags
from tests.records import make_log

pytestmark = pytest.mark.integration

SERVICE = "PaymentService"
CODE = "PAY-502"
FINGERPRINT = f"error:{SERVICE}:{CODE}"


@pytest.fixture
async def bus(settings: Settings) -> Bus:
    return open_bus(settings)


@pytest.fixture
async def client(settings: Settings, bus: Bus) -> AsyncIterator[AlertClient]:
    alerts = AlertClient(settings, bus)
    yield alerts
    await alerts.close()


def errors(settings: Settings, count: int) -> list[dict[str, Any]]:
    """`count` ERRORs of one code from one service."""
    made = []
    for _ in range(count):
        error = make_log(f"{settings.namespace}-payment-01", "ERROR", service_name=SERVICE)
        error["error_details"] = {"error_code": CODE, "error_message": "gateway said 502"}
        made.append(error)
    return made


async def send_errors(
    settings: Settings,
    count: int,
    per_second: float | None = None,
    *,
    resend: Sequence[dict[str, Any]] = (),
) -> None:
    """`count` new ERRORs (after those of `resend`), as fast as possible or paced."""
    sender = AckSender("logdeck", "127.0.0.1", settings.accumulator_port)
    started = time.monotonic()
    for index, error in enumerate([*resend, *errors(settings, count)]):
        await sender.emit("log", error)
        if per_second is not None:
            await asyncio.sleep(max(0.0, started + (index + 1) / per_second - time.monotonic()))
    async with asyncio.timeout(60):
        await sender.close()


async def eventually(check: Callable[[], Awaitable[bool]], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.25)
    raise AssertionError(f"timed out after {within:.0f} s waiting for {what}")


async def alert_of(client: AlertClient, fingerprint: str) -> Alert | None:
    return next((a for a in await client.open_alerts() if a.fingerprint == fingerprint), None)


async def wait_for_count(client: AlertClient, count: int, within: float = 60) -> Alert:
    async def reached() -> bool:
        alert = await alert_of(client, FINGERPRINT)
        return alert is not None and alert.count >= count

    await eventually(reached, within, f"the alert to count {count}")
    alert = await alert_of(client, FINGERPRINT)
    assert alert is not None
    return alert


async def test_a_burst_of_1000_errors_is_one_alert_counting_1000(
    settings: Settings, bus: Bus, client: AlertClient, accumulator: Process, launch: Launch
) -> None:
    alerter = launch("alerter")
    await send_errors(settings, 1000)

    alert = await wait_for_count(client, 1000)
    assert alert.count == 1000, alert
    assert (alert.kind, alert.severity, alert.state) == (
        AlertKind.LOG_LEVEL,
        Severity.ERROR,
        AlertState.OPEN,
    )
    await asyncio.sleep(2)  # anything more the alerter would publish
    state = latest_alerts(await bus.snapshot(settings.topics.alerts))
    by_kind = sorted((a.kind, a.fingerprint, a.count) for a in state.values())
    assert by_kind == [
        (AlertKind.BURST, f"error-burst:{SERVICE}", 1000 - 50),  # more than 50 within 60 s
        (AlertKind.LOG_LEVEL, FINGERPRINT, 1000),
    ], alerter.output()


async def test_an_ack_is_shared_between_clients_and_survives_kill_9(
    settings: Settings, bus: Bus, client: AlertClient, accumulator: Process, launch: Launch
) -> None:
    alerter = launch("alerter", name="alerter-first")
    await send_errors(settings, 100)
    alert = await wait_for_count(client, 100)

    other = AlertClient(settings, bus)
    changes = other.changes()
    try:
        assert [a.alert_id for a in await anext(changes) if a.fingerprint == FINGERPRINT] == [
            alert.alert_id
        ]
        await client.acknowledge(alert, "alice")
        async with asyncio.timeout(30):
            async for batch in changes:
                acked = [a for a in batch if a.alert_id == alert.alert_id]
                if acked and acked[-1].state is AlertState.ACKED:
                    break
        assert (acked[-1].acked_by, acked[-1].count) == ("alice", 100)
        seen = await alert_of(other, FINGERPRINT)
        assert seen is not None
        assert (seen.state, seen.acked_by) == (AlertState.ACKED, "alice")

        # 3,000 more, and the alerter killed while they stream in.
        sending = asyncio.create_task(send_errors(settings, 3000, per_second=400))
        await wait_for_count(other, 600, within=60)
        alerter.kill()
        restarted = launch("alerter", name="alerter-second")
        async with asyncio.timeout(120):
            await sending
        await wait_for_count(other, 3100, within=120)
    finally:
        with contextlib.suppress(Exception):
            await changes.aclose()
        await other.close()

    await asyncio.sleep(3)  # a double count would show up by now
    final = await wait_for_count(client, 3100)
    assert final.count == 3100, restarted.output()
    assert (final.alert_id, final.state, final.acked_by) == (
        alert.alert_id,
        AlertState.ACKED,
        "alice",
    )
    assert "2 alerts restored" in restarted.output(), restarted.output()  # error and burst


async def test_logs_resent_after_the_alerter_restarts_are_counted_once(
    settings: Settings, client: AlertClient, accumulator: Process, launch: Launch
) -> None:
    alerter = launch("alerter", name="alerter-first")
    sent = errors(settings, 100)
    await send_errors(settings, 0, resend=sent)
    await wait_for_count(client, 100)
    alerter.kill()

    # An at-least-once sender resends a chunk whose ack it missed: the same logs again,
    # first on the bus for the new keeper, then 10 new ones.
    restarted = launch("alerter", name="alerter-second")
    await send_errors(settings, 10, resend=sent[-20:])
    await wait_for_count(client, 110)
    await asyncio.sleep(3)  # a double count would show up by now
    alert = await alert_of(client, FINGERPRINT)
    assert alert is not None
    assert alert.count == 110, restarted.output()
    assert "earlier matches remembered" in restarted.output(), restarted.output()


async def test_notes_and_every_state_change_are_kept_with_who_and_when(
    settings: Settings, bus: Bus, client: AlertClient, accumulator: Process, launch: Launch
) -> None:
    launch("alerter")
    await send_errors(settings, 3)
    alert = await wait_for_count(client, 3)
    await client.acknowledge(alert, "alice", "db failover under way")
    await client.annotate(alert, "bob", "failover done")
    await client.resolve(alert, "alice")

    async def resolved() -> bool:
        return await alert_of(client, FINGERPRINT) is None

    await eventually(resolved, 30, "the alert to be resolved")
    state = latest_alerts(await bus.snapshot(settings.topics.alerts))[alert.alert_id]
    assert [(e.event, e.by, e.note) for e in state.history] == [
        (AlertEventKind.OPENED, None, None),
        (AlertEventKind.ACKED, "alice", "db failover under way"),
        (AlertEventKind.NOTE, "bob", "failover done"),
        (AlertEventKind.RESOLVED, "alice", None),
    ]
    assert state.history[0].at == state.first_seen
    assert state.history[-1].at == state.resolved_at


async def test_raise_and_clear_commands_open_and_resolve_a_node_down_alert(
    settings: Settings, bus: Bus, client: AlertClient, launch: Launch
) -> None:
    launch("alerter")
    fingerprint = f"NODE_DOWN:{settings.namespace}-payment-01"
    raised = RaiseAlert(
        fingerprint=fingerprint,
        kind=AlertKind.NODE_DOWN,
        severity=Severity.CRITICAL,
        node_id=f"{settings.namespace}-payment-01",
        service_name=SERVICE,
        summary="no heartbeat for 3 s",
        at=now_iso(),
    )
    await bus.ensure_topics(settings.topics.all(), settings.topics.compacted())
    publisher = bus.publisher()
    await publisher.start()
    try:
        topic = settings.topics.alert_commands
        await publisher.publish([Outgoing(topic, fingerprint.encode(), encode(raised))])

        async def is_open() -> bool:
            return await alert_of(client, fingerprint) is not None

        async def is_resolved() -> bool:
            return await alert_of(client, fingerprint) is None

        await eventually(is_open, 60, "the NODE_DOWN alert")
        cleared_at = now_iso()
        clear = ClearAlert(fingerprint=fingerprint, summary="heartbeats again", at=cleared_at)
        await publisher.publish([Outgoing(topic, fingerprint.encode(), encode(clear))])
        await eventually(is_resolved, 30, "the NODE_DOWN alert to be resolved")
    finally:
        await publisher.stop()
    resolved = [
        a
        for a in latest_alerts(await bus.snapshot(settings.topics.alerts)).values()
        if a.fingerprint == fingerprint
    ]
    assert [(a.state, a.resolved_at, a.summary) for a in resolved] == [
        (AlertState.RESOLVED, cleared_at, "heartbeats again")
    ]


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ('[[rule]]\nname = "e"\nseverity = ERROR\n', 3, "Invalid value (column 12)"),
        (
            '[[rule]]\nname = "e"\nseverity = "ERROR"\n\n[[rule]]\nname = "f"\n'
            'severity = "ERROR"\nlevle = "FATAL"\n',
            8,
            "unknown field 'levle' in [[rule]] 2; did you mean 'level'?",
        ),
        (
            '[[rule]]\nname = "e"\nseverity = "ERROR"\nmessage = "(unclosed"\n',
            4,
            "bad regex for 'message' in [[rule]] 1: missing ), unterminated subpattern "
            "at position 0",
        ),
    ],
    ids=["bad TOML", "unknown field", "bad regex"],
)
def test_a_bad_rules_file_stops_start_up_with_one_line(
    settings: Settings, tmp_path: Path, text: str, line: int, reason: str
) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text(text)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "launch",
            "alerter",
            "--rules",
            str(rules),
            *connection_flags(settings),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [f"logdeck alerter: {rules}:{line}: {reason}"]
    assert done.stdout == ""
