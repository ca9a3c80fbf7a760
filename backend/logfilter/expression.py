"""A parsed filter: terms that must all hold, tested on live logs and handed to the stores."""

from __future__ import annotations

from dataclasses import dataclass, field

from backend.logfilter.match import LogTest, log_test
from backend.logfilter.terms import Term
from backend.schemas import Log


@dataclass(frozen=True, slots=True)
class Expression:
    """Terms combined with AND; no term matches every log.

    Each term's test is compiled once, here: a tail tests every log that goes by.
    """

    terms: tuple[Term, ...] = ()
    _tests: tuple[LogTest, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_tests", tuple(log_test(term) for term in self.terms))

    def matches(self, log: Log) -> bool:
        return all(test(log) for test in self._tests)

    def describe(self) -> str:
        """The expression in its canonical form, which parses back to an equal expression."""
        return " ".join(str(term) for term in self.terms)

    def __str__(self) -> str:
        return self.describe()
