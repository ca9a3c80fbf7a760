"""Every message shape of DESIGN.md, field for field, with a precise reason for each rejection.

Incoming records are dicts (decoded from msgpack by the accumulator, or from JSON off
Kafka); `validate_record` turns one into its typed message or raises `InvalidRecord` with
a reason a person can act on. msgspec does the work, so validation costs about a microsecond.
"""

from __future__ import annotations

import enum
import re
from datetime import UTC, datetime, timedelta
from typing import Any, Final, TypeVar

import msgspec

T = TypeVar("T")


class Level(enum.StrEnum):
    """Log levels, in order of severity."""

    INFO = "INFO"
    WARN = "WARN"
    ERROR = "ERROR"
    FATAL = "FATAL"

    @property
    def rank(self) -> int:
        return _LEVEL_RANK[self]


_LEVEL_RANK: Final = {Level.INFO: 0, Level.WARN: 1, Level.ERROR: 2, Level.FATAL: 3}


class NodeStatus(enum.StrEnum):
    UP = "UP"
    DOWN = "DOWN"


class InvalidRecord(ValueError):
    """A record that does not fit its shape; the message is the reason."""


_ISO_8601: Final = re.compile(
    r"\d{4}-\d{2}-\d{2}T\d{2}(?::\d{2}(?::\d{2}(?:[.,]\d{1,9})?)?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?",
    re.ASCII,
)
"""The forms both stores read (Elasticsearch's `strict_date_optional_time`); Python reads
more (a space for the T, week dates, ten fraction digits) that Elasticsearch refuses."""
EARLIEST: Final = datetime(1970, 1, 1, tzinfo=UTC)
LATEST: Final = datetime(2100, 1, 1, tzinfo=UTC)
"""Timestamps from EARLIEST up to (not including) LATEST: the embedded store orders logs by
epoch milliseconds from 1970 and up to 2108, Elasticsearch holds more."""
_EARLIEST_DAY: Final = "1970-01-01"
_LATEST_DAY: Final = "2099-12-31"
"""Usual timestamps before this day are inside the years stored, even one at 24:00."""
_MAX_OFFSET: Final = timedelta(hours=18)
"""The largest UTC offset Elasticsearch reads (Java's ZoneOffset)."""
MAX_NAME_BYTES: Final = 512
"""Longest id or name in UTF-8 bytes: Elasticsearch refuses a longer document id (log_id,
and node_id in the registry) and keyword terms past 32,766 bytes."""
MAX_RECORD_BYTES: Final = 1_000_000
"""Largest message as JSON: Kafka refuses a record batch over 1 MiB (`message.max.bytes`,
by default), and the accumulator would resend the record forever, acknowledging nothing."""
FLOAT32_MAX: Final = 3.4028234663852886e38
"""Timings are Elasticsearch floats: a larger number (or NaN, or infinity) is refused there,
and JSON has no NaN or infinity at all (they were written as null)."""


def _check_timestamp(value: str) -> None:
    # The usual `2026-11-24T10:15:30.123Z` by its separators (half the regex's cost).
    usual = len(value) == 24 and value[4:20:3] == "--T::." and value[23] == "Z"
    if usual and _EARLIEST_DAY <= value < _LATEST_DAY:
        # UTC, and its text sorts as its time: well inside the years stored if it parses.
        try:
            datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"timestamp {value!r} is not ISO 8601") from None
        return
    try:
        if not usual and not _ISO_8601.fullmatch(value):
            raise ValueError
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"timestamp {value!r} is not ISO 8601") from None
    offset = parsed.utcoffset()
    if offset is None:
        raise ValueError(f"timestamp {value!r} has no time zone (expected UTC, e.g. ...Z)")
    if abs(offset) > _MAX_OFFSET:
        raise ValueError(f"timestamp {value!r} has an offset beyond ±18:00")
    # The year first: comparing year 1 or 9999 with an offset overflows.
    if not (EARLIEST.year - 1 <= parsed.year <= LATEST.year and EARLIEST <= parsed < LATEST):
        raise ValueError(f"timestamp {value!r} is outside 1970-2099 (UTC), the years stored")


_SHORT_NAME: Final = MAX_NAME_BYTES // 4
"""Names up to this many characters fit in MAX_NAME_BYTES whatever their characters."""


