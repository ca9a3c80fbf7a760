"""Where the local stack keeps its downloads, configuration, data, pid files and logs.

Elasticsearch refuses to run as root, so a root-run stack lives under /var/lib and is
handed to an unprivileged user; otherwise it lives in the user's own data directory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from backend.config import DEFAULT_ELASTICSEARCH, DEFAULT_KAFKA

KAFKA_VERSION = "4.1.1"
ELASTICSEARCH_VERSION = "8.19.21"

HOST = "127.0.0.1"
KAFKA_PORT = int(DEFAULT_KAFKA.rsplit(":", 1)[1])
KAFKA_CONTROLLER_PORT = KAFKA_PORT + 1
ELASTICSEARCH_PORT = urlsplit(DEFAULT_ELASTICSEARCH).port or 9200

ROOT_STACK_DIR = Path("/var/lib/logdeck/stack")


def default_stack_dir() -> Path:
    """LOGDECK_STACK_DIR if set, else /var/lib/logdeck/stack for root, else the XDG data dir."""
    if override := os.environ.get("LOGDECK_STACK_DIR"):
        return Path(override)
    if os.geteuid() == 0:
        return ROOT_STACK_DIR
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "logdeck" / "stack"


@dataclass(frozen=True, slots=True)
class Layout:
    """Every path of the stack, derived from one root directory."""

    root: Path

    @classmethod
    def default(cls) -> Layout:
        return cls(default_stack_dir())

    @property
    def dist(self) -> Path:
        """Unpacked artifacts: they are reused across starts and never hold state."""
        return self.root / "dist"

    @property
    def kafka_lib(self) -> Path:
        return self.dist / f"kafka-{KAFKA_VERSION}" / "lib"

    @property
    def kafka(self) -> Path:
        return self.root / "kafka"

    @property
    def kafka_data(self) -> Path:
        return self.kafka / "data"

    @property
    def kafka_logs(self) -> Path:
        return self.kafka / "logs"

    @property
    def elasticsearch_home(self) -> Path:
        return self.dist / f"elasticsearch-{ELASTICSEARCH_VERSION}"

    @property
    def elasticsearch(self) -> Path:
        return self.root / "elasticsearch"

    @property
    def elasticsearch_data(self) -> Path:
        return self.elasticsearch / "data"

    @property
    def elasticsearch_logs(self) -> Path:
        return self.elasticsearch / "logs"

    @property
    def cluster(self) -> Path:
        """The state of `stack up --cluster`: its nodes share only the unpacked artifacts."""
        return self.root / "cluster"
