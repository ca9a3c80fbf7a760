"""The alert state machine: folding, windows on the records' own time, lifecycle, commands."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta

from backend.alerting.engine import MAX_HISTORY, AlertEngine, alert_id
from backend.alerting.matching import rule_matches
from backend.alerting.rules import RuleSet, load_rules, parse_rules
from backend.schemas import (
    Acknowledge,
    Alert,
    AlertCommand,
    AlertEventKind,
    AlertKind,
    AlertState,
    Annotate,
    ClearAlert,
    Log,
    RaiseAlert,
    Resolve,
    Severity,
    Unacknowledge,
    iso_millis,
    validate_record,
)
from tests.records import make_log

T0 = datetime(2026, 11, 24, 10, 0, 0, tzinfo=UTC)
ERROR_ONLY = parse_rules('[[rule]]\nname = "error"\nseverity = "ERROR"\nlevel = "ERROR"\n', "t")


def at(seconds: float) -> str:
    return iso_millis(T0 + timedelta(seconds=seconds))


def a_log(
    seconds: float,
    level: str = "ERROR",
    *,
    code: str = "PAY-502",
    node: str = "payment-01",
    service: str = "PaymentService",
    **overrides: object,
) -> Log:
    record = make_log(node, level, service_name=service, timestamp=at(seconds), **overrides)
    if level in ("ERROR", "FATAL"):
        record["error_details"] = {"error_code": code, "error_message": "gateway said 502"}
    message = validate_record(record)
    assert isinstance(message, Log)
    return message


class Alerting:
    """The rule stage and the keeper in one, chained as they are on the bus."""

    def __init__(self, rules: RuleSet, alerts: Iterable[Alert] = ()) -> None:
        self.rules = rules
        self.engine = AlertEngine(rules.fold_window_s, alerts, ack_timeout_s=rules.ack_timeout_s)

    @property
    def alerts(self) -> Mapping[str, Alert]:
        return self.engine.alerts

    def on_log(self, log: Log) -> list[Alert]:
        changed = (self.engine.on_command(match) for match in rule_matches(self.rules, log))
        return [alert for alert in changed if alert is not None]

    def on_command(self, command: AlertCommand) -> Alert | None:
        return self.engine.on_command(command)


def only(alerts: list[Alert]) -> Alert:
    assert len(alerts) == 1, alerts
    return alerts[0]


def fire(engine: Alerting, *logs: Log) -> list[Alert]:
    return [alert for log in logs for alert in engine.on_log(log)]


# Folding --------------------------------------------------------------------------------------


def test_first_error_opens_an_alert_with_its_fingerprint_and_times() -> None:
    alert = only(Alerting(ERROR_ONLY).on_log(a_log(0)))
    assert alert.fingerprint == "error:PaymentService:PAY-502"
    assert (alert.kind, alert.severity, alert.state) == (
        AlertKind.LOG_LEVEL,
        Severity.ERROR,
        AlertState.OPEN,
    )
    assert (alert.first_seen, alert.last_seen, alert.count) == (at(0), at(0), 1)
    assert (alert.node_id, alert.service_name) == ("payment-01", "PaymentService")
    assert alert.summary == "PAY-502: gateway said 502"
    assert alert.alert_id == alert_id(alert.fingerprint, at(0))


def test_matches_within_the_fold_window_fold_into_one_alert() -> None:
    engine = Alerting(ERROR_ONLY)
    changes = fire(engine, *(a_log(seconds) for seconds in range(0, 1000, 10)))
    assert len({alert.alert_id for alert in changes}) == 1
    last = changes[-1]
    assert (last.count, last.first_seen, last.last_seen) == (100, at(0), at(990))
    assert len(engine.alerts) == 1


def test_the_window_counts_from_last_seen_and_a_later_match_starts_a_new_alert() -> None:
    engine = Alerting(ERROR_ONLY)  # fold window: 300 s
    first = only(engine.on_log(a_log(0)))
    same = only(engine.on_log(a_log(300)))
    new = only(engine.on_log(a_log(600.001)))
    assert same.alert_id == first.alert_id
    assert same.count == 2
    assert new.alert_id != first.alert_id
    assert (new.count, new.first_seen) == (1, at(600.001))
    assert engine.alerts[first.alert_id].count == 2  # the earlier alert is left as it was


def test_different_codes_services_and_rules_are_different_alerts() -> None:
    engine = Alerting(load_rules(None))
    alerts = fire(
        engine,
        a_log(0),
        a_log(1, code="PAY-402"),
        a_log(2, service="OrderService"),
        a_log(3, "FATAL"),
    )
    assert len({alert.fingerprint for alert in alerts}) == 4
    fatal = alerts[-1]
    assert (fatal.fingerprint, fatal.severity) == (
        "fatal:PaymentService:PAY-502",
        Severity.CRITICAL,
    )


def test_node_is_kept_while_one_node_fires_and_dropped_once_several_do() -> None:
    engine = Alerting(ERROR_ONLY)
    assert only(engine.on_log(a_log(0, node="payment-01"))).node_id == "payment-01"
    assert only(engine.on_log(a_log(1, node="payment-01"))).node_id == "payment-01"
    assert only(engine.on_log(a_log(2, node="payment-02"))).node_id is None
    assert only(engine.on_log(a_log(3, node="payment-01"))).node_id is None


def test_a_late_record_folds_in_without_moving_last_seen_back() -> None:
    engine = Alerting(ERROR_ONLY)
    fire(engine, a_log(100), a_log(200))
    late = only(engine.on_log(a_log(50)))
    assert (late.first_seen, late.last_seen, late.count) == (at(50), at(200), 3)


def test_same_input_gives_the_same_alerts_on_replay() -> None:
    logs = [a_log(seconds, code=f"PAY-{seconds % 3}") for seconds in range(0, 2000, 7)]
    assert fire(Alerting(load_rules(None)), *logs) == fire(Alerting(load_rules(None)), *logs)


# Lifecycle ------------------------------------------------------------------------------------


def test_ack_unack_resolve() -> None:
    engine = Alerting(ERROR_ONLY)
    alert = only(engine.on_log(a_log(0)))
    acked = engine.on_command(Acknowledge(alert_id=alert.alert_id, by="alice", at=at(10)))
    assert acked is not None
    assert (acked.state, acked.acked_by, acked.acked_at) == (AlertState.ACKED, "alice", at(10))
    assert engine.on_command(Acknowledge(alert_id=alert.alert_id, by="bob", at=at(11))) is None
    unacked = engine.on_command(Unacknowledge(alert_id=alert.alert_id, by="alice", at=at(12)))
    assert unacked is not None
    assert (unacked.state, unacked.acked_by, unacked.acked_at) == (AlertState.OPEN, None, None)
    assert engine.on_command(Unacknowledge(alert_id=alert.alert_id, by="a", at=at(13))) is None
    resolved = engine.on_command(Resolve(alert_id=alert.alert_id, by="bob", at=at(20)))
    assert resolved is not None
    assert (resolved.state, resolved.resolved_at, resolved.count) == (
        AlertState.RESOLVED,
        at(20),
        1,
    )
    assert engine.on_command(Resolve(alert_id=alert.alert_id, by="bob", at=at(21))) is None
    assert engine.on_command(Acknowledge(alert_id=alert.alert_id, by="bob", at=at(22))) is None


def test_an_acked_alert_stays_acked_while_it_keeps_firing() -> None:
    engine = Alerting(ERROR_ONLY)
    alert = only(engine.on_log(a_log(0)))
    engine.on_command(Acknowledge(alert_id=alert.alert_id, by="alice", at=at(1)))
    folded = only(engine.on_log(a_log(2)))
    assert (folded.state, folded.acked_by, folded.count) == (AlertState.ACKED, "alice", 2)


def test_firing_again_after_resolution_reopens_the_same_alert() -> None:
    engine = Alerting(ERROR_ONLY)
    alert = only(engine.on_log(a_log(0)))
    engine.on_command(Acknowledge(alert_id=alert.alert_id, by="alice", at=at(5)))
    engine.on_command(Resolve(alert_id=alert.alert_id, by="alice", at=at(10)))
    reopened = only(engine.on_log(a_log(60)))
    assert reopened.alert_id == alert.alert_id
    assert (reopened.state, reopened.count, reopened.last_seen) == (AlertState.OPEN, 2, at(60))
    assert (reopened.acked_by, reopened.acked_at, reopened.resolved_at) == (None, None, None)


def test_a_resolved_alert_past_the_window_stays_resolved_and_a_new_one_opens() -> None:
    engine = Alerting(ERROR_ONLY)
    alert = only(engine.on_log(a_log(0)))
    engine.on_command(Resolve(alert_id=alert.alert_id, by="alice", at=at(10)))
    new = only(engine.on_log(a_log(1000)))
    assert new.alert_id != alert.alert_id
    assert engine.alerts[alert.alert_id].state is AlertState.RESOLVED


def test_commands_for_unknown_alerts_change_nothing() -> None:
    engine = Alerting(ERROR_ONLY)
    assert engine.on_command(Acknowledge(alert_id="nope", by="alice", at=at(0))) is None
    assert engine.on_command(ClearAlert(fingerprint="NODE_DOWN:x", summary="up", at=at(0))) is None
    assert not engine.alerts


# Threshold and burst --------------------------------------------------------------------------


def test_threshold_alert_for_a_warn_over_its_limit_only() -> None:
    engine = Alerting(load_rules(None))
    assert not engine.on_log(a_log(0, "WARN", response_time_ms=200.0, threshold_limit_ms=800.0))
    alert = only(engine.on_log(a_log(1, "WARN", response_time_ms=950.0, threshold_limit_ms=800.0)))
    assert (alert.kind, alert.severity, alert.fingerprint) == (
        AlertKind.THRESHOLD,
        Severity.WARNING,
        "slow:PaymentService",
    )
    assert "950 ms, limit 800 ms" in alert.summary
    assert not engine.on_log(a_log(2, "INFO"))


BURST = parse_rules(
    '[[rule]]\nname = "storm"\nkind = "BURST"\nseverity = "CRITICAL"\nlevel = "ERROR"\n'
    "count = 5\nwindow_s = 10\n",
    "t",
)


def test_burst_fires_above_the_count_within_the_window_and_folds_while_it_lasts() -> None:
    engine = Alerting(BURST)
    assert not fire(engine, *(a_log(second) for second in range(5)))  # 5: not more than 5
    alert = only(engine.on_log(a_log(5)))
    assert (alert.kind, alert.severity, alert.fingerprint) == (
        AlertKind.BURST,
        Severity.CRITICAL,
        "storm:PaymentService",
    )
    assert alert.summary == "more than 5 ERROR logs from PaymentService within 10 s"
    assert alert.node_id is None  # a burst is the service's
    more = fire(engine, a_log(6), a_log(7))
    assert [a.count for a in more] == [2, 3]
    assert {a.alert_id for a in more} == {alert.alert_id}


def test_burst_counts_each_service_on_its_own_and_forgets_old_matches() -> None:
    engine = Alerting(BURST)
    spread = [a_log(second * 3) for second in range(20)]  # at most 4 within any 10 s
    assert not fire(engine, *spread)
    mixed = [
        a_log(100 + i, service="OrderService" if i % 2 else "PaymentService") for i in range(10)
    ]
    assert not fire(engine, *mixed)  # 5 of each


def test_burst_counts_late_records_in_the_window_they_belong_to() -> None:
    engine = Alerting(BURST)
    fire(engine, a_log(20), a_log(21), a_log(22))
    assert not fire(engine, a_log(5), a_log(6), a_log(7))  # before the window (12, 22]
    assert not fire(engine, a_log(19), a_log(18))  # 5 within the window
    assert only(engine.on_log(a_log(17))).kind is AlertKind.BURST  # the 6th


# RAISE and CLEAR ------------------------------------------------------------------------------


def node_down(seconds: float, node: str = "payment-01") -> RaiseAlert:
    return RaiseAlert(
        fingerprint=f"NODE_DOWN:{node}",
        kind=AlertKind.NODE_DOWN,
        severity=Severity.CRITICAL,
        node_id=node,
        service_name="PaymentService",
        summary=f"{node} silent for 3 s",
        at=at(seconds),
    )


def test_raise_opens_and_clear_resolves_the_alert_of_the_fingerprint() -> None:
    engine = Alerting(ERROR_ONLY)
    raised = engine.on_command(node_down(0))
    assert raised is not None
    assert (raised.kind, raised.state, raised.node_id, raised.count) == (
        AlertKind.NODE_DOWN,
        AlertState.OPEN,
        "payment-01",
        1,
    )
    cleared = engine.on_command(
        ClearAlert(fingerprint="NODE_DOWN:payment-01", summary="payment-01 is back", at=at(30))
    )
    assert cleared is not None
    assert cleared.alert_id == raised.alert_id
    assert (cleared.state, cleared.resolved_at, cleared.summary, cleared.last_seen) == (
        AlertState.RESOLVED,
        at(30),
        "payment-01 is back",
        at(30),
    )
    again = engine.on_command(
        ClearAlert(fingerprint="NODE_DOWN:payment-01", summary="still up", at=at(31))
    )
    assert again is None


def test_a_node_down_again_soon_after_reopens_and_much_later_is_a_new_alert() -> None:
    engine = Alerting(ERROR_ONLY)
    first = engine.on_command(node_down(0))
    engine.on_command(ClearAlert(fingerprint="NODE_DOWN:payment-01", summary="up", at=at(30)))
    reopened = engine.on_command(node_down(90))
    assert reopened is not None and first is not None
    assert (reopened.alert_id, reopened.state, reopened.count) == (
        first.alert_id,
        AlertState.OPEN,
        2,
    )
    engine.on_command(ClearAlert(fingerprint="NODE_DOWN:payment-01", summary="up", at=at(100)))
    later = engine.on_command(node_down(5000))
    assert later is not None
    assert later.alert_id != first.alert_id


# Carrying on from the snapshots ---------------------------------------------------------------


def test_an_engine_started_from_snapshots_carries_on_folding() -> None:
    before = Alerting(ERROR_ONLY)
    old = only(before.on_log(a_log(0)))
    before.on_command(Resolve(alert_id=old.alert_id, by="a", at=at(1)))
    current = fire(before, a_log(1000), a_log(1001))[-1]
    before.on_command(Acknowledge(alert_id=current.alert_id, by="alice", at=at(1002)))

    after = Alerting(ERROR_ONLY, before.alerts.values())
    assert dict(after.alerts) == dict(before.alerts)
    folded = only(after.on_log(a_log(1003)))
    assert folded.alert_id == current.alert_id  # the newest of the fingerprint
    assert (folded.count, folded.state, folded.acked_by) == (3, AlertState.ACKED, "alice")


def test_a_log_resent_by_an_at_least_once_sender_is_counted_once() -> None:
    engine = Alerting(load_rules(None))
    record = validate_record(make_log("payment-01", "ERROR"))
    assert isinstance(record, Log)
    (first,) = engine.on_log(record)
    assert engine.on_log(record) == []
    assert engine.alerts[first.alert_id].count == 1


def test_history_keeps_every_state_change_and_note_with_who_and_when() -> None:
    engine = Alerting(ERROR_ONLY)
    alert = only(engine.on_log(a_log(0)))
    engine.on_command(Acknowledge(alert_id=alert.alert_id, by="alice", at=at(1), note="on it"))
    engine.on_command(Annotate(alert_id=alert.alert_id, by="bob", note="db restarted", at=at(2)))
    engine.on_command(Unacknowledge(alert_id=alert.alert_id, by="bob", at=at(3)))
    engine.on_command(Resolve(alert_id=alert.alert_id, by="alice", at=at(4)))
    reopened = only(engine.on_log(a_log(5)))
    assert [(e.at, e.event, e.by, e.note) for e in reopened.history] == [
        (at(0), AlertEventKind.OPENED, None, None),
        (at(1), AlertEventKind.ACKED, "alice", "on it"),
        (at(2), AlertEventKind.NOTE, "bob", "db restarted"),
        (at(3), AlertEventKind.UNACKED, "bob", None),
        (at(4), AlertEventKind.RESOLVED, "alice", None),
        (at(5), AlertEventKind.REOPENED, None, None),
    ]


def test_history_keeps_the_latest_changes_only() -> None:
    engine = Alerting(ERROR_ONLY)
    alert = only(engine.on_log(a_log(0)))
    for index in range(MAX_HISTORY + 5):
        engine.on_command(Annotate(alert_id=alert.alert_id, by="bob", note=f"{index}", at=at(1)))
    history = engine.alerts[alert.alert_id].history
    assert len(history) == MAX_HISTORY
    assert history[-1].note == f"{MAX_HISTORY + 4}"


def test_an_acked_alert_still_firing_past_the_ack_timeout_opens_again() -> None:
    rules = parse_rules(
        'ack_timeout_s = 600\n[[rule]]\nname = "error"\nseverity = "ERROR"\nlevel = "ERROR"\n',
        "t",
    )
    engine = Alerting(rules)
    alert = only(engine.on_log(a_log(0)))
    engine.on_command(Acknowledge(alert_id=alert.alert_id, by="alice", at=at(10)))
    assert only(engine.on_log(a_log(200))).state is AlertState.ACKED
    assert only(engine.on_log(a_log(500))).state is AlertState.ACKED  # 490 s after the ack
    reopened = only(engine.on_log(a_log(611)))
    assert (reopened.state, reopened.acked_by, reopened.count) == (AlertState.OPEN, None, 4)
    assert reopened.history[-1].event is AlertEventKind.REOPENED
    assert reopened.history[-1].note == "still firing 600 s after the ack"


def test_a_keeper_that_takes_over_remembers_the_matches_applied_before_it() -> None:
    rules = load_rules(None)
    before = Alerting(rules)
    applied = [a_log(second) for second in range(3)]
    fire(before, *applied)
    counted = {a.fingerprint: a.count for a in before.alerts.values()}

    after = Alerting(rules, before.alerts.values())
    after.engine.remember(m for log in applied for m in rule_matches(rules, log))
    assert fire(after, applied[-1]) == []  # resent after the handover: counted once
    (folded,) = [a for a in fire(after, a_log(3)) if a.kind is AlertKind.LOG_LEVEL]
    assert folded.count == counted[folded.fingerprint] + 1


def test_remembered_matches_carry_a_burst_rate_over_a_takeover() -> None:
    before = [a_log(second) for second in range(5)]  # 5: not more than 5 yet
    fresh = Alerting(BURST)
    assert not fire(fresh, a_log(5))  # without them, the 6th is only the 1st
    after = Alerting(BURST)
    after.engine.remember(m for log in before for m in rule_matches(BURST, log))
    assert only(after.on_log(a_log(5))).kind is AlertKind.BURST


def test_a_keeper_releases_lost_fingerprints_and_adopts_gained_ones() -> None:
    rules = load_rules(None)
    first = Alerting(rules)
    payment = only([a for a in first.on_log(a_log(0)) if a.kind is AlertKind.LOG_LEVEL])
    order = only(
        [
            a
            for a in first.on_log(a_log(1, service="OrderService", code="ORD-1"))
            if a.kind is AlertKind.LOG_LEVEL
        ]
    )

    first.engine.release(lambda fingerprint: "OrderService" in fingerprint)
    assert list(first.alerts) == [payment.alert_id]

    second = Alerting(rules)
    second.engine.adopt([order])
    folded = only(
        [
            a
            for a in second.on_log(a_log(2, service="OrderService", code="ORD-1"))
            if a.kind is AlertKind.LOG_LEVEL
        ]
    )
    assert (folded.alert_id, folded.count) == (order.alert_id, 2)
