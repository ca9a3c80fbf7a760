"""What the embedded bus and store share about SQLite files that several processes open."""

from __future__ import annotations

import sqlite3
import time


def use_wal(conn: sqlite3.Connection, patience_s: float = 5.0) -> None:
    """Put `conn`'s file in WAL mode, waiting out another connection doing the same.

    The switch takes an exclusive lock without calling the busy handler, so two processes
    opening a new file at the same moment would otherwise see "database is locked" at once.
    """
    deadline = time.monotonic() + patience_s
    while True:
        try:
            (mode,) = conn.execute("PRAGMA journal_mode = WAL").fetchone()
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)
            continue
        if str(mode).lower() != "wal":
            raise sqlite3.OperationalError(f"cannot use WAL mode (journal mode {mode})")
        return
