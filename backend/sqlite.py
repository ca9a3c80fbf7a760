"""What the embedded bus and store share about SQLite files that several processes open.

Every SQLite call runs on a `Worker`: a thread of its own with its own connection, so the
event loop never waits on the file. A job groups its statements in `transaction`s, and
the worker turns what goes wrong with the file into the caller's "unavailable" error, which
callers retry.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


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


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection, *, write: bool) -> Iterator[None]:
    """A transaction: IMMEDIATE for writes (the lock first, so no upgrade can fail later).

    Whatever escapes the block rolls it back, and goes on up unchanged.
    """
    conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
    try:
        yield
    except BaseException:
        if conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


class Worker:
    """One thread with its own connection to `path`: the jobs given to `run` run there, in turn.

    The connection opens at the first job (and again after an I/O error), with `busy_timeout_s`
    to wait for other writers, then `prepare(conn)` sets it up (pragmas, WAL, schema).
    `unavailable(detail)` makes the error raised when the file is locked, busy, unreadable or
    cannot be created; a job's `IntegrityError` or `ProgrammingError` (a bug, not the file)
    and its own exceptions go up unchanged. After `close()`, or in a forked child, the next
    job starts a new thread and connection.
    """

    def __init__(
        self,
        path: Path,
        *,
        prepare: Callable[[sqlite3.Connection], None],
        unavailable: Callable[[str], Exception],
        busy_timeout_s: float,
        name: str,
    ) -> None:
        self._path = path
        self._prepare = prepare
        self._unavailable = unavailable
        self._busy_timeout_s = busy_timeout_s
        self._name = name
        self._executor: ThreadPoolExecutor | None = None
        self._pid = 0
        self._conn: sqlite3.Connection | None = None  # on the worker thread only
        self._lock = threading.Lock()

    async def run(self, job: Callable[[sqlite3.Connection], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(
            self._executor_here(), self._call, job
        )

    async def close(self) -> None:
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is None:
            return
        if self._pid == os.getpid():
            await asyncio.get_running_loop().run_in_executor(executor, self._disconnect)
        executor.shutdown(wait=False)

    def _executor_here(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._executor is None or self._pid != os.getpid():
                # A forked child has no worker thread, and its parent's connection is not its own.
                self._conn = None
                self._pid = os.getpid()
                self._executor = ThreadPoolExecutor(1, thread_name_prefix=self._name)
            return self._executor

    def _call(self, job: Callable[[sqlite3.Connection], T]) -> T:
        try:
            return job(self._connection())
        except sqlite3.DatabaseError as error:
            if isinstance(error, sqlite3.ProgrammingError | sqlite3.IntegrityError):
                raise
            message = str(error)
            if "locked" not in message and "busy" not in message:
                self._disconnect()  # an I/O error: open the file afresh next time
            raise self._unavailable(f"{self._path}: {message}") from error
        except OSError as error:  # its folder cannot be made
            raise self._unavailable(f"{self._path}: {error}") from error

    def _connection(self) -> sqlite3.Connection:
        if self._conn is not None:
            return self._conn
        self._path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            self._path, timeout=self._busy_timeout_s, isolation_level=None, check_same_thread=True
        )
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_s * 1000)}")
            self._prepare(conn)
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        return conn

    def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
