"""Reading a typed expression into its terms, or saying which term is wrong and what fits.

Terms are separated by white space; double quotes keep a phrase or a value together (`\\"`
and `\\\\` inside them stand for `"` and `\\`). A term that starts with a field name and
`:`, `>`, `>=`, `<`, `<=` or `=` is a field term; anything else is text.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from backend.logfilter.expression import Expression
from backend.logfilter.terms import (
    FIELD_NAMES,
    FIELD_START,
    Comparison,
    Field,
    FieldTerm,
    Op,
    Term,
    TextTerm,
)
from backend.schemas import FLOAT32_MAX, Level

_NUMBER: Final = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_LEVELS: Final = tuple(level.value for level in sorted(Level, key=lambda level: level.rank))
MAX_PATTERN_CHARS: Final = 200
"""Longest text, or value with a `*`: Elasticsearch refuses a wildcard whose automaton is
too costly to build, which a few hundred characters reach."""
_FIELDS_ACCEPTED: Final = (
    "the fields are level, service, node, code (or log_level, service_name, node_id, "
    "error_code), response_time_ms and threshold_limit_ms"
)


class ExpressionError(ValueError):
    """An expression that cannot be read; the message names the term and what would fit."""


@dataclass(frozen=True, slots=True)
class _Token:
    """One term as typed (`raw`), in pieces outside and inside quotes."""

    raw: str
    parts: tuple[tuple[str, bool], ...]  # (text, quoted)


def parse_expression(text: str) -> Expression:
    """The expression `text` stands for; `ExpressionError` if a term cannot be read."""
    return Expression(tuple(_term(token) for token in _tokens(text)))


def split_fields(text: str, *, known_only: bool = False) -> tuple[Expression, str]:
    """The field terms and comparisons of `text` (`level:ERROR`, `-node:x`,
    `response_time_ms>1000`), and the rest as typed: the words, phrases and operators that
    the console's search box hands to `simple_query_string`. `ExpressionError` if a field
    term cannot be read, or a quote is not closed.

    With `known_only`, a word whose name is not a field's (`https://`, `id:42` in a regex)
    stays in the rest instead of being refused: the feed's box takes regexes too."""
    fields: list[Term] = []
    words: list[str] = []
    for token in _tokens(text):
        first, quoted = token.parts[0]
        start = None if quoted else FIELD_START.match(first.removeprefix("-"))
        if start and known_only and start.group(1).lower() not in FIELD_NAMES:
            start = None
        if start:
            fields.append(_term(token))
        else:
            words.append(token.raw)
    return Expression(tuple(fields)), " ".join(words)


def _tokens(text: str) -> Iterator[_Token]:
    index, end = 0, len(text)
    while index < end:
        if text[index].isspace():
            index += 1
            continue
        start = index
        parts: list[tuple[str, bool]] = []
        bare: list[str] = []
        while index < end and not text[index].isspace():
            if text[index] == '"':
                if bare:
                    parts.append(("".join(bare), False))
                    bare = []
                quoted, index = _quoted(text, start, index)
                parts.append((quoted, True))
            else:
                bare.append(text[index])
                index += 1
        if bare:
            parts.append(("".join(bare), False))
        yield _Token(text[start:index], tuple(parts))


def _quoted(text: str, start: int, index: int) -> tuple[str, int]:
    """The text between the quote at `index` and its closing quote, and the index after."""
    chars: list[str] = []
    index += 1
    while index < len(text):
        char = text[index]
        if char == "\\" and index + 1 < len(text) and text[index + 1] in '"\\':
            chars.append(text[index + 1])
            index += 2
        elif char == '"':
            return "".join(chars), index + 1
        else:
            chars.append(char)
            index += 1
    raise ExpressionError(f'unclosed quote in {text[start:]!r}: end the phrase with "')


def _term(token: _Token) -> Term:
    parts = token.parts
    negated = False
    first, quoted = parts[0]
    if not quoted and first.startswith("-"):
        negated = True
        rest = first[1:]
        parts = ((rest, False), *parts[1:]) if rest else parts[1:]
        if not parts:
            raise ExpressionError("'-' alone: put the term to leave out right after it (-node:x)")
        first, quoted = parts[0]
    found = None if quoted else FIELD_START.match(first)
    if found is not None:
        name, op = found.groups()
        value = first[found.end() :] + "".join(part for part, _ in parts[1:])
        return _field_term(token.raw, name, op, value, negated)
    text = "".join(part for part, _ in parts)
    if not text:
        raise ExpressionError(f"{token.raw!r}: empty quotes; put the text to find between them")
    _check_length(token.raw, text)
    return TextTerm(text, negated)


def _field_term(raw: str, name: str, op: str, value: str, negated: bool) -> Term:
    field = FIELD_NAMES.get(name.lower())
    if field is None:
        raise ExpressionError(
            f"unknown field {name!r} in {raw!r}: {_FIELDS_ACCEPTED}; "
            f"put text that contains {op!r} in double quotes"
        )
    if field.numeric:
        return _comparison(raw, field, op, value, negated)
    if op != ":":
        raise ExpressionError(
            f"{raw!r}: {field} is matched with ':' ({field}:VALUE, * for any characters); "
            "only response_time_ms and threshold_limit_ms compare with >, >=, <, <=, ="
        )
    if not value:
        raise ExpressionError(f"{raw!r}: put a value after ':' ({field}:VALUE)")
    if field is Field.LEVEL:
        level = value.upper()
        if level not in _LEVELS:
            raise ExpressionError(
                f"{raw!r}: the level is one of {', '.join(_LEVELS)} (in any case)"
            )
        return FieldTerm(field, level, negated)
    if "*" in value:
        _check_length(raw, value)
    return FieldTerm(field, value, negated)


def _check_length(raw: str, pattern: str) -> None:
    if len(pattern) > MAX_PATTERN_CHARS:
        raise ExpressionError(
            f"{raw[:40]!r}...: {len(pattern)} characters long; text, and values with *, "
            f"may have at most {MAX_PATTERN_CHARS}"
        )


def _comparison(raw: str, field: Field, op: str, value: str, negated: bool) -> Comparison:
    example = f"{field}>1000"
    if op == ":":
        raise ExpressionError(
            f"{raw!r}: compare {field} with >, >=, <, <= or = and a number ({example})"
        )
    if not _NUMBER.fullmatch(value):
        shown = repr(value) if value else "nothing"
        raise ExpressionError(
            f"{raw!r}: {shown} is not a number; compare {field} with one ({example})"
        )
    number = float(value)
    if abs(number) > FLOAT32_MAX:
        raise ExpressionError(
            f"{raw!r}: {value} is beyond the largest timing stored (±{FLOAT32_MAX:.1e})"
        )
    return Comparison(field, Op(op), number, negated)
