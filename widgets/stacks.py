"""Bars of hits over time stacked by level, as character cells.

A cell draws its lower part in the foreground with a block of eighths (▁ to █) and the part
above in the background colour, so one cell shows where two levels meet and a bar of n rows
has 8n steps (where three levels meet in a cell, the part above is the colour of the one that
fills most of it). The most severe level sits at the bottom, on the baseline, and every level with
hits gets at least an eighth: a few errors under thousands of INFO logs still show.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from backend.schemas import Level

STACK_ORDER: Final = (Level.FATAL, Level.ERROR, Level.WARN, Level.INFO)
"""Bottom to top."""
EIGHTHS: Final = " ▁▂▃▄▅▆▇█"


@dataclass(frozen=True, slots=True)
class Cell:
    """A glyph whose foreground is the `lower` level's colour, on the `upper` level's colour
    (None: no level, the widget's own)."""

    glyph: str
    lower: Level | None = None
    upper: Level | None = None


EMPTY: Final = Cell(" ")


def column_spans(bars: int, width: int) -> list[range]:
    """The bars each of `width` columns shows: a bar stretched over several columns, or
    several bars merged into one column when they outnumber the columns."""
    spans = []
    for column in range(width):
        start = column * bars // width
        spans.append(range(start, max(start + 1, (column + 1) * bars // width)))
    return spans if bars else []


def merged(bars: Sequence[Mapping[Level, int]], span: range) -> dict[Level, int]:
    """The hits of the bars in `span`, by level."""
    total: dict[Level, int] = {}
    for index in span:
        for level, count in bars[index].items():
            total[level] = total.get(level, 0) + count
    return total


def shares(counts: Mapping[Level, int], eighths: int) -> list[tuple[Level, int]]:
    """`eighths` split among the levels with hits in proportion (largest remainders first),
    bottom first; a level left without one takes one from the largest while there are any."""
    present = [(level, counts[level]) for level in STACK_ORDER if counts.get(level, 0) > 0]
    if eighths <= 0 or not present:
        return []
    total = sum(count for _, count in present)
    exact = [count * eighths / total for _, count in present]
    parts = [int(value) for value in exact]
    by_remainder = sorted(range(len(present)), key=lambda i: exact[i] - parts[i], reverse=True)
    for index in by_remainder[: eighths - sum(parts)]:
        parts[index] += 1
    for index in range(len(parts)):
        largest = max(range(len(parts)), key=lambda i: parts[i])
        if parts[index] == 0 and parts[largest] > 1:
            parts[largest] -= 1
            parts[index] = 1
    return [(level, parts[i]) for i, (level, _) in enumerate(present) if parts[i]]


def column_cells(counts: Mapping[Level, int], top: int, rows: int) -> list[Cell]:
    """The `rows` cells of one column, bottom first, scaled so that `top` hits fill them."""
    total = sum(counts.values())
    if total <= 0 or top <= 0 or rows <= 0:
        return [EMPTY] * max(rows, 0)
    height = max(1, round(total / top * rows * 8))
    segments: list[tuple[Level, int, int]] = []  # level, from, to (eighths)
    for level, size in shares(counts, height):
        start = segments[-1][2] if segments else 0
        segments.append((level, start, start + size))

    cells = []
    for row in range(rows):
        bottom, top_of_cell = row * 8, row * 8 + 8
        inside = [
            (level, min(end, top_of_cell) - max(start, bottom))
            for level, start, end in segments
            if start < top_of_cell and end > bottom
        ]
        if not inside:
            cells.append(EMPTY)
            continue
        (lower, filled), rest = inside[0], inside[1:]
        # Two colours a cell: above the lowest level, the one that fills most of the rest.
        above = max(rest, key=lambda part: part[1], default=None)
        cells.append(Cell(EIGHTHS[filled], lower, above[0] if above else None))
    return cells


def stack(bars: Sequence[Mapping[Level, int]], width: int, rows: int) -> list[list[Cell]]:
    """`rows` lines of `width` cells, top line first, for bars of hits by level."""
    columns = [merged(bars, span) for span in column_spans(len(bars), width)]
    top = max((sum(counts.values()) for counts in columns), default=0)
    drawn = [column_cells(counts, top, rows) for counts in columns]
    lines = [[column[row] for column in drawn] for row in reversed(range(rows))]
    return lines if drawn else [[EMPTY] * width for _ in range(rows)]
