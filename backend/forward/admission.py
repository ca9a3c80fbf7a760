"""Which nodes a connection may speak for, so no client can write for every node.

A client speaks for the nodes its user (under user auth) and the shared key allow, given as
patterns on node_id (`payment-*`). And no connection may bring more than `max_new_nodes`
nodes the accumulator has not seen before, in the registry or on another connection: one
frame of heartbeats from `ghost-0` to `ghost-19999` would otherwise fill the registry with
20,000 nodes and raise as many NODE_DOWN alerts. What is refused here is dead-lettered with
the reason, never dropped.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from fnmatch import fnmatchcase
from typing import Final

DEFAULT_MAX_NEW_NODES: Final = 100
KNOWN_NODES_LIMIT: Final = 1_000_000
"""Node ids remembered at most; past it every further node counts as new on its connection."""


class KnownNodes:
    """Node ids the accumulator has seen: the registry's at start, then every one admitted."""

    def __init__(self, nodes: Iterable[str] = (), limit: int = KNOWN_NODES_LIMIT) -> None:
        self._limit = limit
        self._nodes: set[str] = set()
        for node in nodes:
            self.add(node)

    def __contains__(self, node_id: object) -> bool:
        return node_id in self._nodes

    def __len__(self) -> int:
        return len(self._nodes)

    def add(self, node_id: str) -> None:
        if len(self._nodes) < self._limit:
            self._nodes.add(node_id)


class NodeAccess:
    """One connection's admission of node_ids: its patterns, and its budget of new nodes."""

    def __init__(
        self,
        known: KnownNodes,
        max_new_nodes: int = DEFAULT_MAX_NEW_NODES,
        patterns: Sequence[tuple[tuple[str, ...], str]] = (),
    ) -> None:
        """`patterns`: (node patterns, whose they are) pairs; a node must match every
        non-empty set. An empty set allows any node."""
        self._known = known
        self._max_new = max_new_nodes
        self._patterns = [(group, owner) for group, owner in patterns if group]
        self._admitted: set[str] = set()
        self._new = 0

    def refusal(self, node_id: str) -> str | None:
        """Why this connection may not write for `node_id`, or None when it may."""
        if node_id in self._admitted:
            return None
        for group, owner in self._patterns:
            if not any(fnmatchcase(node_id, pattern) for pattern in group):
                return f"{owner} may not send for node {node_id!r} (allowed: {', '.join(group)})"
        if node_id not in self._known:
            if self._new >= self._max_new:
                return (
                    f"more than {self._max_new} new nodes on one connection, "
                    "the limit (--max-new-nodes)"
                )
            self._new += 1
            self._known.add(node_id)
        self._admitted.add(node_id)
        return None
