"""Kafka gone and back under acknowledged load, on the single stack of `logdeck stack up`.

A sender in a process of its own (`bench.failover`'s: `--rate` logs/s through an
`AckSender`, noting every 10 ms how many logs it emitted and how many the accumulator
acknowledged) logs through `logdeck accumulator` into `logdeck indexer`. After a warm-up
the broker is SIGKILLed; the accumulator holds its acknowledgements while Kafka is gone.
After `--down` seconds the broker is started again through the stack's own code, which
returns once it answers. The figure is how long after that the acknowledgements resume,
beside the longest gap between acknowledgements before the kill; then the store is counted
by log_id against what was acknowledged: none lost, none twice.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from elasticsearch import AsyncElasticsearch

from backend.stack import kafka
from bench.common import (
    BenchError,
    Service,
    bench_parser,
    bench_settings,
    deadline_in,
    free_port,
    logdeck_service,
    new_run,
    polls_until,
    render_table,
    run_and_record,
)
from bench.failover import Load, Sent, exactly_once, gaps, listening, longest, row_cells
from bench.machine import announce, stack_machine, timestamp
from bench.servers import check_kafka, drop_indices, drop_topics, elasticsearch_version

PARTITIONS = 6
TARGET_RESUME_S = 10.0


async def running(seconds: float, services: Sequence[Service], load: Load) -> None:
    """Let the load run for `seconds`, failing early if a service or the sender died."""
    for _ in polls_until(deadline_in(seconds), 0.5):
        for service in services:
            service.check_running()
        load.check_running()
        await asyncio.sleep(0.5)


def kill_kafka() -> float:
    """SIGKILL the stack's broker; the wall time of the kill."""
    pid = kafka.server().pid()
    if pid is None:
        raise BenchError("Kafka is not running (`logdeck stack up`)")
    killed = time.time()
    os.kill(pid, signal.SIGKILL)
    return killed


def resumed_after(sent: Sent, returned: float) -> float | None:
    """From the broker's return until the acknowledged count next grew."""
    return next((at - returned for at in sent.advances() if at >= returned), None)


async def measure(args: argparse.Namespace, es: AsyncElasticsearch, run: str) -> dict[str, Any]:
    settings = replace(bench_settings("restart", run), partitions=PARTITIONS)
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="logdeck-bench-restart-") as name:
        folder = Path(name)
        services = [
            logdeck_service(
                "accumulator", settings, folder / "accumulator.log", "--port", str(port)
            ),
            logdeck_service("indexer", settings, folder / "indexer.log"),
        ]
        try:
            await listening(services[0], port)
            load = Load(port, args.rate, "restart", folder)
            await running(args.warmup, services, load)
            killed = kill_kafka()
            print(f"  Kafka killed; down for {args.down:g} s", flush=True)
            await running(args.down, services, load)
            restart_s = await asyncio.to_thread(kafka.start_kafka)
            returned = time.time()
            print(f"  Kafka back after a {restart_s:.1f} s start", flush=True)
            await running(args.settle, services, load)
            sent = await load.finish()
            counted = await exactly_once(es, settings, sent)
        except BenchError as error:
            tails = "\n".join(f"  {s.name}:\n{s.tail()}" for s in services)
            raise BenchError(f"{error}\n{tails}") from None
        finally:
            for service in reversed(services):
                service.stop()
            with contextlib.suppress(Exception):
                await drop_indices(es, settings)
                await drop_topics(settings)
    resumed = resumed_after(sent, returned)
    return {
        "acks_resumed_after_return_s": None if resumed is None else round(resumed, 3),
        "longest_ack_gap_before_kill_s": longest(
            [b - a for a, b in itertools.pairwise(sent.advances()) if b <= killed]
        ),
        "ack_pause_s": longest(gaps(sent.advances(), killed, time.time())),
        "kafka_start_s": round(restart_s, 1),
        **counted,
    }


def figures(found: dict[str, Any]) -> list[dict[str, Any]]:
    resumed = found["acks_resumed_after_return_s"]
    calm = found["longest_ack_gap_before_kill_s"]
    wrong = found["lost"] + found["duplicated"]
    return [
        {
            "figure": "acks resume after Kafka is back",
            "value": "never" if resumed is None else f"{resumed:.2f} s",
            "baseline": f"{calm:.2f} s (longest ack gap before the kill)",
            "target": f"< {TARGET_RESUME_S:.0f} s",
            "met": resumed is not None and resumed < TARGET_RESUME_S,
        },
        {
            "figure": "acks held, kill to resume",
            "value": f"{found['ack_pause_s']:.2f} s",
            "baseline": "-",
        },
        {
            "figure": "acked / lost / duplicated",
            "value": f"{found['acked']:,} / {found['lost']} / {found['duplicated']}",
            "baseline": "-",
            "target": "0 lost, 0 dup",
            "met": wrong == 0,
        },
    ]


async def run(args: argparse.Namespace) -> dict[str, Any]:
    settings = bench_settings("probe")
    await check_kafka(settings)  # the namespace is not made: only the addresses are used
    es = AsyncElasticsearch(settings.elasticsearch, request_timeout=60)
    try:
        info = stack_machine(await elasticsearch_version(es, settings.elasticsearch))
        run_name = new_run()
        code = await announce(
            f"logdeck Kafka restart benchmark: {args.rate:,.0f} logs/s through acknowledging "
            f"senders, Kafka down {args.down:g} s, run {run_name}, {info['nproc']} CPUs",
            info,
        )
        found = await measure(args, es, run_name)
    finally:
        await es.close()
    rows = figures(found)
    print()
    print(
        render_table(
            ["figure", "value", "baseline", "target", "met?"], [row_cells(r) for r in rows]
        )
    )
    return {
        "benchmark": "restart",
        "timestamp": timestamp(),
        "run": run_name,
        "settings": {
            "rate": args.rate,
            "warmup_s": args.warmup,
            "down_s": args.down,
            "settle_s": args.settle,
            "partitions": PARTITIONS,
        },
        "targets": {"acks_resumed_s": TARGET_RESUME_S, "lost": 0, "duplicated": 0},
        "found": found,
        "figures": rows,
        "met": all(r["met"] for r in rows if r.get("met") is not None),
        "machine": info,
        "code": code,
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = bench_parser("restart", "How soon acks resume once a killed Kafka is back.")
    parser.add_argument("--rate", type=float, default=2_000, help="logs/s (%(default)s)")
    parser.add_argument("--warmup", type=float, default=15, help="seconds before the kill")
    parser.add_argument("--down", type=float, default=20, help="seconds Kafka stays down")
    parser.add_argument("--settle", type=float, default=20, help="seconds after its return")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    return run_and_record(run, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
