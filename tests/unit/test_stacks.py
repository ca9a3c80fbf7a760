"""Bars stacked by level in character cells: which bars a column shows, how a bar's height
is shared among its levels, and the two colours of each cell."""

from __future__ import annotations

import pytest

from backend.schemas import Level
from widgets.stacks import EMPTY, Cell, column_cells, column_spans, shares, stack

INFO, WARN, ERROR, FATAL = Level.INFO, Level.WARN, Level.ERROR, Level.FATAL


def test_few_bars_stretch_over_the_columns_and_many_merge() -> None:
    assert column_spans(3, 6) == [range(0, 1)] * 2 + [range(1, 2)] * 2 + [range(2, 3)] * 2
    assert column_spans(6, 3) == [range(0, 2), range(2, 4), range(4, 6)]
    assert column_spans(0, 4) == []
    spans = column_spans(61, 40)
    assert sorted({bar for span in spans for bar in span}) == list(range(61))


def test_the_eighths_go_by_share_and_every_level_with_hits_gets_one() -> None:
    assert shares({INFO: 900, ERROR: 3}, 16) == [(ERROR, 1), (INFO, 15)]
    assert shares({INFO: 50, WARN: 50}, 8) == [(WARN, 4), (INFO, 4)]
    assert shares({INFO: 10, WARN: 10, ERROR: 10, FATAL: 10}, 2) == [(FATAL, 1), (ERROR, 1)]
    assert shares({}, 8) == [] and shares({INFO: 1}, 0) == []
    for eighths in range(1, 30):
        assert sum(size for _, size in shares({INFO: 7, WARN: 3, ERROR: 2}, eighths)) == eighths


def test_a_column_draws_the_most_severe_level_at_the_bottom() -> None:
    cells = column_cells({INFO: 20, ERROR: 4}, top=24, rows=3)  # 24 eighths: ERROR 4
    assert cells[0] == Cell("▄", ERROR, INFO)  # bottom row: ERROR under INFO
    assert cells[1] == Cell("█", INFO) and cells[2] == Cell("█", INFO)


def test_a_short_bar_ends_in_a_partial_block_on_no_colour() -> None:
    assert column_cells({WARN: 5}, top=10, rows=2) == [Cell("█", WARN), EMPTY]
    assert column_cells({WARN: 3}, top=8, rows=1) == [Cell("▃", WARN)]
    assert column_cells({}, top=8, rows=2) == [EMPTY, EMPTY]
    assert column_cells({INFO: 1}, top=10_000, rows=2)[0] == Cell("▁", INFO)


def test_where_three_levels_meet_the_one_filling_most_of_the_cell_shows() -> None:
    # FATAL 1, ERROR 1, WARN 1 and INFO 5 eighths, all in one cell.
    (cell,) = column_cells({FATAL: 1, ERROR: 1, WARN: 1, INFO: 5}, top=8, rows=1)
    assert cell == Cell("▁", FATAL, INFO)


@pytest.mark.parametrize("width", [1, 5, 10, 80])
def test_stack_is_rows_of_the_width_top_row_first(width: int) -> None:
    bars = [{INFO: 4}, {}, {INFO: 1, ERROR: 1}, {FATAL: 8}, {WARN: 2}]
    lines = stack(bars, width, 2)
    assert len(lines) == 2 and all(len(line) == width for line in lines)
    if width == 5:
        assert [cell.lower for cell in lines[1]] == [INFO, None, ERROR, FATAL, WARN]
        assert lines[0][3] == Cell("█", FATAL) and lines[0][1] == EMPTY
    assert stack([], width, 2) == [[EMPTY] * width] * 2
