"""Failover on the three-node cluster: how long acknowledgements pause when a server goes,
and whether every acknowledged log is still stored exactly once.

`logdeck stack up --cluster` runs three Kafka nodes (topics with three replicas, two in
sync for a write) and three Elasticsearch nodes (one replica per index). A sender in a
process of its own sends `--rate` simulated logs per second through `logdeck accumulator`
and notes, every 10 ms, how many it has emitted and how many the accumulator has
acknowledged (an ack comes only once Kafka holds the records); `logdeck indexer` stores
them. Each phase has a namespace, an accumulator and an indexer of its own:

- baseline: the same load, no fault: how far apart acks come when nothing goes wrong;
- broker: the leader of most of the logs topic's partitions SIGKILLed, later restarted;
- search node: the Elasticsearch node holding the logs index's primary SIGKILLed, searches
  made as the console makes them while it is down, then restarted;
- rolling: every broker stopped and started in turn, each back in every ISR before the next.

After each phase the store is counted against the sender's acks: the sender's log_ids are
numbered in emission order and its acks always cover the first ones, so the acknowledged
logs are exactly those numbered below the count it reached.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import multiprocessing
import os
import random
import shlex
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any, cast

import msgspec
from aiokafka.admin import AIOKafkaAdminClient
from elasticsearch import AsyncElasticsearch
from elasticsearch.helpers import async_scan

from backend.backends import open_store
from backend.config import Settings
from backend.forward.sender import AckSender
from backend.schemas import now_iso
from backend.stack import commands, elasticsearch, kafka
from backend.stack.acls import admin_security, open_namespace
from backend.stack.env import env_lines
from backend.stack.layout import Layout
from backend.stack.topology import ElasticsearchNode, KafkaNode, Topology
from backend.stack.topology import cluster as cluster_topology
from backend.store import StoreUnavailable
from backend.store.query import LogQuery
from bench.common import (
    BenchError,
    Service,
    bench_parser,
    deadline_in,
    fleet,
    free_port,
    logdeck_service,
    new_run,
    percentile,
    polls_until,
    render_table,
    run_and_record,
    verdict,
)
from bench.machine import announce, stack_machine, timestamp
from bench.servers import drop_indices, drop_topics, elasticsearch_version

PARTITIONS = 6
"""The partitions `stack up --cluster` gives its topics: two led by each broker."""
SAMPLE_S = 0.01
POOL = 20_000
MAX_SEND_S = 1800.0
"""The longest a sender sends: past it, it stops as if told to."""
FLUSH_S = 120.0
"""How long the sender waits, once told to stop, for its last acks."""
STORED_WITHIN_S = 240.0
"""How long the store may take to hold every acknowledged log after the sender stops."""
IN_SYNC_WITHIN_S = 180.0
SEARCH_EVERY_S = 0.5
TARGET_ACK_RESUME_S = 10.0


# --- the load: an acknowledging sender in a process of its own ------------------------


async def _send(port: int, rate: float, prefix: str, stop: Event, out: Path) -> None:
    """Paced in 10 ms ticks; samples (wall time, emitted, acked) at every tick, through
    the final flush, and writes them to `out`."""
    rng = random.Random(prefix)
    nodes = fleet(rng, 3, f"{prefix}-")
    pool = [msgspec.to_builtins(rng.choice(nodes).log()) for _ in range(POOL)]
    sender = AckSender("logdeck", "127.0.0.1", port)
    await sender.start()
    samples: list[tuple[float, int, int]] = []
    started = time.perf_counter()
    for _ in polls_until(deadline_in(MAX_SEND_S), SAMPLE_S):
        if stop.is_set():
            break
        due = int((time.perf_counter() - started) * rate) - sender.emitted
        stamp = now_iso()
        for _ in range(due):
            record = dict(pool[sender.emitted % POOL])
            record["log_id"] = f"{prefix}-{sender.emitted}"
            record["timestamp"] = stamp
            await sender.emit("log", record)
        samples.append((time.time(), sender.emitted, sender.acked))
        await asyncio.sleep(SAMPLE_S)
    flushing = asyncio.create_task(sender.flush())
    for _ in range(int(FLUSH_S / SAMPLE_S)):
        samples.append((time.time(), sender.emitted, sender.acked))
        if flushing.done():
            break
        await asyncio.sleep(SAMPLE_S)
    flushing.cancel()  # what is still unacknowledged is abandoned, and counted as such
    await asyncio.to_thread(out.write_text, json.dumps({"samples": samples}))


def load_process(port: int, rate: float, prefix: str, stop: Event, out: Path) -> None:
    """The entry point of the sender's process."""
    asyncio.run(_send(port, rate, prefix, stop, out))


