"""A one-line prompt under the log feed for the text and service/node filters.

It checks what is typed as it is typed (via `check`) and shows the problem beside the
input, so an invalid regex is a message to fix, never an exception.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.message import Message
from textual.suggester import Suggester
from textual.widgets import Input, Label

Check = Callable[[str], str | None]
"""Returns what is wrong with a value, or None when it can be applied."""


class FilterPrompt(Horizontal):
    """Label, input and error line; hidden until a filter key opens it."""

    DEFAULT_CSS = """
    FilterPrompt {
        display: none;
        height: 1;
        background: $panel;
        &.-open { display: block; }
        #prompt-label { color: $text-primary; text-style: bold; padding: 0 1; }
        Input { width: 1fr; border: none; height: 1; padding: 0; }
        #prompt-error { color: $text-error; padding: 0 1; max-width: 50%; }
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="prompt.cancel"),
    ]

    class Applied(Message):
        def __init__(self, mode: str, value: str) -> None:
            super().__init__()
            self.mode = mode
            self.value = value

    class Closed(Message):
        """The prompt closed, applied or not: focus can go back to the feed."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.mode = ""
        self._check: Check = lambda value: None

    def compose(self) -> ComposeResult:
        yield Label(id="prompt-label")
        yield Input(compact=True, id="prompt-input")
        yield Label(id="prompt-error")

    @property
    def input(self) -> Input:
        return self.query_one("#prompt-input", Input)

    def open(
        self,
        mode: str,
        label: str,
        value: str,
        *,
        placeholder: str,
        check: Check,
        suggester: Suggester | None = None,
    ) -> None:
        self.mode = mode
        self._check = check
        self.query_one("#prompt-label", Label).update(label)
        self.input.placeholder = placeholder
        self.input.suggester = suggester
        self.input.value = value
        self.input.cursor_position = len(value)
        self.show_error(None)
        self.add_class("-open")
        self.input.focus()

    def show_error(self, error: str | None) -> None:
        label = self.query_one("#prompt-error", Label)
        label.update(error or "")
        label.display = error is not None
        self.input.set_class(error is not None, "-invalid")

    @on(Input.Changed, "#prompt-input")
    def _changed(self, event: Input.Changed) -> None:
        event.stop()
        self.show_error(self._check(event.value))

    @on(Input.Submitted, "#prompt-input")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        error = self._check(event.value)
        self.show_error(error)
        if error is None:
            self.post_message(self.Applied(self.mode, event.value))
            self._close()

    def action_cancel(self) -> None:
        self._close()

    def _close(self) -> None:
        self.remove_class("-open")
        self.post_message(self.Closed())
