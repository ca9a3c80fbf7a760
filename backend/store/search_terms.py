"""A filter expression's terms as Elasticsearch query clauses, meaning what `matches` means.

Text is a case-insensitive wildcard on `message.raw`, the whole message as one keyword
(messages over `MESSAGE_RAW_CHARS` characters are not kept there, so text finds none of
them); a glob is a wildcard on the keyword field; comparisons are ranges on the `float`
timings, which Elasticsearch compares at 32-bit precision, as `matches` does.
"""

from __future__ import annotations

from typing import Any, Final

from backend.logfilter import Comparison, Expression, Field, Op, Term, TextTerm

MESSAGE_RAW: Final = "message.raw"
MESSAGE_RAW_CHARS: Final = 8191
"""Longest message kept whole: a keyword term holds at most 32,766 bytes (4 per character)."""

_DOCUMENT_FIELDS: Final = {
    Field.LEVEL: "log_level",
    Field.SERVICE: "service_name",
    Field.NODE: "node_id",
    Field.CODE: "error_details.error_code",
    Field.RESPONSE_TIME: "response_time_ms",
    Field.THRESHOLD: "threshold_limit_ms",
}
_RANGES: Final = {Op.GT: "gt", Op.GE: "gte", Op.LT: "lt", Op.LE: "lte"}


def expression_clauses(
    expression: Expression,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The clauses every hit must match (`filter`) and those none may match (`must_not`)."""
    wanted: list[dict[str, Any]] = []
    unwanted: list[dict[str, Any]] = []
    for term in expression.terms:
        (unwanted if term.negated else wanted).append(_clause(term))
    return wanted, unwanted


def _clause(term: Term) -> dict[str, Any]:
    if isinstance(term, TextTerm):
        pattern = f"*{_escape(term.text, '*?')}*"
        return {"wildcard": {MESSAGE_RAW: {"value": pattern, "case_insensitive": True}}}
    field = _DOCUMENT_FIELDS[term.field]
    if isinstance(term, Comparison):
        if term.op is Op.EQ:
            return {"term": {field: term.value}}
        return {"range": {field: {_RANGES[term.op]: term.value}}}
    if term.field is not Field.LEVEL and "*" in term.value:
        return {"wildcard": {field: {"value": _escape(term.value, "?")}}}
    return {"term": {field: term.value}}


def _escape(text: str, special: str) -> str:
    """`text` with backslashes and the `special` wildcard characters taken literally."""
    escaped = text.replace("\\", "\\\\")
    for char in special:
        escaped = escaped.replace(char, "\\" + char)
    return escaped
