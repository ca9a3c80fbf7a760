"""A one-line bar chart scaled from zero, for the logs/s history and the search histogram.

Textual's Sparkline scales between the smallest and largest value, so a steady rate or
evenly spread hits draw as a flat floor; here a bar's height is its share of the maximum.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

BLOCKS = " ▁▂▃▄▅▆▇█"


def resample(values: Sequence[float], width: int) -> list[float]:
    """`width` values: each the largest of the values it covers, or a repeat when stretching."""
    count = len(values)
    cells = []
    for index in range(width):
        start = index * count // width
        end = max(start + 1, (index + 1) * count // width)
        cells.append(max(values[start:end]))
    return cells


def bar_line(values: Sequence[float], width: int) -> str:
    """Bars for `values` in `width` cells; zero is blank, the maximum is a full block."""
    if width <= 0:
        return ""
    if not values:
        return " " * width
    cells = resample(values, width)
    top = max(cells)
    if top <= 0:
        return " " * width
    steps = len(BLOCKS) - 1
    return "".join(
        BLOCKS[0 if value <= 0 else max(1, round(value / top * steps))] for value in cells
    )


class Bars(Widget):
    """`data` as bars across the widget's width."""

    DEFAULT_CSS = """
    Bars {
        height: 1;
        color: $primary;
        background: $primary-muted 20%;
    }
    """

    data: reactive[tuple[float, ...]] = reactive(())

    def render(self) -> Text:
        return Text(bar_line(self.data, self.size.width), no_wrap=True)