@dataclass(frozen=True, slots=True)
class Sent:
    """What the sender emitted and when the accumulator acknowledged it."""

    samples: list[tuple[float, int, int]]

    @property
    def emitted(self) -> int:
        return self.samples[-1][1]

    @property
    def acked(self) -> int:
        return self.samples[-1][2]

    @property
    def started(self) -> float:
        return self.samples[0][0]

    def advances(self) -> list[float]:
        """The times the acked count grew."""
        return [
            now
            for (_, _, before), (now, _, acked) in itertools.pairwise(self.samples)
            if acked > before
        ]

    def resumed_after(self, fault: float) -> float | None:
        """From `fault` until a log emitted after it was acknowledged; None if none was."""
        emitted = next((e for now, e, _ in reversed(self.samples) if now <= fault), 0)
        return next((now - fault for now, _, acked in self.samples if acked > emitted), None)


class Load:
    """`rate` logs/s through the accumulator on `port` until `finish`."""

    def __init__(self, port: int, rate: float, prefix: str, folder: Path) -> None:
        context = multiprocessing.get_context("spawn")
        self.prefix = prefix
        self._stop = context.Event()
        self._out = folder / f"{prefix}.json"
        self._process = context.Process(
            target=load_process, args=(port, rate, prefix, self._stop, self._out), daemon=True
        )
        self._process.start()

    def check_running(self) -> None:
        if not self._process.is_alive():
            raise BenchError(f"the sender {self.prefix} ended early")

    async def finish(self) -> Sent:
        """Stop sending, wait for the last acks (up to `FLUSH_S`), and read the samples."""
        self._stop.set()
        await asyncio.to_thread(self._process.join, FLUSH_S + 30)
        if self._process.is_alive():
            self._process.kill()
            raise BenchError(f"the sender {self.prefix} did not finish")
        return Sent([tuple(row) for row in json.loads(self._out.read_text())["samples"]])


# --- the cluster ---------------------------------------------------------------------


def role_env(stack: Topology, role: str) -> dict[str, str]:
    """The variables `logdeck stack env --cluster --role ROLE` exports."""
    return dict(shlex.split(line)[1].split("=", 1) for line in env_lines(stack, role))


async def describe(settings: Settings, topics: list[str]) -> list[dict[str, Any]]:
    """Every partition of `topics`, with its leader, replicas and in-sync replicas."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka, **settings.kafka_security.client_options()
    )
    await admin.start()
    try:
        async with asyncio.timeout(30):
            described = await admin.describe_topics(topics)
    finally:
        await admin.close()
    return [p for topic in described for p in topic["partitions"]]


async def busiest_leader(stack: Topology, settings: Settings) -> KafkaNode:
    """The broker leading most partitions of the logs topic."""
    leaders = Counter(p["leader"] for p in await describe(settings, [settings.topics.logs]))
    node_id = leaders.most_common(1)[0][0]
    return next(node for node in stack.kafka if node.node_id == node_id)


async def wait_in_sync(settings: Settings, load: Load) -> float:
    """Until every replica of the namespace's topics and the group offsets is in sync."""
    since = time.monotonic()
    topics = [*settings.topics.all(), "__consumer_offsets"]
    for _ in polls_until(deadline_in(IN_SYNC_WITHIN_S), 1.0):
        load.check_running()
        with contextlib.suppress(Exception):  # a broker still starting may not answer
            if all(len(p["isr"]) == len(p["replicas"]) for p in await describe(settings, topics)):
                return time.monotonic() - since
        await asyncio.sleep(1.0)
    raise BenchError(f"replicas not back in sync within {IN_SYNC_WITHIN_S:.0f} s")


