"""The filter expression language: what each term reads as, what it matches, how it prints
back, and what a malformed one is told."""

from __future__ import annotations

from typing import Any

import pytest

from backend.logfilter import (
    Comparison,
    Expression,
    ExpressionError,
    Field,
    FieldTerm,
    Op,
    TextTerm,
    parse_expression,
    split_fields,
)
from backend.logfilter.match import float32, value_test
from backend.schemas import Log, validate_record
from tests.records import make_log


def _log(level: str = "INFO", **overrides: Any) -> Log:
    log = validate_record(make_log(overrides.pop("node_id", "payment-01"), level, **overrides))
    assert isinstance(log, Log)
    return log


PAYMENT_ERROR = _log(
    "ERROR",
    service_name="PaymentService",
    message="Card processor TIMED OUT after 3 s",
    error_details={"error_code": "PAY-500", "error_message": "gateway"},
)
SLOW_ORDER = _log(
    "WARN",
    node_id="order-01",
    service_name="OrderService",
    message="slow checkout",
    response_time_ms=1500.0,
    threshold_limit_ms=1000.0,
)
LOGIN = _log(node_id="auth.01", service_name="Auth.Service", message='said "hi" at C:\\temp')


@pytest.mark.parametrize(
    ("text", "terms"),
    [
        ("", ()),
        ("  timeout  ", (TextTerm("timeout"),)),
        ('"timed out" -retry', (TextTerm("timed out"), TextTerm("retry", negated=True))),
        ("level:error", (FieldTerm(Field.LEVEL, "ERROR"),)),
        ("LOG_LEVEL:Fatal", (FieldTerm(Field.LEVEL, "FATAL"),)),
        ("Service:Pay*", (FieldTerm(Field.SERVICE, "Pay*"),)),
        ("service_name:PaymentService", (FieldTerm(Field.SERVICE, "PaymentService"),)),
        ("-node:payment-01", (FieldTerm(Field.NODE, "payment-01", negated=True),)),
        ("node_id:a:b", (FieldTerm(Field.NODE, "a:b"),)),
        ('service:"Pay Service"', (FieldTerm(Field.SERVICE, "Pay Service"),)),
        (
            "code:PAY-500 error_code:ORD-*",
            (
                FieldTerm(Field.CODE, "PAY-500"),
                FieldTerm(Field.CODE, "ORD-*"),
            ),
        ),
        ("response_time_ms>1000", (Comparison(Field.RESPONSE_TIME, Op.GT, 1000.0),)),
        ("response_time_ms>=1e3", (Comparison(Field.RESPONSE_TIME, Op.GE, 1000.0),)),
        ("-Threshold_Limit_MS<=.5", (Comparison(Field.THRESHOLD, Op.LE, 0.5, negated=True),)),
        ("response_time_ms=-3", (Comparison(Field.RESPONSE_TIME, Op.EQ, -3.0),)),
        ("threshold_limit_ms<20.25", (Comparison(Field.THRESHOLD, Op.LT, 20.25),)),
        ('"level:ERROR"', (TextTerm("level:ERROR"),)),
        ('-"-x"', (TextTerm("-x", negated=True),)),
        ('say"s a"b', (TextTerm("says ab"),)),
        (r'"a \"b\" c\\d\x"', (TextTerm('a "b" c\\d\\x'),)),
        ("--x", (TextTerm("-x", negated=True),)),
        ("PAY-500 >b 5<6", (TextTerm("PAY-500"), TextTerm(">b"), TextTerm("5<6"))),
    ],
)
def test_each_kind_of_term_is_read(text: str, terms: tuple[object, ...]) -> None:
    assert parse_expression(text).terms == terms


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("foo:1", ["unknown field 'foo' in 'foo:1'", "level, service, node, code", "error_code"]),
        ("http://example.com", ["unknown field 'http'", "in double quotes"]),
        ("response_time_ms>abc", ["'response_time_ms>abc'", "'abc' is not a number"]),
        ("response_time_ms>", ["nothing is not a number"]),
        ("response_time_ms>1e39", ["beyond the largest timing"]),
        ("response_time_ms:5", ["compare response_time_ms with >, >=, <, <= or ="]),
        ("service>3", ["'service>3'", "matched with ':'"]),
        ("level:DEBUG", ["'level:DEBUG'", "INFO, WARN, ERROR, FATAL"]),
        ("level:ERR*", ["INFO, WARN, ERROR, FATAL"]),
        ("node:", ["'node:'", "put a value after ':'"]),
        ('error "timed out', ["unclosed quote in '\"timed out'"]),
        ('service:"Pay', ["unclosed quote in 'service:\"Pay'"]),
        ("- level:INFO", ["'-' alone"]),
        ('""', ["empty quotes"]),
        ('"' + "x" * 201 + '"', ["201 characters long", "at most 200"]),
        ("node:" + "a*" * 101, ["202 characters long"]),
    ],
)
def test_a_malformed_term_is_named_with_what_would_fit(text: str, said: list[str]) -> None:
    with pytest.raises(ExpressionError) as raised:
        parse_expression(text)
    for fragment in said:
        assert fragment in str(raised.value)


