"""The latest state of each alert and node, kept as Elasticsearch keeps them with external
versioning: a replayed older state never overwrites a newer one. A retired node keeps an
empty row, its tombstone, so an older state replayed after it cannot bring the node back."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

import msgspec

from backend.schemas import Alert, NodeEntry, RetiredNode
from backend.sqlite import transaction
from backend.store.base import BulkOutcome, Snapshot
from backend.store.embedded.schema import encode

_decode_alert = msgspec.json.Decoder(Alert).decode
_decode_node = msgspec.json.Decoder(NodeEntry).decode


def put_snapshots(snapshots: Sequence[Snapshot], conn: sqlite3.Connection) -> BulkOutcome:
    alerts: list[tuple[str, int, bytes]] = []
    nodes: list[tuple[str, int, bytes]] = []
    for snapshot in snapshots:
        state = snapshot.state
        if isinstance(state, Alert):
            alerts.append((state.alert_id, snapshot.version, encode(state)))
        elif isinstance(state, RetiredNode):
            nodes.append((state.node_id, snapshot.version, b""))
        else:
            nodes.append((state.node_id, snapshot.version, encode(state)))
    stored = 0
    with transaction(conn, write=True):
        for table, key, rows in (("alerts", "alert_id", alerts), ("nodes", "node_id", nodes)):
            if rows:
                # Like external versioning: only a strictly newer version replaces a state.
                cursor = conn.executemany(
                    f"INSERT INTO {table} VALUES (?, ?, ?) ON CONFLICT ({key}) DO UPDATE SET "
                    f"version = excluded.version, doc = excluded.doc "
                    f"WHERE excluded.version > {table}.version",
                    rows,
                )
                stored += cursor.rowcount
    return BulkOutcome(stored=stored, duplicates=len(snapshots) - stored)


def stored_alerts(conn: sqlite3.Connection) -> list[Alert]:
    rows = conn.execute("SELECT doc FROM alerts ORDER BY alert_id").fetchall()
    return [_decode_alert(doc) for (doc,) in rows]


def stored_nodes(conn: sqlite3.Connection) -> list[NodeEntry]:
    rows = conn.execute("SELECT doc FROM nodes WHERE doc != x'' ORDER BY node_id").fetchall()
    return [_decode_node(doc) for (doc,) in rows]
