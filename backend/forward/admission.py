"""Which nodes a connection may speak for, so no client can write for every node.

A client speaks for the nodes its user (under user auth) and the shared key allow, given as
patterns on node_id (`payment-*`). And no connection may bring more than `max_new_nodes`
nodes the accumulator has not seen before, in the registry or on another connection: one
frame of heartbeats from `ghost-0` to `ghost-19999` would otherwise fill the registry with
20,000 nodes and raise as many NODE_DOWN alerts. What is refused here is dead-lettered with
the reason, never dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from fnmatch import fnmatchcase
from typing import Final

log = logging.getLogger("logdeck.accumulator")

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
        peer: str = "",
    ) -> None:
        """`patterns`: (node patterns, whose they are) pairs; a node must match every
        non-empty set. An empty set allows any node. The first refusal of each kind is
        logged, naming `peer`."""
        self._known = known
        self._peer = peer
        self._logged: set[str] = set()
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
                reason = f"{owner} may not send for node {node_id!r} (allowed: {', '.join(group)})"
                return self._refuse(owner, reason)
        if node_id not in self._known:
            if self._new >= self._max_new:
                reason = (
                    f"more than {self._max_new} new nodes on one connection, "
                    "the limit (--max-new-nodes)"
                )
                return self._refuse("new nodes", reason)
            self._new += 1
            self._known.add(node_id)
        self._admitted.add(node_id)
        return None

    def _refuse(self, kind: str, reason: str) -> str:
        if kind not in self._logged:
            self._logged.add(kind)
            log.warning("%s: %s; its records are dead-lettered", self._peer, reason)
        return reason


class Admission:
    """Makes each connection's `NodeAccess`: the shared key's patterns, its user's, and the
    budget of new nodes, over the nodes the accumulator knows."""

    def __init__(
        self,
        known: KnownNodes,
        max_new_nodes: int = DEFAULT_MAX_NEW_NODES,
        key_nodes: tuple[str, ...] = (),
        user_nodes: Mapping[str, tuple[str, ...]] | None = None,
    ) -> None:
        self._known = known
        self._max_new = max_new_nodes
        self._key_nodes = key_nodes
        self._user_nodes = dict(user_nodes or {})

    def connection(self, peer: str, user: str | None = None) -> NodeAccess:
        patterns = [(self._key_nodes, "the shared key")]
        if user is not None:
            patterns.append((self._user_nodes.get(user, ()), f"user {user!r}"))
        return NodeAccess(self._known, self._max_new, patterns, peer)