def test_a_long_exact_value_is_no_error() -> None:
    assert parse_expression("node:" + "a" * 400).terms == (FieldTerm(Field.NODE, "a" * 400),)


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("", ""),
        ("LOG_LEVEL:error   Service_Name:Pay*", "level:ERROR service:Pay*"),
        ('"timed out" "retry"', '"timed out" retry'),
        ('NODE_ID:"a b" -error_code:PAY-5*', 'node:"a b" -code:PAY-5*'),
        (
            "response_time_ms>=1000.0 -threshold_limit_ms<0.25",
            ("response_time_ms>=1000 -threshold_limit_ms<0.25"),
        ),
        ("response_time_ms=1e20", "response_time_ms=1e+20"),
        ('"level:ERROR" "-x" "a=b" PAY-500', '"level:ERROR" "-x" "a=b" PAY-500'),
        (r'"say \"hi\" at C:\\temp"', r'"say \"hi\" at C:\\temp"'),
    ],
)
def test_describe_prints_the_canonical_form_which_reads_back_the_same(
    text: str, canonical: str
) -> None:
    expression = parse_expression(text)
    assert expression.describe() == str(expression) == canonical
    assert parse_expression(canonical) == expression


@pytest.mark.parametrize(
    ("text", "matching"),
    [
        ("", [PAYMENT_ERROR, SLOW_ORDER, LOGIN]),
        ("timed out", [PAYMENT_ERROR]),
        ('"ed ou"', [PAYMENT_ERROR]),
        ('"TIMED out after"', [PAYMENT_ERROR]),
        ("-out", [LOGIN]),  # "slow checkout"
        ("level:ERROR", [PAYMENT_ERROR]),
        ("level:warn service:Order*", [SLOW_ORDER]),
        ("-level:INFO", [PAYMENT_ERROR, SLOW_ORDER]),
        ("service:*Service", [PAYMENT_ERROR, SLOW_ORDER, LOGIN]),
        ("service:Payment.*", []),  # "." is no regex
        ("service:Auth.*", [LOGIN]),
        ("service:A*h.S*e", [LOGIN]),
        ("service:pay*", []),  # values keep their case
        ("node:auth?01", []),  # only * is special
        ("node:*-01", [PAYMENT_ERROR, SLOW_ORDER]),
        ("code:PAY-500", [PAYMENT_ERROR]),
        ("code:PAY-*", [PAYMENT_ERROR]),
        ("-code:PAY-500", [SLOW_ORDER, LOGIN]),
        ("-code:*", [SLOW_ORDER, LOGIN]),
        ("response_time_ms>1000", [SLOW_ORDER]),
        ("response_time_ms>1500", []),
        ("response_time_ms=1500 threshold_limit_ms<=1000", [SLOW_ORDER]),
        ("-response_time_ms<2000", [PAYMENT_ERROR, LOGIN]),  # no timing: never below
        ('"c:\\\\temp" "\\"hi\\""', [LOGIN]),
        ("level:ERROR -code:PAY-500", []),
    ],
)
def test_matches_every_term_and_their_negations(text: str, matching: list[Log]) -> None:
    expression = parse_expression(text)
    assert [log for log in (PAYMENT_ERROR, SLOW_ORDER, LOGIN) if expression.matches(log)] == (
        matching
    )


def test_timings_compare_at_the_32_bit_precision_elasticsearch_keeps() -> None:
    log = _log("WARN", response_time_ms=1000.00001, threshold_limit_ms=0.1)
    assert float32(1000.00001) == 1000.0
    assert parse_expression("response_time_ms=1000").matches(log)
    assert not parse_expression("response_time_ms>1000").matches(log)
    assert parse_expression("threshold_limit_ms=0.1").matches(log)


def test_a_value_test_reads_a_name_as_the_store_knows_it() -> None:
    negated_glob = value_test(FieldTerm(Field.NODE, "pay*", negated=True))
    assert [negated_glob(name) for name in ("payment-01", "order-01", None)] == [
        False,
        True,
        True,
    ]
    assert value_test(FieldTerm(Field.CODE, "PAY-*"))(None) is False
    assert value_test(FieldTerm(Field.LEVEL, "ERROR"))("ERROR") is True


def test_expressions_are_values() -> None:
    assert parse_expression("level:error") == parse_expression("LEVEL:ERROR")
    assert hash(parse_expression("node:a")) == hash(Expression((FieldTerm(Field.NODE, "a"),)))
    assert Expression().matches(LOGIN)


@pytest.mark.parametrize(
    ("text", "fields", "words"),
    [
        ("level:error timeout", "level:ERROR", "timeout"),
        ('service:Pay* "timed out" -node:x', "service:Pay* -node:x", '"timed out"'),
        (
            "response_time_ms>1000 -code:* pay | card -slow",
            "response_time_ms>1000 -code:*",
            "pay | card -slow",
        ),
        ('service:"Pay Ments" -"level:ERROR" x*', 'service:"Pay Ments"', '-"level:ERROR" x*'),
        ("a   (b c)  ", "", "a (b c)"),
        ("", "", ""),
    ],
)
def test_the_search_box_keeps_its_words_as_typed_and_reads_its_field_terms(
    text: str, fields: str, words: str
) -> None:
    expression, rest = split_fields(text)
    assert (expression.describe(), rest) == (fields, words)


@pytest.mark.parametrize(
    ("text", "said"), [("level:LOUD x", "the level is one of"), ('x "open', "unclosed quote")]
)
def test_the_search_box_names_a_field_term_it_cannot_read(text: str, said: str) -> None:
    with pytest.raises(ExpressionError, match=said):
        split_fields(text)


def test_the_feed_box_reads_only_known_field_names_and_keeps_the_rest_as_regex() -> None:
    expression, rest = split_fields(r"https://x id:\d+ CODE:PAY-5* -level:info", known_only=True)
    assert (expression.describe(), rest) == ("code:PAY-5* -level:INFO", r"https://x id:\d+")
    with pytest.raises(ExpressionError, match="foo"):
        split_fields("foo:1", known_only=False)
