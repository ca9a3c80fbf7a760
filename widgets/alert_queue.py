"""The alert queue: open before acknowledged, most severe first, with acknowledge and resolve.

Rows are keyed by alert id and updated in place, in an order a repeat never changes:
open alerts, then acknowledged ones (greyed; hidden with `h`); within each, most severe
first, a node's own alert (NODE_DOWN, FLAPPING) first within its severity, as it explains
the others; then the newest `first_seen` first. A repeat changes only count and last seen,
so its row stays put; the cursor stays on its alert whatever moves. Resolved alerts leave
the queue. CRITICAL alerts that were not there before ring the bell, show one notice that
counts them (see `CriticalNotice`) and a badge in the pane's title.

The columns fit the pane's width (`fit_columns`): severity, state, summary and count
always, node and last seen where there is room, and the summary takes what is left, so
an 80-column terminal still shows what each alert is and how often it fired.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import ClassVar, Literal

from rich.style import Style
from rich.text import Text
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.reactive import reactive
from textual.theme import Theme
from textual.widgets import DataTable

from backend.schemas import Alert, AlertKind, AlertState, Severity
from widgets.cells import Cell, theme_style
from widgets.critical_notice import CriticalNotice
from widgets.formatting import compact_count, day_time, log_time, parse_time

AlertAction = Literal["acknowledge", "acknowledge_noted", "unacknowledge", "resolve", "annotate"]
"""What can be done to an alert; `acknowledge_noted` and `annotate` ask for a note first."""

Column = tuple[str, str, int]
"""A column's key, label and width in cells (without the table's padding)."""
_LEADING: tuple[Column, ...] = (("severity", "Sev", 4), ("state", "State", 5))
_COUNT: Column = ("count", "#", 5)
_OPTIONAL: tuple[Column, ...] = (("where", "Where", 12), ("last", "Last", 8))
"""Shown where the summary keeps `SUMMARY_MIN` cells beside them; the last goes first."""
SUMMARY_MIN = 16
_PADDING = 1
"""DataTable's cell padding, on each side of every column."""
_SEVERITY = {
    Severity.CRITICAL: ("CRIT", "text-error"),
    Severity.ERROR: ("ERR", "text-warning"),
    Severity.WARNING: ("WARN", "text-secondary"),
}
_STATE_ORDER = {AlertState.OPEN: 0, AlertState.ACKED: 1, AlertState.RESOLVED: 2}
_NODE_KINDS = frozenset({AlertKind.NODE_DOWN, AlertKind.FLAPPING})
QUIET_TAGS = {"silenced": "MUTED", "maintenance": "MAINT", "inhibited": "INHIB"}
"""What the state column says of an alert that notifies nobody: silenced, its node in
maintenance, or inhibited by its node's NODE_DOWN."""


