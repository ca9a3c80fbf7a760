"""The field filters of a search as a row of chips, `level:ERROR ✕`, each removable.

A chip is focusable: Delete, Backspace or Enter removes it, as does a click on its ✕. The
focus then moves to the next chip (or the one before, or whatever precedes the row) before
the key's handling ends, so the keys typed after it land there (see console/key_order.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Label

from backend.logfilter import Expression, Term


class FilterChip(Horizontal):
    """One filter term and its ✕."""

    can_focus = True
    DEFAULT_CSS = """
    FilterChip {
        width: auto;
        height: 1;
        margin-right: 1;
        background: $primary-muted;
        color: $text-primary;
        Label { width: auto; padding: 0 0 0 1; }
        .remove { padding: 0 1; color: $text-muted; }
        &:focus { background: $block-cursor-background; color: $block-cursor-foreground; }
        &:focus .remove { color: $block-cursor-foreground; }
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "delete,backspace,enter",
            "remove",
            "Remove filter",
            id="search.remove_filter",
            tooltip="Remove the focused filter chip and search again",
        ),
    ]

    def __init__(self, term: Term) -> None:
        super().__init__()
        self.term = term
        self.tooltip = f"{term}: Delete removes this filter"

    def compose(self) -> ComposeResult:
        yield Label(str(self.term))
        yield Label("✕", classes="remove")

    def action_remove(self) -> None:
        row = self.parent
        if isinstance(row, FilterChips):
            row.remove_chip(self)

    def on_click(self, event: events.Click) -> None:
        if event.widget is not None and event.widget.has_class("remove"):
            event.stop()
            self.action_remove()


class FilterChips(Horizontal):
    """The chips of the filters in force, in the order they were added; hidden when none."""

    DEFAULT_CSS = """
    FilterChips {
        height: 1;
        display: none;
        &.-some { display: block; }
    }
    """

    class Changed(Message):
        """A chip was removed by the user: the filters changed."""

        def __init__(self, chips: FilterChips) -> None:
            super().__init__()
            self.chips = chips

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._terms: list[Term] = []

    @property
    def terms(self) -> tuple[Term, ...]:
        return tuple(self._terms)

    @property
    def expression(self) -> Expression:
        return Expression(self.terms)

    def add(self, terms: Iterable[Term]) -> None:
        """Chips for the `terms` not shown yet."""
        new = [term for term in dict.fromkeys(terms) if term not in self._terms]
        if new:
            self._terms += new
            self.mount_all(FilterChip(term) for term in new)
            self.add_class("-some")

    def show(self, terms: Iterable[Term]) -> None:
        """Exactly the chips of `terms`: the ones already shown stay (and keep the focus)."""
        wanted = list(dict.fromkeys(terms))
        for chip in list(self.query_children(FilterChip)):
            if chip.term in self._terms and chip.term not in wanted:  # not already going
                self._terms.remove(chip.term)
                chip.remove()
        self.add(wanted)
        self.set_class(bool(self._terms), "-some")

    def remove_chip(self, chip: FilterChip) -> None:
        chips = list(self.query_children(FilterChip))
        index = chips.index(chip)
        others = chips[index + 1 :] + chips[:index][::-1]
        if chip.has_focus:
            if others:
                self.screen.set_focus(others[0])
            else:
                self.screen.focus_previous()
        self._terms.remove(chip.term)
        chip.remove()
        self.set_class(bool(self._terms), "-some")
        self.post_message(self.Changed(self))
