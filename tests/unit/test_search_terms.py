"""A filter expression as Elasticsearch clauses: each term, negation, and the escaping that
keeps text and values literal but for the globs' `*`."""

from __future__ import annotations

from backend.logfilter import parse_expression
from backend.store.query import LogQuery
from backend.store.search import plan_search
from backend.store.search_terms import expression_clauses


def test_each_term_becomes_its_clause_and_negations_go_to_must_not() -> None:
    wanted, unwanted = expression_clauses(
        parse_expression(
            "level:error service:Pay* node:payment-01 -code:PAY-5* response_time_ms>=1000.5 "
            '-threshold_limit_ms=300 "timed out"'
        )
    )
    assert wanted == [
        {"term": {"log_level": "ERROR"}},
        {"wildcard": {"service_name": {"value": "Pay*"}}},
        {"term": {"node_id": "payment-01"}},
        {"range": {"response_time_ms": {"gte": 1000.5}}},
        {"wildcard": {"message.raw": {"value": "*timed out*", "case_insensitive": True}}},
    ]
    assert unwanted == [
        {"wildcard": {"error_details.error_code": {"value": "PAY-5*"}}},
        {"term": {"threshold_limit_ms": 300.0}},
    ]


def test_wildcard_characters_in_text_and_values_are_taken_literally() -> None:
    wanted, _ = expression_clauses(parse_expression(r'"a*b?c\\d" node:n?1\* code:X?'))
    assert wanted == [
        {"wildcard": {"message.raw": {"value": r"*a\*b\?c\\d*", "case_insensitive": True}}},
        {"wildcard": {"node_id": {"value": r"n\?1\\*"}}},
        {"term": {"error_details.error_code": "X?"}},
    ]


def test_the_search_body_holds_the_expression_beside_the_consoles_filters() -> None:
    body = plan_search(LogQuery(text="card", expression=parse_expression("-level:INFO pay"))).page
    query = body["query"]["bool"]
    assert {"wildcard": {"message.raw": {"value": "*pay*", "case_insensitive": True}}} in (
        query["filter"]
    )
    assert query["must_not"] == [{"term": {"log_level": "INFO"}}]
    assert query["must"][0]["simple_query_string"]["query"] == "card"
