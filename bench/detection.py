"""Dead-node detection by the heartbeat monitor, and its false alarms, at load on the real Kafka.

A fleet of simulated nodes (one process each, logging at a steady rate) runs through an
accumulator while `logdeck monitor` watches it. First a soak: every node stays up, so any
NODE_DOWN is a false alarm. Then nodes are SIGKILLed one after another, spread over the
heartbeat interval so every phase of it is hit; each one's detection time runs from its
kill to the Kafka timestamp of the RaiseAlert the monitor published for it, so the
bench's own polling adds nothing. The survivors keep running meanwhile: a NODE_DOWN for
one of them, or a second one for a victim, also counts as a false alarm.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from backend.bus.kafka.bus import KafkaBus
from backend.bus.kafka.subscription import KafkaSubscription
from backend.config import Settings
from backend.monitor.service import node_down_fingerprint
from backend.schemas import NodeEntry, NodeStatus, decode_as
from backend.stack.layout import KAFKA_VERSION
from bench.common import (
    START_TIMEOUT_S,
    Accumulator,
    BenchError,
    Phase,
    Service,
    bench_parser,
    bench_settings,
    deadline_in,
    logdeck_service,
    percentile,
    polls_until,
    render_table,
    run_and_record,
    verdict,
    wait_for_log,
)
from bench.machine import announce, machine, timestamp
from bench.servers import check_kafka, drop_topics

DETECTION_MARGIN_S = 0.5
"""Target: every kill raised within the timeout plus this."""
STAGGER_INTERVALS = 0.685
"""Kills this many heartbeat intervals apart fall on ever other phases of the interval."""
_STARTED = re.compile(r"^started node_id=(\S+) service=\S+ pid=(\d+)$", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Command:
    """An alert command on Kafka: its kind, fingerprint and Kafka timestamp (s)."""

    kind: str
    fingerprint: str
    at: float


class Commands:
    """Every alert command the monitor publishes, collected from the start of the topic."""

    def __init__(self, settings: Settings) -> None:
        bus = KafkaBus(settings.kafka, settings.partitions)
        self._subscription: KafkaSubscription = bus.subscription(
            [settings.topics.alert_commands], None
        )
        self.seen: list[Command] = []

    async def collect(self) -> None:
        await self._subscription.start()
        try:
            while True:
                for record in await self._subscription.poll(1000, timeout_ms=100):
                    body = json.loads(record.value)
                    self.seen.append(
                        Command(body["command"], body["fingerprint"], record.timestamp_ms / 1000)
                    )
        finally:
            await self._subscription.stop()

    def raised(self) -> list[Command]:
        return [command for command in self.seen if command.kind == "RAISE"]


@dataclass(frozen=True, slots=True)
class Kill:
    node_id: str
    killed_at: float
    raised_at: float | None
    last_heartbeat_at: float | None

    @property
    def detection_s(self) -> float | None:
        return None if self.raised_at is None else self.raised_at - self.killed_at

    @property
    def after_last_heartbeat_s(self) -> float | None:
        if self.raised_at is None or self.last_heartbeat_at is None:
            return None
        return self.raised_at - self.last_heartbeat_at


async def registry(bus: KafkaBus, settings: Settings) -> dict[str, NodeEntry]:
    records = await bus.snapshot(settings.topics.registry)
    return {
        entry.node_id: entry for entry in (decode_as(record.value, NodeEntry) for record in records)
    }


async def fleet_pids(fleet: Service, nodes: int, deadline: float) -> dict[str, int]:
    """node_id -> pid, from the `started` lines of `logdeck simulate`."""
    for _ in polls_until(deadline, 0.2):
        fleet.check_running()
        found = _STARTED.findall(fleet.log_path.read_text(errors="replace"))
        if len(found) >= nodes:
            return {node: int(pid) for node, pid in found}
        await asyncio.sleep(0.2)
    raise BenchError(f"the fleet did not start {nodes} nodes in time")


async def all_up(bus: KafkaBus, settings: Settings, nodes: Sequence[str], deadline: float) -> None:
    phase = Phase("nodes UP in the registry", len(nodes))
    for _ in polls_until(deadline, 0.5):
        entries = await registry(bus, settings)
        up = sum(
            1
            for node in nodes
            if node in entries
            and entries[node].status is NodeStatus.UP
            and entries[node].last_heartbeat
        )
        phase.update(up)
        if up == len(nodes):
            phase.finish(f"{up} of {len(nodes)}")
            return
        await asyncio.sleep(0.5)
    raise BenchError("not every node was UP in the registry in time")


async def soak(seconds: float, commands: Commands, checks: Sequence[Service]) -> int:
    """Every node up for `seconds`: the NODE_DOWNs raised meanwhile, all false."""
    phase = Phase(f"soak, every node up ({seconds:g} s)", round(seconds))
    started = time.monotonic()
    while (elapsed := time.monotonic() - started) < seconds:
        for service in checks:
            service.check_running()
        phase.update(round(elapsed))
        await asyncio.sleep(min(1.0, seconds - elapsed))
    false_alarms = len(commands.raised())
    phase.finish(f"{false_alarms} NODE_DOWN raised")
    return false_alarms


async def kill_and_detect(
    victims: dict[str, int],
    stagger: float,
    wait_until: float,
    commands: Commands,
    bus: KafkaBus,
    settings: Settings,
) -> list[Kill]:
    """SIGKILL each victim, `stagger` s apart; wait for each one's RaiseAlert.

    The wait ends `wait_until` seconds after the last kill at the latest.
    """
    phase = Phase(f"SIGKILL {len(victims)} nodes, {stagger:g} s apart", len(victims))
    killed: dict[str, float] = {}
    for node, pid in victims.items():
        killed[node] = time.time()
        os.kill(pid, signal.SIGKILL)
        await asyncio.sleep(stagger)
    fingerprints = {node_down_fingerprint(node): node for node in victims}
    raised: dict[str, float] = {}
    for _ in polls_until(deadline_in(wait_until), 0.2):
        for command in commands.raised():
            victim = fingerprints.get(command.fingerprint)
            if victim is not None:
                raised.setdefault(victim, command.at)
        phase.update(len(raised))
        if len(raised) == len(victims):
            break
        await asyncio.sleep(0.2)
    entries = await registry(bus, settings)
    kills = [
        Kill(node, at, raised.get(node), _seconds(entries.get(node))) for node, at in killed.items()
    ]
    slowest = max((k.detection_s for k in kills if k.detection_s is not None), default=None)
    phase.finish(
        f"{len(raised)} raised, slowest after {slowest:.2f} s"
        if slowest is not None
        else "none raised"
    )
    return kills


def _seconds(entry: NodeEntry | None) -> float | None:
    if entry is None or entry.last_heartbeat is None:
        return None
    return datetime.fromisoformat(entry.last_heartbeat).timestamp()


def false_alarms_during_kills(commands: Commands, victims: set[str], since: float) -> list[str]:
    """RaiseAlerts after `since` for survivors, and any second one for a victim."""
    wrong: list[str] = []
    per_victim: dict[str, int] = {}
    for command in commands.raised():
        if command.at < since:
            continue
        node = command.fingerprint.partition(":")[2]
        if node in victims:
            per_victim[node] = per_victim.get(node, 0) + 1
            if per_victim[node] > 1:
                wrong.append(f"{node} raised again")
        else:
            wrong.append(f"{node} raised while running")
    return wrong


def describe(values: Sequence[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "min": ordered[0],
        "median": statistics.median(ordered),
        "p95": percentile(ordered, 0.95),
        "max": ordered[-1],
        "mean": statistics.fmean(ordered),
    }


async def measure(args: argparse.Namespace, settings: Settings, workdir: Path) -> dict[str, Any]:
    bus = KafkaBus(settings.kafka, settings.partitions)
    deadline = deadline_in(START_TIMEOUT_S)
    with contextlib.ExitStack() as services:
        accumulator = services.enter_context(Accumulator(settings, workdir / "accumulator.log"))
        await accumulator.listening(deadline)
        monitor = services.enter_context(
            logdeck_service(
                "monitor", settings, workdir / "monitor.log", "--timeout", str(args.timeout)
            )
        )
        await wait_for_log(monitor, "caught up on all", deadline)
        commands = Commands(settings)
        collector = asyncio.create_task(commands.collect())
        try:
            fleet = services.enter_context(
                Service(
                    "fleet",
                    [
                        "simulate",
                        "--nodes",
                        str(args.nodes),
                        "--rate",
                        str(args.rate),
                        "--duration",
                        "0",
                        "--heartbeat-interval",
                        str(args.heartbeat_interval),
                        "--port",
                        str(accumulator.port),
                        "--node-prefix",
                        f"{settings.namespace}-",
                    ],
                    workdir / "fleet.log",
                )
            )
            pids = await fleet_pids(fleet, args.nodes, deadline)
            await all_up(bus, settings, list(pids), deadline_in(START_TIMEOUT_S))
            soak_false = await soak(args.soak, commands, [accumulator, monitor, fleet])
            cpu_before = monitor.cpu_seconds()
            chosen = random.Random(args.seed).sample(sorted(pids), args.kill)
            kills_started = time.time()
            kills = await kill_and_detect(
                {node: pids[node] for node in chosen},
                args.heartbeat_interval * STAGGER_INTERVALS,
                args.timeout + 15,
                commands,
                bus,
                settings,
            )
            kill_false = false_alarms_during_kills(commands, set(chosen), kills_started)
            monitor_cpu = monitor.cpu_seconds() - cpu_before
            kill_seconds = time.time() - kills_started
        finally:
            collector.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await collector
    return {
        "soak_false_alarms": soak_false,
        "kill_false_alarms": kill_false,
        "kills": kills,
        "monitor_cpu_seconds_during_kills": monitor_cpu,
        "kill_phase_seconds": kill_seconds,
    }


def report(args: argparse.Namespace, measured: dict[str, Any]) -> dict[str, Any]:
    kills: list[Kill] = measured["kills"]
    target = args.timeout + DETECTION_MARGIN_S
    detected = [k.detection_s for k in kills if k.detection_s is not None]
    after_beat = [k.after_last_heartbeat_s for k in kills if k.after_last_heartbeat_s is not None]
    missed = [k.node_id for k in kills if k.detection_s is None]
    detection = describe(detected) if detected else None
    false_alarms = measured["soak_false_alarms"] + len(measured["kill_false_alarms"])
    met_detection = not missed and detection is not None and detection["max"] <= target

    rows = []
    if detection is not None:
        for name in ("min", "median", "p95", "max"):
            met = verdict(met_detection if name == "max" else None)
            rows.append(
                [
                    f"detection after SIGKILL, {name}",
                    f"{detection[name]:.2f} s",
                    f"<= {target:g} s",
                    met,
                ]
            )
    if after_beat:
        rows.append(
            [
                "  after the last heartbeat, max",
                f"{max(after_beat):.2f} s",
                f"timeout {args.timeout:g} s",
                "-",
            ]
        )
    rows.append(
        [
            "nodes killed / raised",
            f"{len(kills)} / {len(detected)}",
            "all",
            verdict(not missed),
        ]
    )
    rows.append(
        [
            f"false NODE_DOWN, soak {args.soak:g} s + kill phase",
            str(false_alarms),
            "0",
            verdict(false_alarms == 0),
        ]
    )
    print()
    print(render_table(["figure", "value", "target", "met?"], rows))
    return {
        "benchmark": "detection",
        "timestamp": timestamp(),
        "settings": {
            "nodes": args.nodes,
            "killed": args.kill,
            "rate_per_node": args.rate,
            "heartbeat_interval_s": args.heartbeat_interval,
            "timeout_s": args.timeout,
            "soak_s": args.soak,
            "seed": args.seed,
        },
        "targets": {"detection_max_s": target, "false_alarms": 0},
        "detection_s": detection,
        "after_last_heartbeat_s": describe(after_beat) if after_beat else None,
        "missed": missed,
        "false_alarms": {
            "soak": measured["soak_false_alarms"],
            "kill_phase": measured["kill_false_alarms"],
            "total": false_alarms,
        },
        "met": {"detection": met_detection, "false_alarms": false_alarms == 0},
        "monitor_cpu_seconds_during_kills": measured["monitor_cpu_seconds_during_kills"],
        "kill_phase_seconds": measured["kill_phase_seconds"],
        "kills": [
            {
                **asdict(k),
                "detection_s": k.detection_s,
                "after_last_heartbeat_s": k.after_last_heartbeat_s,
            }
            for k in kills
        ],
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    settings = bench_settings("detection")
    await check_kafka(settings)
    info = machine(with_os=False, kafka=KAFKA_VERSION, aiokafka=metadata.version("aiokafka"))
    code = await announce(
        f"logdeck detection benchmark: {args.nodes} nodes at {args.rate:g} logs/s each, "
        f"{args.kill} killed, timeout {args.timeout:g} s, soak {args.soak:g} s, "
        f"namespace {settings.namespace}, {info['nproc']} CPUs",
        info,
    )
    try:
        with tempfile.TemporaryDirectory(prefix="logdeck-bench-") as workdir:
            measured = await measure(args, settings, Path(workdir))
    finally:
        await drop_topics(settings)
    return {
        **report(args, measured),
        "namespace": settings.namespace,
        "machine": info,
        "code": code,
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = bench_parser(
        "detection", "Dead-node detection time and false NODE_DOWN alarms of `logdeck monitor`."
    )
    parser.add_argument("--nodes", type=int, default=30, help="simulated nodes (%(default)s)")
    parser.add_argument("--kill", type=int, default=20, help="nodes SIGKILLed (%(default)s)")
    parser.add_argument(
        "--rate", type=float, default=50.0, help="logs per second per node (%(default)s)"
    )
    parser.add_argument(
        "--heartbeat-interval", type=float, default=1.0, help="seconds (%(default)s)"
    )
    parser.add_argument(
        "--timeout", type=float, default=3.0, help="the monitor's --timeout (%(default)s)"
    )
    parser.add_argument(
        "--soak",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="all nodes up this long first, counting false alarms (%(default)s; 600 for the "
        "10-minute soak)",
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the choice of victims")
    args = parser.parse_args(argv)
    if not 1 <= args.kill <= args.nodes:
        parser.error("--kill must be between 1 and --nodes")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    return run_and_record(run, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