def _check_required_text(**fields: str) -> None:
    for name, value in fields.items():
        if not value:
            raise ValueError(f"`{name}` must not be empty")
        if len(value) > _SHORT_NAME:
            _check_name_size(name, value)


def _check_name_size(name: str, value: str) -> None:
    size = len(value.encode("utf-8", "surrogatepass"))
    if size > MAX_NAME_BYTES:
        raise ValueError(f"`{name}` is {size} bytes; at most {MAX_NAME_BYTES} are stored")


def _check_timings(**fields: float | None) -> None:
    for name, value in fields.items():
        if value is not None and not abs(value) <= FLOAT32_MAX:  # false for NaN too
            raise ValueError(
                f"`{name}` must be a finite number within ±{FLOAT32_MAX:.1e}, got {value!r}"
            )


class ErrorDetails(msgspec.Struct, frozen=True, gc=False):
    error_code: str
    error_message: str

    def __post_init__(self) -> None:
        _check_name_size("error_code", self.error_code)


class Registration(msgspec.Struct, frozen=True, tag_field="message_type", tag="REGISTRATION"):
    """A node announcing itself; the registry form adds its status."""

    node_id: str
    service_name: str
    timestamp: str
    status: NodeStatus | None = None

    def __post_init__(self) -> None:
        _check_required_text(node_id=self.node_id, service_name=self.service_name)
        _check_timestamp(self.timestamp)


class Log(
    msgspec.Struct,
    frozen=True,
    omit_defaults=True,
    tag_field="message_type",
    tag="LOG",
    gc=False,
):
    """One log line; WARN carries timings, ERROR and FATAL carry error details.

    Untracked by the garbage collector (it holds strings, numbers and ErrorDetails only, so
    no cycle can form): consoles and services hold tens of thousands of logs, and full
    collections that walk them all stalled the console's event loop for tens of ms.
    """

    log_id: str
    node_id: str
    log_level: Level
    message: str
    service_name: str
    timestamp: str
    response_time_ms: float | None = None
    threshold_limit_ms: float | None = None
    error_details: ErrorDetails | None = None

    def __post_init__(self) -> None:
        # Usual ids at the cost of a comparison each; any other is checked (and refused) in full.
        if not (
            0 < len(self.log_id) <= _SHORT_NAME
            and 0 < len(self.node_id) <= _SHORT_NAME
            and 0 < len(self.service_name) <= _SHORT_NAME
        ):
            _check_required_text(
                log_id=self.log_id, node_id=self.node_id, service_name=self.service_name
            )
        _check_timestamp(self.timestamp)
        if self.response_time_ms is not None or self.threshold_limit_ms is not None:
            _check_timings(
                response_time_ms=self.response_time_ms, threshold_limit_ms=self.threshold_limit_ms
            )
        if self.log_level is Level.WARN and (
            self.response_time_ms is None or self.threshold_limit_ms is None
        ):
            raise ValueError("WARN log needs `response_time_ms` and `threshold_limit_ms`")
        if self.log_level in (Level.ERROR, Level.FATAL) and self.error_details is None:
            raise ValueError(f"{self.log_level} log needs `error_details`")


class Heartbeat(msgspec.Struct, frozen=True, tag_field="message_type", tag="HEARTBEAT"):
    node_id: str
    status: NodeStatus
    timestamp: str

    def __post_init__(self) -> None:
        _check_required_text(node_id=self.node_id)
        _check_timestamp(self.timestamp)


Message = Registration | Log | Heartbeat


class DeadLetter(msgspec.Struct, frozen=True, omit_defaults=True):
    """A rejected record or frame, kept with why it was refused and its raw bytes."""

    reason: str
    source: str
    raw: bytes
    received_at: str
    tag: str | None = None
    peer: str | None = None
    node_id: str | None = None


_json_encoder: Final = msgspec.json.Encoder()


NOT_UTF8: Final = "record has strings that are not valid UTF-8"
"""Why a record is rejected whose bytes the client sent were not UTF-8 (kept as surrogates)."""


