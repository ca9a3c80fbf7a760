"""Table cells coloured from the active theme, and cells that carry their sort order.

DataTable renders Rich text, which knows nothing of Textual's `$variables`; these helpers
look the colours up in the running theme, so cells follow the theme and Textual still
downgrades them to 256 or 16 colours on terminals that lack truecolor.
"""

from __future__ import annotations

from typing import Any

from rich.style import Style
from rich.text import Text
from textual.app import App
from textual.color import Color, ColorParseError


def theme_style(app: App[Any], variable: str, *, bold: bool = False) -> Style:
    """A Rich style in the colour of the theme's `variable` (e.g. `text-error`)."""
    value = app.theme_variables.get(variable, "")
    try:
        color = Color.parse(value).rich_color
    except ColorParseError:
        return Style(bold=bold)
    return Style(color=color, bold=bold)


class Cell(Text):
    """Text for a table cell, with the key its rows are sorted by."""

    def __init__(self, text: str, style: Style | str = "", *, order: Any = None) -> None:
        super().__init__(text, style=style, no_wrap=True, overflow="ellipsis", end="")
        self.order = order
