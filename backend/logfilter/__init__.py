"""The filter expression language of `logdeck tail`, `logdeck search` and the stores.

`level:ERROR service:Pay* -code:PAY-409 response_time_ms>1000 "timed out"`: words and
phrases the message contains, field terms and comparisons, each negated by a leading `-`,
all of them required. Pure: parsing and matching do no I/O, so the live tail, the
embedded store and the tests share one meaning; Elasticsearch is given the same terms as
query clauses (backend/store/search_terms.py).
"""

from backend.logfilter.expression import Expression
from backend.logfilter.parse import ExpressionError, parse_expression, split_fields
from backend.logfilter.terms import Comparison, Field, FieldTerm, Op, Term, TextTerm

__all__ = [
    "Comparison",
    "Expression",
    "ExpressionError",
    "Field",
    "FieldTerm",
    "Op",
    "Term",
    "TextTerm",
    "parse_expression",
    "split_fields",
]
