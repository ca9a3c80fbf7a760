"""Which nodes are under a maintenance window, and when that changes: a pure part of the
monitor, so what a window's start and end call for is tested without a bus.

While a node is in maintenance the monitor still records it DOWN in the registry (that is
the truth), but raises no NODE_DOWN for it. A window that starts while the node is DOWN
clears its NODE_DOWN (someone is working on the node); a window that ends while the node is
still DOWN raises it again, so a node left dead after maintenance is not forgotten, even
when no monitor was running as the window ended (`ended_while_down`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Set
from dataclasses import dataclass
from datetime import datetime

from backend.schemas import Silence
from backend.silences.matching import active_maintenance, moment


@dataclass(frozen=True, slots=True)
class Turns:
    """Nodes whose maintenance began and ended since the previous look."""

    started: frozenset[str] = frozenset()
    ended: frozenset[str] = frozenset()


class MaintenanceGate:
    """The nodes in maintenance as last told, and the turns each new telling makes."""

    def __init__(self) -> None:
        self._nodes: frozenset[str] = frozenset()

    def holds(self, node_id: str) -> bool:
        """Whether `node_id` is in maintenance: its NODE_DOWN is held back."""
        return node_id in self._nodes

    def update(self, maintained: Set[str]) -> Turns:
        """Take the nodes in maintenance now; the turns since the previous update."""
        now = frozenset(maintained)
        turns = Turns(started=now - self._nodes, ended=self._nodes - now)
        self._nodes = now
        return turns


def ended_while_down(
    silences: Iterable[Silence], last_heard: Mapping[str, datetime], now: datetime
) -> set[str]:
    """The DOWN nodes (node -> when last heard) whose NODE_DOWN a maintenance window held
    back, the window over by `now` and no other one open: their NODE_DOWN is due."""
    windows = list(silences)
    due = set()
    for window in windows:
        start, end = moment(window.starts_at), moment(window.ends_at)
        if end > now:
            continue
        for node in active_maintenance([window], start) & last_heard.keys():
            if end > last_heard[node]:
                due.add(node)
    return due - active_maintenance(windows, now)
