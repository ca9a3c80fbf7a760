"""Where the services find their bus and store, and what the shared names are.

The bus and store are Kafka and Elasticsearch unless `embedded` names a data folder:
then both live in SQLite files there (`logdeck demo`, or any service with `--embedded`).

Every name of DESIGN.md (topics, indices, consumer groups, the accumulator's port) is
derived here from one namespace, so tests can run side by side on one broker and one
Elasticsearch node without seeing each other's data.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from backend.bus.base import POLL_BYTES
from backend.security import ElasticsearchAuth, ForwardSecurity, KafkaSecurity

DEFAULT_NAMESPACE = "logdeck"
DEFAULT_KAFKA = "127.0.0.1:9092"
DEFAULT_ELASTICSEARCH = "http://127.0.0.1:9200"
DEFAULT_ACCUMULATOR_HOST = "127.0.0.1"
DEFAULT_ACCUMULATOR_PORT = 24224
KAFKA_VARIABLE = "LOGDECK_KAFKA"
"""Kafka's brokers, `host:port` comma-separated: any one of them lets a client in."""
ELASTICSEARCH_VARIABLE = "LOGDECK_ELASTICSEARCH"
"""Elasticsearch's URLs, comma-separated: the client spreads its requests over them."""


BUS_FILE = "bus.db"
STORE_FILE = "store.db"


def default_data_dir() -> Path:
    """Where the embedded bus and store keep their files: the XDG data folder."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "logdeck"


def split_addresses(text: str) -> list[str]:
    """`a, b,c` as ["a", "b", "c"]: how a variable or flag lists several servers."""
    return [part.strip() for part in text.split(",") if part.strip()]


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}


def duration_s(text: str) -> float:
    """`90`, `90s`, `15m`, `2h` or `1d` in seconds: how a span is written in a variable."""
    value = text.strip().lower()
    unit = _UNITS.get(value[-1:], 0)
    try:
        seconds = float(value[:-1] if unit else value) * (unit or 1)
    except ValueError:
        raise ValueError(f"{text!r} is not a span of time (e.g. 90s, 15m, 2h, 1d)") from None
    if not 0 <= seconds < float("inf"):
        raise ValueError(f"{text!r} is not a span of time (e.g. 90s, 15m, 2h, 1d)")
    return seconds


@dataclass(frozen=True, slots=True)
class Topics:
    """The Kafka topics of one namespace."""

    logs: str
    heartbeats: str
    registrations: str
    alerts: str
    deadletter: str
    alert_commands: str
    registry: str
    deadletter_replays: str
    """Compacted, keyed by a dead letter's `partition:offset`: the letters replayed."""
    notifications: str
    """Compacted, keyed by `alert_id/receiver`: what the notifier last sent each receiver."""
    silences: str
    """Compacted, keyed by silence_id: every silence and maintenance window, expired too."""

    @classmethod
    def for_namespace(cls, namespace: str) -> Topics:
        return cls(
            logs=f"{namespace}.logs",
            heartbeats=f"{namespace}.heartbeats",
            registrations=f"{namespace}.registrations",
            alerts=f"{namespace}.alerts",
            deadletter=f"{namespace}.deadletter",
            alert_commands=f"{namespace}.alert-commands",
            registry=f"{namespace}.registry",
            deadletter_replays=f"{namespace}.deadletter-replays",
            notifications=f"{namespace}.notifications",
            silences=f"{namespace}.silences",
        )

    def all(self) -> tuple[str, ...]:
        return (
            self.logs,
            self.heartbeats,
            self.registrations,
            self.alerts,
            self.deadletter,
            self.alert_commands,
            self.registry,
            self.deadletter_replays,
            self.notifications,
            self.silences,
        )

    def consumed_by(self, role: str) -> tuple[str, ...]:
        """The topics the consumer group of `role` reads (the console's pipeline health
        reads the same list, so the two cannot drift apart)."""
        return {
            "indexer": (self.logs, self.alerts, self.registry),
            "alerter-rules": (self.logs,),
            "alerter": (self.alert_commands,),
            "monitor": (self.registrations, self.heartbeats),
            "notifier": (self.alerts,),
        }[role]

    def compacted(self) -> tuple[str, ...]:
        """Topics that hold the latest state per key (alert, node, replayed letter, notice
        sent, silence) and are read from the start."""
        return (
            self.alerts,
            self.registry,
            self.deadletter_replays,
            self.notifications,
            self.silences,
        )


