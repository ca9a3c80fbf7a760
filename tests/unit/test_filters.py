"""The log feed's filters: levels, minimum level, services, nodes, text and regex."""

from __future__ import annotations

import pytest

from backend.schemas import Level
from tests.console.fake_observer import NOW, make_log
from widgets.filters import FilterError, LogFilter, compile_text

INFO = make_log(1, NOW, level=Level.INFO, node_id="payments-0", message="request served")
WARN = make_log(2, NOW, level=Level.WARN, node_id="orders-1", message="slow response")
ERROR = make_log(3, NOW, level=Level.ERROR, node_id="auth-0", message="Token expired")
FATAL = make_log(4, NOW, level=Level.FATAL, node_id="payments-1", message="worker crashed")
ALL = [INFO, WARN, ERROR, FATAL]


def test_the_empty_filter_lets_everything_through() -> None:
    assert LogFilter().select(ALL) == ALL
    assert not LogFilter().active
    assert LogFilter().describe() == "all"


def test_toggling_levels_picks_exactly_those_levels() -> None:
    only_error = LogFilter().toggle_level(Level.ERROR)
    assert only_error.select(ALL) == [ERROR]
    error_and_fatal = only_error.toggle_level(Level.FATAL)
    assert error_and_fatal.select(ALL) == [ERROR, FATAL]
    assert error_and_fatal.describe() == "ERROR,FATAL"
    assert error_and_fatal.toggle_level(Level.ERROR).toggle_level(Level.FATAL) == LogFilter()


def test_minimum_level_cycles_warn_error_fatal_then_off() -> None:
    seen = []
    log_filter = LogFilter()
    for _ in range(4):
        log_filter = log_filter.cycle_min_level()
        seen.append((log_filter.min_level, log_filter.select(ALL)))
    assert seen == [
        (Level.WARN, [WARN, ERROR, FATAL]),
        (Level.ERROR, [ERROR, FATAL]),
        (Level.FATAL, [FATAL]),
        (None, ALL),
    ]
    assert LogFilter().cycle_min_level().describe() == "≥WARN"


def test_services_and_nodes() -> None:
    by_service = LogFilter().with_names({"payments"}, set())
    assert by_service.select(ALL) == [INFO, FATAL]
    by_both = LogFilter().with_names({"payments"}, {"payments-1"})
    assert by_both.select(ALL) == [FATAL]
    assert by_both.describe() == "svc=payments node=payments-1"


def test_toggle_node_shows_one_node_then_all_again() -> None:
    one = LogFilter().toggle_node("orders-1")
    assert one.select(ALL) == [WARN]
    assert one.toggle_node("orders-1").select(ALL) == ALL
    assert one.toggle_node("auth-0").nodes == {"auth-0"}


def test_text_is_a_regex_with_smart_case() -> None:
    assert LogFilter().with_text("crash|slow").select(ALL) == [WARN, FATAL]
    assert LogFilter().with_text("token").select(ALL) == [ERROR]
    assert LogFilter().with_text("token").pattern is not None
    assert LogFilter().with_text("Token").select(ALL) == [ERROR]
    assert LogFilter().with_text("TOKEN").select(ALL) == []


def test_text_matches_error_details_node_and_service() -> None:
    assert LogFilter().with_text("PAY-502|DB-1205").select(ALL) == [ERROR, FATAL]
    assert LogFilter().with_text("orders-1").select(ALL) == [WARN]


def test_bang_inverts_the_text_match() -> None:
    hiding = LogFilter().with_text("!payments")
    assert hiding.select(ALL) == [WARN, ERROR]
    assert hiding.describe() == "!/payments/"


def test_empty_text_clears_the_text_condition() -> None:
    log_filter = LogFilter().with_text("slow").with_text("  ")
    assert log_filter == LogFilter()
    assert LogFilter().with_text("!") == LogFilter()


def test_invalid_regex_is_a_filter_error_with_the_reason() -> None:
    with pytest.raises(FilterError, match=r"invalid regex: .* at position 0"):
        LogFilter().with_text("(oops")
    with pytest.raises(FilterError):
        compile_text("![")


def test_conditions_combine() -> None:
    log_filter = (
        LogFilter().cycle_min_level().with_names({"payments", "orders"}, set()).with_text("!slow")
    )
    assert log_filter.select(ALL) == [FATAL]
    assert log_filter.describe() == "≥WARN svc=orders,payments !/slow/"


def test_typed_field_terms_join_the_ones_in_force_and_the_rest_is_the_regex() -> None:
    by_code = LogFilter().with_typed("code:PAY-502 declined")
    assert by_code.text == "declined" and by_code.describe() == "code:PAY-502 /declined/"
    both = by_code.with_typed("level:ERROR")
    assert [str(term) for term in both.fields.terms] == ["code:PAY-502", "level:ERROR"]
    assert both.text == ""
    assert both.with_fields(()).fields.terms == () and both.with_fields(()).active is False


def test_a_field_filter_selects_on_the_fields_and_an_unreadable_one_is_a_filter_error() -> None:
    assert LogFilter().with_typed("response_time_ms>1000").select(ALL) == [WARN]
    assert LogFilter().with_typed("-service:payments").select(ALL) == [WARN, ERROR]
    with pytest.raises(FilterError, match="LOUD"):
        LogFilter().with_typed("level:LOUD")