def start_broker(stack: Topology, node: KafkaNode) -> float:
    """Start a stopped broker as `stack up` does; the seconds until it answers."""
    since = time.monotonic()
    launched = dict(zip(stack.kafka, kafka.launch_nodes(stack), strict=True))
    return kafka.node_server(stack, node).wait_ready(launched[node], since)


def start_search_node(stack: Topology, node: ElasticsearchNode) -> float:
    """Start a stopped Elasticsearch node as `stack up` does; the seconds until it joined."""
    since = time.monotonic()
    launched = dict(zip(stack.elasticsearch, elasticsearch.launch_nodes(stack), strict=True))
    return elasticsearch.node_server(stack, node).wait_ready(launched[node], since)


ELECTED = "Becoming the active controller"
"""What a Kafka node's server.log says when it takes over the KRaft quorum."""


def controller_elected(stack: Topology, killed: KafkaNode, since: float, until: float) -> bool:
    """Whether another node took over as the active controller between `since` and `until`
    (wall time): then the broker killed was the controller too, and its loss waited for an
    election."""
    for node in stack.kafka:
        if node == killed:
            continue
        with (node.logs / "server.log").open(errors="replace") as log:
            for line in log:
                if ELECTED in line:
                    # "[2026-12-05 21:22:21,864] INFO ...", in the JVM's (this host's) time zone
                    at = datetime.strptime(line[1:24], "%Y-%m-%d %H:%M:%S,%f").timestamp()
                    if since <= at <= until:
                        return True
    return False


def sigkill(pid: int | None, name: str) -> float:
    """SIGKILL a server; the wall time just before."""
    if pid is None:
        raise BenchError(f"{name} is not running")
    at = time.time()
    os.kill(pid, signal.SIGKILL)
    return at


# --- counting the store against the acks ---------------------------------------------


async def stored_ids(es: AsyncElasticsearch, settings: Settings) -> list[str]:
    await es.indices.refresh(index=settings.indices.logs_pattern, allow_no_indices=True)
    return [
        hit["_source"]["log_id"]
        async for hit in async_scan(
            es, index=settings.indices.logs_pattern, query={"_source": ["log_id"]}, size=5000
        )
    ]


async def stored_count(es: AsyncElasticsearch, settings: Settings, refresh: bool) -> int:
    if refresh:
        await es.indices.refresh(index=settings.indices.logs_pattern, allow_no_indices=True)
    found = await es.count(index=settings.indices.logs_pattern, allow_no_indices=True)
    count: int = found["count"]
    return count


async def exactly_once(es: AsyncElasticsearch, settings: Settings, sent: Sent) -> dict[str, Any]:
    """Waits (bounded) for the store to hold every acked log, then counts by log_id."""
    since = time.monotonic()
    for _ in polls_until(deadline_in(STORED_WITHIN_S), 1.0):
        with contextlib.suppress(Exception):
            if await stored_count(es, settings, refresh=True) >= sent.acked:
                break
        await asyncio.sleep(1.0)
    numbers = [int(log_id.rsplit("-", 1)[1]) for log_id in await stored_ids(es, settings)]
    distinct = set(numbers)
    acked_stored = sum(1 for n in distinct if n < sent.acked)
    return {
        "emitted": sent.emitted,
        "acked": sent.acked,
        "stored": len(distinct),
        "lost": sent.acked - acked_stored,
        "duplicated": len(numbers) - len(distinct),
        "unacked_stored": len(distinct) - acked_stored,
        "unacked": sent.emitted - sent.acked,
        "stored_after_s": round(time.monotonic() - since, 1),
    }


# --- one phase -----------------------------------------------------------------------


async def listening(service: Service, port: int) -> None:
    """Until the accumulator accepts connections."""
    for _ in polls_until(deadline_in(60), 0.1):
        service.check_running()
        with contextlib.suppress(OSError):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        await asyncio.sleep(0.1)
    raise BenchError("the accumulator did not listen within 60 s")


