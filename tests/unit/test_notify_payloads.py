"""What each receiver is sent: Alertmanager's API v2 alerts, its webhook format (version
4), Slack's incoming-webhook text, an email."""

from __future__ import annotations

from datetime import UTC, datetime

from backend.notify.alertmanager import alertmanager_alerts
from backend.notify.config import Email
from backend.notify.email import email_message
from backend.notify.gate import Gate
from backend.notify.ledger import Notice
from backend.notify.slack import slack_body
from backend.notify.webhook import webhook_body
from backend.schemas import AlertKind, AlertState, NoticeStatus
from tests.unit.test_notify_routing import alert

FIRING = Notice(alert(), NoticeStatus.FIRING)
RESOLVED = Notice(
    alert(
        alert_id="ffff000011112222",
        fingerprint="NODE_DOWN:auth-01",
        kind=AlertKind.NODE_DOWN,
        node_id="auth-01",
        service_name="AuthService",
        summary="no heartbeat for 15 s",
        state=AlertState.RESOLVED,
        resolved_at="2026-12-05T08:02:00.000Z",
    ),
    NoticeStatus.RESOLVED,
)


def test_alertmanager_gets_labels_annotations_and_an_end_ahead_while_firing() -> None:
    now = datetime(2026, 12, 5, 8, 1, tzinfo=UTC)
    firing, resolved = alertmanager_alerts([FIRING, RESOLVED], now)
    assert firing == {
        "labels": {
            "alertname": "LOG_LEVEL",
            "severity": "CRITICAL",
            "service": "PaymentService",
            "node": "payment-01",
            "rule": "fatal",
            "fingerprint": "fatal:PaymentService:PAY-502",
            "error_code": "PAY-502",
        },
        "annotations": {"summary": "PAY-502: gateway said 502", "count": "3"},
        "startsAt": "2026-12-05T08:00:00.000Z",
        "endsAt": "2026-12-05T08:05:00.000Z",
    }
    assert resolved["endsAt"] == "2026-12-05T08:02:00.000Z"
    assert resolved["labels"]["alertname"] == "NODE_DOWN"
    assert resolved["labels"]["rule"] == "NODE_DOWN"


def test_the_webhook_body_is_alertmanagers_version_4() -> None:
    body = webhook_body("oncall", [FIRING, RESOLVED])
    assert set(body) == {
        "version",
        "groupKey",
        "truncatedAlerts",
        "status",
        "receiver",
        "groupLabels",
        "commonLabels",
        "commonAnnotations",
        "externalURL",
        "alerts",
    }
    assert (body["version"], body["status"], body["receiver"]) == ("4", "firing", "oncall")
    assert body["commonLabels"] == {"severity": "CRITICAL"}  # the one label both share
    first, second = body["alerts"]
    assert set(first) == {
        "status",
        "labels",
        "annotations",
        "startsAt",
        "endsAt",
        "generatorURL",
        "fingerprint",
    }
    assert (first["status"], first["endsAt"], first["fingerprint"]) == (
        "firing",
        "0001-01-01T00:00:00Z",
        FIRING.alert.alert_id,
    )
    assert (second["status"], second["endsAt"]) == ("resolved", "2026-12-05T08:02:00.000Z")
    only_resolved = webhook_body("oncall", [RESOLVED])
    assert only_resolved["status"] == "resolved"
    assert only_resolved["commonLabels"] == only_resolved["alerts"][0]["labels"]


def test_slack_gets_one_line_per_alert() -> None:
    assert slack_body([FIRING, RESOLVED]) == {
        "text": "[FIRING] CRITICAL fatal PaymentService payment-01: "
        "PAY-502: gateway said 502 (count 3)\n"
        "[RESOLVED] CRITICAL NODE_DOWN AuthService auth-01: no heartbeat for 15 s (count 3)"
    }


def test_an_email_says_what_fires_in_its_subject() -> None:
    email = Email(host="127.0.0.1", port=25, sender="logdeck@localhost", to=("a@x", "b@x"))
    message = email_message(email, [FIRING, RESOLVED])
    assert message["Subject"] == "[logdeck] 1 firing, 1 resolved: PAY-502: gateway said 502"
    assert (message["From"], message["To"]) == ("logdeck@localhost", "a@x, b@x")
    assert "[RESOLVED] CRITICAL NODE_DOWN" in message.get_content()


def test_the_gate_limits_the_rate_and_backs_off_until_it_gives_up() -> None:
    gate = Gate(max_per_minute=2, give_up_after_s=60)
    assert [gate.admit(0.0), gate.admit(0.0), gate.admit(0.0)] == [True, True, False]
    assert gate.admit(30.0)  # one more after half a minute
    assert not gate.failed(30.0, permanent=False)
    assert not gate.admit(30.1)  # backing off
    assert not gate.failed(60.0, permanent=False)
    assert gate.failed(90.0, permanent=False)  # failing for 60 s: give up
    assert gate.failed(91.0, permanent=True)
