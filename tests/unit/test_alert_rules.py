"""Alert rules: the built-in set, what a file may say, and one precise line for each mistake."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from backend.alerting.rules import RulesError, load_rules, parse_rules
from backend.schemas import AlertKind, Level, Log, Severity, validate_record
from tests.records import make_log


def a_log(level: str = "ERROR", **overrides: Any) -> Log:
    message = validate_record(make_log(level=level, **overrides))
    assert isinstance(message, Log)
    return message


def error_of(text: str) -> str:
    with pytest.raises(RulesError) as raised:
        parse_rules(text, "rules.toml")
    return str(raised.value)


def test_built_in_rules_are_error_fatal_threshold_and_burst() -> None:
    rules = load_rules(None)
    assert (rules.fold_window_s, rules.ack_timeout_s) == (300, 3600)
    assert rules.source == "built-in rules"
    by_name = {rule.name: rule for rule in rules.rules}
    assert (by_name["error"].kind, by_name["error"].severity) == (
        AlertKind.LOG_LEVEL,
        Severity.ERROR,
    )
    assert by_name["error"].levels == {Level.ERROR}
    assert (by_name["fatal"].severity, by_name["fatal"].levels) == (
        Severity.CRITICAL,
        frozenset({Level.FATAL}),
    )
    assert (by_name["slow"].kind, by_name["slow"].severity) == (
        AlertKind.THRESHOLD,
        Severity.WARNING,
    )
    burst = by_name["error-burst"]
    assert burst.kind is AlertKind.BURST
    assert burst.rate is not None
    assert (burst.rate.count, burst.rate.window_s) == (50, 60)


def test_threshold_rule_matches_only_a_warn_over_its_limit() -> None:
    slow = next(rule for rule in load_rules(None).rules if rule.name == "slow")
    assert slow.matches(a_log("WARN", response_time_ms=900.0, threshold_limit_ms=800.0))
    assert not slow.matches(a_log("WARN", response_time_ms=800.0, threshold_limit_ms=800.0))
    assert not slow.matches(a_log("INFO"))


def test_a_file_with_every_field(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(
        """
fold_window_s = 120
ack_timeout_s = 900

[[rule]]
name = "payment-timeouts"
severity = "CRITICAL"
level = ["ERROR", "FATAL"]
service = "Payment.*"
node = "payment-0[12]"
message = "timed? ?out"

[[rule]]
name = "storm"
kind = "BURST"
severity = "WARNING"
count = 5
window_s = 2.5
"""
    )
    rules = load_rules(path)
    assert (rules.fold_window_s, rules.ack_timeout_s) == (120, 900)
    assert rules.source == str(path)
    timeouts, storm = rules.rules
    assert timeouts.kind is AlertKind.LOG_LEVEL
    assert timeouts.levels == {Level.ERROR, Level.FATAL}
    assert storm.rate is not None
    assert (storm.rate.count, storm.rate.window_s) == (5, 2.5)
    assert not storm.levels  # no level: every level


@pytest.mark.parametrize(
    ("overrides", "matches"),
    [
        ({}, True),
        ({"service_name": "PaymentServiceV2"}, False),  # service: the whole name
        ({"service_name": "OrderService"}, False),
        ({"node_id": "payment-03"}, False),
        ({"message": "upstream TIMEOUT"}, False),  # regexes are case-sensitive
        ({"message": "call timed out after 3 s"}, True),  # message: anywhere in it
        ({"log_level": "FATAL"}, True),
    ],
)
def test_service_and_node_match_whole_names_message_anywhere(
    overrides: dict[str, str], matches: bool
) -> None:
    rules = parse_rules(
        """