def validate_record(record: Any) -> Message:
    """The typed message for `record` (a dict), or `InvalidRecord` saying what is wrong."""
    if not isinstance(record, dict):
        raise InvalidRecord(f"record must be a map, got {type(record).__name__}")
    try:
        message: Message = msgspec.convert(record, Message)
        return message
    except msgspec.ValidationError as error:
        raise InvalidRecord(_explain(record, str(error))) from None
    except UnicodeEncodeError:
        # A key or an enum value sent as bytes that are not UTF-8 (decoded as surrogates).
        raise InvalidRecord(NOT_UTF8) from None


def _explain(record: dict[Any, Any], reason: str) -> str:
    if "`$.message_type`" in reason:
        kind = record.get("message_type")
        return f"unknown message_type {kind!r} (expected REGISTRATION, LOG or HEARTBEAT)"
    return reason


def encode(message: msgspec.Struct) -> bytes:
    """JSON bytes, as they travel on Kafka."""
    return _json_encoder.encode(message)


def decode_as(data: bytes, shape: type[T]) -> T:
    """One JSON value of a known shape (a log, an alert, a registry entry)."""
    try:
        return msgspec.json.decode(data, type=shape)
    except (msgspec.ValidationError, msgspec.DecodeError) as error:
        raise InvalidRecord(str(error)) from None


def now_iso() -> str:
    """The current UTC time in the shape every timestamp here takes: ...T10:15:30.123Z."""
    return iso_millis(datetime.now(UTC))


def iso_millis(moment: datetime) -> str:
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


class AlertKind(enum.StrEnum):
    LOG_LEVEL = "LOG_LEVEL"
    THRESHOLD = "THRESHOLD"
    BURST = "BURST"
    NODE_DOWN = "NODE_DOWN"
    FLAPPING = "FLAPPING"


class Severity(enum.StrEnum):
    """How urgent an alert is; `rank` orders the console's queue."""

    WARNING = "WARNING"
    ERROR = "ERROR"
    CRITICAL = "CRITICAL"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]


_SEVERITY_RANK: Final = {Severity.WARNING: 0, Severity.ERROR: 1, Severity.CRITICAL: 2}


class AlertState(enum.StrEnum):
    OPEN = "OPEN"
    ACKED = "ACKED"
    RESOLVED = "RESOLVED"


class AlertEventKind(enum.StrEnum):
    OPENED = "OPENED"
    REOPENED = "REOPENED"
    ACKED = "ACKED"
    UNACKED = "UNACKED"
    RESOLVED = "RESOLVED"
    NOTE = "NOTE"


class AlertEvent(msgspec.Struct, frozen=True, kw_only=True):
    """One change of an alert's state, or a note, with who and when (`by` None: the system)."""

    at: str
    event: AlertEventKind
    by: str | None = None
    note: str | None = None


class Alert(msgspec.Struct, frozen=True, kw_only=True):
    """An alert as the system derives it: many matching records fold into one.

    `fingerprint` (rule, service, error code, or NODE_DOWN and node) is what folds them;
    `resolved_at` is kept so the console can show when an alert was closed; `history`
    holds its latest state changes and notes, oldest first.
    """

    alert_id: str
    fingerprint: str
    kind: AlertKind
    severity: Severity
    node_id: str | None
    service_name: str | None
    summary: str
    first_seen: str
    last_seen: str
    count: int
    state: AlertState
    acked_by: str | None = None
    acked_at: str | None = None
    resolved_at: str | None = None
    history: tuple[AlertEvent, ...] = ()


class NodeEntry(msgspec.Struct, frozen=True, kw_only=True):
    """A node in the registry: what it said about itself and when it was last heard."""

    node_id: str
    service_name: str | None
    status: NodeStatus
    registered_at: str | None
    last_heartbeat: str | None


class RetiredNode(msgspec.Struct, frozen=True, kw_only=True):
    """A node gone from the registry: what a tombstone (an empty record keyed by node_id) on
    the registry topic stands for. Never sent as such."""

    node_id: str


class ForgetNode(msgspec.Struct, frozen=True, kw_only=True, tag_field="message_type", tag="FORGET"):
    """An operator's request that the monitor retire a node now, on the registrations topic
    (keyed by node_id, so it is ordered with the node's own registrations)."""

    node_id: str
    by: str
    at: str

    def __post_init__(self) -> None:
        _check_required_text(node_id=self.node_id)
        _check_timestamp(self.at)


