"""The notifier's TOML file: receivers and the routes that send alerts to them.

A mistake in the file stops the notifier before it starts, with one line naming the file
(and the line, where it can be found) and what to fix.

    [[receiver]]
    name = "oncall"
    type = "webhook"             # alertmanager | webhook | slack | email
    url = "http://127.0.0.1:5001/hook"   # alertmanager: its base URL
    max_per_minute = 60          # deliveries at most; more wait for the next minute

    [[receiver]]                 # email: SMTP, credentials from the environment
    name = "mail"
    type = "email"
    smtp = "127.0.0.1:25"
    from = "logdeck@example.org"
    to = ["oncall@example.org"]
    starttls = false
    username_env = "SMTP_USER"   # names of variables, never the secrets themselves
    password_env = "SMTP_PASSWORD"

    [[route]]
    receiver = "oncall"
    match = { severity = "CRITICAL" }    # severity, service, node, rule, error_code
    group_wait_s = 0
    repeat_interval_s = 3600

    [[route]]                    # escalation: only alerts OPEN and unacknowledged this long
    receiver = "mail"
    match = { severity = "CRITICAL" }
    escalate_after_s = 900

Without any route, every receiver gets every alert.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from backend.schemas import Severity

RECEIVER_TYPES: Final = ("alertmanager", "webhook", "slack", "email")
MATCH_NAMES: Final = ("severity", "service", "node", "rule", "error_code")
DEFAULT_GROUP_WAIT_S: Final = 0.0
"""Alerts already fold many logs into one, so nothing is gained by waiting by default."""
DEFAULT_REPEAT_INTERVAL_S: Final = 3600.0
DEFAULT_MAX_PER_MINUTE: Final = 60

_RECEIVER_FIELDS: Final = ("name", "type", "url", "max_per_minute")
_EMAIL_FIELDS: Final = (
    "name",
    "type",
    "max_per_minute",
    "smtp",
    "from",
    "to",
    "starttls",
    "username_env",
    "password_env",
)
_ROUTE_FIELDS: Final = (
    "receiver",
    "match",
    "group_wait_s",
    "repeat_interval_s",
    "escalate_after_s",
)
_SYNTAX_AT: Final = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")


class NotifyConfigError(ValueError):
    """A file the notifier cannot use; the message is one line: `file[:line]: what`."""


@dataclass(frozen=True, slots=True)
class Email:
    """Where and to whom an email receiver sends, over SMTP."""

    host: str
    port: int
    sender: str
    to: tuple[str, ...]
    starttls: bool = False
    username_env: str | None = None
    password_env: str | None = None


@dataclass(frozen=True, slots=True)
class Receiver:
    name: str
    type: str
    url: str = ""
    max_per_minute: int = DEFAULT_MAX_PER_MINUTE
    email: Email | None = None


@dataclass(frozen=True, slots=True)
class Route:
    """Alerts whose labels equal one of the values given for each name in `match` go to
    `receiver`; an empty `match` takes every alert."""

    receiver: str
    match: Mapping[str, frozenset[str]] = field(default_factory=dict)
    group_wait_s: float = DEFAULT_GROUP_WAIT_S
    repeat_interval_s: float = DEFAULT_REPEAT_INTERVAL_S
    escalate_after_s: float | None = None
    """An escalation route: it takes an alert only once it has been OPEN (unacknowledged)
    this long since it last opened."""


@dataclass(frozen=True, slots=True)
class NotifyConfig:
    receivers: tuple[Receiver, ...]
    routes: tuple[Route, ...]
    source: str


def default_config_path() -> Path:
    """$LOGDECK_NOTIFY, else notify.toml in logdeck's folder of the XDG config home."""
    given = os.environ.get("LOGDECK_NOTIFY")
    if given:
        return Path(given)
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "logdeck" / "notify.toml"