[[rule]]
name = "payment-timeouts"
severity = "CRITICAL"
level = ["ERROR", "FATAL"]
service = "PaymentService|BillingService"
node = "payment-0[12]"
message = "timed? ?out"
""",
        "rules.toml",
    )
    fields = {
        "service_name": "PaymentService",
        "node_id": "payment-01",
        "message": "gateway timeout",
    } | overrides
    level = fields.pop("log_level", "ERROR")
    assert rules.rules[0].matches(a_log(level, **fields)) is matches


def test_no_rules_at_all_is_allowed() -> None:
    assert parse_rules("fold_window_s = 60\n", "rules.toml").rules == ()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '[[rule]]\nname = "a"\nseverity = "ERROR"\nlevle = "ERROR"\n',
            "rules.toml:4: unknown field 'levle' in [[rule]] 1; did you mean 'level'?",
        ),
        (
            '[[rule]]\nname = "a"\nseverity = "ERROR"\n\n[[rule]]\nname = "b"\n'
            'severity = "ERROR"\nmessage = "[unclosed"\n',
            "rules.toml:8: bad regex for 'message' in [[rule]] 2: "
            "unterminated character set at position 0",
        ),
        (
            '[[rule]]\nname = "a"\nseverity = "URGENT"\n',
            "rules.toml:3: bad value for 'severity' in [[rule]] 1: 'URGENT' "
            "(expected WARNING, ERROR or CRITICAL)",
        ),
        (
            '[[rule]]\nname = "a"\nseverity = "ERROR"\nlevel = ["ERROR", "DEBUG"]\n',
            "rules.toml:4: bad value for 'level' in [[rule]] 1: ['ERROR', 'DEBUG'] "
            "(expected INFO, WARN, ERROR or FATAL or a list of them)",
        ),
        (
            '[[rule]]\nname = "a"\nkind = "NODE_DOWN"\nseverity = "ERROR"\n',
            "rules.toml:3: bad value for 'kind' in [[rule]] 1: 'NODE_DOWN' "
            "(expected LOG_LEVEL, THRESHOLD or BURST)",
        ),
        (
            '[[rule]]\nname = "a"\nkind = "BURST"\nseverity = "ERROR"\ncount = 0\n',
            "rules.toml:5: bad value for 'count' in [[rule]] 1: 0 (expected a whole number of "
            "at least 1)",
        ),
        (
            '[[rule]]\nname = "a"\nseverity = "ERROR"\nwindow_s = 10\n',
            "rules.toml:4: 'window_s' is only for kind = \"BURST\"",
        ),
        (
            "fold_window_s = -1\n",
            "rules.toml:1: bad value for 'fold_window_s': -1 "
            "(expected a number of seconds above 0)",
        ),
        (
            'fold_window_s = 60\nack_timeout_s = "1h"\n',
            "rules.toml:2: bad value for 'ack_timeout_s': '1h' "
            "(expected a number of seconds above 0)",
        ),
        (
            'fold = 3\n[[rule]]\nname = "a"\nseverity = "ERROR"\n',
            "rules.toml:1: unknown field 'fold'",
        ),
        (
            '\n[[rule]]\nseverity = "ERROR"\n',
            "rules.toml:2: [[rule]] 1 has no 'name'",
        ),
        (
            '[[rule]]\nname = "a"\nseverity = "ERROR"\n[[rule]]\nname = "a"\nseverity = "ERROR"\n',
            "rules.toml:5: [[rule]] 2 repeats the name 'a'",
        ),
        (
            '[[rule]]\nname = "a"\nseverity = ERROR\n',
            "rules.toml:3: Invalid value (column 12)",
        ),
        (
            '[[rule]]\nname = "a\n',
            "rules.toml:2: Illegal character '\\n' (column 10)",
        ),
        (
            "[rule]\nname = 1\n",
            "rules.toml:1: `rule` must be a list of tables: write [[rule]]",
        ),
        (
            '[[rule]]\nname = "a"\nseverity = "ERROR"\n\n[rule.limits]\nmax = 3\n',
            "rules.toml:5: unknown field 'limits' in [[rule]] 1",
        ),
    ],
    ids=[
        "unknown field",
        "bad regex",
        "bad severity",
        "bad level",
        "kind not for rules",
        "bad count",
        "window on a non-burst",
        "bad fold window",
        "bad ack timeout",
        "unknown top-level field",
        "missing name",
        "repeated name",
        "bad TOML value",
        "unterminated string",
        "a table, not a list",
        "unknown sub-table",
    ],
)
def test_mistakes_are_one_line_with_the_line_number(text: str, expected: str) -> None:
    message = error_of(text)
    assert message == expected
    assert "\n" not in message


def test_the_line_is_found_in_the_right_rule_despite_comments_and_quoting() -> None:
    text = """# alerts
fold_window_s = 60  # level = "x"

[[rule]]
name = "first"
severity = "ERROR"
level = "ERROR"

[[rule]]  # the second
name = "second"
severity = "ERROR"
"level" = "LOUD"
"""
    assert error_of(text).startswith("rules.toml:12: bad value for 'level' in [[rule]] 2")


def test_an_unreadable_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(RulesError, match=r"missing\.toml: cannot read the rules file"):
        load_rules(tmp_path / "missing.toml")


def test_the_shipped_example_rules_file_loads() -> None:
    from pathlib import Path

    rules = load_rules(Path(__file__).resolve().parents[2] / "deploy" / "alert-rules.toml")
    assert [rule.name for rule in rules.rules] == [
        "error",
        "fatal",
        "slow",
        "error-burst",
        "payment-declines",
    ]