@dataclass
class Phase:
    """A namespace of its own with its accumulator and indexer, each with its role's
    credentials, and the load through them."""

    name: str
    stack: Topology
    settings: Settings
    folder: Path
    services: list[Service] = field(default_factory=list)

    async def start(self, rate: float) -> Load:
        await asyncio.to_thread(open_namespace, self.stack, self.settings.namespace, PARTITIONS)
        port = free_port()
        accumulator = self._service("accumulator", "--port", str(port))
        self._service("indexer")
        await listening(accumulator, port)
        return Load(port, rate, self.name, self.folder)

    def _service(self, role: str, *extra: str) -> Service:
        log = self.folder / f"{self.name}-{role}.log"
        service = logdeck_service(role, self.settings, log, *extra, env=role_env(self.stack, role))
        self.services.append(service)
        return service

    def check(self) -> None:
        for service in self.services:
            service.check_running()

    def stop(self) -> None:
        for service in reversed(self.services):
            service.stop()


async def pause(seconds: float, phase: Phase, load: Load) -> None:
    """Let the load run for `seconds`, failing early if a service or the sender died."""
    for _ in polls_until(deadline_in(seconds), 0.5):
        phase.check()
        load.check_running()
        await asyncio.sleep(0.5)


def gaps(times: Sequence[float], since: float, until: float) -> list[float]:
    """Seconds between successive events, for every gap that overlaps [since, until]."""
    return [b - a for a, b in itertools.pairwise(times) if b >= since and a <= until]


def longest(values: Sequence[float]) -> float:
    return round(max(values, default=0.0), 3)


def ack_gaps(sent: Sent, since: float, until: float) -> dict[str, float]:
    between = gaps(sent.advances(), since, until)
    return {"p99": round(percentile(between, 0.99), 3) if between else 0.0, "max": longest(between)}


@dataclass(frozen=True, slots=True)
class Options:
    rate: float
    warmup_s: float
    baseline_s: float
    after_kill_s: float
    down_s: float
    settle_s: float


Body = Callable[[Phase, Load], Awaitable[tuple[Sent, dict[str, Any]]]]


async def baseline(options: Options, phase: Phase, load: Load) -> tuple[Sent, dict[str, Any]]:
    await pause(options.warmup_s + options.baseline_s, phase, load)
    until = time.time()
    sent = await load.finish()
    return sent, {"ack_gap_s": ack_gaps(sent, sent.started + options.warmup_s, until)}


async def broker_killed(options: Options, phase: Phase, load: Load) -> tuple[Sent, dict[str, Any]]:
    stack, settings = phase.stack, phase.settings
    await pause(options.warmup_s, phase, load)
    victim = await busiest_leader(stack, settings)
    led = Counter(p["leader"] for p in await describe(settings, [settings.topics.logs]))
    killed = sigkill(kafka.node_server(stack, victim).pid(), victim.name)
    await pause(options.after_kill_s, phase, load)
    restart_from = time.time()
    restart_s = await asyncio.to_thread(start_broker, stack, victim)
    in_sync_s = await wait_in_sync(settings, load)
    await pause(options.settle_s, phase, load)
    until = time.time()
    sent = await load.finish()
    resumed = sent.resumed_after(killed)
    return sent, {
        "killed": victim.name,
        "partitions_it_led": led[victim.node_id],
        "was_active_controller": controller_elected(stack, victim, killed, restart_from),
        "acks_resumed_after_s": None if resumed is None else round(resumed, 3),
        "ack_pause_after_kill_s": longest(gaps(sent.advances(), killed, restart_from)),
        "ack_pause_during_restart_s": longest(gaps(sent.advances(), restart_from, until)),
        "ack_gap_s": ack_gaps(sent, sent.started + options.warmup_s, until),
        "restart_s": round(restart_s, 1),
        "back_in_sync_s": round(in_sync_s, 1),
    }


async def primary_holder(
    es: AsyncElasticsearch, stack: Topology, settings: Settings
) -> ElasticsearchNode:
    """The node holding the primary of the logs index: its loss stops that index's writes
    until the replica is promoted."""
    shards = await es.cat.shards(
        index=settings.indices.logs_pattern, format="json", h="prirep,node"
    )
    rows = cast(list[dict[str, str]], shards.body)  # a list with format=json
    names = {row["node"] for row in rows if row["prirep"] == "p"}
    return next(node for node in stack.elasticsearch if node.node_name in names)


