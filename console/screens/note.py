"""A one-line note, asked for over the current screen: for an acknowledgement or on its own."""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label

MAX_NOTE_CHARS = 500


class NoteScreen(ModalScreen[str | None]):
    """Returns the note typed (stripped; "" when none was), or None when cancelled."""

    DEFAULT_CSS = """
    NoteScreen {
        align: center middle;
        #note {
            width: 80%;
            max-width: 90;
            height: auto;
            border: round $border;
            background: $surface;
            padding: 0 1;
        }
        #note-hint { color: $text-muted; }
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="note.cancel"),
    ]

    def __init__(self, title: str, hint: str) -> None:
        super().__init__()
        self._title = title
        self._hint = hint

    def compose(self) -> ComposeResult:
        with Vertical(id="note") as frame:
            frame.border_title = self._title
            yield Input(placeholder="note", max_length=MAX_NOTE_CHARS, id="note-input")
            yield Label(self._hint, id="note-hint")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value.strip())

    def action_cancel(self) -> None:
        self.dismiss(None)
