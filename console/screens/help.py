"""The key map, built from the bindings themselves so it cannot drift from them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import ClassVar

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from console.keymap import remapped

Section = tuple[str, Sequence[BindingType]]


def key_rows(
    bindings: Iterable[BindingType],
    key_display: Mapping[str, str],
    keymap: Mapping[str, str] | None = None,
) -> list[tuple[str, str]]:
    """(keys, description) per action, with the keys of one action joined: `enter o`.

    Keys come from `keymap` where it remaps a binding's id, as they do in the app.
    """
    rows: dict[tuple[str, str], list[str]] = {}
    for binding in Binding.make_bindings(remapped(bindings, keymap or {})):
        key = key_display.get(binding.key, binding.key)
        description = binding.tooltip or binding.description
        rows.setdefault((binding.action, description), []).append(key)
    return [(" ".join(keys), description) for (_, description), keys in rows.items()]


KEY_NAMES = {
    "slash": "/",
    "question_mark": "?",
    "plus": "+",
    "space": "space",
    "escape": "esc",
    "pageup": "PgUp",
    "pagedown": "PgDn",
    "ctrl+f": "^f",
    "ctrl+p": "^p",
    "ctrl+q": "^q",
}


class HelpScreen(ModalScreen[None]):
    """Every key, by where it works."""

    DEFAULT_CSS = """
    HelpScreen {
        align: center middle;
        #help {
            width: 90%;
            max-width: 140;
            height: auto;
            max-height: 95%;
            border: round $border;
            background: $surface;
            padding: 0 1;
        }
        #help-columns { height: auto; }
        .help-column { height: auto; }
        .help-section { height: auto; margin-bottom: 1; }
        &.-wide {
            #help-columns { layout: horizontal; }
            .help-column { width: 1fr; margin-right: 4; }
        }
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark", "dismiss", "Close", id="help.close"),
    ]

    def __init__(
        self, sections: Sequence[Section], keymap: Mapping[str, str] | None = None
    ) -> None:
        super().__init__()
        self._sections = sections
        self._keymap = keymap or {}

    def compose(self) -> ComposeResult:
        with Vertical(id="help") as frame:
            frame.border_title = "Keys"
            frame.border_subtitle = "times in UTC · Esc closes"
            with VerticalScroll(id="help-columns"):
                for column in _columns(self._sections):
                    with Vertical(classes="help-column"):
                        for title, bindings in column:
                            table = _table(title, bindings, self._keymap)
                            yield Static(table, classes="help-section")


def _columns(sections: Sequence[Section]) -> list[list[Section]]:
    """The sections in order, split where the first column reaches half the rows."""
    sizes = [len(list(Binding.make_bindings(bindings))) + 2 for _, bindings in sections]
    filled, split = 0, len(sections)
    for index, size in enumerate(sizes):
        filled += size
        if filled >= sum(sizes) / 2:
            split = index + 1
            break
    return [list(sections[:split]), list(sections[split:])]


def _table(title: str, bindings: Sequence[BindingType], keymap: Mapping[str, str]) -> Table:
    table = Table(
        title=f" {title} ",
        title_style="bold reverse",
        title_justify="left",
        box=None,
        show_header=False,
        expand=True,
        padding=(0, 2, 0, 0),
    )
    table.add_column(style="bold", no_wrap=True, width=12)
    table.add_column(ratio=1)
    for keys, description in key_rows(bindings, KEY_NAMES, keymap):
        table.add_row(keys, description)
    return table
