"""The notifier on each backend, with real receivers: a Prometheus Alertmanager started on
127.0.0.1 (Debian's `prometheus-alertmanager`), and a webhook server and an SMTP server
(aiosmtpd) in the test process."""

from __future__ import annotations

import asyncio
import email
import email.policy
import shutil
import ssl
import subprocess
import time
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

from backend.alerting import latest_alerts
from backend.alerting.client import AlertClient
from backend.backends import open_bus
from backend.bus import Outgoing
from backend.config import Settings
from backend.forward.sender import AckSender
from backend.schemas import (
    Alert,
    AlertKind,
    ClearAlert,
    Matcher,
    MatcherName,
    RaiseAlert,
    Severity,
    encode,
    now_iso,
)
from backend.silences.client import SilenceClient
from backend.silences.parsing import new_silence
from tests.integration.conftest import Launch
from tests.integration.harness import Process, connection_flags, free_port
from tests.records import make_log
from tests.unit.test_forward_handshake import make_certificate

pytestmark = pytest.mark.integration

ALERTMANAGER = "prometheus-alertmanager"
SERVICE = "PaymentService"
CODE = "PAY-502"
FINGERPRINT = f"fatal:{SERVICE}:{CODE}"


@dataclass
class Hooks:
    """A webhook server on 127.0.0.1: every JSON body POSTed to it, by path."""

    port: int
    bodies: dict[str, list[Any]] = field(default_factory=dict)
    refusals: dict[str, int] = field(default_factory=dict)
    """How many POSTs to a path to answer 503 before taking any."""

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def alerts(self, path: str) -> list[dict[str, Any]]:
        """Every alert of every webhook message (version 4) posted to `path`."""
        return [alert for body in self.bodies.get(path, []) for alert in body["alerts"]]

    async def take(self, request: web.Request) -> web.Response:
        if self.refusals.get(request.path, 0) > 0:
            self.refusals[request.path] -= 1
            return web.Response(status=503, text="not now")
        self.bodies.setdefault(request.path, []).append(await request.json())
        return web.Response(text="ok")


@pytest.fixture
async def hooks() -> AsyncIterator[Hooks]:
    received = Hooks(free_port())
    app = web.Application()
    app.router.add_post("/{path:.*}", received.take)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", received.port).start()
    yield received
    await runner.cleanup()


@dataclass
class Mailbox:
    """What an SMTP server on 127.0.0.1 was sent, and by whom it was logged in."""

    port: int
    messages: list[EmailMessage] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)
    encrypted: list[bool] = field(default_factory=list)

    async def handle_DATA(self, server: SMTPServer, session: Session, envelope: Envelope) -> str:
        assert isinstance(envelope.content, bytes)
        self.encrypted.append(session.ssl is not None)
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        return "250 OK"

    def authenticate(
        self, server: SMTPServer, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            b"pager",
            b"s3cret",
        )
        if ok:
            self.logins.append(data.login.decode())
        return AuthResult(success=ok)


