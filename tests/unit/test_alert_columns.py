"""The alert table's columns: what fits a pane's width, and what goes first when it shrinks."""

from __future__ import annotations

from widgets.alert_queue import SUMMARY_MIN, fit_columns

PADDING = 2
"""The table's padding of one cell on each side of a column."""


def keys(width: int) -> list[str]:
    return [key for key, _, _ in fit_columns(width)]


def summary_width(width: int) -> int:
    return next(size for key, _, size in fit_columns(width) if key == "summary")


def test_the_columns_fill_the_width_and_the_summary_takes_what_is_left() -> None:
    for width in range(40, 200):
        total = sum(size + PADDING for _, _, size in fit_columns(width))
        assert total == width, width
        assert summary_width(width) >= SUMMARY_MIN


def test_node_then_last_seen_appear_as_the_pane_widens() -> None:
    assert keys(39) == ["severity", "state", "summary", "count"]  # 80 columns
    assert keys(56) == ["severity", "state", "summary", "count", "where"]
    assert keys(68) == ["severity", "state", "summary", "count", "where", "last"]  # 120
    widths = range(30, 120)
    assert all(keys(width)[:4] == ["severity", "state", "summary", "count"] for width in widths)
    first_where = min(width for width in widths if "where" in keys(width))
    first_last = min(width for width in widths if "last" in keys(width))
    assert first_where < first_last


def test_a_pane_too_narrow_for_the_minimum_still_keeps_a_summary() -> None:
    assert keys(20) == ["severity", "state", "summary", "count"]
    assert summary_width(20) == len("Summary")
