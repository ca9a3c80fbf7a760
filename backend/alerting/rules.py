"""Alert rules: a TOML file (or the built-in defaults) turned into a checked `RuleSet`.

A mistake in the file must stop the alerter before it starts, with one line that names
the file and the line to fix: tomllib gives the line of a syntax error, and for a field
or value it does not know, the line of the offending key is found in the text.

    fold_window_s = 300        # a match within this many seconds of last_seen folds in
    ack_timeout_s = 3600       # an acknowledged alert still firing this long after the ack
                               #   opens again: whoever acknowledged it may have moved on

    [[rule]]
    name = "error"             # unique; part of every fingerprint the rule makes
    kind = "LOG_LEVEL"         # LOG_LEVEL (default), THRESHOLD or BURST
    severity = "ERROR"         # WARNING, ERROR or CRITICAL
    level = "ERROR"            # a level or a list of levels; absent: every level
    service = "Payment.*"      # regular expressions: service and node match whole names,
    node = "payment-0[12]"     #   message matches anywhere in the text
    message = "timed? ?out"
    count = 50                 # BURST only: more than `count` matches from one service
    window_s = 60              #   within `window_s` seconds
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeVar

from backend.schemas import AlertKind, Level, Log, Severity

DEFAULT_FOLD_WINDOW_S: Final = 300.0
DEFAULT_ACK_TIMEOUT_S: Final = 3600.0
DEFAULT_BURST_COUNT: Final = 50
DEFAULT_BURST_WINDOW_S: Final = 60.0

DEFAULT_RULES: Final = f"""\
fold_window_s = {DEFAULT_FOLD_WINDOW_S:g}

[[rule]]
name = "error"
severity = "ERROR"
level = "ERROR"

[[rule]]
name = "fatal"
severity = "CRITICAL"
level = "FATAL"

[[rule]]
name = "slow"
kind = "THRESHOLD"
severity = "WARNING"
level = "WARN"

[[rule]]
name = "error-burst"
kind = "BURST"
severity = "CRITICAL"
level = "ERROR"
count = {DEFAULT_BURST_COUNT}
window_s = {DEFAULT_BURST_WINDOW_S:g}
"""
"""The rules without a file, written as a file would be, so one parser serves both."""

_RULE_KINDS: Final = (AlertKind.LOG_LEVEL, AlertKind.THRESHOLD, AlertKind.BURST)
_TOP_FIELDS: Final = ("fold_window_s", "ack_timeout_s", "rule")
_RULE_FIELDS: Final = (
    "name",
    "kind",
    "severity",
    "level",
    "service",
    "node",
    "message",
    "count",
    "window_s",
)
_SYNTAX_AT: Final = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")
_HEADER: Final = re.compile(r"^\s*\[\[?\s*([^\]\s]+)")
_RULE_HEADER: Final = re.compile(r"^\s*\[\[\s*rule\s*\]\]")

T = TypeVar("T")


class RulesError(ValueError):
    """A rules file that cannot be used; the message is one line: `file:line: what`."""


@dataclass(frozen=True, slots=True)
class Rate:
    """More than `count` matches within `window_s` seconds."""

    count: int
    window_s: float


@dataclass(frozen=True, slots=True)
class Rule:
    """Which logs raise an alert, of what kind and severity.

    A THRESHOLD rule matches only logs whose response time exceeds their limit; a BURST
    rule's matches are counted per service and raise an alert only above its `rate`.
    """

    name: str
    kind: AlertKind
    severity: Severity
    levels: frozenset[Level] = frozenset()
    service: re.Pattern[str] | None = None
    node: re.Pattern[str] | None = None
    message: re.Pattern[str] | None = None
    rate: Rate | None = None

    def matches(self, log: Log) -> bool:
        if self.levels and log.log_level not in self.levels:
            return False
        if self.kind is AlertKind.THRESHOLD and not _over_threshold(log):
            return False
        if self.service is not None and not self.service.fullmatch(log.service_name):
            return False
        if self.node is not None and not self.node.fullmatch(log.node_id):
            return False
        return self.message is None or self.message.search(log.message) is not None


def _over_threshold(log: Log) -> bool:
    return (
        log.response_time_ms is not None
        and log.threshold_limit_ms is not None
        and log.response_time_ms > log.threshold_limit_ms
    )


@dataclass(frozen=True, slots=True)
class RuleSet:
    """The rules in force, how long after an alert's last_seen a match still folds in, and
    how long an acknowledged alert may go on firing before it opens again."""

    rules: tuple[Rule, ...]
    fold_window_s: float
    source: str
    ack_timeout_s: float = DEFAULT_ACK_TIMEOUT_S


def load_rules(path: Path | None) -> RuleSet:
    """The rules of the file at `path`, or the built-in ones; `RulesError` says what is wrong."""
    if path is None:
        return parse_rules(DEFAULT_RULES, "built-in rules")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
        raise RulesError(f"{path}: cannot read the rules file: {reason}") from None
    return parse_rules(text, str(path))


def parse_rules(text: str, source: str) -> RuleSet:
    """The rules written in `text`; `source` names the file in error messages."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise _syntax_error(error, text, source) from None
    return _Reader(text, source).rule_set(document)


