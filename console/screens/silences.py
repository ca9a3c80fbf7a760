"""Every silence, in force first, followed live from the observer; a key expires one."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Label

from backend.observe.base import Observer
from backend.schemas import Silence
from backend.silences.matching import is_active, moment
from backend.silences.parsing import format_matcher

COLUMNS = ("State", "Ends", "By", "Matchers", "Comment")


def silence_row(silence: Silence, now: datetime) -> tuple[str, ...]:
    state = "active" if is_active(silence, now) else "expired"
    if silence.maintenance:
        state += " MAINT"
    matchers = " ".join(format_matcher(matcher) for matcher in silence.matchers)
    ends = silence.ends_at[:19].replace("T", " ")
    return state, ends, silence.created_by, matchers, silence.comment


def ordered(silences: list[Silence], now: datetime) -> list[Silence]:
    """In force first (soonest to end first), then the ended ones (latest ended first)."""
    active = sorted((s for s in silences if is_active(s, now)), key=lambda s: moment(s.ends_at))
    ended = sorted(
        (s for s in silences if not is_active(s, now)),
        key=lambda s: moment(s.ends_at),
        reverse=True,
    )
    return active + ended


class SilencesScreen(ModalScreen[None]):
    """The silences table; `x` ends the highlighted one now."""

    DEFAULT_CSS = """
    SilencesScreen {
        align: center middle;
        #silences {
            width: 95%;
            height: 80%;
            border: round $border;
            background: $surface;
        }
        #silences-hint { color: $text-muted; }
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("x", "expire", "Expire", id="silences.expire", tooltip="End the silence now"),
        Binding("escape", "close", "Close", id="silences.close"),
    ]

    def __init__(
        self, observer: Observer, *, clock: Callable[[], datetime], read_only: bool
    ) -> None:
        super().__init__()
        self._observer = observer
        self._clock = clock
        self._read_only = read_only
        self._silences: dict[str, Silence] = {}

    def compose(self) -> ComposeResult:
        with Vertical(id="silences") as frame:
            frame.border_title = "Silences"
            yield DataTable[str](cursor_type="row", id="silences-table")
            yield Label(
                "x expires the highlighted silence · Escape closes",
                id="silences-hint",
                markup=False,
            )

    def on_mount(self) -> None:
        table = self._table
        table.add_columns(*COLUMNS)
        table.focus()
        self.set_interval(1.0, self._show)
        self._follow()

    @property
    def _table(self) -> DataTable[str]:
        return self.query_one("#silences-table", DataTable)

    @work(exclusive=True, group="silences-feed", exit_on_error=False)
    async def _follow(self) -> None:
        try:
            async for batch in self._observer.silences():
                for silence in batch:
                    self._silences[silence.silence_id] = silence
                self._show()
        except Exception as error:  # shown where the list would be, not a crash
            self.query_one("#silences-hint", Label).update(f"silences cannot be read: {error}")

    def _show(self) -> None:
        """Lay the rows out again (silences are few; states change with the clock)."""
        table = self._table
        now = self._clock()
        highlighted = self.highlighted()
        table.clear()
        for silence in ordered(list(self._silences.values()), now):
            table.add_row(*silence_row(silence, now), key=silence.silence_id)
        self._frame_title(now)
        if highlighted is not None and highlighted.silence_id in self._silences:
            table.move_cursor(row=table.get_row_index(highlighted.silence_id))

    def _frame_title(self, now: datetime) -> None:
        active = sum(is_active(silence, now) for silence in self._silences.values())
        frame = self.query_one("#silences", Vertical)
        frame.border_title = f"Silences · {active} in force · {len(self._silences)} in all"

    def highlighted(self) -> Silence | None:
        table = self._table
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return self._silences.get(key) if key is not None else None

    def action_expire(self) -> None:
        if self._read_only:
            self.notify("read-only: silences cannot be changed", severity="warning")
            return
        silence = self.highlighted()
        if silence is None:
            self.notify("no silence selected", severity="warning")
        elif not is_active(silence, self._clock()):
            self.notify("that silence has already ended", severity="warning")
        else:
            self._expire(silence)

    @work(group="silence-actions", exit_on_error=False)
    async def _expire(self, silence: Silence) -> None:
        try:
            await self._observer.expire_silence(silence.silence_id)
        except Exception as error:  # the backend's failure is news for the user, not a crash
            self.notify(f"expiring failed: {error}", title="Silence", severity="error")
            return
        self.notify(f"Expired silence {silence.silence_id}", title="Silence")

    def action_close(self) -> None:
        self.dismiss(None)
