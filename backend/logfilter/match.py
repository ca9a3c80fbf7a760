"""What each term means for one log, as a predicate compiled once per term.

Timings are compared as 32-bit floats, the precision Elasticsearch indexes them with
(`float` in the log mapping), so a comparison finds the same logs live, on the embedded
store and on Elasticsearch.
"""

from __future__ import annotations

import functools
import operator
import re
import struct
from collections.abc import Callable
from typing import Final

from backend.logfilter.terms import Comparison, Field, FieldTerm, Op, Term, TextTerm
from backend.schemas import Log

LogTest = Callable[[Log], bool]
ValueTest = Callable[[str | None], bool]

_COMPARE: Final[dict[Op, Callable[[float, float], bool]]] = {
    Op.GT: operator.gt,
    Op.GE: operator.ge,
    Op.LT: operator.lt,
    Op.LE: operator.le,
    Op.EQ: operator.eq,
}
_FLOAT32: Final = struct.Struct("f")


def log_test(term: Term) -> LogTest:
    """Whether a log satisfies `term` (its negation included)."""
    test = _positive(term)
    if term.negated:
        return lambda log: not test(log)
    return test


def value_test(term: FieldTerm) -> ValueTest:
    """Whether a log whose `term.field` is this value (None: absent) satisfies `term`."""
    negated = term.negated
    if term.field is Field.LEVEL or "*" not in term.value:
        wanted = term.value
        return lambda value: (value == wanted) != negated
    pattern = glob(term.value)

    def test(value: str | None) -> bool:
        found = value is not None and pattern.fullmatch(value) is not None
        return found != negated

    return test


@functools.lru_cache(maxsize=256)
def glob(value: str) -> re.Pattern[str]:
    """`value` as a regex in which `*` stands for any characters and nothing else is special."""
    return re.compile(".*".join(re.escape(part) for part in value.split("*")), re.DOTALL)


def float32(value: float) -> float:
    """`value` rounded to the nearest 32-bit float, as Elasticsearch keeps a `float`."""
    rounded: float = _FLOAT32.unpack(_FLOAT32.pack(value))[0]
    return rounded


def _positive(term: Term) -> LogTest:
    if isinstance(term, TextTerm):
        needle = term.text.lower()
        return lambda log: needle in log.message.lower()
    if isinstance(term, Comparison):
        return _comparison(term)
    test = value_test(FieldTerm(term.field, term.value))
    read = _READERS[term.field]
    return lambda log: test(read(log))


def _comparison(term: Comparison) -> LogTest:
    compare = _COMPARE[term.op]
    limit = float32(term.value)
    timing = operator.attrgetter(term.field.value)

    def test(log: Log) -> bool:
        value: float | None = timing(log)
        return value is not None and compare(float32(value), limit)

    return test


def _code(log: Log) -> str | None:
    return log.error_details.error_code if log.error_details is not None else None


_READERS: Final[dict[Field, Callable[[Log], str | None]]] = {
    Field.LEVEL: lambda log: log.log_level.value,
    Field.SERVICE: lambda log: log.service_name,
    Field.NODE: lambda log: log.node_id,
    Field.CODE: _code,
}
