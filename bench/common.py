"""What any benchmark here needs: services in their own processes, polling, progress, output.

A service under test runs as a subprocess, so it has a core of its own and its CPU time can
be read from /proc apart from the client's. Every wait is a bounded poll loop: a stalled
pipeline ends the run with a clear error instead of hanging it. What a run records of the
machine and the code is in bench/machine.py; the servers' checks and clean-up in
bench/servers.py.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self, TextIO

from backend.config import Settings
from simulators.traffic import PROFILES, Traffic

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
"""Where each benchmark writes its results file unless told otherwise (`--out`)."""
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class BenchError(Exception):
    """The run cannot go on (a server missing, a service dead, a wait timed out)."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def memory_kib(field: str, pid: int | str = "self") -> int:
    """A memory figure of /proc/<pid>/status (VmRSS now, VmHWM at its peak), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise BenchError(f"no {field} for process {pid}")


def logdeck_command(*args: str, profile: Path | None = None) -> list[str]:
    """The `logdeck` command line every benchmark starts (under cProfile with `profile`)."""
    profiler = ["-m", "cProfile", "-o", str(profile)] if profile else []
    return [sys.executable, *profiler, "-m", "launch", *args]


def service_flags(settings: Settings) -> list[str]:
    """The flags that put a `logdeck` service on the run's backend and namespace."""
    if settings.embedded is not None:
        where = ["--embedded", str(settings.embedded)]
    else:
        where = ["--kafka", settings.kafka, "--elasticsearch", settings.elasticsearch]
    return [*where, "--namespace", settings.namespace, "--partitions", str(settings.partitions)]


