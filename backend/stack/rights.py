"""What each role's Kafka principal may do in one namespace: the ACLs of a secured stack.

Every role may DESCRIBE the namespace's topics (a prefixed pattern), so a service's
start-up check finds them all present; none may CREATE one: the stack creates them
with its admin principal before it grants anything (`backend.stack.acls`). Beyond that,
each role READs and WRITEs only the topics it consumes and produces, READs its own
consumer groups, and (writers) has IDEMPOTENT_WRITE on the cluster, as aiokafka's
idempotent producers ask for. The alerter's transactional ids begin with its groups'
names. Both consoles may DESCRIBE every service's group, to show the pipeline's lag; the
read-only one writes nothing, so Kafka itself refuses its acknowledgements.
"""

from __future__ import annotations

from dataclasses import dataclass

from backend.config import Settings

SERVICE_GROUPS = ("indexer", "alerter-rules", "alerter", "monitor", "notifier")


@dataclass(frozen=True, slots=True)
class Grant:
    """One ALLOW ACL for a principal from any host."""

    resource: str
    """TOPIC, GROUP, TRANSACTIONAL_ID or CLUSTER."""
    pattern: str
    """LITERAL or PREFIXED."""
    name: str
    operation: str

    def line(self, principal: str) -> str:
        """The tab-separated line `CreateAcls.java` reads."""
        return "\t".join((self.resource, self.pattern, self.name, principal, self.operation))


def _topics(operation: str, *names: str) -> list[Grant]:
    return [Grant("TOPIC", "LITERAL", name, operation) for name in names]


def _groups(operation: str, *names: str) -> list[Grant]:
    return [Grant("GROUP", "LITERAL", name, operation) for name in names]


CLUSTER_IDEMPOTENT_WRITE = Grant("CLUSTER", "LITERAL", "kafka-cluster", "IDEMPOTENT_WRITE")


def role_grants(namespace: str) -> dict[str, tuple[Grant, ...]]:
    """Each role's grants in `namespace` (its principal is `User:<role>`)."""
    settings = Settings(namespace=namespace)
    t, group = settings.topics, settings.group
    every_topic = Grant("TOPIC", "PREFIXED", f"{namespace}.", "DESCRIBE")
    console_reads = [
        *_topics("READ", t.logs, t.registry, t.silences, t.alerts),
        *_topics("READ", t.deadletter, t.deadletter_replays),
        *_groups("DESCRIBE", *(group(role) for role in SERVICE_GROUPS)),
    ]
    rights = {
        "accumulator": [
            *_topics("WRITE", t.logs, t.heartbeats, t.registrations, t.deadletter),
            *_topics("READ", t.registry),
            CLUSTER_IDEMPOTENT_WRITE,
        ],
        "indexer": [
            *_topics("READ", *t.consumed_by("indexer")),
            *_topics("WRITE", t.deadletter),
            *_groups("READ", group("indexer")),
            CLUSTER_IDEMPOTENT_WRITE,
        ],
        "alerter": [
            *_topics("READ", t.logs, t.alert_commands, t.alerts),
            *_topics("WRITE", t.alert_commands, t.alerts),
            *_groups("READ", group("alerter-rules"), group("alerter")),
            *(
                Grant("TRANSACTIONAL_ID", "PREFIXED", group("alerter"), operation)
                for operation in ("WRITE", "DESCRIBE")
            ),
            CLUSTER_IDEMPOTENT_WRITE,
        ],
        "monitor": [
            *_topics("READ", *t.consumed_by("monitor"), t.registry, t.silences),
            *_topics("WRITE", t.registry, t.alert_commands),
            *_groups("READ", group("monitor")),
            CLUSTER_IDEMPOTENT_WRITE,
        ],
        "notifier": [
            *_topics("READ", t.alerts, t.silences, t.notifications),
            *_topics("WRITE", t.notifications),
            *_groups("READ", group("notifier")),
            CLUSTER_IDEMPOTENT_WRITE,
        ],
        "console": [
            *console_reads,
            *_topics("WRITE", t.alert_commands, t.silences, t.registrations),
            CLUSTER_IDEMPOTENT_WRITE,
        ],
        "console-read-only": console_reads,
    }
    return {role: (every_topic, *grants) for role, grants in rights.items()}
