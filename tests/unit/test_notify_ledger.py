"""The ledger's decisions: first notice after group_wait, repeats, resolved, restarts."""

from __future__ import annotations

from datetime import UTC, datetime

from backend.notify.config import parse_notify_config
from backend.notify.ledger import ALERTMANAGER_RESEND_S, Ledger, Notice
from backend.schemas import (
    AlertEvent,
    AlertEventKind,
    AlertState,
    NoticeStatus,
    Severity,
    iso_millis,
)
from tests.unit.test_notify_routing import alert

CONFIG = parse_notify_config(
    """\
[[receiver]]
name = "hook"
type = "webhook"
url = "http://127.0.0.1:1/hook"

[[receiver]]
name = "am"
type = "alertmanager"
url = "http://127.0.0.1:1"

[[route]]
receiver = "hook"
match = { severity = "CRITICAL" }
group_wait_s = 10
repeat_interval_s = 3600

[[route]]
receiver = "am"
""",
    "t",
)
T0 = 1_800_000_000.0


def summary(due: dict[str, list[Notice]]) -> dict[str, list[tuple[str, str]]]:
    return {
        name: [(notice.alert.alert_id, str(notice.status)) for notice in notices]
        for name, notices in sorted(due.items())
    }


def test_a_firing_alert_waits_for_its_group_then_goes_with_the_others() -> None:
    ledger = Ledger(CONFIG)
    ledger.take_alert(alert(alert_id="a"), (0, 1), T0)
    assert summary(ledger.due(T0)) == {"am": [("a", "firing")]}
    ledger.record("am", ledger.due(T0)["am"], T0, delivered=True)
    ledger.take_alert(alert(alert_id="b"), (0, 2), T0 + 5)
    assert summary(ledger.due(T0 + 9)) == {"am": [("b", "firing")]}
    assert summary(ledger.due(T0 + 10))["hook"] == [("a", "firing"), ("b", "firing")]


def test_a_notified_alert_repeats_after_its_interval_and_sooner_for_alertmanager() -> None:
    ledger = Ledger(CONFIG)
    ledger.take_alert(alert(alert_id="a"), (0, 1), T0)
    for name, notices in ledger.due(T0 + 10).items():
        ledger.record(name, notices, T0 + 10, delivered=True)
    assert ledger.due(T0 + 11) == {}
    assert summary(ledger.due(T0 + 10 + ALERTMANAGER_RESEND_S)) == {"am": [("a", "firing")]}
    assert "hook" in ledger.due(T0 + 10 + 3600)


def test_a_resolved_alert_is_told_only_to_those_told_it_fired_then_forgotten() -> None:
    ledger = Ledger(CONFIG)
    ledger.take_alert(alert(alert_id="a"), (0, 1), T0)
    ledger.record("am", ledger.due(T0)["am"], T0, delivered=True)
    resolved = alert(
        alert_id="a", state=AlertState.RESOLVED, resolved_at="2026-12-05T08:01:00.000Z"
    )
    ledger.take_alert(resolved, (0, 2), T0 + 1)
    due = ledger.due(T0 + 1)
    assert summary(due) == {"am": [("a", "resolved")]}  # the hook was never told it fired
    ledger.record("am", due["am"], T0 + 1, delivered=True)
    assert ledger.due(T0 + 2) == {}
    assert len(ledger) == 0


def test_an_older_snapshot_read_later_changes_nothing() -> None:
    ledger = Ledger(CONFIG)
    resolved = alert(alert_id="a", state=AlertState.RESOLVED)
    ledger.take_alert(alert(alert_id="a", severity=Severity.WARNING), (0, 1), T0)
    ledger.record("am", ledger.due(T0)["am"], T0, delivered=True)
    ledger.take_alert(resolved, (0, 5), T0)
    ledger.take_alert(alert(alert_id="a", severity=Severity.WARNING), (0, 3), T0)
    assert summary(ledger.due(T0)) == {"am": [("a", "resolved")]}


def test_a_restarted_ledger_carries_on_from_what_was_recorded() -> None:
    first = Ledger(CONFIG)
    first.take_alert(alert(alert_id="a"), (0, 1), T0)
    recorded = first.record("am", first.due(T0)["am"], T0, delivered=True)
    second = Ledger(CONFIG)
    second.take_alert(alert(alert_id="a"), (0, 1), T0 + 20)
    for notification in recorded:
        second.take_sent(notification)
    assert summary(second.due(T0 + 20)) == {}  # am was told; the hook's group still waits
    assert summary(second.due(T0 + 30)) == {"hook": [("a", "firing")]}


def test_a_given_up_notice_is_not_retried_before_its_repeat() -> None:
    ledger = Ledger(CONFIG)
    ledger.take_alert(alert(alert_id="a"), (0, 1), T0)
    (given_up,) = ledger.record("am", ledger.due(T0)["am"], T0, delivered=False)
    assert (given_up.delivered, given_up.status) == (False, NoticeStatus.FIRING)
    assert "am" not in ledger.due(T0 + 1)


def test_release_forgets_the_alerts_of_lost_partitions() -> None:
    ledger = Ledger(CONFIG)
    ledger.take_alert(alert(alert_id="a"), (0, 1), T0)
    ledger.take_alert(alert(alert_id="b"), (1, 1), T0)
    ledger.release(lambda alert_id: alert_id == "a")
    assert summary(ledger.due(T0)) == {"am": [("b", "firing")]}


ESCALATION = parse_notify_config(
    """\
[[receiver]]
name = "chat"
type = "slack"
url = "http://127.0.0.1:1/chat"

[[receiver]]
name = "pager"
type = "webhook"
url = "http://127.0.0.1:1/pager"

[[route]]
receiver = "chat"

[[route]]
receiver = "pager"
escalate_after_s = 900
""",
    "t",
)


def opened_at(seconds: float) -> str:
    return iso_millis(datetime.fromtimestamp(T0 + seconds, UTC))


def test_an_escalation_route_takes_an_alert_left_open_and_unacknowledged() -> None:
    ledger = Ledger(ESCALATION)
    opened = (AlertEvent(at=opened_at(0), event=AlertEventKind.OPENED),)
    ledger.take_alert(alert(alert_id="a", first_seen=opened_at(0), history=opened), (0, 1), T0)
    assert summary(ledger.due(T0 + 899)) == {"chat": [("a", "firing")]}
    ledger.record("chat", ledger.due(T0 + 899)["chat"], T0 + 899, delivered=True)
    assert summary(ledger.due(T0 + 900)) == {"pager": [("a", "firing")]}


def test_an_ack_in_time_keeps_an_alert_from_the_escalation_route() -> None:
    ledger = Ledger(ESCALATION)
    history = (
        AlertEvent(at=opened_at(0), event=AlertEventKind.OPENED),
        AlertEvent(at=opened_at(60), event=AlertEventKind.ACKED, by="alice"),
    )
    acked = alert(alert_id="a", state=AlertState.ACKED, acked_by="alice", history=history)
    ledger.take_alert(acked, (0, 1), T0)
    assert "pager" not in ledger.due(T0 + 3600)

    # Taken back an hour later: the escalation clock starts again from the un-ack.
    unacked = (*history, AlertEvent(at=opened_at(3600), event=AlertEventKind.UNACKED, by="bob"))
    ledger.take_alert(alert(alert_id="a", history=unacked), (0, 2), T0 + 3600)
    assert "pager" not in ledger.due(T0 + 3600 + 899)
    assert summary(ledger.due(T0 + 3600 + 900))["pager"] == [("a", "firing")]