@pytest.fixture
def mailbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Mailbox]:
    """An SMTP server that takes mail only after STARTTLS and a login; its self-signed
    certificate is the one the processes of the test trust (SSL_CERT_FILE)."""
    cert, key = make_certificate(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    box = Mailbox(free_port())
    controller = Controller(
        box,
        hostname="127.0.0.1",
        port=box.port,
        authenticator=box.authenticate,
        tls_context=tls,
        require_starttls=True,
    )
    controller.start()
    yield box
    controller.stop()


@pytest.fixture
def alertmanager(tmp_path: Path, hooks: Hooks) -> Iterator[str]:
    """A real Alertmanager on 127.0.0.1 that passes what it gets on to `/alertmanager`."""
    binary = shutil.which(ALERTMANAGER)
    if binary is None:
        pytest.fail(f"{ALERTMANAGER} is not installed: run scripts/setup")
    folder = tmp_path / "alertmanager"
    folder.mkdir()
    (folder / "am.yml").write_text(
        f"""\
route:
  receiver: test
  group_by: [fingerprint]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: test
    webhook_configs:
      - url: {hooks.url("/alertmanager")}
        send_resolved: true
"""
    )
    port = free_port()
    with (folder / "out.log").open("wb") as out:
        process = subprocess.Popen(
            [
                binary,
                f"--web.listen-address=127.0.0.1:{port}",
                "--cluster.listen-address=",
                f"--storage.path={folder / 'data'}",
                f"--config.file={folder / 'am.yml'}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, process, folder / "out.log")
        yield url
    finally:
        process.terminate()
        process.wait(10)


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    for _ in range(150):
        assert process.poll() is None, log.read_text()
        try:
            with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"Alertmanager at {url} did not get ready: {log.read_text()}")


async def alertmanager_alerts(url: str) -> list[dict[str, Any]]:
    """What Alertmanager holds as active now (GET /api/v2/alerts)."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{url}/api/v2/alerts") as response,
    ):
        response.raise_for_status()
        alerts: list[dict[str, Any]] = await response.json()
        return alerts


async def eventually(check: Callable[[], Awaitable[bool]], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.25)
    raise AssertionError(f"timed out after {within:.0f} s waiting for {what}")


def notifier_config(tmp_path: Path, alertmanager: str, hooks: Hooks) -> Path:
    path = tmp_path / "notify.toml"
    path.write_text(
        f"""\
[[receiver]]
name = "am"
type = "alertmanager"
url = "{alertmanager}"

[[receiver]]
name = "oncall"
type = "webhook"
url = "{hooks.url("/hook")}"

[[receiver]]
name = "chat"
type = "slack"
url = "{hooks.url("/slack")}"

[[route]]
receiver = "am"

[[route]]
receiver = "chat"
match = {{ service = "{SERVICE}" }}

[[route]]
receiver = "oncall"
match = {{ severity = "CRITICAL", rule = "fatal" }}
group_wait_s = 0
repeat_interval_s = 3600
"""
    )
    return path


async def send_fatal(settings: Settings, node: str) -> None:
    sender = AckSender("logdeck", "127.0.0.1", settings.accumulator_port)
    fatal = make_log(node, "FATAL", service_name=SERVICE)
    fatal["error_details"] = {"error_code": CODE, "error_message": "gateway said 502"}
    await sender.emit("log", fatal)
    async with asyncio.timeout(60):
        await sender.close()


def start_notifier(launch: Launch, settings: Settings, config: Path, name: str) -> Process:
    return launch("notifier", "--config", str(config), *connection_flags(settings), name=name)


async def test_a_fatal_reaches_alertmanager_the_webhook_and_slack_and_so_does_its_resolve(
    settings: Settings,
    tmp_path: Path,
    hooks: Hooks,
    alertmanager: str,
    accumulator: Process,
    launch: Launch,
) -> None:
    launch("alerter")
    notifier = start_notifier(launch, settings, notifier_config(tmp_path, alertmanager, hooks), "n")
    node = f"{settings.namespace}-payment-01"
    await send_fatal(settings, node)

    async def webhook_fired() -> bool:
        return any(a["labels"]["fingerprint"] == FINGERPRINT for a in hooks.alerts("/hook"))

    await eventually(webhook_fired, 60, f"the webhook to get the alert: {notifier.output()}")
    (body,) = hooks.bodies["/hook"]
    assert (body["version"], body["status"], body["receiver"]) == ("4", "firing", "oncall")
    (fired,) = body["alerts"]
    assert fired["labels"] == {
        "alertname": "LOG_LEVEL",
        "severity": "CRITICAL",
        "service": SERVICE,
        "node": node,
        "rule": "fatal",
        "fingerprint": FINGERPRINT,
        "error_code": CODE,
    }
    assert fired["annotations"] == {"summary": f"{CODE}: gateway said 502", "count": "1"}

    async def held_by_alertmanager() -> bool:
        return any(
            a["labels"].get("fingerprint") == FINGERPRINT
            for a in await alertmanager_alerts(alertmanager)
        )

    await eventually(held_by_alertmanager, 30, "Alertmanager to hold the alert")
    (held,) = await alertmanager_alerts(alertmanager)
    assert held["labels"] == fired["labels"]
    assert held["annotations"] == fired["annotations"]
    assert held["status"]["state"] == "active"
    assert held["startsAt"] == fired["startsAt"]

    client = AlertClient(settings, open_bus(settings))
    try:
        (alert,) = [a for a in await client.open_alerts() if a.fingerprint == FINGERPRINT]
        assert fired["fingerprint"] == alert.alert_id
        await client.resolve(alert, "alice")
    finally:
        await client.close()

    def resolved_at(path: str) -> list[str]:
        return [
            a["endsAt"]
            for a in hooks.alerts(path)
            if a["status"] == "resolved" and a["labels"]["fingerprint"] == FINGERPRINT
        ]

    async def resolve_arrived() -> bool:
        slack = hooks.bodies.get("/slack", [])
        return bool(resolved_at("/hook")) and bool(resolved_at("/alertmanager")) and len(slack) > 1

    await eventually(resolve_arrived, 60, f"resolved notifications: {notifier.output()}")
    assert [body["text"] for body in hooks.bodies["/slack"]] == [
        f"[{status}] CRITICAL fatal {SERVICE} {node}: {CODE}: gateway said 502 (count 1)"
        for status in ("FIRING", "RESOLVED")
    ]
    ended = await _resolved_alert(settings, alert)
    assert resolved_at("/hook") == [ended]
    # Alertmanager took our endsAt: it says so to its own receiver, and holds it no more.
    said = datetime.fromisoformat(resolved_at("/alertmanager")[-1])
    assert said == datetime.fromisoformat(ended)
    assert await alertmanager_alerts(alertmanager) == []


async def _resolved_alert(settings: Settings, alert: Alert) -> str:
    """When the alerter resolved `alert`, as its latest snapshot says."""
    records = await open_bus(settings).snapshot(settings.topics.alerts)
    resolved = latest_alerts(records)[alert.alert_id].resolved_at
    assert resolved is not None
    return resolved


async def send_fatals(settings: Settings, count: int, per_second: float) -> None:
    """`count` FATALs of distinct error codes (so `count` alerts), paced."""
    sender = AckSender("logdeck", "127.0.0.1", settings.accumulator_port)
    started = time.monotonic()
    for index in range(count):
        fatal = make_log(f"{settings.namespace}-payment-01", "FATAL", service_name=SERVICE)
        fatal["error_details"] = {"error_code": f"E{index:04d}", "error_message": "down"}
        await sender.emit("log", fatal)
        await asyncio.sleep(max(0.0, started + (index + 1) / per_second - time.monotonic()))
    async with asyncio.timeout(60):
        await sender.close()


async def test_a_notifier_killed_mid_burst_delivers_every_alert_at_most_twice(
    settings: Settings,
    tmp_path: Path,
    hooks: Hooks,
    alertmanager: str,
    accumulator: Process,
    launch: Launch,
) -> None:
    total = 200
    launch("alerter")
    config = notifier_config(tmp_path, alertmanager, hooks)
    first = start_notifier(launch, settings, config, "notifier-first")
    sending = asyncio.create_task(send_fatals(settings, total, per_second=50))

    async def some_delivered() -> bool:
        return len(hooks.alerts("/hook")) >= 20

    await eventually(some_delivered, 60, f"the first notifications: {first.output()}")
    first.kill()
    second = start_notifier(launch, settings, config, "notifier-second")
    async with asyncio.timeout(120):
        await sending

    async def all_raised() -> bool:
        records = await open_bus(settings).snapshot(settings.topics.alerts)
        return len(latest_alerts(records)) == total

    await eventually(all_raised, 60, "the alerter to raise every alert")
    raised = set(latest_alerts(await open_bus(settings).snapshot(settings.topics.alerts)))

    def delivered() -> list[str]:
        return [a["fingerprint"] for a in hooks.alerts("/hook") if a["status"] == "firing"]

    async def all_delivered() -> bool:
        return raised <= set(delivered())

    await eventually(all_delivered, 120, f"every alert at the webhook: {second.output()}")
    copies = {alert_id: delivered().count(alert_id) for alert_id in raised}
    assert max(copies.values()) <= 2, copies  # at most one extra copy for the one crash
    assert set(delivered()) == raised

    async def all_held_by_alertmanager() -> bool:
        held = {a["labels"]["fingerprint"] for a in await alertmanager_alerts(alertmanager)}
        return len(held) == total

    await eventually(all_held_by_alertmanager, 60, "Alertmanager to hold every alert")


async def test_a_fatal_and_its_resolve_reach_an_smtp_server_over_starttls_with_env_credentials(
    settings: Settings,
    tmp_path: Path,
    mailbox: Mailbox,
    accumulator: Process,
    launch: Launch,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = tmp_path / "notify.toml"
    config.write_text(
        f"""\
[[receiver]]
name = "mail"
type = "email"
smtp = "127.0.0.1:{mailbox.port}"
from = "logdeck@localhost"
to = ["oncall@localhost", "lead@localhost"]
starttls = true
username_env = "TEST_SMTP_USER"
password_env = "TEST_SMTP_PASSWORD"
"""
    )
    monkeypatch.setenv("TEST_SMTP_USER", "pager")
    monkeypatch.setenv("TEST_SMTP_PASSWORD", "s3cret")
    launch("alerter")
    notifier = start_notifier(launch, settings, config, "notifier")
    await send_fatal(settings, f"{settings.namespace}-payment-01")

    def mailed(count: int) -> Callable[[], Awaitable[bool]]:
        async def check() -> bool:
            return len(mailbox.messages) >= count

        return check

    await eventually(mailed(1), 60, f"the firing email: {notifier.output()}")
    (firing,) = mailbox.messages
    assert firing["Subject"] == f"[logdeck] 1 firing: {CODE}: gateway said 502"
    assert (firing["From"], firing["To"]) == (
        "logdeck@localhost",
        "oncall@localhost, lead@localhost",
    )
    assert f"[FIRING] CRITICAL fatal {SERVICE}" in firing.get_content()
    assert (mailbox.logins, mailbox.encrypted) == (["pager"], [True])

    client = AlertClient(settings, open_bus(settings))
    try:
        (alert,) = [a for a in await client.open_alerts() if a.fingerprint == FINGERPRINT]
        await client.resolve(alert, "alice")
    finally:
        await client.close()
    await eventually(mailed(2), 60, f"the resolved email: {notifier.output()}")
    assert mailbox.messages[1]["Subject"] == f"[logdeck] 1 resolved: {CODE}: gateway said 502"
    await asyncio.sleep(1)  # a repeat would show by now
    assert len(mailbox.messages) == 2


async def test_a_receiver_that_fails_at_first_gets_the_alert_once_it_answers(
    settings: Settings,
    tmp_path: Path,
    hooks: Hooks,
    alertmanager: str,
    accumulator: Process,
    launch: Launch,
) -> None:
    hooks.refusals["/hook"] = 3
    launch("alerter")
    notifier = start_notifier(launch, settings, notifier_config(tmp_path, alertmanager, hooks), "n")
    await send_fatal(settings, f"{settings.namespace}-payment-01")

    async def delivered() -> bool:
        return bool(hooks.alerts("/hook"))

    await eventually(delivered, 60, f"the webhook to take the alert: {notifier.output()}")
    assert hooks.refusals["/hook"] == 0
    output = notifier.output()
    assert output.count("oncall did not take") == 3, output
    assert "gave up" not in output
    await asyncio.sleep(1)  # a second copy would show by now
    assert len(hooks.alerts("/hook")) == 1


async def test_two_notifiers_share_the_alerts_and_each_is_delivered(
    settings: Settings,
    tmp_path: Path,
    hooks: Hooks,
    alertmanager: str,
    accumulator: Process,
    launch: Launch,
) -> None:
    total = 100
    launch("alerter")
    config = notifier_config(tmp_path, alertmanager, hooks)
    copies = [start_notifier(launch, settings, config, f"notifier-{n}") for n in (1, 2)]

    async def both_own_partitions() -> bool:
        return all("gained" in copy.output() for copy in copies)

    await eventually(both_own_partitions, 60, "both notifiers to own partitions")
    await send_fatals(settings, total, per_second=50)

    def delivered() -> list[str]:
        return [a["fingerprint"] for a in hooks.alerts("/hook") if a["status"] == "firing"]

    async def all_delivered() -> bool:
        return len(set(delivered())) == total

    await eventually(all_delivered, 120, "every alert at the webhook")
    await asyncio.sleep(1)  # a second copy would show by now
    counts = [delivered().count(alert_id) for alert_id in set(delivered())]
    assert max(counts) <= 2, counts  # one extra copy at most, for the one rebalance
    outputs = [copy.output() for copy in copies]
    assert all("notified oncall" in output for output in outputs), outputs


async def test_an_alert_left_unacknowledged_escalates_and_an_acked_one_does_not(
    settings: Settings, tmp_path: Path, hooks: Hooks, accumulator: Process, launch: Launch
) -> None:
    config = tmp_path / "escalate.toml"
    config.write_text(
        f"""\
[[receiver]]
name = "oncall"
type = "webhook"
url = "{hooks.url("/oncall")}"

[[receiver]]
name = "pager"
type = "webhook"
url = "{hooks.url("/pager")}"

[[route]]
receiver = "oncall"

[[route]]
receiver = "pager"
escalate_after_s = 8
"""
    )
    launch("alerter")
    start_notifier(launch, settings, config, "notifier")
    bus = open_bus(settings)
    client = AlertClient(settings, bus)
    try:
        await send_fatal(settings, f"{settings.namespace}-payment-01")

        async def on_call_told() -> bool:
            return any(a["labels"]["error_code"] == CODE for a in hooks.alerts("/oncall"))

        await eventually(on_call_told, 60, "the on-call webhook to take the FATAL")
        assert hooks.alerts("/pager") == []  # not yet: nobody had the time to answer

        async def paged() -> bool:
            return bool(hooks.alerts("/pager"))

        await eventually(paged, 30, "the unacknowledged FATAL to escalate")
        (first,) = [a for a in await client.open_alerts() if a.fingerprint == FINGERPRINT]

        # Another alert, acknowledged at once: it never reaches the pager.
        other = "PAY-504"
        sender = AckSender("logdeck", "127.0.0.1", settings.accumulator_port)
        fatal = make_log(f"{settings.namespace}-payment-02", "FATAL", service_name=SERVICE)
        fatal["error_details"] = {"error_code": other, "error_message": "gateway timed out"}
        await sender.emit("log", fatal)
        async with asyncio.timeout(60):
            await sender.close()

        async def raised() -> Alert | None:
            return next(
                (a for a in await client.open_alerts() if a.fingerprint.endswith(other)), None
            )

        await eventually(lambda: _is_not_none(raised()), 60, "the second alert")
        second = await raised()
        assert second is not None
        await client.acknowledge(second, "alice")
        await asyncio.sleep(12)  # half as long again as the escalation time
        paged_codes = {a["labels"]["error_code"] for a in hooks.alerts("/pager")}
        assert paged_codes == {CODE}, hooks.alerts("/pager")
        assert first.alert_id != second.alert_id
    finally:
        await client.close()


async def _is_not_none(value: Awaitable[object]) -> bool:
    return await value is not None


def hook_only_config(tmp_path: Path, hooks: Hooks) -> Path:
    config = tmp_path / "hook.toml"
    config.write_text(
        f'[[receiver]]\nname = "oncall"\ntype = "webhook"\nurl = "{hooks.url("/hook")}"\n'
    )
    return config


def codes_told(hooks: Hooks) -> set[str]:
    return {
        a["labels"].get("error_code") or a["labels"]["alertname"] for a in hooks.alerts("/hook")
    }


async def test_a_silence_keeps_an_alert_quiet_until_it_is_expired(
    settings: Settings, tmp_path: Path, hooks: Hooks, accumulator: Process, launch: Launch
) -> None:
    bus = open_bus(settings)
    silences, alerts = SilenceClient(settings, bus), AlertClient(settings, bus)
    try:
        matcher = Matcher(name=MatcherName.ERROR_CODE, value=CODE)
        hushed = await silences.add(
            new_silence(
                [matcher],
                timedelta(hours=1),
                comment="gateway work",
                by="alice",
                now=datetime.now(UTC),
            )
        )
        launch("alerter")
        notifier = start_notifier(launch, settings, hook_only_config(tmp_path, hooks), "n")
        await send_fatal(settings, f"{settings.namespace}-payment-01")

        async def raised() -> bool:
            return any(a.fingerprint == FINGERPRINT for a in await alerts.open_alerts())

        await eventually(raised, 60, "the FATAL's alert")
        await eventually(
            lambda: _true(f"silenced by {hushed.silence_id}" in notifier.output()),
            30,
            f"the notifier to keep it quiet: {notifier.output()}",
        )
        assert hooks.alerts("/hook") == []

        await silences.expire(hushed.silence_id, datetime.now(UTC))

        async def told() -> bool:
            return CODE in codes_told(hooks)

        await eventually(told, 30, "the alert to notify once its silence ended")
    finally:
        await silences.close()
        await alerts.close()


async def test_an_open_node_down_inhibits_the_alerts_of_its_node(
    settings: Settings, tmp_path: Path, hooks: Hooks, accumulator: Process, launch: Launch
) -> None:
    node = f"{settings.namespace}-payment-01"
    fingerprint = f"NODE_DOWN:{node}"
    launch("alerter")
    notifier = start_notifier(launch, settings, hook_only_config(tmp_path, hooks), "n")
    bus = open_bus(settings)
    await bus.ensure_topics(settings.topics.all(), settings.topics.compacted())
    publisher = bus.publisher()
    await publisher.start()
    topic = settings.topics.alert_commands
    try:
        down = RaiseAlert(
            fingerprint=fingerprint,
            kind=AlertKind.NODE_DOWN,
            severity=Severity.CRITICAL,
            node_id=node,
            service_name=SERVICE,
            summary="no heartbeat for 3 s",
            at=now_iso(),
        )
        await publisher.publish([Outgoing(topic, fingerprint.encode(), encode(down))])

        async def paged() -> bool:
            return "NODE_DOWN" in codes_told(hooks)

        await eventually(paged, 60, "the NODE_DOWN to notify")
        await send_fatal(settings, node)
        await eventually(
            lambda: _true(f"inhibited: {node} is down" in notifier.output()),
            60,
            f"the FATAL of the down node to be inhibited: {notifier.output()}",
        )
        assert CODE not in codes_told(hooks)

        clear = ClearAlert(fingerprint=fingerprint, summary="heartbeats again", at=now_iso())
        await publisher.publish([Outgoing(topic, fingerprint.encode(), encode(clear))])

        async def told() -> bool:
            return CODE in codes_told(hooks)

        await eventually(told, 30, "the FATAL to notify once its node is back")
    finally:
        await publisher.stop()


async def _true(value: bool) -> bool:
    return value
