"""The embedded backend: logs/s end to end, and how soon `logdeck demo` shows logs.

End to end: the accumulator and the indexer run as processes of their own on one data
folder (`--embedded`), a client sends the logs over the Forward protocol (PackedForward
with acks), and the clock runs until the store counts every one. The baseline is SQLite
itself: the same rows written straight into an FTS5 table in batched transactions, the
ceiling the store could reach. Demo start: `logdeck demo` in a tmux pane, timed until
the console shows its first log line, beside `logdeck --help` (interpreter and imports).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shlex
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from backend.config import STORE_FILE, Settings
from backend.store.embedded import EmbeddedStore
from backend.store.query import LogQuery
from bench.common import (
    Accumulator,
    BenchError,
    Phase,
    bench_parser,
    deadline_in,
    free_port,
    logdeck_command,
    logdeck_service,
    render_table,
    run_and_record,
    watch,
)
from bench.ingest import Corpus, send_acked
from bench.machine import code_state, machine, timestamp

RATE_TARGET = 30_000
READY_TARGET_S = 3.0
_LOG_LINE = re.compile(r"\d\d:\d\d:\d\d(\.\d{3})? +(INFO|WARN|ERROR|FATAL) ")


async def end_to_end(corpus: Corpus, workdir: Path) -> dict[str, float]:
    """Forward protocol in, stored and searchable out, through two processes."""
    data = workdir / "e2e"
    settings = Settings(embedded=data, namespace="bench")
    deadline = deadline_in(60 + len(corpus.records) / 2_000)
    store = EmbeddedStore(data / STORE_FILE)
    phase = Phase("store <- indexer <- bus <- accumulator", len(corpus.records))
    try:
        with (
            Accumulator(settings, workdir / "acc.log") as accumulator,
            logdeck_service("indexer", settings, workdir / "indexer.log") as indexer,
        ):
            await accumulator.listening(deadline)
            started = time.perf_counter()
            sending = asyncio.create_task(send_acked(accumulator.port, corpus.records))

            async def stored() -> int:
                if sending.done() and sending.exception() is not None:
                    raise BenchError(f"sending failed: {sending.exception()}")
                if not (data / STORE_FILE).exists():
                    return 0
                return (await store.search_logs(LogQuery(page_size=1))).total

            arrival = await watch(
                stored,
                len(corpus.records),
                started=started,
                deadline=deadline,
                interval=0.1,
                phase=phase,
                checks=[accumulator.check_running, indexer.check_running],
                what="the logs in the embedded store",
            )
            await sending
            cpu = accumulator.cpu_seconds() + indexer.cpu_seconds()
    finally:
        await store.close()
    phase.finish(f"{arrival.target:,} logs in {arrival.seconds:.2f} s = {arrival.rate:,.0f}/s")
    return {"logs": arrival.target, "seconds": arrival.seconds, "rate": arrival.rate, "cpu": cpu}


def sqlite_ceiling(corpus: Corpus, workdir: Path, batch: int = 5_000) -> dict[str, float]:
    """The same rows into a plain FTS5 table, batched: what SQLite takes at most here."""
    connection = sqlite3.connect(workdir / "ceiling.db")
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    connection.execute(
        "CREATE TABLE logs (id INTEGER PRIMARY KEY, log_id TEXT UNIQUE, ts TEXT, level TEXT, "
        "service TEXT, node TEXT, body BLOB)"
    )
    connection.execute("CREATE VIRTUAL TABLE logs_text USING fts5(message, content='')")
    rows = [
        (log.log_id, log.timestamp, str(log.log_level), log.service_name, log.node_id, value)
        for log, value in zip(corpus.logs, corpus.values, strict=True)
    ]
    started = time.perf_counter()
    for start in range(0, len(rows), batch):
        chunk = rows[start : start + batch]
        with connection:
            cursor = connection.executemany(
                "INSERT INTO logs (log_id, ts, level, service, node, body) VALUES (?,?,?,?,?,?)",
                chunk,
            )
            first = (cursor.lastrowid or 0) - len(chunk) + 1
            connection.executemany(
                "INSERT INTO logs_text (rowid, message) VALUES (?, ?)",
                [
                    (first + offset, log.message)
                    for offset, log in enumerate(corpus.logs[start : start + batch])
                ],
            )
    seconds = time.perf_counter() - started
    connection.close()
    return {"logs": len(rows), "seconds": seconds, "rate": len(rows) / seconds}


def demo_ready(workdir: Path, runs: int) -> list[float]:
    """Seconds from `logdeck demo` starting until its console shows a log line."""
    if shutil.which("tmux") is None:
        raise BenchError("tmux is needed to time the demo (scripts/setup installs it)")
    times = []
    for run in range(runs):
        session = f"logdeck-bench-ready-{run}"
        data = workdir / f"demo-{run}"
        command = shlex.join(
            logdeck_command("demo", "--embedded", str(data), "--port", str(free_port()))
        )
        started = time.monotonic()
        subprocess.run(
            ["tmux", "new-session", "-d", "-s", session, "-x", "160", "-y", "48", command],
            check=True,
        )
        try:
            while time.monotonic() - started < 30:
                screen = subprocess.run(
                    ["tmux", "capture-pane", "-t", session, "-p"], capture_output=True, text=True
                ).stdout
                if _LOG_LINE.search(screen):
                    times.append(time.monotonic() - started)
                    break
                time.sleep(0.02)
            else:
                raise BenchError(f"the demo showed no log line in 30 s:\n{screen}")
        finally:
            subprocess.run(["tmux", "send-keys", "-t", session, "C-c"])
            time.sleep(6)
            subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
    return times


def cli_start(runs: int) -> list[float]:
    """Seconds for `logdeck --help`: the interpreter and the command's imports."""
    times = []
    for _ in range(runs):
        started = time.monotonic()
        subprocess.run(logdeck_command("--help"), check=True, capture_output=True)
        times.append(time.monotonic() - started)
    return times