class Acknowledge(msgspec.Struct, frozen=True, kw_only=True, tag_field="command", tag="ACK"):
    alert_id: str
    by: str
    at: str
    note: str | None = None


class Unacknowledge(msgspec.Struct, frozen=True, kw_only=True, tag_field="command", tag="UNACK"):
    alert_id: str
    by: str
    at: str


class Resolve(msgspec.Struct, frozen=True, kw_only=True, tag_field="command", tag="RESOLVE"):
    alert_id: str
    by: str
    at: str


class Annotate(msgspec.Struct, frozen=True, kw_only=True, tag_field="command", tag="NOTE"):
    """A note on an alert, in any state: what was tried, who is on it."""

    alert_id: str
    by: str
    note: str
    at: str


class RaiseAlert(msgspec.Struct, frozen=True, kw_only=True, tag_field="command", tag="RAISE"):
    """A condition another service detected (the monitor's NODE_DOWN), for the alerter to own."""

    fingerprint: str
    kind: AlertKind
    severity: Severity
    node_id: str | None
    service_name: str | None
    summary: str
    at: str


class ClearAlert(msgspec.Struct, frozen=True, kw_only=True, tag_field="command", tag="CLEAR"):
    """The condition behind `fingerprint` is over (the node is back): resolve its alert."""

    fingerprint: str
    summary: str
    at: str


class RuleMatch(msgspec.Struct, frozen=True, kw_only=True, tag_field="command", tag="MATCH"):
    """A log a rule fired on, from the alerter's rule stage to the keeper of its alert.

    Keyed by fingerprint, so every match of one alert reaches the one keeper that owns
    it, whichever partition its logs came from. `log_id` lets a resent log count once;
    `burst_count` and `burst_window_s` carry a BURST rule's rate.
    """

    fingerprint: str
    rule: str
    log_id: str
    kind: AlertKind
    severity: Severity
    node_id: str | None
    service_name: str | None
    summary: str
    at: str
    burst_count: int | None = None
    burst_window_s: float | None = None


AlertCommand = (
    Acknowledge | Unacknowledge | Resolve | Annotate | RaiseAlert | ClearAlert | RuleMatch
)


class NoticeStatus(enum.StrEnum):
    """What a notification said of its alert, in Alertmanager's words."""

    FIRING = "firing"
    RESOLVED = "resolved"


class Notification(msgspec.Struct, frozen=True, kw_only=True):
    """What the notifier last sent one receiver about one alert (`delivered` False: it gave
    up), kept on the compacted notifications topic so a restarted notifier carries on."""

    alert_id: str
    receiver: str
    fingerprint: str
    status: NoticeStatus
    sent_at: str
    count: int
    delivered: bool = True


class MatcherName(enum.StrEnum):
    """What a silence matcher reads of an alert: the names of a notifier route's `match`."""

    SEVERITY = "severity"
    SERVICE = "service"
    NODE = "node"
    RULE = "rule"
    ERROR_CODE = "error_code"


class Matcher(msgspec.Struct, frozen=True, kw_only=True):
    """`name=value`, or with `regex` `name=~value` (the whole value must match)."""

    name: MatcherName
    value: str
    regex: bool = False

    def __post_init__(self) -> None:
        if self.regex:
            try:
                re.compile(self.value)
            except re.error as error:
                raise ValueError(
                    f"{self.name}=~{self.value}: not a regular expression: {error}"
                ) from None


class Silence(msgspec.Struct, frozen=True, kw_only=True):
    """Alerts its matchers all cover, from `starts_at` until `ends_at`, notify nobody.

    Kept on the compacted silences topic by silence_id; expiring one publishes it again
    with `ends_at` now, so expired silences stay listed. A `maintenance` silence has one
    matcher, node=NODE: that node raises no NODE_DOWN while it lasts.
    """

    silence_id: str
    matchers: tuple[Matcher, ...]
    starts_at: str
    ends_at: str
    comment: str
    created_by: str
    maintenance: bool = False

    def __post_init__(self) -> None:
        _check_required_text(silence_id=self.silence_id, created_by=self.created_by)
        if not self.matchers:
            raise ValueError("a silence needs at least one matcher")
        _check_timestamp(self.starts_at)
        _check_timestamp(self.ends_at)
