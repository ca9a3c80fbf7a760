"""The bus on one SQLite file, so `logdeck demo` runs with Python alone (no Kafka).

The demo's services are separate processes sharing one database file in WAL mode, where
readers never wait for the writer. The file holds what a Kafka cluster would: topics
and their partitions, records, consumer groups and their offsets, transactional ids.

- `bus`: `EmbeddedBus`, which makes the readers and publishers below.
- `file`: what they share: the worker thread running every SQLite call, what is known of
  the topics (`topics`), writing and reading records (`records`), the wake-up `signal`.
- `schema`: the tables, and how a record's rowid places it in its partition.
- `publishing`, `subscription`, `groups`: publishers, readers, consumer groups.
- `retention`: how much each topic keeps.
"""

from backend.bus.embedded.bus import EmbeddedBus
from backend.bus.embedded.publishing import EmbeddedPublisher, EmbeddedTransactionalPublisher
from backend.bus.embedded.retention import DEFAULT_RETENTION, Retention
from backend.bus.embedded.subscription import EmbeddedSubscription, EmbeddedTail

__all__ = [
    "DEFAULT_RETENTION",
    "EmbeddedBus",
    "EmbeddedPublisher",
    "EmbeddedSubscription",
    "EmbeddedTail",
    "EmbeddedTransactionalPublisher",
    "Retention",
]
