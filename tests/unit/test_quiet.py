"""What keeps an alert from every receiver: a silence, maintenance, an open NODE_DOWN."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from backend.bus import Incoming
from backend.notify.ledger import Ledger
from backend.schemas import (
    Alert,
    AlertKind,
    AlertState,
    Matcher,
    MatcherName,
    Silence,
    encode,
)
from backend.silences.parsing import new_silence
from backend.silences.quiet import Quiet
from tests.unit.test_notify_ledger import CONFIG, T0, summary
from tests.unit.test_notify_routing import alert

NOW = datetime(2026, 12, 5, 8, 0, 10, tzinfo=UTC)
SILENCES = "t.silences"


def record(value: Silence) -> Incoming:
    return Incoming(SILENCES, 0, 0, None, encode(value), (), 0)


def node_down(state: AlertState = AlertState.OPEN) -> Alert:
    return alert(
        alert_id="down-1",
        fingerprint="NODE_DOWN:payment-01",
        kind=AlertKind.NODE_DOWN,
        summary="no heartbeat for 3 s",
        state=state,
    )


def silence(*matchers: Matcher, maintenance: bool = False) -> Silence:
    return new_silence(
        matchers,
        timedelta(hours=1),
        comment="db work",
        by="alice",
        now=NOW,
        maintenance=maintenance,
    )


def test_a_silence_in_force_quiets_the_alerts_it_covers_only() -> None:
    quiet = Quiet()
    covering = silence(Matcher(name=MatcherName.ERROR_CODE, value="PAY-5..", regex=True))
    quiet.book.apply(record(covering))
    assert str(quiet.reason(alert(), NOW)) == f"silenced by {covering.silence_id} (db work)"
    other = alert(fingerprint="fatal:PaymentService:ORD-1")
    assert quiet.reason(other, NOW) is None
    assert quiet.reason(alert(), NOW + timedelta(hours=2)) is None  # it ended


def test_a_node_in_maintenance_notifies_nobody() -> None:
    quiet = Quiet()
    quiet.book.apply(record(silence(Matcher(name=MatcherName.NODE, value="payment-01"))))
    assert quiet.reason(alert(node_id="payment-02"), NOW) is None
    window = silence(Matcher(name=MatcherName.NODE, value="payment-02"), maintenance=True)
    quiet.book.apply(record(window))
    assert quiet.reason(alert(node_id="payment-02"), NOW) is not None


def test_an_open_node_down_inhibits_the_alerts_of_that_node_until_resolved() -> None:
    quiet = Quiet()
    quiet.take_alert(node_down())
    assert str(quiet.reason(alert(), NOW)) == "inhibited: payment-01 is down"
    assert quiet.reason(node_down(), NOW) is None  # the NODE_DOWN itself still pages
    assert quiet.reason(alert(node_id="payment-02"), NOW) is None
    quiet.take_alert(node_down(AlertState.RESOLVED))
    assert quiet.reason(alert(), NOW) is None


def test_a_quiet_alert_is_due_to_nobody_and_notifies_once_it_is_not() -> None:
    ledger = Ledger(CONFIG)
    ledger.take_alert(alert(alert_id="a"), (0, 1), T0)
    assert ledger.due(T0 + 10, lambda held: True) == {}
    assert summary(ledger.due(T0 + 10)) == {"am": [("a", "firing")], "hook": [("a", "firing")]}
