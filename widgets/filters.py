"""Which log entries the feed shows: levels, minimum level, services, nodes, field terms
(the filter language's `code:PAY-500`, `response_time_ms>1000`), text.

Pure and immutable: a filter is a value the feed swaps whole, never edits in place.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace

from backend.logfilter import Expression, ExpressionError, Term, split_fields
from backend.schemas import Level, Log

LEVELS: tuple[Level, ...] = tuple(sorted(Level, key=lambda level: level.rank))
"""Levels in order of severity: the keys 1-4 toggle them in this order."""
EVERY_LOG = Expression()
"""The expression without terms: no field condition."""


class FilterError(ValueError):
    """A filter the user typed that cannot be applied; the message says why."""


def compile_text(text: str) -> tuple[re.Pattern[str] | None, bool]:
    """The pattern and inversion for `text`: a regex, `!` first to hide matches.

    Smart case: all lower case matches any case, one capital makes it case sensitive.
    """
    body = text.strip()
    inverted = body.startswith("!")
    if inverted:
        body = body[1:].strip()
    if not body:
        return None, False
    flags = re.IGNORECASE if body == body.lower() else 0
    try:
        return re.compile(body, flags), inverted
    except re.error as error:
        where = f" at position {error.pos}" if error.pos is not None else ""
        raise FilterError(f"invalid regex: {error.msg}{where}") from None


def compile_mark(text: str) -> re.Pattern[str] | None:
    """The pattern the feed highlights, with the text filter's smart case; None if empty."""
    if text.strip().startswith("!"):
        raise FilterError("a highlight marks what matches: it has no ! to invert")
    pattern, _ = compile_text(text)
    return pattern


def searchable(log: Log) -> str:
    """The text a pattern is matched against: message, error details, node, service."""
    details = log.error_details
    extra = f"\n{details.error_code}\n{details.error_message}" if details else ""
    return f"{log.message}\n{log.node_id}\n{log.service_name}{extra}"


@dataclass(frozen=True, slots=True)
class LogFilter:
    """All conditions at once; an empty field lets everything through."""

    levels: frozenset[Level] = frozenset()
    min_level: Level | None = None
    services: frozenset[str] = frozenset()
    nodes: frozenset[str] = frozenset()
    fields: Expression = EVERY_LOG
    text: str = ""
    pattern: re.Pattern[str] | None = None
    inverted: bool = False

    @property
    def active(self) -> bool:
        return self != LogFilter()

    def matches(self, log: Log) -> bool:
        level = log.log_level
        if self.levels and level not in self.levels:
            return False
        if self.min_level is not None and level.rank < self.min_level.rank:
            return False
        if self.services and log.service_name not in self.services:
            return False
        if self.nodes and log.node_id not in self.nodes:
            return False
        if self.fields.terms and not self.fields.matches(log):
            return False
        if self.pattern is not None:
            return (self.pattern.search(searchable(log)) is None) == self.inverted
        return True

    def select(self, logs: Iterable[Log]) -> list[Log]:
        if not self.active:
            return list(logs)
        return [log for log in logs if self.matches(log)]

    def toggle_level(self, level: Level) -> LogFilter:
        """Show `level` too, or stop showing it; no level chosen means every level."""
        return replace(self, levels=self.levels ^ {level})

    def cycle_min_level(self) -> LogFilter:
        """No minimum → WARN → ERROR → FATAL → no minimum."""
        order: list[Level | None] = [None, *LEVELS[1:]]
        following = order[(order.index(self.min_level) + 1) % len(order)]
        return replace(self, min_level=following)

    def with_text(self, text: str) -> LogFilter:
        """This filter with a new text condition; `FilterError` if it is not a valid regex."""
        pattern, inverted = compile_text(text)
        shown = text.strip() if pattern is not None else ""
        return replace(self, text=shown, pattern=pattern, inverted=inverted)

    def with_typed(self, typed: str) -> LogFilter:
        """What the feed's box says: its field terms join the ones in force, the rest is
        the new text condition. `FilterError` if a term or the regex cannot be read."""
        try:
            typed_fields, rest = split_fields(typed, known_only=True)
        except ExpressionError as error:
            raise FilterError(str(error)) from None
        return self.with_fields((*self.fields.terms, *typed_fields.terms)).with_text(rest)

    def with_fields(self, terms: Iterable[Term]) -> LogFilter:
        """This filter with exactly these field terms (each once, in their order)."""
        return replace(self, fields=Expression(tuple(dict.fromkeys(terms))))

    def with_names(self, services: Iterable[str], nodes: Iterable[str]) -> LogFilter:
        return replace(self, services=frozenset(services), nodes=frozenset(nodes))

    def toggle_node(self, node: str) -> LogFilter:
        """Only `node`, or every node again if it was already the only one."""
        nodes = frozenset() if self.nodes == {node} else frozenset({node})
        return replace(self, nodes=nodes)

    def describe(self) -> str:
        """A short summary for the feed's title, e.g. `ERROR,FATAL svc=api /time.?out/`."""
        parts: list[str] = []
        if self.levels:
            parts.append(",".join(level for level in LEVELS if level in self.levels))
        if self.min_level is not None:
            parts.append(f"≥{self.min_level}")
        if self.services:
            parts.append("svc=" + ",".join(sorted(self.services)))
        if self.nodes:
            parts.append("node=" + ",".join(sorted(self.nodes)))
        if self.fields.terms:
            parts.append(self.fields.describe())
        if self.pattern is not None:
            parts.append(f"{'!' if self.inverted else ''}/{self.pattern.pattern}/")
        return " ".join(parts) if parts else "all"
