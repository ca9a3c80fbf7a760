"""How far consumer groups are behind on their topics, read from the bus file's tables."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence

from backend.bus.embedded.schema import MASK, SHIFT, ends
from backend.bus.embedded.topics import Topics
from backend.sqlite import transaction


def group_lags(
    topics: Topics, groups: Mapping[str, Sequence[str]], conn: sqlite3.Connection
) -> dict[str, int | None]:
    """For each group, the records of its topics past its committed offsets (from the first
    record kept on a partition it never committed); None for a group that has committed
    nothing at all."""
    lags: dict[str, int | None] = {}
    with transaction(conn, write=False):
        for group, names in groups.items():
            lags[group] = _lag(topics, group, names, conn)
    return lags


def _lag(topics: Topics, group: str, names: Sequence[str], conn: sqlite3.Connection) -> int | None:
    committed = dict(
        conn.execute("SELECT lane, offset FROM offsets WHERE grp = ?", (group,)).fetchall()
    )
    if not committed:
        return None
    lanes = [lane for topic in topics.known(conn, names).values() for lane in topic.lanes]
    next_offsets = ends(conn, lanes) if lanes else {}
    lag = 0
    for lane in lanes:
        start = committed.get(lane)
        if start is None:
            (first,) = conn.execute(
                "SELECT min(rowid) FROM records WHERE rowid >= ? AND rowid < ?",
                (lane << SHIFT, (lane + 1) << SHIFT),
            ).fetchone()
            start = next_offsets[lane] if first is None else first & MASK
        lag += max(0, next_offsets[lane] - start)
    return lag
