"""`logdeck stack env`: the `LOGDECK_*` variables that put a service on a running stack.

Each role gets only what it reaches: the services that only read and write the bus get
the brokers, those that search or index get the Elasticsearch nodes too. On a secured
stack (the cluster) each role also gets its own Kafka principal's credentials and the
CA that signed the brokers' certificate; without a role, the variables are the stack's
admin principal's, which may do anything (for the operator's commands: `deadletter`,
`forget`, `silence`, `tail`).
"""

from __future__ import annotations

import shlex

from backend.config import ELASTICSEARCH_VARIABLE, KAFKA_VARIABLE
from backend.stack.kafka_secured import certificates, passwords_file
from backend.stack.principals import ADMIN, MECHANISM, load_passwords
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
"""Each role's variables; on a secured stack its principal is named after it too."""


def security_variables(topology: Topology, principal: str) -> dict[str, str]:
    """The Kafka client security variables of `principal` on `topology`; none for an open
    stack. `KeyError` for a principal the stack has no password for."""
    if topology.secrets is None:
        return {}
    password = load_passwords(passwords_file(topology))[principal]
    return {
        "LOGDECK_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "LOGDECK_KAFKA_SASL_MECHANISM": MECHANISM,
        "LOGDECK_KAFKA_USERNAME": principal,
        "LOGDECK_KAFKA_PASSWORD": password,
        "LOGDECK_KAFKA_CA_FILE": str(certificates(topology).ca),
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
    chosen = {name: values[name] for name in names}
    chosen.update(security_variables(topology, role or ADMIN))
    return [f"export {name}={shlex.quote(value)}" for name, value in chosen.items()]
