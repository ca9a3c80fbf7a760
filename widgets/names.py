"""The services and nodes seen so far, for completion and for reading what the user typed.

The registry and the log feed both teach it names; the service/node pickers of the feed
and of the search screen read it to suggest completions and to tell a service from a node.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from backend.schemas import Log, NodeEntry

_SEPARATORS = re.compile(r"[,\s]+")


def split_names(text: str) -> list[str]:
    """Names typed with commas or spaces between them, in order, without repeats."""
    return list(dict.fromkeys(name for name in _SEPARATORS.split(text) if name))


@dataclass(slots=True)
class KnownNames:
    """Every service and node name met, kept sorted on demand."""

    services: set[str] = field(default_factory=set)
    nodes: set[str] = field(default_factory=set)

    def learn_logs(self, logs: Iterable[Log]) -> None:
        for log in logs:
            self.services.add(log.service_name)
            self.nodes.add(log.node_id)

    def learn_nodes(self, entries: Iterable[NodeEntry]) -> None:
        for entry in entries:
            self.nodes.add(entry.node_id)
            if entry.service_name:
                self.services.add(entry.service_name)

    def all(self) -> list[str]:
        """Services first, then nodes: the order completions are offered in."""
        return sorted(self.services) + sorted(self.nodes - self.services)

    def classify(self, text: str) -> tuple[set[str], set[str], list[str]]:
        """Split typed names into services, nodes and the names neither knows.

        `service:x` and `node:x` say which one explicitly, for names not seen yet.
        """
        services: set[str] = set()
        nodes: set[str] = set()
        unknown: list[str] = []
        for name in split_names(text):
            kind, _, value = name.partition(":")
            if value and kind in ("service", "svc"):
                services.add(value)
            elif value and kind == "node":
                nodes.add(value)
            elif name in self.services:
                services.add(name)
            elif name in self.nodes:
                nodes.add(name)
            else:
                unknown.append(name)
        return services, nodes, unknown
