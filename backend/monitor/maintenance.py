"""Which nodes are under a maintenance window, and when that changes: a pure part of the
monitor, so what a window's start and end call for is tested without a bus.

While a node is in maintenance the monitor still records it DOWN in the registry (that is
the truth), but raises no NODE_DOWN for it. A window that starts while the node is DOWN
clears its NODE_DOWN (someone is working on the node); a window that ends while the node is
still DOWN raises it again, so a node left dead after maintenance is not forgotten.
"""

from __future__ import annotations

from collections.abc import Set
from dataclasses import dataclass


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
