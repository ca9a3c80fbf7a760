"""A one-line prompt under the log feed for the text and service/node filters.

It checks what is typed as it is typed (via `check`) and shows the problem beside the
input, so an invalid regex is a message to fix, never an exception. It takes the focus as
it opens and gives it back as it closes, before the key that did either has been handled,
so the keys typed right behind that key go where the person typing expects them.
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
from textual.widget import Widget
from textual.widgets import Input, Label

Check = Callable[[str], str | None]
"""Returns what is wrong with a value, or None when it can be applied."""


class PromptInput(Input):
    """The prompt's input: Tab completes instead of moving to the next pane, and Enter
    hands the value to `apply` at once rather than through a queued `Submitted`."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("tab", "complete", "Complete", show=False),
    ]

    def __init__(self, apply: Callable[[str], None], *, id: str) -> None:
        super().__init__(compact=True, id=id)
        self._apply = apply

    async def action_complete(self) -> None:
        """The suggestion, asked for now: the one shown may lag behind fast typing."""
        if self.suggester is None or not self.cursor_at_end:
            return
        typed = self.value if self.suggester.case_sensitive else self.value.casefold()
        completed = await self.suggester.get_suggestion(typed)
        if completed:
            self.value = completed
            self.cursor_position = len(completed)

    async def action_submit(self) -> None:
        self._apply(self.value)


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

    def __init__(self, *, done_focus: Widget, id: str | None = None) -> None:
        super().__init__(id=id)
        self.mode = ""
        self._check: Check = lambda value: None
        self._done_focus = done_focus

    def compose(self) -> ComposeResult:
        yield Label(id="prompt-label")
        yield PromptInput(self._apply, id="prompt-input")
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
        self.screen.set_focus(self.input)

    def show_error(self, error: str | None) -> None:
        label = self.query_one("#prompt-error", Label)
        label.update(error or "")
        label.display = error is not None
        self.input.set_class(error is not None, "-invalid")

    @on(Input.Changed, "#prompt-input")
    def _changed(self, event: Input.Changed) -> None:
        event.stop()
        self.show_error(self._check(event.value))

    def _apply(self, value: str) -> None:
        error = self._check(value)
        self.show_error(error)
        if error is None:
            self.post_message(self.Applied(self.mode, value))
            self._close()

    def action_cancel(self) -> None:
        self._close()

    def _close(self) -> None:
        self.remove_class("-open")
        self.screen.set_focus(self._done_focus)