class Service:
    """A `logdeck` command in a process of its own, its output kept in `log_path`.

    Used as a context manager it is stopped at the end of the block, and an error of the
    block carries the service's last log lines. With `profile`, it runs under cProfile,
    which writes its statistics there on a clean stop (the services stop on SIGINT).
    """

    def __init__(
        self,
        name: str,
        args: Sequence[str],
        log_path: Path,
        profile: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.log_path = log_path
        with log_path.open("ab") as log:
            self._popen = subprocess.Popen(
                logdeck_command(*args, profile=profile),
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
            )

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: object, error: BaseException | None, trace: object) -> None:
        self.stop()
        if isinstance(error, BenchError):
            raise BenchError(f"{error}\nlast lines of the {self.name}:\n{self.tail()}") from None

    @property
    def pid(self) -> int:
        return self._popen.pid

    def cpu_seconds(self) -> float:
        """User plus system CPU time used so far (fields 14 and 15 of /proc/<pid>/stat)."""
        stat = Path(f"/proc/{self._popen.pid}/stat").read_text()
        fields = stat.rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS

    def peak_rss_bytes(self) -> int:
        """The most memory the process has held resident so far."""
        return memory_kib("VmHWM", self.pid) * 1024

    def check_running(self) -> None:
        code = self._popen.poll()
        if code is not None:
            raise BenchError(f"{self.name} exited with status {code}")

    def tail(self, lines: int = 15) -> str:
        text = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        return "\n".join(f"    {line}" for line in text)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop cleanly (SIGINT), or kill after `timeout` seconds."""
        if self._popen.poll() is not None:
            return
        self._popen.send_signal(signal.SIGINT)
        try:
            self._popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self._popen.kill()
            self._popen.wait(10)


def deadline_in(seconds: float) -> float:
    """A deadline on the clock of `time.monotonic` (and of asyncio's `timeout_at`)."""
    return time.monotonic() + seconds


def polls_until(deadline: float, interval: float) -> range:
    """Enough turns of a loop sleeping `interval` s to reach `deadline`, and no more."""
    return range(max(1, math.ceil((deadline - time.monotonic()) / interval)))


async def wait_for_log(service: Service, text: str, deadline: float) -> None:
    """Until `service` has logged `text`."""
    for _ in polls_until(deadline, 0.2):
        service.check_running()
        if text in service.log_path.read_text(errors="replace"):
            return
        await asyncio.sleep(0.2)
    raise BenchError(f"{service.name} did not log {text!r} in time")


def logdeck_service(
    command: str,
    settings: Settings,
    log_path: Path,
    *extra: str,
    profile: Path | None = None,
    env: dict[str, str] | None = None,
) -> Service:
    """`logdeck <command>` on the backend and namespace of `settings`, `extra` flags after."""
    return Service(
        command, [command, *service_flags(settings), *extra], log_path, profile=profile, env=env
    )


START_TIMEOUT_S = 60.0
"""How long a service may take to start."""


class Accumulator(Service):
    """`logdeck accumulator` on a port of its own, on the backend and namespace of `settings`."""

    def __init__(
        self,
        settings: Settings,
        log_path: Path,
        extra: Sequence[str] = (),
        profile: Path | None = None,
    ) -> None:
        self.port = free_port()
        flags = [*service_flags(settings), "--port", str(self.port), *extra]
        super().__init__("accumulator", ["accumulator", *flags], log_path, profile)

    async def listening(self, deadline: float | None = None) -> None:
        """Until it accepts connections (by `deadline`, or within `START_TIMEOUT_S`)."""
        for _ in polls_until(deadline or deadline_in(START_TIMEOUT_S), 0.1):
            self.check_running()
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                writer.close()
                await writer.wait_closed()
                return
            await asyncio.sleep(0.1)
        raise BenchError(f"{self.name} not listening on port {self.port} in time")


@contextlib.asynccontextmanager
async def running(work: Awaitable[Any]) -> AsyncIterator[asyncio.Future[Any]]:
    """`work` as a task for the duration of the block; cancelled if the block ends first."""
    task = asyncio.ensure_future(work)
    try:
        yield task
    finally:
        task.cancel()


def failed(task: asyncio.Future[Any]) -> Callable[[], None]:
    """A check that raises the error of `task` once it has failed."""

    def check() -> None:
        if task.done() and not task.cancelled() and task.exception() is not None:
            task.result()

    return check


async def finish(task: asyncio.Future[Any], deadline: float) -> None:
    """Wait for `task`, but not past `deadline`."""
    async with asyncio.timeout_at(deadline):
        await task


class Phase:
    """One line per phase; on a terminal it counts live while the phase runs."""

    def __init__(self, label: str, total: int, stream: TextIO = sys.stdout) -> None:
        self._label = f"  {label:<44}"
        self._total = total
        self._stream = stream
        self._live = stream.isatty()
        self._started = time.perf_counter()
        self.update(0)

    def update(self, done: int) -> None:
        if self._live:
            seconds = time.perf_counter() - self._started
            line = f"{self._label}{done:>9,} / {self._total:,}  {seconds:6.1f} s"
            self._stream.write(f"\r{line}\x1b[K")
            self._stream.flush()

    def finish(self, summary: str) -> None:
        line = f"{self._label}{summary}"
        self._stream.write(f"\r{line}\x1b[K\n" if self._live else f"{line}\n")
        self._stream.flush()


@dataclass(frozen=True, slots=True)
class Arrival:
    """How a count grew to its target, timed with `time.perf_counter`."""

    started: float
    first_at: float
    first_count: int
    done_at: float
    target: int

    @property
    def seconds(self) -> float:
        """From the start to the target."""
        return self.done_at - self.started

    @property
    def rate(self) -> float:
        return self.target / self.seconds

    @property
    def sustained_rate(self) -> float:
        """Per second from the first sighting to the target: leaves start-up costs out.

        When everything showed up at the first sighting, the whole run is the only span.
        """
        span = self.done_at - self.first_at
        return (self.target - self.first_count) / span if span > 0 else self.rate


async def watch(
    count: Callable[[], Awaitable[int]],
    target: int,
    *,
    started: float,
    deadline: float,
    interval: float,
    phase: Phase,
    checks: Sequence[Callable[[], None]] = (),
    what: str,
) -> Arrival:
    """Poll `count` every `interval` s until it reaches `target`.

    Each of `checks` runs at every poll and raises when what feeds the count has failed
    (a dead service, a client's error), ending the wait early with that error.
    """
    first: tuple[float, int] | None = None
    value = 0
    for _ in polls_until(deadline, interval):
        value = await count()
        now = time.perf_counter()
        phase.update(value)
        if value > 0 and first is None:
            first = (now, value)
        if value >= target and first is not None:
            return Arrival(started, first[0], first[1], now, target)
        for check in checks:
            check()
        await asyncio.sleep(interval)
    raise BenchError(f"timed out waiting for {what}: {value:,} of {target:,}")


def bench_settings(purpose: str, run: str | None = None) -> Settings:
    """The servers of the `LOGDECK_*` settings, in a namespace of this run's own.

    The namespace is `<run>-<purpose>`; `run` is new (`bench<random>`) unless given, so
    the roles of one run can share it.
    """
    base = Settings.from_env()
    return Settings(
        kafka=base.kafka,
        elasticsearch=base.elasticsearch,
        namespace=f"{run or new_run()}-{purpose}",
        partitions=base.partitions,
    )


def new_run() -> str:
    """A name of a run's own, the prefix of its namespaces."""
    return f"bench{uuid.uuid4().hex[:8]}"


def fleet(rng: random.Random, per_service: int, prefix: str = "") -> list[Traffic]:
    """Simulated nodes, `per_service` of each service, named `<prefix><short>-<nn>`."""
    return [
        Traffic(f"{prefix}{profile.short}-{index:02d}", profile.name, rng)
        for profile in PROFILES
        for index in range(1, per_service + 1)
    ]


def percentile(values: Sequence[float], share: float) -> float:
    """Nearest rank: the smallest value with `share` (0 to 1) of them at or below it."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def bench_parser(name: str, description: str) -> argparse.ArgumentParser:
    """The command line of `python -m bench.<name>`, with its `--out` (results/<name>.json)."""
    parser = argparse.ArgumentParser(prog=f"python -m bench.{name}", description=description)
    parser.add_argument(
        "--out",
        type=Path,
        default=RESULTS / f"{name}.json",
        help=f"results file (bench/results/{name}.json)",
    )
    return parser


def run_and_record(
    run: Callable[[argparse.Namespace], Coroutine[Any, Any, dict[str, Any]]],
    args: argparse.Namespace,
) -> int:
    """Run one benchmark and write its results to `args.out`; 1 and one line if it failed."""
    try:
        results = asyncio.run(run(args))
    except BenchError as error:
        print(f"\nbench: {error}", file=sys.stderr)
        return 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nresults written to {args.out}")
    return 0


def verdict(met: bool | None) -> str:
    """A table's cell for whether a target was met: "-" where there is none."""
    return "-" if met is None else ("yes" if met else "NO")


def render_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain-text table; the first column is left-aligned, the others right-aligned."""
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        first, *rest = cells
        return " | ".join(
            [
                first.ljust(widths[0]),
                *(cell.rjust(w) for cell, w in zip(rest, widths[1:], strict=True)),
            ]
        )

    rule = "-+-".join("-" * width for width in widths)
    return "\n".join([line(header), rule, *(line(row) for row in rows)])
