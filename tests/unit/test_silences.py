"""Silences: what each matcher reads of an alert, when a silence is in force, the book kept
from the topic, maintenance turns, and the command line's parsing and refusals."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest

from backend.alert_labels import labels_of
from backend.alerting.matching import rule_matches
from backend.alerting.rules import load_rules
from backend.bus import Incoming
from backend.monitor.maintenance import MaintenanceGate, ended_while_down
from backend.monitor.service import node_down_fingerprint
from backend.schemas import (
    Alert,
    AlertKind,
    AlertState,
    Log,
    Matcher,
    MatcherName,
    Severity,
    Silence,
    encode,
    iso_millis,
    validate_record,
)
from backend.silences.book import SilenceBook
from backend.silences.client import maintenance_of
from backend.silences.matching import (
    active_maintenance,
    covers,
    is_active,
    matchers_for,
    matches_all,
    silencing,
)
from backend.silences.parsing import (
    SilenceInputError,
    format_matcher,
    new_silence,
    parse_duration,
    parse_matcher,
)
from launch.cli import build_parser, main
from launch.silences import print_table
from tests.records import make_log

NOW = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)


def alert_of(level: str, **log_fields: Any) -> Alert:
    """The alert the built-in rules raise for one log, as the alerter builds it."""
    log = validate_record(make_log(level=level, **log_fields))
    assert isinstance(log, Log)
    match = rule_matches(load_rules(None), log)[0]  # ERROR also counts towards a burst
    return Alert(
        alert_id="a1",
        fingerprint=match.fingerprint,
        kind=match.kind,
        severity=match.severity,
        node_id=match.node_id,
        service_name=match.service_name,
        summary=match.summary,
        first_seen=match.at,
        last_seen=match.at,
        count=1,
        state=AlertState.OPEN,
    )


def node_down(node_id: str) -> Alert:
    stamp = iso_millis(NOW)
    return Alert(
        alert_id="d1",
        fingerprint=node_down_fingerprint(node_id),
        kind=AlertKind.NODE_DOWN,
        severity=Severity.CRITICAL,
        node_id=node_id,
        service_name="PaymentService",
        summary=f"node {node_id} silent",
        first_seen=stamp,
        last_seen=stamp,
        count=1,
        state=AlertState.OPEN,
    )


def silence(*matchers: str, start: datetime = NOW, span: timedelta = HOUR, **extra: Any) -> Silence:
    return new_silence(
        [parse_matcher(text) for text in matchers],
        span,
        comment="deploy",
        by="ana",
        now=start,
        **extra,
    )


def record(value: Silence | bytes, offset: int = 0, key: bytes = b"k") -> Incoming:
    data = value if isinstance(value, bytes) else encode(value)
    return Incoming("t.silences", 0, offset, key, data, (), 0)


# What each matcher name reads.


def test_labels_of_a_log_level_alert_read_rule_and_error_code_from_its_fingerprint() -> None:
    alert = alert_of(
        "FATAL",
        node_id="pay-01",
        service_name="PaymentService",
        error_details={"error_code": "DB:503", "error_message": "down"},
    )
    assert labels_of(alert) == {
        MatcherName.SEVERITY: "CRITICAL",
        MatcherName.RULE: "fatal",
        MatcherName.SERVICE: "PaymentService",
        MatcherName.NODE: "pay-01",
        MatcherName.ERROR_CODE: "DB:503",
    }


def test_a_threshold_alert_and_a_node_down_have_no_error_code() -> None:
    slow = labels_of(alert_of("WARN", service_name="Search"))
    assert slow[MatcherName.RULE] == "slow"
    assert MatcherName.ERROR_CODE not in slow
    down = labels_of(node_down("pay-02"))
    assert down[MatcherName.RULE] == "NODE_DOWN"
    assert down[MatcherName.NODE] == "pay-02"
    assert MatcherName.ERROR_CODE not in down


# Which silence covers an alert, and when.


def test_every_matcher_must_match_and_regexes_match_the_whole_label() -> None:
    alert = alert_of("ERROR", node_id="pay-01", service_name="PaymentService")
    assert covers(silence("service=PaymentService", "severity=error"), alert, NOW)
    assert covers(silence("service=~Pay.*", "error_code=TST-500"), alert, NOW)
    assert not covers(silence("service=~Pay"), alert, NOW)  # a prefix is not the whole name
    assert not covers(silence("service=PaymentService", "node=pay-02"), alert, NOW)
    assert not covers(silence("rule=fatal"), alert, NOW)


def test_a_label_the_alert_lacks_reads_as_empty() -> None:
    alert = alert_of("WARN", service_name="Search")
    assert not covers(silence("error_code=TST-500"), alert, NOW)
    assert covers(silence("error_code=~.*", "service=Search"), alert, NOW)


def test_a_silence_is_in_force_from_its_start_until_but_not_at_its_end() -> None:
    alert = node_down("pay-01")
    covering = silence("node=pay-01")
    assert not covers(covering, alert, NOW - timedelta(milliseconds=1))
    assert covers(covering, alert, NOW)
    assert covers(covering, alert, NOW + HOUR - timedelta(milliseconds=1))
    assert not covers(covering, alert, NOW + HOUR)
    assert not is_active(covering, NOW + HOUR)


def test_silencing_names_the_covering_silence_that_lasts_longest() -> None:
    alert = node_down("pay-01")
    short = silence("node=pay-01")
    long = silence("rule=NODE_DOWN", span=2 * HOUR)
    other = silence("node=pay-02", span=3 * HOUR)
    assert silencing([short, long, other], alert, NOW) == long
    assert silencing([short, other], alert, NOW + 90 * timedelta(minutes=1)) is None


def test_active_maintenance_takes_only_maintenance_windows_in_force() -> None:
    windows = [
        silence("node=pay-01", maintenance=True),
        silence("node=pay-02", maintenance=True, span=timedelta(minutes=5)),
        silence("node=pay-03"),  # an ordinary silence is no maintenance
    ]
    assert active_maintenance(windows, NOW) == {"pay-01", "pay-02"}
    assert active_maintenance(windows, NOW + timedelta(minutes=5)) == {"pay-01"}
    assert active_maintenance(windows, NOW + HOUR) == set()


# The book kept from the topic.


def test_the_book_keeps_the_latest_record_of_each_silence() -> None:
    first = silence("node=pay-01")
    expired = msgspec.structs.replace(first, ends_at=iso_millis(NOW + timedelta(minutes=1)))
    other = silence("service=Search", span=2 * HOUR)
    book = SilenceBook([record(first, 0), record(other, 1), record(expired, 2)])
    assert len(book) == 2
    assert book.get(first.silence_id) == expired
    later = NOW + timedelta(minutes=2)
    assert book.listing(later) == [other, expired]  # in force first
    assert book.silencing(node_down("pay-01"), later) is None


def test_the_book_skips_what_is_not_a_silence_and_forgets_a_tombstone() -> None:
    kept = silence("node=pay-01")
    fields = msgspec.to_builtins(kept)
    fields |= {"silence_id": "x", "matchers": [{"name": "node", "value": "(", "regex": True}]}
    bad_regex = msgspec.json.encode(fields)
    book = SilenceBook([record(kept, 0), record(b"not json", 1), record(bad_regex, 2)])
    assert book.silences() == [kept]
    assert book.apply(record(b"", 3, key=kept.silence_id.encode())) is None
    assert len(book) == 0


def test_maintenance_of_a_node_finds_only_its_windows_in_force() -> None:
    window = silence("node=pay-01", maintenance=True)
    book = SilenceBook(
        [record(window, 0), record(silence("node=pay-01"), 1), record(silence("node=pay-02"), 2)]
    )
    assert maintenance_of("pay-01", book, NOW) == [window]
    assert maintenance_of("pay-01", book, NOW + HOUR) == []
    assert maintenance_of("pay-02", book, NOW) == []


# Maintenance turns in the monitor.


def test_the_gate_reports_each_start_and_end_once() -> None:
    gate = MaintenanceGate()
    turns = gate.update({"pay-01"})
    assert (turns.started, turns.ended) == (frozenset({"pay-01"}), frozenset())
    assert gate.holds("pay-01") and not gate.holds("pay-02")
    turns = gate.update({"pay-01", "pay-02"})
    assert (turns.started, turns.ended) == (frozenset({"pay-02"}), frozenset())
    turns = gate.update({"pay-02"})
    assert (turns.started, turns.ended) == (frozenset(), frozenset({"pay-01"}))
    assert not gate.holds("pay-01")


def test_a_node_down_through_a_window_that_ended_is_due_its_node_down() -> None:
    ended = silence("node=pay-01", start=NOW - 2 * HOUR, maintenance=True)  # ended NOW - 1h
    heard = {"pay-01": NOW - 90 * MINUTE}  # went down inside the window
    assert ended_while_down([ended], heard, NOW) == {"pay-01"}


def test_no_node_down_is_due_for_a_window_in_force_over_before_the_fall_or_not_maintenance() -> (
    None
):
    open_window = silence("node=pay-01", start=NOW - 30 * MINUTE, maintenance=True)
    over_before = silence("node=pay-02", start=NOW - 3 * HOUR, maintenance=True)
    plain = silence("node=pay-03", start=NOW - 2 * HOUR)
    heard = {
        "pay-01": NOW - 20 * MINUTE,
        "pay-02": NOW - 90 * MINUTE,  # fell after its window ended: raised then, as usual
        "pay-03": NOW - 90 * MINUTE,
    }
    assert ended_while_down([open_window, over_before, plain], heard, NOW) == set()
    again = silence("node=pay-02", start=NOW - 2 * HOUR, span=3 * HOUR, maintenance=True)
    assert ended_while_down([over_before, again], {"pay-02": NOW - 90 * MINUTE}, NOW) == set()


# Matchers and durations as typed.


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("service=PaymentService", Matcher(name=MatcherName.SERVICE, value="PaymentService")),
        ("node=~pay-0[12]", Matcher(name=MatcherName.NODE, value="pay-0[12]", regex=True)),
        ("severity=critical", Matcher(name=MatcherName.SEVERITY, value="CRITICAL")),
        ("error_code=A=B", Matcher(name=MatcherName.ERROR_CODE, value="A=B")),
        ("rule=~", None),
    ],
)
def test_matchers_as_typed(text: str, expected: Matcher | None) -> None:
    if expected is None:
        with pytest.raises(SilenceInputError, match="has no value"):
            parse_matcher(text)
        return
    assert parse_matcher(text) == expected
    assert format_matcher(parse_matcher(text)) in (text, "severity=CRITICAL")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("host=a", "unknown name 'host' (expected one of severity, service, node, rule"),
        ("node=~pay-(", "not a regular expression"),
        ("node", "is not name=value or name=~regex"),
        ("severity=fatal", "unknown severity 'fatal' (expected WARNING, ERROR, CRITICAL)"),
    ],
)
def test_matchers_refused_with_a_reason(text: str, reason: str) -> None:
    with pytest.raises(SilenceInputError) as refused:
        parse_matcher(text)
    assert reason in str(refused.value)
    assert "\n" not in str(refused.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30m", timedelta(minutes=30)),
        ("2h", timedelta(hours=2)),
        ("1d", timedelta(days=1)),
        ("90s", timedelta(seconds=90)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1.5H", timedelta(hours=1.5)),
    ],
)
def test_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "is not a duration"),
        ("30", "is not a duration"),
        ("2w", "is not a duration"),
        ("h", "is not a duration"),
        ("1h 30m", "is not a duration"),
        ("0m", "must be longer than zero"),
        ("9999999999999d", "too long"),
    ],
)
def test_durations_refused(text: str, reason: str) -> None:
    with pytest.raises(SilenceInputError, match=reason):
        parse_duration(text)


def test_a_silence_ending_beyond_the_years_stored_is_refused() -> None:
    with pytest.raises(ValueError, match="1970-2099"):
        silence("node=a", span=timedelta(days=365 * 80))


# The command line.


def test_silence_add_parses_matchers_span_comment_and_author() -> None:
    argv = ["silence", "add", "service=A", "node=~b.*", "--for", "2h", "--comment", "deploy"]
    args = build_parser().parse_args([*argv, "--by", "ana", "--embedded", "/tmp/x"])
    assert (args.command, args.action) == ("silence", "add")
    assert args.matchers == ["service=A", "node=~b.*"]
    assert (args.duration, args.comment, args.by) == ("2h", "deploy", "ana")


@pytest.mark.parametrize(
    "argv",
    [
        ["silence", "add", "service=A", "--for", "2h"],  # no comment
        ["silence", "add", "--for", "2h", "--comment", "x"],  # no matcher
        ["silence", "expire"],
        ["maintenance", "pay-01"],  # neither --for nor --end
        ["maintenance", "pay-01", "--for", "1h", "--end"],
    ],
)
def test_incomplete_commands_are_usage_errors(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(argv)
    assert exited.value.code == 2


@pytest.mark.parametrize(
    ("argv", "reason"),
    [
        (["silence", "add", "colour=red", "--for", "1h", "--comment", "x"], "unknown name"),
        (["silence", "add", "node=~(", "--for", "1h", "--comment", "x"], "regular expression"),
        (["silence", "add", "node=a", "--for", "soon", "--comment", "x"], "not a duration"),
        (["maintenance", "pay-01", "--for", "0s"], "longer than zero"),
    ],
)
def test_bad_input_is_one_line_and_exit_2_before_any_connection(
    argv: list[str], reason: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Kafka flags that lead nowhere: the command must refuse before connecting.
    assert main([*argv, "--kafka", "127.0.0.1:1"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith(f"logdeck {argv[0]}: ")
    assert reason in err


def test_the_table_lists_state_ends_author_matchers_and_comment() -> None:
    active = silence("service=A", "node=~b.*")
    window = silence("node=pay-01", maintenance=True, span=timedelta(minutes=5))
    out = io.StringIO()
    print_table([active, window], NOW + timedelta(minutes=10), out)
    header, first, second = out.getvalue().splitlines()
    assert header.split() == ["ID", "STATE", "STARTS", "ENDS", "BY", "MATCHERS", "COMMENT"]
    assert first.split() == [
        active.silence_id,
        "active",
        active.starts_at,
        active.ends_at,
        "ana",
        "service=A",
        "node=~b.*",
        "deploy",
    ]
    assert second.split()[1:3] == ["expired", "(maintenance)"]
    empty = io.StringIO()
    print_table([], NOW, empty)
    assert empty.getvalue() == "no silences\n"


# What a console needs to silence the selected alert.


def test_matchers_for_an_alert_silence_exactly_its_fingerprint() -> None:
    fatal = alert_of("FATAL", node_id="pay-01", service_name="PaymentService")
    assert [format_matcher(m) for m in matchers_for(fatal)] == [
        "rule=fatal",
        "service=PaymentService",
        "error_code=TST-500",
    ]
    assert [format_matcher(m) for m in matchers_for(node_down("pay-02"))] == [
        "rule=NODE_DOWN",
        "node=pay-02",
    ]
    other_node = alert_of("FATAL", node_id="pay-09", service_name="PaymentService")
    other_code = alert_of(
        "FATAL",
        service_name="PaymentService",
        error_details={"error_code": "TST-501", "error_message": "x"},
    )
    alerts = [fatal, other_node, other_code, node_down("pay-01")]
    assert [a for a in alerts if matches_all(matchers_for(fatal), a)] == [fatal, other_node]
