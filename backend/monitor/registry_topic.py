"""Reading the compacted registry topic back: the latest entry of every node it holds."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from backend.bus import Incoming
from backend.schemas import InvalidRecord, NodeEntry, decode_as


def latest_entries(records: Iterable[Incoming], log: logging.Logger) -> dict[str, NodeEntry]:
    """Node id -> its latest entry; a tombstone (a retired node) removes the node, and a
    record that is not an entry is skipped with a warning."""
    latest: dict[str, NodeEntry] = {}
    for record in records:
        if not record.value:
            latest.pop(record.key.decode("utf-8", "replace") if record.key else "", None)
            continue
        try:
            entry = decode_as(record.value, NodeEntry)
        except InvalidRecord as error:
            log.warning("skipping a registry record at offset %d: %s", record.offset, error)
            continue
        latest[entry.node_id] = entry
    return latest