class AlertQueue(DataTable[Text]):
    """Open and acknowledged alerts; a/u/r act on the highlighted one."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a", "act('acknowledge')", "Ack", id="alerts.ack", tooltip="Acknowledge the alert"),
        Binding(
            "u",
            "act('unacknowledge')",
            "Un-ack",
            id="alerts.unack",
            tooltip="Take the acknowledgement back",
        ),
        Binding("r", "act('resolve')", "Resolve", id="alerts.resolve", tooltip="Resolve the alert"),
        Binding(
            "A",
            "act('acknowledge_noted')",
            "Ack+note",
            id="alerts.ack_note",
            show=False,
            tooltip="Acknowledge the alert with a note",
        ),
        Binding("n", "act('annotate')", "Note", id="alerts.note", show=False, tooltip="Add a note"),
        Binding(
            "h",
            "toggle_acked",
            "Hide acked",
            id="alerts.toggle_acked",
            tooltip="Hide or show acknowledged alerts",
        ),
    ]

    show_acked: reactive[bool] = reactive(True, init=False)

    class AlertChosen(Message):
        """Enter on an alert: the screen shows it in full."""

        def __init__(self, alert: Alert) -> None:
            super().__init__()
            self.alert = alert

    class ActionRequested(Message):
        """The user wants `action` done to an alert; the screen asks the observer."""

        def __init__(self, alert: Alert, action: AlertAction) -> None:
            super().__init__()
            self.alert = alert
            self.action = action

    def __init__(
        self, *, clock: Callable[[], datetime], read_only: bool = False, id: str | None = None
    ) -> None:
        super().__init__(id=id, cursor_type="row", show_cursor=False)
        self._clock = clock
        self._read_only = read_only
        self._alerts: dict[str, Alert] = {}
        self._quiet: dict[str, str] = {}
        self._primed = False
        self._notice = CriticalNotice()
        self._columns: tuple[Column, ...] = ()

    def on_focus(self) -> None:
        """The cursor shows only in the pane being used, so colours elsewhere stay true."""
        self.show_cursor = True

    def on_blur(self) -> None:
        self.show_cursor = False

    def on_mount(self) -> None:
        self._fit()
        self.app.theme_changed_signal.subscribe(self, self._restyle)
        self._retitle()

    def on_resize(self) -> None:
        self._fit()

    def _fit(self) -> None:
        """Lay the columns out for the pane's width (the scrollbar's kept free, so rows
        that come later never push a column off); rebuilt only when that changes."""
        columns = fit_columns(self.size.width - self.styles.scrollbar_size_vertical)
        if columns == self._columns:
            return
        anchor = self._anchor()
        self.clear(columns=True)
        self._columns = columns
        for key, label, width in columns:
            self.add_column(
                Text(label, justify="right") if key == "count" else label, width=width, key=key
            )
        for alert in self._alerts.values():
            self._place(alert)
        self._sort(anchor)

    @property
    def alerts(self) -> dict[str, Alert]:
        return self._alerts

    def update_alerts(self, alerts: list[Alert], *, initial: bool = False) -> None:
        """Apply changed alerts; the state found on first connecting raises no bell."""
        ring = self._primed or not initial
        fresh_critical = [
            alert
            for alert in alerts
            if ring
            and alert.alert_id not in self._alerts
            and alert.severity is Severity.CRITICAL
            and alert.state is AlertState.OPEN
        ]
        anchor = self._anchor()
        for alert in alerts:
            self._place(alert)
            if alert.state is AlertState.RESOLVED:
                self._alerts.pop(alert.alert_id, None)
            else:
                self._alerts[alert.alert_id] = alert
        self._primed = True
        self._sort(anchor)
        self._retitle()
        self._notice.announce(self.app, fresh_critical)

    def set_quiet(self, quiet: dict[str, str]) -> None:
        """Mark the alerts that notify nobody: alert_id -> why, one of `QUIET_TAGS`' keys."""
        if quiet == self._quiet:
            return
        changed = {
            key
            for key in quiet.keys() | self._quiet.keys()
            if quiet.get(key) != self._quiet.get(key)
        }
        self._quiet = dict(quiet)
        for key in changed:
            if key in self._alerts:
                self._place(self._alerts[key])

    def _visible(self, alert: Alert) -> bool:
        if alert.state is AlertState.RESOLVED:
            return False
        return self.show_acked or alert.state is not AlertState.ACKED

    def _place(self, alert: Alert) -> None:
        """Add, update or remove the alert's row according to whether it should show."""
        key = alert.alert_id
        present = key in self.rows
        if not self._visible(alert):
            if present:
                self.remove_row(key)
            return
        cells = self._cells(alert)
        if not present:
            self.add_row(*(cells[column] for column, _, _ in self._columns), key=key)
            return
        for column, _, _ in self._columns:
            self.update_cell(key, column, cells[column])

    def _cells(self, alert: Alert) -> dict[str, Text]:
        label, variable = _SEVERITY[alert.severity]
        acked = alert.state is AlertState.ACKED
        quiet = self._quiet.get(alert.alert_id)
        muted = Style(dim=True) if acked or quiet else Style()
        severity = Cell(label, theme_style(self.app, variable, bold=not acked), order=_order(alert))
        state = "ACKED" if acked else alert.state.value
        if quiet is not None:
            state = QUIET_TAGS.get(quiet, quiet)
        return {
            "severity": severity,
            "state": Text(state, style=muted),
            "summary": Cell(alert.summary, muted),
            "count": Text(compact_count(alert.count), style=muted, justify="right"),
            "where": Cell(alert.node_id or alert.service_name or "—", muted),
            "last": Text(self._when(alert.last_seen), style=muted),
        }

    def _when(self, timestamp: str) -> str:
        """Time of day for today's alerts, the day (`11-23`) for older ones."""
        seen = parse_time(timestamp)
        if seen is not None and seen.date() == self._clock().date():
            return log_time(timestamp)[:8]
        return day_time(timestamp)[:5]

    def _anchor(self) -> tuple[str | None, int]:
        """The alert under the cursor and its row, taken before rows change."""
        if not self.row_count:
            return None, 0
        row = self.cursor_coordinate.row
        return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value, row

    def _sort(self, anchor: tuple[str | None, int]) -> None:
        """Put the rows in order (see the module) and the cursor back on its alert, focused
        or not; if that alert left, on the row that took its place."""
        self.sort("severity", key=lambda cell: cell.order)
        key, row = anchor
        if key is not None and key in self.rows:
            row = self.get_row_index(key)
        row = min(row, max(self.row_count - 1, 0))
        if row != self.cursor_coordinate.row:
            self.move_cursor(row=row, animate=False, scroll=True)

    def selected_alert(self) -> Alert | None:
        if not self.row_count:
            return None
        key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        return self._alerts.get(key) if key is not None else None

    def open_critical(self) -> int:
        return sum(
            alert.severity is Severity.CRITICAL and alert.state is AlertState.OPEN
            for alert in self._alerts.values()
        )

    def _retitle(self) -> None:
        shown = self.row_count
        title = f"Alerts {shown}"
        critical = self.open_critical()
        if critical:
            title += f" · ‼ {critical} CRITICAL"
        if not self.show_acked:
            title += " · acked hidden"
        self.border_title = title
        self.set_class(critical > 0, "-critical")

    def watch_show_acked(self) -> None:
        anchor = self._anchor()
        for alert in self._alerts.values():
            self._place(alert)
        self._sort(anchor)
        self._retitle()

    def action_toggle_acked(self) -> None:
        self.show_acked = not self.show_acked

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        alert = self.selected_alert()
        if alert is not None:
            self.post_message(self.AlertChosen(alert))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Read-only: acknowledging, resolving and noting are neither offered nor run."""
        return not (action == "act" and self._read_only)

    def action_act(self, action: AlertAction) -> None:
        alert = self.selected_alert()
        if alert is None:
            self.notify("no alert selected", severity="warning")
            return
        self.post_message(self.ActionRequested(alert, action))

    def _restyle(self, theme: Theme) -> None:
        for alert in self._alerts.values():
            self._place(alert)


def fit_columns(width: int) -> tuple[Column, ...]:
    """The columns for a table `width` cells wide: severity, state, summary and count
    always, then node and last seen while the summary keeps `SUMMARY_MIN` cells; the
    summary takes the width that is left."""
    used = sum(size + 2 * _PADDING for _, _, size in (*_LEADING, _COUNT)) + 2 * _PADDING
    optional: list[Column] = []
    for column in _OPTIONAL:
        if width - used - (column[2] + 2 * _PADDING) < SUMMARY_MIN:
            break
        optional.append(column)
        used += column[2] + 2 * _PADDING
    summary: Column = ("summary", "Summary", max(len("Summary"), width - used))
    return (*_LEADING, summary, _COUNT, *optional)


def _order(alert: Alert) -> tuple[int, int, bool, float, str]:
    """Where an alert sorts: by state, severity, node alerts first, newest first_seen.
    Nothing a repeat changes (count, last_seen) is in it."""
    first = parse_time(alert.first_seen)
    return (
        _STATE_ORDER[alert.state],
        -alert.severity.rank,
        alert.kind not in _NODE_KINDS,
        -(first.timestamp() if first else 0.0),
        alert.alert_id,
    )
