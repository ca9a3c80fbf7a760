"""Routing: the labels an alert is matched on, and which receivers take it."""

from __future__ import annotations

from typing import Any

from backend.alert_labels import labels_of
from backend.notify.config import parse_notify_config
from backend.notify.routing import routes_of
from backend.schemas import Alert, AlertKind, AlertState, Severity


def alert(**overrides: Any) -> Alert:
    fields: dict[str, Any] = {
        "alert_id": "a1b2c3d4e5f60718",
        "fingerprint": "fatal:PaymentService:PAY-502",
        "kind": AlertKind.LOG_LEVEL,
        "severity": Severity.CRITICAL,
        "node_id": "payment-01",
        "service_name": "PaymentService",
        "summary": "PAY-502: gateway said 502",
        "first_seen": "2026-12-05T08:00:00.000Z",
        "last_seen": "2026-12-05T08:00:05.000Z",
        "count": 3,
        "state": AlertState.OPEN,
    }
    return Alert(**(fields | overrides))


RECEIVERS = """\
[[receiver]]
name = "pager"
type = "webhook"
url = "http://127.0.0.1:1/pager"

[[receiver]]
name = "chat"
type = "slack"
url = "http://127.0.0.1:1/chat"
"""


def test_labels_read_rule_and_error_code_back_from_the_fingerprint() -> None:
    assert labels_of(alert()) == {
        "severity": "CRITICAL",
        "rule": "fatal",
        "service": "PaymentService",
        "node": "payment-01",
        "error_code": "PAY-502",
    }
    down = alert(
        fingerprint="NODE_DOWN:payment-01", kind=AlertKind.NODE_DOWN, summary="no heartbeat"
    )
    assert labels_of(down)["rule"] == "NODE_DOWN"
    assert "error_code" not in labels_of(down)
    burst = alert(fingerprint="error-burst:PaymentService", kind=AlertKind.BURST, node_id=None)
    assert labels_of(burst) == {
        "severity": "CRITICAL",
        "rule": "error-burst",
        "service": "PaymentService",
    }


def test_a_service_name_with_colons_keeps_its_error_code() -> None:
    odd = alert(service_name="pay:v2", fingerprint="fatal:pay:v2:E1")
    assert (labels_of(odd)["service"], labels_of(odd)["error_code"]) == ("pay:v2", "E1")


def test_without_routes_every_receiver_takes_every_alert() -> None:
    config = parse_notify_config(RECEIVERS, "t")
    assert set(routes_of(config, alert(severity=Severity.WARNING))) == {"pager", "chat"}


def test_routes_match_every_name_given_and_any_of_its_values() -> None:
    config = parse_notify_config(
        RECEIVERS
        + """
[[route]]
receiver = "pager"
match = { severity = "CRITICAL", service = ["PaymentService", "AuthService"] }

[[route]]
receiver = "chat"
match = { error_code = "PAY-502" }

[[route]]
receiver = "chat"
match = { rule = "NODE_DOWN" }
group_wait_s = 30
""",
        "t",
    )
    assert set(routes_of(config, alert())) == {"pager", "chat"}
    assert set(routes_of(config, alert(service_name="Other", fingerprint="fatal:Other:X"))) == set()
    assert set(routes_of(config, alert(severity=Severity.ERROR))) == {"chat"}
    down = alert(
        fingerprint="NODE_DOWN:n1", kind=AlertKind.NODE_DOWN, node_id="n1", service_name=None
    )
    chosen = routes_of(config, down)
    assert set(chosen) == {"chat"}
    assert chosen["chat"].group_wait_s == 30


def test_a_route_without_match_takes_every_alert() -> None:
    config = parse_notify_config(RECEIVERS + '\n[[route]]\nreceiver = "chat"\n', "t")
    assert set(routes_of(config, alert(severity=Severity.WARNING))) == {"chat"}