async def run(args: argparse.Namespace) -> dict[str, Any]:
    print(f"logdeck embedded benchmark: {args.logs:,} logs end to end, demo start x{args.runs}")
    corpus = Corpus.generate(args.logs, args.seed)
    with tempfile.TemporaryDirectory(prefix="logdeck-bench-embedded-") as folder:
        workdir = Path(folder)
        e2e = await end_to_end(corpus, workdir)
        ceiling = sqlite_ceiling(corpus, workdir)
        ready = demo_ready(workdir, args.runs)
    help_start = cli_start(args.runs)
    ready_median = statistics.median(ready)
    rows = [
        [
            "end to end, logs/s",
            f"{e2e['rate']:,.0f}",
            f"{ceiling['rate']:,.0f} (FTS5 batched)",
            f"{e2e['rate'] / ceiling['rate']:.0%}",
            f">= {RATE_TARGET:,}",
            "yes" if e2e["rate"] >= RATE_TARGET else "NO",
        ],
        [
            "demo: first log line on screen",
            f"{ready_median:.2f} s (max {max(ready):.2f})",
            f"{statistics.median(help_start):.2f} s (logdeck --help)",
            f"{ready_median / statistics.median(help_start):.1f}x",
            f"<= {READY_TARGET_S:g} s",
            "yes" if max(ready) <= READY_TARGET_S else "NO",
        ],
    ]
    print()
    print(render_table(["figure", "value", "baseline", "ratio", "target", "met?"], rows))
    return {
        "benchmark": "embedded",
        "timestamp": timestamp(),
        "machine": machine(sqlite=sqlite3.sqlite_version),
        "code": code_state(),
        "end_to_end": e2e,
        "sqlite_fts5_ceiling": ceiling,
        "demo_ready_s": ready,
        "cli_help_s": help_start,
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = bench_parser(
        "embedded", "The embedded backend's end-to-end rate and the demo's start time."
    )
    parser.add_argument("--logs", type=int, default=300_000, help="logs sent (%(default)s)")
    parser.add_argument("--runs", type=int, default=3, help="demo starts timed (%(default)s)")
    parser.add_argument("--seed", type=int, default=7)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    return run_and_record(run, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
