"""Joining the store's history to the live tail: once each, oldest first."""

from __future__ import annotations

from datetime import timedelta

from console.history import HISTORY_WINDOW, HistoryJoin, history_query
from tests.console.fake_observer import NOW, sample_logs


def test_history_comes_oldest_first_and_live_logs_it_holds_are_dropped() -> None:
    logs = sample_logs(10)
    join = HistoryJoin()
    newest_first = list(reversed(logs[:6]))
    assert join.join(newest_first, logs[4:8]) == logs[:8]
    assert join.fresh([logs[5], logs[8], logs[9]]) == logs[8:]


def test_a_later_answer_adds_only_the_logs_neither_shown_nor_live() -> None:
    logs = sample_logs(10)
    join = HistoryJoin()
    join.join(list(reversed(logs[:3])), logs[6:8])
    assert join.quiet() is False
    assert not join.caught_up(reversed(logs[:3]))
    later = list(reversed(logs[:7]))
    assert join.gap(later) == logs[3:6]
    assert join.caught_up(later)
    assert join.gap(later) == []
    assert join.fresh([logs[4], logs[8]]) == [logs[8]]


def test_a_quiet_tail_never_counts_as_caught_up() -> None:
    logs = sample_logs(4)
    join = HistoryJoin()
    join.join(list(reversed(logs)), [])
    assert join.quiet()
    assert not join.caught_up(logs)


def test_before_any_history_every_live_log_is_fresh() -> None:
    logs = sample_logs(3)
    assert HistoryJoin().fresh(logs) == logs


def test_the_query_asks_for_the_newest_of_the_last_minutes() -> None:
    query = history_query(NOW, 250)
    assert query.since == NOW - HISTORY_WINDOW == NOW - timedelta(minutes=15)
    assert query.until is None
    assert (query.page, query.page_size) == (0, 250)