def _syntax_error(error: tomllib.TOMLDecodeError, text: str, source: str) -> RulesError:
    reason = str(error)
    where = _SYNTAX_AT.search(reason)
    if where:
        reason = f"{reason[: where.start()]} (column {where.group(2)})"
        return RulesError(f"{source}:{where.group(1)}: {reason}")
    if reason.endswith("(at end of document)"):
        reason = reason.removesuffix(" (at end of document)") + " (at the end of the file)"
        return RulesError(f"{source}:{max(1, len(text.splitlines()))}: {reason}")
    return RulesError(f"{source}: {reason}")


class _Reader:
    """Checks a parsed document field by field, and knows where each key is in the text."""

    def __init__(self, text: str, source: str) -> None:
        self._lines = text.splitlines()
        self._source = source

    def rule_set(self, document: dict[str, Any]) -> RuleSet:
        self._no_unknown(document, _TOP_FIELDS, None)
        fold = self._number(document, "fold_window_s", None, DEFAULT_FOLD_WINDOW_S)
        ack_timeout = self._number(document, "ack_timeout_s", None, DEFAULT_ACK_TIMEOUT_S)
        tables = document.get("rule", [])
        if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
            raise self._error(None, "rule", "`rule` must be a list of tables: write [[rule]]")
        rules: list[Rule] = []
        for index, table in enumerate(tables):
            rule = self._rule(table, index)
            if any(earlier.name == rule.name for earlier in rules):
                raise self._error(index, "name", f"{_table(index)} repeats the name {rule.name!r}")
            rules.append(rule)
        return RuleSet(tuple(rules), fold, self._source, ack_timeout)

    def _rule(self, table: dict[str, Any], index: int) -> Rule:
        self._no_unknown(table, _RULE_FIELDS, index)
        if "name" not in table or "severity" not in table:
            missing = "name" if "name" not in table else "severity"
            raise self._error(index, None, f"{_table(index)} has no {missing!r}")
        name = self._text(table, "name", index)
        if not name:
            raise self._error(index, "name", f"{_table(index)} has an empty name")
        kind = self._choice(table, "kind", index, _RULE_KINDS, AlertKind.LOG_LEVEL)
        severity = self._choice(table, "severity", index, tuple(Severity), None)
        levels = self._levels(table, index)
        rate = None
        if kind is AlertKind.BURST:
            rate = Rate(
                self._count(table, index),
                self._number(table, "window_s", index, DEFAULT_BURST_WINDOW_S),
            )
        else:
            for key in ("count", "window_s"):
                if key in table:
                    raise self._error(index, key, f'{key!r} is only for kind = "BURST"')
        return Rule(
            name=name,
            kind=kind,
            severity=severity,
            levels=levels,
            service=self._pattern(table, "service", index),
            node=self._pattern(table, "node", index),
            message=self._pattern(table, "message", index),
            rate=rate,
        )

    def _no_unknown(self, table: dict[str, Any], known: Sequence[str], index: int | None) -> None:
        for key in table:
            if key not in known:
                where = f" in {_table(index)}" if index is not None else ""
                close = difflib.get_close_matches(key, known, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise self._error(index, key, f"unknown field {key!r}{where}{hint}")

    def _text(self, table: dict[str, Any], key: str, index: int) -> str:
        value = table[key]
        if not isinstance(value, str):
            raise self._bad(index, key, value, "a string")
        return value

    def _choice(
        self,
        table: dict[str, Any],
        key: str,
        index: int,
        choices: Sequence[T],
        default: T | None,
    ) -> T:
        if key not in table and default is not None:
            return default
        value = table[key]
        for choice in choices:
            if value == choice:
                return choice
        raise self._bad(index, key, value, _one_of([str(c) for c in choices]))

    def _levels(self, table: dict[str, Any], index: int) -> frozenset[Level]:
        if "level" not in table:
            return frozenset()
        value = table["level"]
        names = value if isinstance(value, list) else [value]
        if not names or not all(name in Level.__members__ for name in names):
            raise self._bad(index, "level", value, f"{_one_of(list(Level))} or a list of them")
        return frozenset(Level(name) for name in names)

    def _count(self, table: dict[str, Any], index: int) -> int:
        value = table.get("count", DEFAULT_BURST_COUNT)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise self._bad(index, "count", value, "a whole number of at least 1")
        return value

    def _number(self, table: dict[str, Any], key: str, index: int | None, default: float) -> float:
        value = table.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
            raise self._bad(index, key, value, "a number of seconds above 0")
        return float(value)

    def _pattern(self, table: dict[str, Any], key: str, index: int) -> re.Pattern[str] | None:
        if key not in table:
            return None
        value = self._text(table, key, index)
        try:
            return re.compile(value)
        except re.error as error:
            raise self._error(
                index, key, f"bad regex for {key!r} in {_table(index)}: {error}"
            ) from None

    def _bad(self, index: int | None, key: str, value: object, expected: str) -> RulesError:
        where = f" in {_table(index)}" if index is not None else ""
        return self._error(
            index, key, f"bad value for {key!r}{where}: {value!r} (expected {expected})"
        )

    def _error(self, index: int | None, key: str | None, reason: str) -> RulesError:
        line = self._line_of(index, key)
        return RulesError(
            f"{self._source}:{line}: {reason}" if line else f"{self._source}: {reason}"
        )

    def _line_of(self, index: int | None, key: str | None) -> int | None:
        """Line of `key` in the top level (`index` None) or in the index-th [[rule]].

        Without the key (or when it is written in a way not searched for, such as an
        inline table), the line of the table's header, if any.
        """
        wanted = _key_line(key) if key else None
        rules_seen = 0
        inside = index is None
        header_line: int | None = None
        for number, line in enumerate(self._lines, 1):
            header = _HEADER.match(line)
            if header:
                if index is None and header.group(1) == key:
                    return number  # a top-level key written as a table: [rule]
                if _RULE_HEADER.match(line):
                    rules_seen += 1
                    inside = index is not None and rules_seen == index + 1
                    if inside:
                        header_line = number
                elif inside and header.group(1) == f"rule.{key}":
                    return number  # a field of the rule written as a table: [rule.key]
                else:
                    inside = False
                continue
            if inside and wanted is not None and wanted.match(line):
                return number
        return header_line


def _key_line(key: str) -> re.Pattern[str]:
    """A line that assigns `key`, bare or quoted, or starts a dotted key with it."""
    name = re.escape(key)
    return re.compile(rf"""^\s*(?:{name}|"{name}"|'{name}')\s*[=.]""")


def _table(index: int) -> str:
    return f"[[rule]] {index + 1}"


def _one_of(names: Sequence[str]) -> str:
    return ", ".join(names[:-1]) + f" or {names[-1]}" if len(names) > 1 else names[0]