@dataclass(frozen=True, slots=True)
class Indices:
    """The Elasticsearch indices of one namespace (logs are daily: `<logs_prefix>YYYY.MM.DD`)."""

    logs_prefix: str
    alerts: str
    nodes: str

    @classmethod
    def for_namespace(cls, namespace: str) -> Indices:
        return cls(
            logs_prefix=f"{namespace}-logs-",
            alerts=f"{namespace}-alerts",
            nodes=f"{namespace}-nodes",
        )

    @property
    def logs_pattern(self) -> str:
        return f"{self.logs_prefix}*"


@dataclass(frozen=True, slots=True)
class Settings:
    """Addresses and names shared by every logdeck service."""

    kafka: str = DEFAULT_KAFKA
    """One broker or several, comma-separated (aiokafka takes them so)."""
    elasticsearch: str = DEFAULT_ELASTICSEARCH
    """One URL or several, comma-separated: see `elasticsearch_urls`."""
    namespace: str = DEFAULT_NAMESPACE
    partitions: int = 6
    retention_days: int = 7
    max_skew_s: float = 86_400.0
    """How far ahead of the accumulator's clock a timestamp may be; later ones are
    dead-lettered, as are those before the oldest day the retention keeps."""
    accumulator_host: str = DEFAULT_ACCUMULATOR_HOST
    accumulator_port: int = DEFAULT_ACCUMULATOR_PORT
    embedded: Path | None = None
    """The data folder of the embedded bus and store; None: Kafka and Elasticsearch."""
    poll_bytes: int = POLL_BYTES
    """The most a consumer (indexer, alerter, monitor) takes from the bus in one poll."""
    bus_max_bytes: int | None = None
    """The embedded bus's hard cap per topic, beyond which retention deletes records a
    group has not read (loudly); None: the bus's default (`Retention.max_bytes`)."""
    kafka_security: KafkaSecurity = field(default_factory=KafkaSecurity)
    elasticsearch_auth: ElasticsearchAuth = field(default_factory=ElasticsearchAuth)
    forward_security: ForwardSecurity = field(default_factory=ForwardSecurity)
    topics: Topics = field(init=False)
    indices: Indices = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "topics", Topics.for_namespace(self.namespace))
        object.__setattr__(self, "indices", Indices.for_namespace(self.namespace))

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        """Settings from `LOGDECK_*` variables; explicit overrides (flags) win."""
        env = os.environ
        base = cls(
            kafka=env.get(KAFKA_VARIABLE, DEFAULT_KAFKA),
            elasticsearch=env.get(ELASTICSEARCH_VARIABLE, DEFAULT_ELASTICSEARCH),
            namespace=env.get("LOGDECK_NAMESPACE", DEFAULT_NAMESPACE),
            partitions=int(env.get("LOGDECK_PARTITIONS", "6")),
            retention_days=int(env.get("LOGDECK_RETENTION_DAYS", "7")),
            max_skew_s=duration_s(env.get("LOGDECK_MAX_SKEW", "1d")),
            embedded=Path(env["LOGDECK_EMBEDDED"]) if env.get("LOGDECK_EMBEDDED") else None,
            poll_bytes=int(env.get("LOGDECK_POLL_BYTES", str(POLL_BYTES))),
            bus_max_bytes=int(env["LOGDECK_BUS_MAX_BYTES"])
            if env.get("LOGDECK_BUS_MAX_BYTES")
            else None,
            kafka_security=KafkaSecurity.from_env(env),
            elasticsearch_auth=ElasticsearchAuth.from_env(env),
            forward_security=ForwardSecurity.from_env(env),
        )
        given = {k: v for k, v in overrides.items() if v is not None}
        return replace(base, **given) if given else base  # type: ignore[arg-type]

    @property
    def elasticsearch_urls(self) -> list[str]:
        """Every Elasticsearch URL, as the client takes several nodes."""
        return split_addresses(self.elasticsearch)

    @property
    def bus_name(self) -> str:
        """What carries the topics, for messages and the console's header."""
        return "Kafka" if self.embedded is None else "Bus"

    @property
    def store_name(self) -> str:
        return "Elasticsearch" if self.embedded is None else "Store"

    @property
    def bus_address(self) -> str:
        return self.kafka if self.embedded is None else str(self.embedded / BUS_FILE)

    @property
    def store_address(self) -> str:
        return self.elasticsearch if self.embedded is None else str(self.embedded / STORE_FILE)

    @property
    def bus_label(self) -> str:
        """E.g. `Kafka at 127.0.0.1:9092`, for log lines and errors."""
        return f"{self.bus_name} at {self.bus_address}"

    @property
    def store_label(self) -> str:
        return f"{self.store_name} at {self.store_address}"

    def group(self, role: str) -> str:
        """Consumer group of a role: `indexer`, `alerter`, `monitor` in the default namespace."""
        return role if self.namespace == DEFAULT_NAMESPACE else f"{self.namespace}.{role}"
