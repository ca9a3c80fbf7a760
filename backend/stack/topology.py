"""Which servers a stack runs, on which ports, in which folders.

`stack up` runs one Kafka and one Elasticsearch on the default ports; `stack up --cluster`
runs three of each, as a production cluster is shaped, on ports of their own and in a
folder of its own, so both can run side by side. The nodes of both share the unpacked
artifacts (`Layout.dist`), which hold no state.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from backend.stack.layout import (
    ELASTICSEARCH_PORT,
    HOST,
    KAFKA_CONTROLLER_PORT,
    KAFKA_PORT,
    Layout,
)

CLUSTER_SIZE = 3
CLUSTER_KAFKA_PORT = 19092
"""Node n (1-3) serves clients on 19090 + 2n and its controller on the port after it."""
CLUSTER_ELASTICSEARCH_PORT = 19200
CLUSTER_TRANSPORT_PORT = 19300
CLUSTER_INTERNAL_PORT = 19100
"""Node n (1-3) takes the other brokers' connections (mutual TLS) on 19100 + n."""


@dataclass(frozen=True, slots=True)
class KafkaNode:
    """One Kafka process, broker and controller in one JVM."""

    name: str
    node_id: int
    port: int
    controller_port: int
    home: Path
    """Its configuration, pid file, data and logs."""
    internal_port: int | None = None
    """The brokers' own listener, apart from the clients' when the cluster is secured."""

    @property
    def ports(self) -> tuple[int, ...]:
        """Every port it listens on."""
        internal = () if self.internal_port is None else (self.internal_port,)
        return (self.port, *internal, self.controller_port)

    @property
    def data(self) -> Path:
        return self.home / "data"

    @property
    def logs(self) -> Path:
        return self.home / "logs"

    @property
    def properties(self) -> Path:
        return self.home / "server.properties"


@dataclass(frozen=True, slots=True)
class ElasticsearchNode:
    """One Elasticsearch process."""

    name: str
    node_name: str
    http_port: int
    transport_port: int | None
    """None: the first free port of Elasticsearch's default range (9300-9399)."""
    home: Path
    """Its pid file, data and logs."""
    config: Path
    """The folder of its elasticsearch.yml and the rest of the distribution's config."""

    @property
    def data(self) -> Path:
        return self.home / "data"

    @property
    def logs(self) -> Path:
        return self.home / "logs"


@dataclass(frozen=True, slots=True)
class Topology:
    """The servers of one stack, and how clients reach them."""

    name: str
    """The Elasticsearch cluster name, which also names the stack in messages."""
    layout: Layout
    """Where the artifacts all nodes run from are unpacked."""
    kafka: tuple[KafkaNode, ...]
    elasticsearch: tuple[ElasticsearchNode, ...]
    secrets: Path | None = None
    """Where a secured stack keeps its certificates and passwords (mode 0700); None: the
    stack is open (PLAINTEXT, no ACLs), as the single one is."""

    @property
    def is_cluster(self) -> bool:
        return len(self.kafka) > 1

    @property
    def bootstrap(self) -> str:
        """Every broker, comma-separated, as `LOGDECK_KAFKA` takes them."""
        return ",".join(f"{HOST}:{node.port}" for node in self.kafka)

    @property
    def elasticsearch_urls(self) -> str:
        """Every node's URL, comma-separated, as `LOGDECK_ELASTICSEARCH` takes them."""
        return ",".join(f"http://{HOST}:{node.http_port}" for node in self.elasticsearch)


def single(layout: Layout) -> Topology:
    """The one-node stack of `stack up`, in the folders it has always used."""
    kafka = KafkaNode(
        name="Kafka",
        node_id=1,
        port=KAFKA_PORT,
        controller_port=KAFKA_CONTROLLER_PORT,
        home=layout.kafka,
    )
    elasticsearch = ElasticsearchNode(
        name="Elasticsearch",
        node_name="logdeck-1",
        http_port=ELASTICSEARCH_PORT,
        transport_port=None,
        home=layout.elasticsearch,
        config=layout.elasticsearch_home / "config",
    )
    return Topology("logdeck", layout, (kafka,), (elasticsearch,))


def cluster(layout: Layout) -> Topology:
    """Three Kafka and three Elasticsearch nodes under `Layout.cluster`; its Kafka secured."""
    numbers = range(1, CLUSTER_SIZE + 1)
    kafka = tuple(
        KafkaNode(
            name=f"Kafka-{n}",
            node_id=n,
            port=CLUSTER_KAFKA_PORT + 2 * (n - 1),
            controller_port=CLUSTER_KAFKA_PORT + 2 * (n - 1) + 1,
            home=layout.cluster / f"kafka-{n}",
            internal_port=CLUSTER_INTERNAL_PORT + n,
        )
        for n in numbers
    )
    elasticsearch = tuple(
        ElasticsearchNode(
            name=f"Elasticsearch-{n}",
            node_name=f"logdeck-cluster-{n}",
            http_port=CLUSTER_ELASTICSEARCH_PORT + n - 1,
            transport_port=CLUSTER_TRANSPORT_PORT + n - 1,
            home=layout.cluster / f"elasticsearch-{n}",
            config=layout.cluster / f"elasticsearch-{n}" / "config",
        )
        for n in numbers
    )
    return Topology("logdeck-cluster", layout, kafka, elasticsearch, layout.cluster / "secrets")
