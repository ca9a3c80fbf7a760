"""Filter expressions on each store: every kind of term finds the same logs on Elasticsearch,
on the embedded store and through `Expression.matches`, as the live tail uses it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from backend.backends import open_store
from backend.config import Settings
from backend.logfilter import parse_expression
from backend.schemas import Level, Log, iso_millis, validate_record
from backend.store import Store
from backend.store.base import StoredLog
from backend.store.query import LogQuery
from tests.integration.harness import Stored
from tests.records import make_log

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC).replace(microsecond=0)


def _log(
    label: str, minutes_ago: float, level: str, service: str, node: str, message: str, **extra: Any
) -> Log:
    record = make_log(node, level, service_name=service, message=message, log_id=label, **extra)
    record["timestamp"] = iso_millis(NOW - timedelta(minutes=minutes_ago))
    log = validate_record(record)
    assert isinstance(log, Log)
    return log


def _error(code: str) -> dict[str, Any]:
    return {"error_details": {"error_code": code, "error_message": f"{code} happened"}}


def _timing(response: float, threshold: float = 1000.0) -> dict[str, Any]:
    return {"response_time_ms": response, "threshold_limit_ms": threshold}


LOGS = [
    _log("a", 1, "INFO", "PaymentService", "payment-01", "Payment accepted for order 17"),
    _log(
        "b",
        2,
        "WARN",
        "PaymentService",
        "payment-02",
        "Slow response from gateway",
        **_timing(1500),
    ),
    _log(
        "c",
        3,
        "ERROR",
        "PaymentService",
        "payment-01",
        "Card processor timed out",
        **_error("PAY-500"),
    ),
    _log(
        "d",
        4,
        "FATAL",
        "PayoutService",
        "payout-01",
        "Ledger down; payouts halted",
        **_error("PAY-500"),
    ),
    _log(
        "e", 5, "ERROR", "OrderService", "order-01", "Order 17: payment failed", **_error("ORD-402")
    ),
    _log("f", 6, "WARN", "OrderService", "order-01", "Slow checkout", **_timing(1000)),
    _log("g", 7, "WARN", "AuthService", "auth-01", "Token refresh slow", **_timing(250.5, 200)),
    _log("h", 8, "INFO", "AuthService", "auth-01", r"saw a*b?c in C:\temp"),
    _log("i", 9, "INFO", "AuthService", "auth-02", "saw aXbYc in D:/tmp"),
    _log("j", 10, "FATAL", "OrderService", "order-02", "Database TIMED OUT", **_error("ORD-500")),
    _log("k", 11, "WARN", "OrderService", "order-02", "Queue backlog", **_timing(1000.00001)),
]
EVERY = {log.log_id for log in LOGS}

CASES = [
    ("", EVERY),
    ("level:ERROR", {"c", "e"}),
    ("level:error service:Pay*", {"c"}),
    ("LOG_LEVEL:fatal", {"d", "j"}),
    ("service:Pay*", {"a", "b", "c", "d"}),
    ("service:pay*", set()),
    ("service_name:PaymentService -level:INFO", {"b", "c"}),
    ("node:payment-01", {"a", "c"}),
    ("node:*-01 -service:Pay*", {"e", "f", "g", "h"}),
    ("Node_Id:order-0*", {"e", "f", "j", "k"}),
    ("code:PAY-500", {"c", "d"}),
    ("error_code:ORD-*", {"e", "j"}),
    ("-code:PAY-500", EVERY - {"c", "d"}),
    ("-code:*", {"a", "b", "f", "g", "h", "i", "k"}),
    ("response_time_ms>1000", {"b"}),  # 1000.00001 is 1000 at 32-bit precision
    ("response_time_ms>=1000", {"b", "f", "k"}),
    ("response_time_ms=1000", {"f", "k"}),
    ("response_time_ms<=1000 -level:INFO", {"f", "g", "k"}),
    ("response_time_ms=250.5", {"g"}),
    ("threshold_limit_ms<1000", {"g"}),
    ("-response_time_ms>300", EVERY - {"b", "f", "k"}),
    ("timed out", {"c", "j"}),
    ('"timed out"', {"c", "j"}),
    ('"ed ou"', {"c", "j"}),
    ("slow -checkout", {"b", "g"}),
    ("pay", {"a", "d", "e"}),
    ("-pay -saw", {"b", "c", "f", "g", "j", "k"}),
    ('"a*b?c"', {"h"}),
    (r'"c:\\temp"', {"h"}),
    ("level:WARN service:Auth* response_time_ms>200 slow", {"g"}),
    ("level:INFO level:ERROR", set()),
    ("node:order-02 -level:FATAL -level:WARN", set()),
    ("service:Nope*", set()),
]


@pytest.fixture
async def store(settings: Settings, stored: Stored) -> AsyncIterator[Store]:
    store = open_store(settings)
    await store.ensure_schema()
    outcome = await store.index_logs([StoredLog(log, None) for log in LOGS])
    assert outcome.stored == len(LOGS)
    stored.refresh()
    yield store
    await store.close()


async def test_every_kind_of_term_finds_the_same_logs_stored_and_live(store: Store) -> None:
    found: dict[str, set[str]] = {}
    for text, _ in CASES:
        expression = parse_expression(text)
        result = await store.search_logs(LogQuery(expression=expression, page_size=100))
        found[text] = {log.log_id for log in result.logs}
        assert result.total == len(found[text]), text
        assert sum(count for _, count in result.histogram) == result.total, text
    live = {
        text: {log.log_id for log in LOGS if parse_expression(text).matches(log)}
        for text, _ in CASES
    }
    expected = dict(CASES)
    assert found == expected
    assert live == expected


async def test_an_expression_and_the_consoles_filters_all_apply(store: Store) -> None:
    query = LogQuery(
        levels=frozenset({Level.ERROR, Level.FATAL}),
        services=frozenset({"PaymentService", "OrderService"}),
        expression=parse_expression("-node:order-02 -timed"),
        text="payment",
    )
    result = await store.search_logs(query)
    assert [log.log_id for log in result.logs] == ["e"]


async def test_pages_of_an_expression_are_newest_first_and_counted_whole(
    settings: Settings, stored: Stored
) -> None:
    logs = [
        _log(f"t{n:02d}", n, "WARN", "TimingService", f"t-{n % 3}", f"step {n}", **_timing(n * 10))
        for n in range(45)
    ]
    store = open_store(settings)
    try:
        await store.ensure_schema()
        assert (await store.index_logs([StoredLog(log, None) for log in logs])).stored == 45
        stored.refresh()
        expression = parse_expression("response_time_ms>=100 -node:t-0 step")
        expected = [log.log_id for log in logs if expression.matches(log)]
        pages = []
        for page in range(4):
            result = await store.search_logs(
                LogQuery(expression=expression, page=page, page_size=7)
            )
            assert result.total == len(expected) == 24
            assert sum(count for _, count in result.histogram) == 24
            pages += [log.log_id for log in result.logs]
        assert pages == expected
    finally:
        await store.close()
