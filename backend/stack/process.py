"""Process and port helpers: pid files, who listens on a port, detached start, stop.

The servers are started detached (re-parented to init, in their own session) so they
outlive the command or test that started them; a pid file plus a command-line check tells
our server from whatever else might hold the pid or the port.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

_LISTEN = "0A"
# Runs the command in the background with its output appended to a log, then prints its pid.
_DETACH = '"$@" >>"$0" 2>&1 </dev/null & echo $!'


def alive(pid: int) -> bool:
    """True if the process exists and is not a zombie (an init that never reaps leaves those)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8")
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def cmdline(pid: int) -> str:
    """The command line of a process, arguments joined by spaces ('' if it is gone)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.rstrip(b"\0").replace(b"\0", b" ").decode("utf-8", "replace")


def read_pid(pid_file: Path) -> int | None:
    try:
        return int(pid_file.read_text(encoding="utf-8").strip())
    except (OSError, ValueError):
        return None


def owned_pid(pid_file: Path, markers: Sequence[str]) -> int | None:
    """The pid in the file if that process is alive and its command line has every marker."""
    pid = read_pid(pid_file)
    if pid is None or not alive(pid):
        return None
    line = cmdline(pid)
    return pid if all(marker in line for marker in markers) else None


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """True if something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def listening_inodes(proc_net_tcp: str, port: int) -> set[int]:
    """Socket inodes listening on `port` in the text of /proc/net/tcp or /proc/net/tcp6."""
    inodes: set[int] = set()
    for line in proc_net_tcp.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 10 or fields[3] != _LISTEN:
            continue
        if int(fields[1].rsplit(":", 1)[1], 16) == port:
            inodes.add(int(fields[9]))
    return inodes


def listener_pid(port: int) -> int | None:
    """The pid of a process listening on `port`, if /proc lets us see it."""
    inodes: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            inodes |= listening_inodes(Path(table).read_text(encoding="utf-8"), port)
    targets = {f"socket:[{inode}]" for inode in inodes}
    if not targets:
        return None
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in (proc / "fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) in targets:
                        return int(proc.name)
    return None


def describe_pid(pid: int | None) -> str:
    """'pid 123 (java)' for error messages, or 'another program' when /proc hides the owner."""
    if pid is None:
        return "another program"
    try:
        name = Path(f"/proc/{pid}/comm").read_text(encoding="utf-8").strip()
    except OSError:
        return f"pid {pid}"
    return f"pid {pid} ({name})"


def spawn_detached(command: Sequence[str], log: Path, cwd: Path, env: Mapping[str, str]) -> int:
    """Start `command` in its own session, output appended to `log`; return its pid."""
    shown = subprocess.run(
        ["sh", "-c", _DETACH, str(log), *command],
        cwd=cwd,
        env=dict(env),
        start_new_session=True,
        capture_output=True,
        text=True,
        check=True,
    )
    return int(shown.stdout.strip())


def wait_until(condition: Callable[[], bool], timeout: float, interval: float = 0.2) -> bool:
    """Poll `condition` until it holds (True) or `timeout` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def terminate_all(pids: Sequence[int], timeout: float) -> None:
    """SIGTERM to all, then SIGKILL to those still there after `timeout` seconds."""

    def send(sig: signal.Signals) -> None:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    def gone() -> bool:
        return not any(alive(pid) for pid in pids)

    send(signal.SIGTERM)
    if wait_until(gone, timeout):
        return
    send(signal.SIGKILL)
    wait_until(gone, 10.0)
