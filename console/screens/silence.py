"""The dialog that silences alerts: matchers pre-filled from the selected alert, editable,
with a preview of the open alerts the silence would cover as they are typed. The same
dialog opens a node's maintenance window, its one matcher fixed to node=NODE."""

from __future__ import annotations

import shlex
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import ClassVar, Final

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

from backend.schemas import Alert, Matcher, Silence
from backend.silences.matching import matches_all
from backend.silences.parsing import (
    SilenceInputError,
    format_matcher,
    new_silence,
    parse_duration,
    parse_matcher,
)

DEFAULT_DURATION: Final = "2h"
_PREVIEW_ROWS: Final = 5


def parse_matchers(text: str) -> list[Matcher]:
    """Matchers separated by spaces; quote one that holds a space: `"service=~a b"`."""
    try:
        words = shlex.split(text)
    except ValueError as error:
        raise SilenceInputError(f"matchers: {error}") from None
    if not words:
        raise SilenceInputError("at least one matcher is needed, e.g. service=PaymentService")
    return [parse_matcher(word) for word in words]


def draft(
    matchers: str,
    duration: str,
    comment: str,
    *,
    by: str,
    now: datetime,
    maintenance: bool = False,
) -> Silence:
    """The silence the dialog's fields describe; `SilenceInputError` says what to fix."""
    parsed = parse_matchers(matchers)
    span = parse_duration(duration)
    if not comment.strip():
        raise SilenceInputError("a comment is needed: why are these alerts silenced?")
    try:
        return new_silence(
            parsed, span, comment=comment.strip(), by=by, now=now, maintenance=maintenance
        )
    except ValueError as error:
        raise SilenceInputError(str(error)) from None


def preview(matchers: Sequence[Matcher], alerts: Sequence[Alert]) -> str:
    """Which of `alerts` the matchers cover, in a few lines."""
    covered = [alert for alert in alerts if matches_all(matchers, alert)]
    lines = [f"covers {len(covered)} of the {len(alerts)} alerts listed"]
    lines += [f"  {alert.severity:<8} {alert.summary[:70]}" for alert in covered[:_PREVIEW_ROWS]]
    if len(covered) > _PREVIEW_ROWS:
        lines.append(f"  … and {len(covered) - _PREVIEW_ROWS} more")
    return "\n".join(lines)


class SilenceScreen(ModalScreen[Silence | None]):
    """Returns the silence to add, or None when cancelled."""

    DEFAULT_CSS = """
    SilenceScreen {
        align: center middle;
        #silence {
            width: 90%;
            max-width: 100;
            height: auto;
            border: round $border;
            background: $surface;
            padding: 0 1;
        }
        #silence-error { color: $error; }
        .hint { color: $text-muted; }
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "save", "Silence", id="silence.save", tooltip="Add the silence"),
        Binding("escape", "cancel", "Cancel", id="silence.cancel"),
    ]

    def __init__(
        self,
        title: str,
        matchers: Sequence[Matcher],
        alerts: Sequence[Alert],
        *,
        by: str,
        clock: Callable[[], datetime],
        maintenance: bool = False,
        comment: str = "",
    ) -> None:
        super().__init__()
        self._maintenance = maintenance
        self._comment = comment
        self._title = title
        self._matchers = " ".join(shlex.quote(format_matcher(m)) for m in matchers)
        self._alerts = list(alerts)
        self._by = by
        self._clock = clock

    def compose(self) -> ComposeResult:
        with Vertical(id="silence") as frame:
            frame.border_title = self._title
            yield Label("matchers: name=value or name=~regex", classes="hint")
            yield Input(self._matchers, id="silence-matchers", disabled=self._maintenance)
            yield Label("for: 30m, 2h, 1d", classes="hint")
            yield Input(DEFAULT_DURATION, id="silence-duration")
            yield Input(self._comment, placeholder="comment: why", id="silence-comment")
            yield Static("", id="silence-preview", markup=False)
            yield Static("", id="silence-error", markup=False)
            yield Label("Enter or Ctrl+S silences · Escape cancels", classes="hint")

    def on_mount(self) -> None:
        self.query_one("#silence-comment", Input).focus()
        self._show_preview()

    @on(Input.Changed, "#silence-matchers")
    def _matchers_changed(self) -> None:
        self._show_preview()

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_save()

    def action_save(self) -> None:
        try:
            silence = draft(
                self._value("#silence-matchers"),
                self._value("#silence-duration"),
                self._value("#silence-comment"),
                by=self._by,
                now=self._clock(),
                maintenance=self._maintenance,
            )
        except SilenceInputError as error:
            self.query_one("#silence-error", Static).update(str(error))
            return
        self.dismiss(silence)

    def action_cancel(self) -> None:
        self.dismiss(None)

    def _value(self, selector: str) -> str:
        return self.query_one(selector, Input).value

    def _show_preview(self) -> None:
        error = self.query_one("#silence-error", Static)
        try:
            matchers = parse_matchers(self._value("#silence-matchers"))
        except SilenceInputError as problem:
            error.update(str(problem))
            return
        error.update("")
        self.query_one("#silence-preview", Static).update(preview(matchers, self._alerts))
