"""The terms of a filter expression, and how each is written back canonically.

A term is a value: what the parser read, in one canonical form (short field names, level
names in capitals), so two spellings of one filter compare equal and print alike.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Final


class Field(enum.StrEnum):
    """The fields a term can name, by their short names."""

    LEVEL = "level"
    SERVICE = "service"
    NODE = "node"
    CODE = "code"
    RESPONSE_TIME = "response_time_ms"
    THRESHOLD = "threshold_limit_ms"

    @property
    def numeric(self) -> bool:
        return self in (Field.RESPONSE_TIME, Field.THRESHOLD)


FIELD_NAMES: Final[dict[str, Field]] = {
    "level": Field.LEVEL,
    "log_level": Field.LEVEL,
    "service": Field.SERVICE,
    "service_name": Field.SERVICE,
    "node": Field.NODE,
    "node_id": Field.NODE,
    "code": Field.CODE,
    "error_code": Field.CODE,
    "response_time_ms": Field.RESPONSE_TIME,
    "threshold_limit_ms": Field.THRESHOLD,
}
"""Every accepted spelling of a field name, in lower case (names are read in any case)."""


class Op(enum.StrEnum):
    """How a comparison relates the log's number to the term's."""

    GT = ">"
    GE = ">="
    LT = "<"
    LE = "<="
    EQ = "="


FIELD_START: Final = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(>=|<=|>|<|=|:)")
"""What makes a bare word a field term or a comparison rather than text."""
_BARE_VALUE: Final = re.compile(r'[^\s"\\]+')


@dataclass(frozen=True, slots=True)
class TextTerm:
    """Text the message contains, in any case."""

    text: str
    negated: bool = False

    def __str__(self) -> str:
        bare = _BARE_VALUE.fullmatch(self.text) and not self.text.startswith("-")
        shown = self.text if bare and not FIELD_START.match(self.text) else quote(self.text)
        return _sign(self.negated) + shown


@dataclass(frozen=True, slots=True)
class FieldTerm:
    """A level, or a service, node or error code matched by a glob (`*`: any characters)."""

    field: Field
    value: str
    negated: bool = False

    def __str__(self) -> str:
        shown = self.value if _BARE_VALUE.fullmatch(self.value) else quote(self.value)
        return f"{_sign(self.negated)}{self.field}:{shown}"


@dataclass(frozen=True, slots=True)
class Comparison:
    """A timing compared with a number; a log without that timing never satisfies it."""

    field: Field
    op: Op
    value: float
    negated: bool = False

    def __str__(self) -> str:
        return f"{_sign(self.negated)}{self.field}{self.op}{number_text(self.value)}"


Term = TextTerm | FieldTerm | Comparison


def quote(text: str) -> str:
    """`text` in double quotes, its backslashes and quotes escaped as the parser reads them."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def number_text(value: float) -> str:
    """The shortest text that reads back as `value`: 1000 rather than 1000.0."""
    if value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return repr(value)


def _sign(negated: bool) -> str:
    return "-" if negated else ""
