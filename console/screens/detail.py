"""One log entry in full, as pretty JSON with every field, over the current screen."""

from __future__ import annotations

import json
from typing import ClassVar

import msgspec
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.highlight import highlight
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from backend.schemas import Log


def log_json(log: Log) -> str:
    """The entry as it travels on Kafka, indented: the same fields, the same names."""
    return json.dumps(msgspec.to_builtins(log), indent=2, ensure_ascii=False)


class DetailScreen(ModalScreen[None]):
    """The JSON of a log entry; `c` copies it (OSC 52 works over SSH), `s` asks for the
    logs around it (the app opens them: it holds the observer)."""

    DEFAULT_CSS = """
    DetailScreen {
        align: center middle;
        #detail {
            width: 90%;
            max-width: 110;
            height: 90%;
            border: round $border;
            background: $surface;
            padding: 0 1;
        }
        #detail-json { height: 1fr; }
        #detail-hint { color: $text-muted; height: 1; }
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "dismiss", "Close", id="detail.close"),
        Binding("c", "copy", "Copy JSON", id="detail.copy"),
        Binding(
            "s",
            "surrounding",
            "Around it",
            id="detail.context",
            tooltip="The node's logs just before and after this one, from the store",
        ),
    ]

    class ContextWanted(Message):
        """The user asked for the logs around `log`."""

        def __init__(self, log: Log) -> None:
            super().__init__()
            self.log = log

    def __init__(self, log: Log) -> None:
        super().__init__()
        self._log = log
        self._json = log_json(log)

    @property
    def text(self) -> str:
        return self._json

    def compose(self) -> ComposeResult:
        with Vertical(id="detail") as frame:
            frame.border_title = f"{self._log.log_level} · {self._log.log_id}"
            with VerticalScroll(id="detail-json"):
                yield Static(highlight(self._json, language="json"))
            yield Label("c copy JSON · s the logs around it · Esc close", id="detail-hint")

    def action_surrounding(self) -> None:
        self.post_message(self.ContextWanted(self._log))

    def action_copy(self) -> None:
        self.app.copy_to_clipboard(self._json)
        self.notify("JSON copied to the clipboard")