@dataclass
class Outage:
    """Searches made as the console makes them, and the searchable count, every half second."""

    searches: list[tuple[float, bool, float]] = field(default_factory=list)
    counts: list[tuple[float, int]] = field(default_factory=list)
    done: asyncio.Event = field(default_factory=asyncio.Event)

    async def search(self, settings: Settings, within: float) -> None:
        store = open_store(settings)
        try:
            for _ in polls_until(deadline_in(within), SEARCH_EVERY_S):
                if self.done.is_set():
                    return
                at, clock = time.time(), time.perf_counter()
                answered = True
                try:
                    async with asyncio.timeout(10):
                        await store.search_logs(LogQuery(page_size=50))
                except (StoreUnavailable, TimeoutError):
                    answered = False
                self.searches.append((at, answered, time.perf_counter() - clock))
                await asyncio.sleep(SEARCH_EVERY_S)
        finally:
            await store.close()

    async def count(self, es: AsyncElasticsearch, settings: Settings, within: float) -> None:
        for _ in polls_until(deadline_in(within), SEARCH_EVERY_S):
            if self.done.is_set():
                return
            with contextlib.suppress(Exception):
                self.counts.append((time.time(), await stored_count(es, settings, refresh=False)))
            await asyncio.sleep(SEARCH_EVERY_S)

    def figures(self, since: float, until: float) -> dict[str, Any]:
        during = [(ok, took) for at, ok, took in self.searches if since <= at <= until]
        answered = sorted(took for ok, took in during if ok)
        grew = [
            at
            for (at, n), (_, before) in zip(self.counts[1:], self.counts, strict=False)
            if n > before
        ]
        counts_in = [n for at, n in self.counts if since <= at <= until]
        return {
            "searches": len(during),
            "searches_answered": len(answered),
            "search_p50_s": round(percentile(answered, 0.5), 3) if answered else None,
            "search_max_s": round(answered[-1], 3) if answered else None,
            "indexing_gap_s": longest(gaps(grew, since, until)),
            "indexed_while_down": counts_in[-1] - counts_in[0] if counts_in else 0,
        }


async def search_node_killed(
    options: Options, phase: Phase, load: Load, es: AsyncElasticsearch
) -> tuple[Sent, dict[str, Any]]:
    stack, settings = phase.stack, phase.settings
    await pause(options.warmup_s, phase, load)
    victim = await primary_holder(es, stack, settings)
    outage = Outage()
    within = options.down_s + 300
    watchers = [
        asyncio.create_task(outage.search(settings, within)),
        asyncio.create_task(outage.count(es, settings, within)),
    ]
    try:
        await pause(2, phase, load)
        killed = sigkill(elasticsearch.node_server(stack, victim).pid(), victim.name)
        await pause(options.down_s, phase, load)
        restart_from = time.time()
        restart_s = await asyncio.to_thread(start_search_node, stack, victim)
        clock = time.perf_counter()
        await es.cluster.health(
            index=settings.indices.logs_pattern, wait_for_status="green", timeout="120s"
        )
        green_s = time.perf_counter() - clock
        await pause(options.settle_s, phase, load)
    finally:
        outage.done.set()
        await asyncio.gather(*watchers)
    until = time.time()
    sent = await load.finish()
    return sent, {
        "killed": victim.name,
        "while_down": outage.figures(killed, restart_from),
        "ack_gap_s": ack_gaps(sent, sent.started + options.warmup_s, until),
        "restart_s": round(restart_s, 1),
        "green_after_restart_s": round(green_s, 1),
    }