def load_notify_config(path: Path) -> NotifyConfig:
    """The receivers and routes of the file at `path`; `NotifyConfigError` says what is wrong."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
        raise NotifyConfigError(f"{path}: cannot read the notifier's file: {reason}") from None
    return parse_notify_config(text, str(path))


def parse_notify_config(text: str, source: str) -> NotifyConfig:
    """The receivers and routes written in `text`; `source` names the file in errors."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        reason = str(error)
        where = _SYNTAX_AT.search(reason)
        if where:
            reason = f"{reason[: where.start()]} (column {where.group(2)})"
            raise NotifyConfigError(f"{source}:{where.group(1)}: {reason}") from None
        raise NotifyConfigError(f"{source}: {reason}") from None
    return _Reader(text, source).config(document)


class _Reader:
    """Checks a parsed document table by table, and finds each table's line in the text."""

    def __init__(self, text: str, source: str) -> None:
        self._lines = text.splitlines()
        self._source = source

    def config(self, document: dict[str, Any]) -> NotifyConfig:
        self._no_unknown(document, ("receiver", "route"), None)
        receivers: list[Receiver] = []
        for index, table in enumerate(self._tables(document, "receiver")):
            receiver = self._receiver(table, index)
            if any(earlier.name == receiver.name for earlier in receivers):
                taken = f"the name {receiver.name!r} is taken by an earlier receiver"
                raise self._error(("receiver", index), taken)
            receivers.append(receiver)
        if not receivers:
            raise self._error(None, "no [[receiver]]: there is nobody to notify")
        names = [receiver.name for receiver in receivers]
        routes = tuple(
            self._route(table, index, names)
            for index, table in enumerate(self._tables(document, "route"))
        )
        return NotifyConfig(tuple(receivers), routes, self._source)

    def _tables(self, document: dict[str, Any], name: str) -> list[dict[str, Any]]:
        tables = document.get(name, [])
        if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
            raise self._error(None, f"`{name}` must be a list of tables: write [[{name}]]")
        return tables

    def _receiver(self, table: dict[str, Any], index: int) -> Receiver:
        at = ("receiver", index)
        kind = self._text(table, "type", at)
        if kind not in RECEIVER_TYPES:
            raise self._bad(at, "type", kind, _one_of(RECEIVER_TYPES))
        email = kind == "email"
        self._no_unknown(table, _EMAIL_FIELDS if email else _RECEIVER_FIELDS, at)
        name = self._text(table, "name", at)
        limit = table.get("max_per_minute", DEFAULT_MAX_PER_MINUTE)
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise self._bad(at, "max_per_minute", limit, "a whole number of at least 1")
        if email:
            return Receiver(name, kind, max_per_minute=limit, email=self._email(table, at))
        url = self._text(table, "url", at)
        if not url.startswith(("http://", "https://")):
            raise self._bad(at, "url", url, "an http:// or https:// URL")
        return Receiver(name, kind, url.rstrip("/") if kind == "alertmanager" else url, limit)

    def _email(self, table: dict[str, Any], at: tuple[str, int]) -> Email:
        host, _, port = self._text(table, "smtp", at).rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise self._bad(at, "smtp", table["smtp"], "HOST:PORT, e.g. 127.0.0.1:25")
        to = table.get("to")
        recipients = [to] if isinstance(to, str) else to
        if not isinstance(recipients, list) or not recipients:
            raise self._bad(at, "to", to, "an address or a list of addresses")
        if not all(isinstance(address, str) and "@" in address for address in recipients):
            raise self._bad(at, "to", to, "an address or a list of addresses")
        starttls = table.get("starttls", False)
        if not isinstance(starttls, bool):
            raise self._bad(at, "starttls", starttls, "true or false")
        return Email(
            host=host,
            port=int(port),
            sender=self._text(table, "from", at),
            to=tuple(recipients),
            starttls=starttls,
            username_env=self._optional_text(table, "username_env", at),
            password_env=self._optional_text(table, "password_env", at),
        )

    def _route(self, table: dict[str, Any], index: int, receivers: list[str]) -> Route:
        at = ("route", index)
        self._no_unknown(table, _ROUTE_FIELDS, at)
        receiver = self._text(table, "receiver", at)
        if receiver not in receivers:
            raise self._bad(at, "receiver", receiver, f"a receiver's name: {_one_of(receivers)}")
        return Route(
            receiver=receiver,
            match=self._match(table, at),
            group_wait_s=self._seconds(table, "group_wait_s", at, DEFAULT_GROUP_WAIT_S, 0.0),
            repeat_interval_s=self._seconds(
                table, "repeat_interval_s", at, DEFAULT_REPEAT_INTERVAL_S, None
            ),
            escalate_after_s=self._seconds(table, "escalate_after_s", at, 0.0, None)
            if "escalate_after_s" in table
            else None,
        )

    def _match(self, table: dict[str, Any], at: tuple[str, int]) -> dict[str, frozenset[str]]:
        match = table.get("match", {})
        if not isinstance(match, dict):
            raise self._bad(at, "match", match, 'a table, e.g. { severity = "CRITICAL" }')
        self._no_unknown(match, MATCH_NAMES, at, "in match: ")
        values: dict[str, frozenset[str]] = {}
        for name, value in match.items():
            given = [value] if isinstance(value, str) else value
            if not isinstance(given, list) or not given:
                raise self._bad(at, f"match.{name}", value, "a string or a list of strings")
            if not all(isinstance(one, str) and one for one in given):
                raise self._bad(at, f"match.{name}", value, "a string or a list of strings")
            if name == "severity" and not set(given) <= set(Severity):
                raise self._bad(at, "match.severity", value, _one_of(list(Severity)))
            values[name] = frozenset(given)
        return values

    def _seconds(
        self,
        table: dict[str, Any],
        key: str,
        at: tuple[str, int],
        default: float,
        least: float | None,
    ) -> float:
        value = table.get(key, default)
        number = not isinstance(value, bool) and isinstance(value, int | float)
        if not number or not (value >= least if least is not None else value > 0):
            expected = "0 or more" if least is not None else "above 0"
            raise self._bad(at, key, value, f"a number of seconds {expected}")
        return float(value)

    def _text(self, table: dict[str, Any], key: str, at: tuple[str, int]) -> str:
        if key not in table:
            raise self._error(at, f"no {key!r}")
        value = table[key]
        if not isinstance(value, str) or not value:
            raise self._bad(at, key, value, "a non-empty string")
        return value

    def _optional_text(self, table: dict[str, Any], key: str, at: tuple[str, int]) -> str | None:
        return self._text(table, key, at) if key in table else None

    def _no_unknown(
        self,
        table: dict[str, Any],
        known: Sequence[str],
        at: tuple[str, int] | None,
        prefix: str = "",
    ) -> None:
        for key in table:
            if key not in known:
                close = difflib.get_close_matches(key, known, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                what = f"unknown field {prefix}{key!r}" if at else f"unknown table {key!r}"
                raise self._error(at, f"{what}{hint}")

    def _bad(self, at: tuple[str, int], key: str, value: object, expected: str) -> Exception:
        return self._error(at, f"bad value for {key!r}: {value!r} (expected {expected})")

    def _error(self, at: tuple[str, int] | None, reason: str) -> NotifyConfigError:
        if at is None:
            return NotifyConfigError(f"{self._source}: {reason}")
        name, index = at
        line = self._header_line(name, index)
        where = f"{self._source}:{line}" if line else self._source
        return NotifyConfigError(f"{where}: [[{name}]] #{index + 1}: {reason}")

    def _header_line(self, name: str, index: int) -> int | None:
        header = re.compile(rf"^\s*\[\[\s*{name}\s*\]\]")
        seen = 0
        for number, line in enumerate(self._lines, 1):
            if header.match(line):
                if seen == index:
                    return number
                seen += 1
        return None


def _one_of(names: Sequence[str]) -> str:
    return ", ".join(names[:-1]) + f" or {names[-1]}" if len(names) > 1 else names[0]
