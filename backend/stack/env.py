"""`logdeck stack env`: the `LOGDECK_*` variables that put a service on a running stack.

Each role gets only what it reaches: the services that only read and write the bus get
the brokers, those that search or index get the Elasticsearch nodes too.
"""

from __future__ import annotations

import shlex

from backend.config import ELASTICSEARCH_VARIABLE, KAFKA_VARIABLE
from backend.stack.topology import Topology

ROLES: dict[str, tuple[str, ...]] = {
    "accumulator": (KAFKA_VARIABLE,),
    "indexer": (KAFKA_VARIABLE, ELASTICSEARCH_VARIABLE),
    "alerter": (KAFKA_VARIABLE,),
    "monitor": (KAFKA_VARIABLE,),
    "notifier": (KAFKA_VARIABLE,),
    "console": (KAFKA_VARIABLE, ELASTICSEARCH_VARIABLE),
    "console-read-only": (KAFKA_VARIABLE, ELASTICSEARCH_VARIABLE),
}


def env_lines(topology: Topology, role: str | None) -> list[str]:
    """`export NAME=value` lines for a shell's eval: every variable, or the role's.

    `KeyError` for a role not in `ROLES`.
    """
    values = {
        KAFKA_VARIABLE: topology.bootstrap,
        ELASTICSEARCH_VARIABLE: topology.elasticsearch_urls,
    }
    names = tuple(values) if role is None else ROLES[role]
    return [f"export {name}={shlex.quote(values[name])}" for name in names]