async def rolling_restart(
    options: Options, phase: Phase, load: Load
) -> tuple[Sent, dict[str, Any]]:
    stack, settings = phase.stack, phase.settings
    await pause(options.warmup_s, phase, load)
    since = time.time()
    restarts = []
    for node in stack.kafka:
        clock = time.perf_counter()
        await asyncio.to_thread(kafka.node_server(stack, node).stop)
        stop_s = time.perf_counter() - clock
        start_s = await asyncio.to_thread(start_broker, stack, node)
        in_sync_s = await wait_in_sync(settings, load)
        restarts.append(
            {
                "broker": node.name,
                "stop_s": round(stop_s, 1),
                "start_s": round(start_s, 1),
                "back_in_sync_s": round(in_sync_s, 1),
            }
        )
        print(f"    {node.name} restarted and back in sync", flush=True)
    rolled = time.time()
    await pause(options.settle_s, phase, load)
    until = time.time()
    sent = await load.finish()
    return sent, {
        "restarts": restarts,
        "ack_pause_s": longest(gaps(sent.advances(), since, rolled)),
        "rolling_s": round(rolled - since, 1),
        "ack_gap_s": ack_gaps(sent, sent.started + options.warmup_s, until),
    }


# --- the run ---------------------------------------------------------------------------


async def run_phase(
    name: str,
    stack: Topology,
    run: str,
    folder: Path,
    es: AsyncElasticsearch,
    rate: float,
    body: Body,
) -> dict[str, Any]:
    """One phase in a namespace of its own; its figures and the exactly-once count."""
    settings = Settings(
        kafka=stack.bootstrap,
        elasticsearch=stack.elasticsearch_urls,
        namespace=f"{run}-{name}",
        partitions=PARTITIONS,
        kafka_security=admin_security(stack),
    )
    print(f"  {name}: {rate:,.0f} logs/s, namespace {settings.namespace}", flush=True)
    phase = Phase(name, stack, settings, folder)
    try:
        load = await phase.start(rate)
        clock = time.perf_counter()
        sent, figures = await body(phase, load)
        counted = await exactly_once(es, settings, sent)
    except BenchError as error:
        tails = "\n".join(f"  {s.name}:\n{s.tail()}" for s in phase.services)
        raise BenchError(f"{name}: {error}\n{tails}") from None
    finally:
        phase.stop()
        await drop_indices(es, settings)
        await drop_topics(settings)
    print(f"    {json.dumps({**figures, **counted})}", flush=True)
    return {**figures, **counted, "seconds": round(time.perf_counter() - clock, 1)}


def check_cluster(stack: Topology) -> None:
    down = [srv.name for srv in commands.servers(stack) if srv.status().state.value != "running"]
    if down:
        raise BenchError(
            f"the cluster must be running (`logdeck stack up --cluster`): {', '.join(down)} not"
        )


async def run(args: argparse.Namespace) -> dict[str, Any]:
    stack = cluster_topology(Layout.default())
    check_cluster(stack)
    options = quick_options(args) if args.quick else full_options(args)
    es = AsyncElasticsearch(stack.elasticsearch_urls.split(","), request_timeout=60)
    version = await elasticsearch_version(es, stack.elasticsearch_urls, " --cluster")
    info = stack_machine(version)
    run_name = new_run()
    code = await announce(
        f"logdeck failover benchmark on the cluster: {options.rate:,.0f} logs/s through "
        f"acknowledging senders, run {run_name}, {info['nproc']} CPUs",
        info,
    )
    bodies: dict[str, Body] = {
        "baseline": lambda phase, load: baseline(options, phase, load),
        "broker": lambda phase, load: broker_killed(options, phase, load),
        "searchnode": lambda phase, load: search_node_killed(options, phase, load, es),
        "rolling": lambda phase, load: rolling_restart(options, phase, load),
    }
    phases: dict[str, Any] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="logdeck-bench-failover-") as folder:
            for name, body in bodies.items():
                phases[name] = await run_phase(
                    name, stack, run_name, Path(folder), es, options.rate, body
                )
    finally:
        await es.close()
    rows = figures(phases)
    print()
    print(
        render_table(
            ["figure", "value", "baseline", "target", "met?"], [row_cells(r) for r in rows]
        )
    )
    met = all(r["met"] for r in rows if r.get("met") is not None)
    print(f"\nverdict: {'every target met' if met else 'a target was missed'}")
    return {
        "benchmark": "failover",
        "timestamp": timestamp(),
        "run": run_name,
        "settings": asdict(options) | {"quick": args.quick, "partitions": PARTITIONS},
        "targets": {"acks_resumed_s": TARGET_ACK_RESUME_S, "lost": 0, "duplicated": 0},
        "phases": phases,
        "figures": rows,
        "met": met,
        "machine": info,
        "code": code,
    }


