"""What `up`, `down` and `status` need to know about one server, whichever it is."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from backend.stack import process
from backend.stack.errors import StackError


class State(Enum):
    RUNNING = "running"
    NOT_ANSWERING = "not answering"
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class Status:
    """A server's state as `status` reports it."""

    server: Server
    state: State
    pid: int | None

    def line(self, name_width: int = 13) -> str:
        """One aligned line: name, state, address, pid, log."""
        pid = f"pid {self.pid}" if self.pid is not None else "-"
        return (
            f"{self.server.name:<{name_width}} {self.state.value:<13} {self.server.address:<22} "
            f"{pid:<11} log {self.server.log}"
        )


@dataclass(frozen=True, slots=True)
class Server:
    """One local server: where it listens, how to recognise our process, how to probe it."""

    name: str
    host: str
    ports: tuple[int, ...]  # the client port first
    pid_file: Path
    markers: tuple[str, ...]
    log: Path
    console_log: Path
    ready: Callable[[], bool]
    start_timeout: float
    stop_timeout: float

    @property
    def address(self) -> str:
        return f"{self.host}:{self.ports[0]}"

    def pid(self) -> int | None:
        """The pid of our running server, or None."""
        return process.owned_pid(self.pid_file, self.markers)

    def status(self) -> Status:
        pid = self.pid()
        if pid is None:
            return Status(self, State.STOPPED, None)
        return Status(self, State.RUNNING if self.ready() else State.NOT_ANSWERING, pid)

    def check_ports_free(self) -> None:
        """Fail if another program holds one of our ports (call only while ours is stopped)."""
        for port in self.ports:
            if process.port_open(self.host, port):
                owner = process.describe_pid(process.listener_pid(port))
                raise StackError(
                    f"{self.host}:{port} is taken by {owner}, not by our {self.name}; "
                    "stop it or free the port"
                )

    def wait_ready(self, launcher: int | None, since: float) -> float:
        """Wait until the server answers; return the seconds since `since`.

        `launcher` is the process we started (None if it was already running): once
        neither it nor the server of the pid file is alive, the start has failed.
        """
        deadline = since + self.start_timeout
        while not self.ready():
            if self.pid() is None and (launcher is None or not process.alive(launcher)):
                raise StackError(
                    f"{self.name} exited during start-up; see {self.log} and {self.console_log}"
                )
            if time.monotonic() >= deadline:
                raise StackError(
                    f"{self.name} did not answer on {self.address} within "
                    f"{self.start_timeout:.0f} s; see {self.log}"
                )
            time.sleep(0.25)
        return time.monotonic() - since

    def stop(self) -> int | None:
        """Stop our server if it runs; return the pid it had."""
        return stop_all([self])[0]


def stop_all(servers: Sequence[Server]) -> list[int | None]:
    """Stop our servers that run, all at once; return the pid each had.

    At once, because the Kafka nodes of a cluster are its controllers too: stopped one
    after another, the last ones wait for a quorum that has gone.
    """
    pids = [srv.pid() for srv in servers]
    process.terminate_all(
        [pid for pid in pids if pid is not None], max(srv.stop_timeout for srv in servers)
    )
    for srv in servers:
        with contextlib.suppress(FileNotFoundError):
            srv.pid_file.unlink()
    return pids
