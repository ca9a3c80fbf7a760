"""The node registry as a table: status, when last heard from, logs and errors per minute.

Rows are keyed by node id and updated cell by cell; a DOWN node sorts to the top. Ages
and rates tick once a second from the injected clock.

Seen is the age of the newest of the registry's `last_heartbeat` and the newest log the
live feed brought from the node (its own timestamp, never later than its arrival). The
monitor republishes an unchanged node's heartbeat time only every `REPUBLISH_S`, and
marks a silent node DOWN after its timeout, so an UP entry a few seconds old says nothing
is wrong: an UP node heard from within `LIVE_WITHIN_S` reads `live`. Beyond that an UP
node shows its age, as a warning: the monitor has not confirmed it lately (the monitor
lags or is down, or the node heartbeats unusually slowly). A DOWN node shows how long
since anything was heard from it; a DOWN node that still logs shows a small age.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.theme import Theme
from textual.widgets import DataTable

from backend.schemas import Log, NodeEntry, NodeStatus, RetiredNode
from widgets.cells import Cell, theme_style
from widgets.formatting import age, parse_time
from widgets.rates import NodeRates

REPUBLISH_S = 5.0
"""How often at most the monitor republishes a node whose only news is a newer heartbeat
(its registry `Policy.heartbeat_every_s`)."""
LIVE_WITHIN_S = 15.0
"""An UP node heard from this recently is `live`: the republish period, plus the time the
monitor gives a silent node before it is DOWN (3 heartbeat intervals: 3 s at the default
1 s), plus the delays of the bus, with room to spare."""
SEEN_TOOLTIP = (
    "Seen: since the node was last heard from (its heartbeat in the registry or its newest"
    f" log in the feed). `live`: UP and heard within {LIVE_WITHIN_S:g} s; the registry"
    f" republishes heartbeat times only every {REPUBLISH_S:g} s. An UP node's age in the"
    " warning colour: the monitor has not confirmed it lately.\nErr/m, Log/m: ERROR and"
    " FATAL logs, all logs, in the last minute."
)

NODE_MARKS = {"maintenance": "◌MAINT", "flapping": "≈FLAP"}
"""What the status column says of a node in maintenance or flapping."""

COLUMNS: tuple[tuple[str, str, int | None], ...] = (
    ("node", "Node", None),
    ("status", "Status", 6),
    ("seen", "Seen", 5),
    ("errors", "Err/m", 5),
    ("logs", "Log/m", 5),
    ("service", "Service", None),
)


class NodeTable(DataTable[Text]):
    """One row per registered node; Enter filters the log feed to the node."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "enter",
            "select_cursor",
            "Filter feed",
            id="nodes.filter",
            tooltip="Show only this node's logs (again: every node)",
        ),
    ]

    class NodeChosen(Message):
        def __init__(self, node_id: str) -> None:
            super().__init__()
            self.node_id = node_id

    def __init__(self, *, clock: Callable[[], datetime], id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", show_cursor=False)
        self._clock = clock
        self._entries: dict[str, NodeEntry] = {}
        self._rates = NodeRates()
        self._shown: dict[tuple[str, str], str] = {}
        self._marks: dict[str, str] = {}
        self._logged: dict[str, datetime] = {}
        """The newest log each node sent that the feed brought."""
        self.feed_node: str | None = None
        """The node the log feed is filtered to, marked in the title."""

    def on_focus(self) -> None:
        """The cursor shows only in the pane being used, so colours elsewhere stay true."""
        self.show_cursor = True

    def on_blur(self) -> None:
        self.show_cursor = False

    def on_mount(self) -> None:
        self.tooltip = SEEN_TOOLTIP
        for key, label, width in COLUMNS:
            self.add_column(label, width=width, key=key)
        self.set_interval(1.0, self.tick)
        self.app.theme_changed_signal.subscribe(self, self._restyle)
        self._retitle()

    def update_nodes(self, entries: list[NodeEntry | RetiredNode]) -> None:
        """Apply registry changes row by row, and sort only if the order may have changed."""
        reorder = False
        for entry in entries:
            if isinstance(entry, RetiredNode):
                self._remove(entry.node_id)
                continue
            old = self._entries.get(entry.node_id)
            self._entries[entry.node_id] = entry
            if old is None:
                self.add_row(*self._cells(entry), key=entry.node_id)
                reorder = True
            else:
                reorder |= old.status != entry.status
                self._set("node", entry.node_id, self._node_cell(entry))
                self._set("status", entry.node_id, self._status_cell(entry))
                self._set("service", entry.node_id, Text(entry.service_name or "—"))
        self._tick_row(self._clock(), [e.node_id for e in entries if e.node_id in self._entries])
        if reorder:
            self._sort()
        self._retitle()

    def highlighted(self) -> NodeEntry | None:
        """The entry of the node under the cursor."""
        node = self._cursor_node()
        return None if node is None else self._entries.get(node)

    def _remove(self, node_id: str) -> None:
        """A retired node's row goes."""
        if self._entries.pop(node_id, None) is None:
            return
        self.remove_row(node_id)
        self._logged.pop(node_id, None)
        for column, _, _ in COLUMNS:
            self._shown.pop((node_id, column), None)

    def count_logs(self, logs: list[Log]) -> None:
        now = self._clock()
        self._rates.add(logs, now)
        self._note_logged(logs, now)
        self._tick_row(now, sorted({log.node_id for log in logs} & self._entries.keys()))

    def tick(self) -> None:
        """Refresh the ticking columns: heartbeat ages and rates."""
        self._tick_row(self._clock(), list(self._entries))

    def _tick_row(self, now: datetime, nodes: list[str]) -> None:
        for node in nodes:
            entry = self._entries[node]
            logs, errors = self._rates.per_minute(node, now)
            self._set("seen", node, self._seen_cell(entry, now))
            self._set("logs", node, Text(str(logs), justify="right"))
            error_style = theme_style(self.app, "text-error", bold=True) if errors else ""
            self._set("errors", node, Text(str(errors), style=error_style, justify="right"))

    def _set(self, column: str, node: str, value: Text) -> None:
        """Update a cell only when what it shows changed, to spare redraws."""
        shown = f"{value.plain}|{value.style}|{getattr(value, 'order', '')}"
        if self._shown.get((node, column)) != shown:
            self._shown[(node, column)] = shown
            self.update_cell(node, column, value)

    def _cells(self, entry: NodeEntry) -> list[Text]:
        self._shown.update({(entry.node_id, column): "" for column, _, _ in COLUMNS})
        cells = {
            "node": self._node_cell(entry),
            "status": self._status_cell(entry),
            "service": Text(entry.service_name or "—"),
        }
        return [cells.get(column, Text("")) for column, _, _ in COLUMNS]

    def _node_cell(self, entry: NodeEntry) -> Cell:
        down = entry.status is NodeStatus.DOWN
        return Cell(entry.node_id, order=(not down, entry.node_id))

    def set_marks(self, marks: dict[str, str]) -> None:
        """Show what the registry's UP or DOWN does not say: node -> "maintenance" (a
        window is open: its silence is expected) or "flapping" (up and down by turns)."""
        if marks == self._marks:
            return
        changed = {
            node
            for node in marks.keys() | self._marks.keys()
            if marks.get(node) != self._marks.get(node)
        }
        self._marks = dict(marks)
        for node in changed & self._entries.keys():
            self._set("status", node, self._status_cell(self._entries[node]))

    def _status_cell(self, entry: NodeEntry) -> Text:
        mark = self._marks.get(entry.node_id)
        if mark is not None:
            return Text(NODE_MARKS.get(mark, mark), style=theme_style(self.app, "text-warning"))
        if entry.status is NodeStatus.DOWN:
            return Text("✖ DOWN", style=theme_style(self.app, "text-error", bold=True))
        return Text("● UP", style=theme_style(self.app, "text-success"))

    def _note_logged(self, logs: list[Log], now: datetime) -> None:
        """Keep each node's newest log time (also of a node whose registry entry has not
        come yet); a node clock ahead counts as now."""
        for log in logs:
            stamp = parse_time(log.timestamp)
            newest = self._logged.get(log.node_id)
            if stamp is not None and (newest is None or stamp > newest):
                self._logged[log.node_id] = min(stamp, now)

    def _seen_cell(self, entry: NodeEntry, now: datetime) -> Text:
        """See the module: `live`, or the age of the newest heartbeat or log."""
        heard = [parse_time(entry.last_heartbeat) if entry.last_heartbeat else None]
        heard.append(self._logged.get(entry.node_id))
        known = [moment for moment in heard if moment is not None]
        if not known:
            return Text("—", justify="right")
        since = now - max(known)
        if entry.status is NodeStatus.DOWN:
            return Text(age(since), justify="right")
        if since.total_seconds() <= LIVE_WITHIN_S:
            return Text("live", justify="right")
        return Text(age(since), style=theme_style(self.app, "text-warning"), justify="right")

    def _sort(self) -> None:
        """DOWN first, then by node id.

        The cursor stays on its node while the user is in the table; otherwise it goes
        back to the top, so a node that just went down is in sight.
        """
        chosen = self._cursor_node() if self.has_focus else None
        self.sort("node", key=lambda cell: cell.order)
        row = self.get_row_index(chosen) if chosen is not None else 0
        self.move_cursor(row=row, animate=False, scroll=True)

    def _cursor_node(self) -> str | None:
        if not self.row_count:
            return None
        return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value

    def _restyle(self, theme: Theme) -> None:
        self._shown.clear()
        for entry in self._entries.values():
            self._set("status", entry.node_id, self._status_cell(entry))
        self.tick()

    def _retitle(self) -> None:
        down = sum(entry.status is NodeStatus.DOWN for entry in self._entries.values())
        title = f"Nodes {len(self._entries)}"
        if down:
            title += f" · {down} down"
        if self.feed_node is not None:
            title += f" · feed: {self.feed_node}"
        self.border_title = title
        self.set_class(down > 0, "-trouble")

    def show_feed_node(self, node: str | None) -> None:
        self.feed_node = node
        self._retitle()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        if event.row_key.value is not None:
            self.post_message(self.NodeChosen(event.row_key.value))