def _seconds(value: float | None) -> str:
    return "never" if value is None else f"{value:.2f} s"


def figures(phases: dict[str, Any]) -> list[dict[str, Any]]:
    """The table's rows: each figure beside the same load with no fault, and its target."""
    base = phases["baseline"]["ack_gap_s"]
    broker, search, rolling = phases["broker"], phases["searchnode"], phases["rolling"]
    resumed = broker["acks_resumed_after_s"]
    down = search["while_down"]
    controller = ", the controller" if broker["was_active_controller"] else ""
    rows: list[dict[str, Any]] = [
        {"figure": "ack gap p99, no fault", "value": _seconds(base["p99"]), "baseline": "-"},
        {"figure": "ack gap max, no fault", "value": _seconds(base["max"]), "baseline": "-"},
        {
            "figure": f"broker killed ({broker['killed']}{controller}): acks resume after",
            "value": _seconds(resumed),
            "baseline": _seconds(base["max"]),
            "target": f"< {TARGET_ACK_RESUME_S:.0f} s",
            "met": resumed is not None and resumed < TARGET_ACK_RESUME_S,
        },
        {
            "figure": "broker killed: longest ack pause",
            "value": _seconds(broker["ack_pause_after_kill_s"]),
            "baseline": _seconds(base["max"]),
        },
        {
            "figure": "broker restarted: longest ack pause",
            "value": _seconds(broker["ack_pause_during_restart_s"]),
            "baseline": _seconds(base["max"]),
        },
        {
            "figure": f"search node killed ({search['killed']}): searches answered",
            "value": f"{down['searches_answered']} of {down['searches']}",
            "baseline": "-",
            "target": "all",
            "met": down["searches"] > 0 and down["searches_answered"] == down["searches"],
        },
        {
            "figure": "search node killed: longest indexing gap",
            "value": _seconds(down["indexing_gap_s"]),
            "baseline": "-",
        },
        {
            "figure": "search node killed: logs indexed while down",
            "value": f"{down['indexed_while_down']:,}",
            "baseline": "-",
        },
        {
            "figure": "rolling restart: longest ack pause",
            "value": _seconds(rolling["ack_pause_s"]),
            "baseline": _seconds(base["max"]),
        },
    ]
    for name, label in (
        ("baseline", "no fault"),
        ("broker", "broker killed"),
        ("searchnode", "search node killed"),
        ("rolling", "rolling restart"),
    ):
        counted = phases[name]
        rows.append(
            {
                "figure": f"{label}: acked / lost / duplicated",
                "value": f"{counted['acked']:,} / {counted['lost']} / {counted['duplicated']}",
                "baseline": "-",
                "target": "0 lost, 0 dup",
                "met": counted["lost"] == 0 and counted["duplicated"] == 0,
            }
        )
    return rows


def row_cells(row: dict[str, Any]) -> list[str]:
    return [
        row["figure"],
        row["value"],
        row["baseline"],
        row.get("target", "-"),
        verdict(row.get("met")),
    ]


def full_options(args: argparse.Namespace) -> Options:
    return Options(
        rate=args.rate, warmup_s=10, baseline_s=40, after_kill_s=30, down_s=30, settle_s=5
    )


def quick_options(args: argparse.Namespace) -> Options:
    return Options(
        rate=args.rate, warmup_s=5, baseline_s=15, after_kill_s=15, down_s=15, settle_s=3
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = bench_parser(
        "failover", "Acks and exactly-once on the cluster when a broker or a search node goes."
    )
    parser.add_argument("--rate", type=float, default=5_000, help="logs/s (%(default)s)")
    parser.add_argument(
        "--quick", action="store_true", help="shorter phases (the rolling restart is the same)"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    return run_and_record(run, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
