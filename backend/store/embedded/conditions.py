"""A search's conditions on level, service and node as the ids the tables index, and what is
left of its filter expression to test on each log.

Level, service and node terms (globs and negations too) become the ids of every stored name
they accept, so they narrow a search through the columns, the aggregates and the FTS5 tags
as the console's own filters do. Text, error codes and timings cannot: they stay in the
residual expression, which the search tests on each candidate log through a SQL function
that calls `Expression.matches`, so stored and live logs are matched by the same code.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from backend.logfilter import Expression, Field, FieldTerm
from backend.logfilter.match import value_test
from backend.schemas import Level
from backend.store.embedded.schema import LEVEL_IDS, NODE, SERVICE, Names, decode_log
from backend.store.query import LogQuery

RESIDUAL: Final = "logdeck_residual"
"""The SQL function that tests a log's document against the residual expression."""
_BY_IDS: Final = (Field.LEVEL, Field.SERVICE, Field.NODE)


@dataclass(frozen=True, slots=True)
class Filters:
    """Ids of the levels, services and nodes asked for (None: no filter on that field), and
    the terms only a log's document can answer (no terms: none)."""

    levels: list[int] | None
    services: list[int] | None
    nodes: list[int] | None
    residual: Expression

    @property
    def impossible(self) -> bool:
        """A filter no stored level or name passes: nothing can match."""
        return any(ids == [] for ids in (self.levels, self.services, self.nodes))

    def sql(self) -> str:
        """The filters as a WHERE fragment over `level`, `service`, `node` columns."""
        parts = [
            f" AND {column} IN ({','.join(map(str, ids))})"
            for column, ids in (
                ("level", self.levels),
                ("service", self.services),
                ("node", self.nodes),
            )
            if ids
        ]
        return "".join(parts)

    def match(self) -> list[str]:
        """The filters as FTS5 expressions over the `tags` column."""
        return [
            "({tags} : (" + " OR ".join(f"z{tag}{ident}" for ident in ids) + "))"
            for tag, ids in (("l", self.levels), ("s", self.services), ("n", self.nodes))
            if ids
        ]


def resolve(conn: sqlite3.Connection, query: LogQuery, names: Names) -> Filters:
    """The query's filters and expression as ids and a residual expression."""
    terms = query.expression.terms

    def on(field: Field) -> list[FieldTerm]:
        return [term for term in terms if isinstance(term, FieldTerm) and term.field is field]

    def ids(kind: int, field: Field, chosen: frozenset[str]) -> list[int] | None:
        tests = [value_test(term) for term in on(field)]
        if not tests:
            return _exact_ids(conn, names, kind, chosen)
        stored = conn.execute("SELECT id, name FROM names WHERE kind = ?", (kind,))
        return sorted(
            ident
            for ident, name in stored
            if (not chosen or name in chosen) and all(test(name) for test in tests)
        )

    level_tests = [value_test(term) for term in on(Field.LEVEL)]
    levels = None
    if query.levels or level_tests:
        levels = sorted(
            LEVEL_IDS[level]
            for level in Level
            if (not query.levels or level in query.levels)
            and all(test(level.value) for test in level_tests)
        )
    residual = Expression(
        tuple(term for term in terms if not (isinstance(term, FieldTerm) and term.field in _BY_IDS))
    )
    return Filters(
        levels,
        ids(SERVICE, Field.SERVICE, query.services),
        ids(NODE, Field.NODE, query.nodes),
        residual,
    )


def _exact_ids(
    conn: sqlite3.Connection, names: Names, kind: int, chosen: frozenset[str]
) -> list[int] | None:
    """The ids of the `chosen` names that are stored; None when none is chosen."""
    if not chosen:
        return None
    found: list[int] = []
    for name in sorted(chosen):
        ident = names.find(conn, kind, name)
        if ident is not None:
            found.append(ident)
    return found


@contextlib.contextmanager
def residual_function(conn: sqlite3.Connection, residual: Expression) -> Iterator[None]:
    """`RESIDUAL(doc)` on `conn` for the span of one search."""

    def test(doc: bytes) -> bool:
        return residual.matches(decode_log(doc))

    conn.create_function(RESIDUAL, 1, test, deterministic=True)
    try:
        yield
    finally:
        conn.create_function(RESIDUAL, 1, None)
