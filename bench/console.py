"""The console under a live feed: key response, lag, memory and lost lines, at two rates.

A producer in a process of its own (as the services of a real system are) publishes
simulated logs to `<ns>.logs` at a fixed rate through the project's `KafkaPublisher`,
each stamped with the time it is sent. The console runs headless in this process on
the real `LiveObserver`, with a minimum-level filter on, so what is measured is the app
a user runs: Kafka reading, decoding, the 100 ms flush, filtering and drawing.

Every 0.5 s a key toggles a level filter, which re-filters the ring and redraws the
feed; the clock runs until the feed shows the new selection and the screen has been
repainted. The keys come in pairs (ERROR on, then off), and the pairs alternate between
a field filter with a highlight on and the level filter alone, so the features' cost is
measured beside a baseline under the same load. Lag is the age of the newest log the
feed holds; memory is this process's RSS. Everything runs in a fresh namespace whose
topics are deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import queue
import random
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.process import BaseProcess
from multiprocessing.queues import Queue
from typing import Any

import msgspec
from textual import events
from textual.pilot import Pilot

from backend.backends import open_store
from backend.bus.base import Outgoing
from backend.bus.kafka.bus import KafkaBus
from backend.bus.kafka.subscription import KafkaTail
from backend.config import Settings
from backend.observe.live import LiveObserver
from backend.schemas import Level, Log, encode, now_iso
from bench.common import (
    BenchError,
    Phase,
    bench_parser,
    bench_settings,
    deadline_in,
    fleet,
    memory_kib,
    percentile,
    polls_until,
    render_table,
    run_and_record,
    verdict,
)
from bench.machine import announce, stack_machine, timestamp
from bench.servers import check_kafka, drop_topics
from console.app import LogdeckApp
from simulators.traffic import PROFILES
from widgets.log_feed import LogFeed

DEFAULT_SECONDS = 60.0
QUICK_SECONDS = 10.0
RATES = (20_000, 5_000)

SIZE = (160, 48)
FILTER_LEVEL = Level.WARN
"""The filter on while the load runs: WARN and above, about a fifth of the logs."""
TOGGLE_KEY = "3"
"""Toggles ERROR: with the minimum at WARN, the feed switches between ERROR and WARN+."""
FIELD_FILTER = "-service:SearchService -code:PAY-409"
"""The field terms on with the highlight: they hide about a seventh of WARN+, a sixth of ERROR,
so both of the key's selections hold logs to test and to show."""
HIGHLIGHT = "slow|timed out|unavailable|502"
"""Marked in the rows drawn: slow WARNs and several services' errors say one of these."""
FEATURES = "highlight + fields"
BASELINE = "level only"
MODES = (FEATURES, BASELINE)
"""Each pair of keys runs in one of these, in turn; the run starts and ends in FEATURES."""
NODES_PER_SERVICE = 3
"""8 services, so 24 nodes."""
POOL = 20_000
SLICE_S = 0.01
PRESS_EVERY_S = 0.5
LAG_EVERY_S = 0.1
RSS_EVERY_S = 1.0
START_TIMEOUT_S = 60.0
REPAINT_TIMEOUT_S = 5.0
DRAIN_S = 5.0
"""After the producer stops, how long the feed may take to receive the rest."""

TARGET_KEY_P95_MS = 50.0
TARGET_LAG_S = 1.0
TARGET_RSS_MB = 300.0
TARGET_SLOPE_MB_PER_MIN = 2.0
"""'Flat': RSS over the second half of a run grows by less than this a minute."""
TARGET_PRODUCED_SHARE = 0.98
"""The producer must reach this share of the rate, or the run was not under that load."""


# The producer ---------------------------------------------------------------------------------


def produce(settings: Settings, rate: float, seconds: float, seed: int, report: Queue[Any]) -> None:
    """The producer process's entry point: reports ("started",), then ("done", counts)."""
    try:
        counts = asyncio.run(_produce(settings, rate, seconds, seed, report))
        report.put(("done", counts))
    except Exception as error:  # the parent turns it into a BenchError
        report.put(("failed", repr(error)))


async def _produce(
    settings: Settings, rate: float, seconds: float, seed: int, report: Queue[Any]
) -> dict[str, Any]:
    """`rate` logs a second for `seconds`, paced in slices of 10 ms on the monotonic clock.

    Logs are made before the clock starts; each gets a fresh log_id and, as its
    timestamp, the time its slice is sent, which is what the console's lag is read from.
    """
    rng = random.Random(seed)
    nodes = fleet(rng, NODES_PER_SERVICE, "bench-")
    pool = [rng.choice(nodes).log() for _ in range(POOL)]
    topic = settings.topics.logs
    publisher = KafkaBus(settings.kafka, settings.partitions).publisher()
    await publisher.start()
    levels: Counter[str] = Counter()
    deliveries: list[asyncio.Future[None]] = []
    sent = 0
    try:
        report.put(("started",))
        started = time.monotonic()
        end = started + seconds
        tick = 0
        while (now := time.monotonic()) < end:
            due = int((now - started) * rate) - sent
            stamp = now_iso()
            batch = []
            for index in range(sent, sent + due):
                log = msgspec.structs.replace(
                    pool[index % POOL], log_id=f"bench-{index}", timestamp=stamp
                )
                levels[log.log_level] += 1
                batch.append(Outgoing(topic, log.node_id.encode(), encode(log)))
            if batch:
                deliveries.append(asyncio.ensure_future(await publisher.enqueue(batch)))
                sent += due
            for delivery in [d for d in deliveries if d.done()]:
                delivery.result()
                deliveries.remove(delivery)
            tick += 1
            await asyncio.sleep(max(0.0, started + tick * SLICE_S - time.monotonic()))
        async with asyncio.timeout(30):
            await asyncio.gather(*deliveries)
        return {
            "produced": sent,
            "seconds": time.monotonic() - started,
            "levels": {str(level): count for level, count in levels.items()},
        }
    finally:
        await publisher.stop()


# The console's side ----------------------------------------------------------------------------


class _SignalledTail(KafkaTail):
    """The feed's tail, telling when its start positions are fixed: load may begin."""

    def __init__(self, bootstrap: str, topics: Sequence[str], ready: asyncio.Event) -> None:
        super().__init__(bootstrap, topics)
        self._ready = ready

    async def start(self) -> None:
        await super().start()
        self._ready.set()


class _SignalledBus(KafkaBus):
    def __init__(self, settings: Settings) -> None:
        super().__init__(settings.kafka, settings.partitions)
        self._bootstrap_address = settings.kafka
        self.tail_ready = asyncio.Event()

    def tail(self, topics: Sequence[str]) -> KafkaTail:
        return _SignalledTail(self._bootstrap_address, topics, self.tail_ready)


class CountingObserver(LiveObserver):
    """The real observer, counting every log it hands the app (before any ring drops)."""

    def __init__(self, settings: Settings) -> None:
        self.bus = _SignalledBus(settings)
        super().__init__(settings, self.bus, open_store(settings))
        self.received = 0

    async def logs(self) -> AsyncIterator[list[Log]]:
        async for batch in super().logs():
            self.received += len(batch)
            yield batch


@dataclass(slots=True)
class Samples:
    """What one rate's run saw, as it went."""

    press_ms: dict[str, list[float]] = field(default_factory=lambda: {mode: [] for mode in MODES})
    """Key -> repaint, by the mode the key was pressed in."""
    lag_s: list[float] = field(default_factory=list)
    rss: list[tuple[float, float]] = field(default_factory=list)
    """(seconds since the load started, MB)"""


def rss_mb() -> float:
    return memory_kib("VmRSS") / 1024


def slope_per_minute(points: Sequence[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, MB), in MB a minute."""
    if len(points) < 2:
        return 0.0
    mean_t = sum(t for t, _ in points) / len(points)
    mean_v = sum(v for _, v in points) / len(points)
    spread = sum((t - mean_t) ** 2 for t, _ in points)
    rise = sum((t - mean_t) * (v - mean_v) for t, v in points)
    return 60 * rise / spread if spread else 0.0


async def sample(feed: LogFeed, samples: Samples, started: float) -> None:
    """Lag every 0.1 s, RSS every second, until cancelled."""
    next_rss = started
    while True:
        now = time.monotonic()
        if now >= next_rss:
            samples.rss.append((now - started, rss_mb()))
            next_rss += RSS_EVERY_S
        if len(feed.ring):
            newest = datetime.fromisoformat(feed.ring[-1].timestamp)
            samples.lag_s.append((datetime.now(UTC) - newest).total_seconds())
        await asyncio.sleep(LAG_EVERY_S)


def show_features(feed: LogFeed, mode: str) -> None:
    """The field filter and the highlight on (FEATURES) or off (BASELINE); the level
    filter stays as it is."""
    on = mode == FEATURES
    cleared = feed.filter.with_fields(())
    feed.filter = cleared.with_typed(FIELD_FILTER) if on else cleared
    feed.set_mark(HIGHLIGHT if on else "")


async def repaint_after_key(app: LogdeckApp, pilot: Pilot[None], feed: LogFeed) -> float:
    """Milliseconds from a key reaching the app to the screen showing the re-filtered feed.

    The key is posted as the terminal driver posts it. The new selection is in when the
    view's entries are replaced (the ring is re-filtered in a thread); each `pause(0)`
    lets every widget handle its pending messages and then repaints the screen.
    """
    before = feed.view.entries
    started = time.perf_counter()
    app.post_message(events.Key(TOGGLE_KEY, TOGGLE_KEY))
    deadline = started + REPAINT_TIMEOUT_S
    while time.perf_counter() < deadline:
        await pilot.pause(0)
        if feed.view.entries is not before:
            return (time.perf_counter() - started) * 1000
    raise BenchError(f"the feed did not redraw within {REPAINT_TIMEOUT_S:g} s of a key")


@dataclass(frozen=True, slots=True)
class RateRun:
    rate: int
    seconds: float
    produced: int
    produce_seconds: float
    levels: dict[str, int]
    received: int
    reached_feed: int
    ring_length: int
    capacity: int
    view_length: int
    view_tail_matches: bool
    matching_in_ring: int
    samples: Samples

    @property
    def produced_rate(self) -> float:
        return self.produced / self.produce_seconds

    def rss_figures(self) -> dict[str, float]:
        values = [mb for _, mb in self.samples.rss]
        half = self.seconds / 2
        return {
            "start": values[0],
            "max": max(values),
            "end": values[-1],
            "slope_second_half": slope_per_minute([p for p in self.samples.rss if p[0] >= half]),
        }

    def to_json(self) -> dict[str, Any]:
        samples = self.samples
        return {
            "rate": self.rate,
            "seconds": self.seconds,
            "produced": self.produced,
            "produce_seconds": self.produce_seconds,
            "produced_per_second": self.produced_rate,
            "levels": self.levels,
            "received_by_app": self.received,
            "reached_feed": self.reached_feed,
            "ring_length": self.ring_length,
            "capacity": self.capacity,
            "view_length": self.view_length,
            "matching_in_ring": self.matching_in_ring,
            "view_tail_is_ring_matches": self.view_tail_matches,
            "key_to_repaint_ms": summary(samples.press_ms[FEATURES]),
            "key_to_repaint_ms_level_only": summary(samples.press_ms[BASELINE]),
            "lag_s": summary(samples.lag_s),
            "rss_mb": self.rss_figures(),
            "rss_samples_mb": [[round(t, 2), round(mb, 1)] for t, mb in samples.rss],
        }


def summary(values: Sequence[float]) -> dict[str, float | int]:
    if not values:
        return {"count": 0}
    return {
        "count": len(values),
        "p50": percentile(values, 0.50),
        "p95": percentile(values, 0.95),
        "max": max(values),
    }


async def run_rate(settings: Settings, rate: int, seconds: float, seed: int) -> RateRun:
    """The console fed at `rate` for `seconds`, then drained; one fresh app per rate."""
    observer = CountingObserver(settings)
    app = LogdeckApp(observer)
    context = multiprocessing.get_context("spawn")
    report: Queue[Any] = context.Queue()
    producer: BaseProcess = context.Process(
        target=produce, args=(settings, rate, seconds, seed, report), daemon=True
    )
    samples = Samples()
    async with app.run_test(size=SIZE) as pilot:
        feed = app.main.feed
        feed.set_min_level(FILTER_LEVEL)
        show_features(feed, FEATURES)
        try:
            async with asyncio.timeout(START_TIMEOUT_S):
                await observer.bus.tail_ready.wait()
        except TimeoutError:
            raise BenchError("the console's log feed did not start in time") from None
        producer.start()
        try:
            await _expect(report, producer, "started", deadline_in(START_TIMEOUT_S))
            started = time.monotonic()
            phase = Phase(f"{rate:,} logs/s for {seconds:g} s", int(rate * seconds))
            sampling = asyncio.create_task(sample(feed, samples, started))
            try:
                done = await _load(
                    app, pilot, feed, samples, phase, report, producer, started, seconds
                )
            finally:
                sampling.cancel()
                await asyncio.gather(sampling, return_exceptions=True)
            produced = int(done["produced"])
            drained = await _drain(pilot, observer, produced)
            phase.finish(
                f"{produced:,} produced, {observer.received:,} received "
                f"({'drained' if drained else 'NOT drained'} within {DRAIN_S:g} s)"
            )
            matching = feed.filter.select(list(feed.ring))
            view = list(feed.view.entries)
            tail_ok = view[-len(matching) :] == matching if matching else not view
        finally:
            producer.terminate()
            await asyncio.to_thread(producer.join, 10)
    return RateRun(
        rate=rate,
        seconds=seconds,
        produced=produced,
        produce_seconds=float(done["seconds"]),
        levels=done["levels"],
        received=observer.received,
        reached_feed=feed.ring.end_seq,
        ring_length=len(feed.ring),
        capacity=feed.ring.capacity,
        view_length=len(view),
        view_tail_matches=tail_ok,
        matching_in_ring=len(matching),
        samples=samples,
    )


async def _load(
    app: LogdeckApp,
    pilot: Pilot[None],
    feed: LogFeed,
    samples: Samples,
    phase: Phase,
    report: Queue[Any],
    producer: BaseProcess,
    started: float,
    seconds: float,
) -> dict[str, Any]:
    """A key every 0.5 s while the producer runs; returns the producer's counts.

    The keys toggle ERROR on and off, so after an even number the filter is again the
    one the load started with: one more key evens them out at the end. After each pair
    the features are switched (not timed; the next key is 0.5 s later), and they are on
    at the end, for the check of the view.
    """
    presses = 0
    mode = FEATURES

    async def press() -> None:
        nonlocal presses, mode
        samples.press_ms[mode].append(await repaint_after_key(app, pilot, feed))
        presses += 1
        if presses % 2 == 0:
            mode = MODES[(presses // 2) % len(MODES)]
            show_features(feed, mode)

    next_press = started
    deadline = started + seconds + START_TIMEOUT_S
    while True:
        try:
            message = report.get_nowait()
        except queue.Empty:
            message = None
        if message is not None:
            if message[0] != "done":
                raise BenchError(f"the producer failed: {message[1]}")
            done: dict[str, Any] = message[1]
            if presses % 2:
                await press()
            if mode != FEATURES:
                show_features(feed, FEATURES)
            return done
        if not producer.is_alive():
            raise BenchError(f"the producer exited with status {producer.exitcode}")
        if time.monotonic() > deadline:
            raise BenchError("the producer did not finish in time")
        now = time.monotonic()
        if now >= next_press:
            await press()
            next_press = max(next_press + PRESS_EVERY_S, time.monotonic())
        phase.update(feed.ring.end_seq)
        await asyncio.sleep(0.05)


async def _drain(pilot: Pilot[None], observer: CountingObserver, produced: int) -> bool:
    """Until the app has received everything produced (at most `DRAIN_S`), then a flush."""
    for _ in polls_until(deadline_in(DRAIN_S), 0.1):
        if observer.received >= produced:
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.3)  # past the app's next 100 ms flush
    await pilot.pause(0)
    return observer.received >= produced


async def _expect(report: Queue[Any], producer: BaseProcess, what: str, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            message = await asyncio.to_thread(report.get, True, 0.2)
        except queue.Empty:
            if not producer.is_alive():
                raise BenchError(f"the producer exited with status {producer.exitcode}") from None
            continue
        if message[0] == what:
            return
        raise BenchError(f"the producer failed: {message[1:]}")
    raise BenchError(f"the producer did not report {what!r} in time")


# The run ---------------------------------------------------------------------------------------


def _ms(value: float) -> str:
    return f"{value:.1f} ms"


def figure_rows(runs: Sequence[RateRun]) -> list[dict[str, Any]]:
    """One row per figure, a value and a verdict per rate."""
    rows: list[dict[str, Any]] = []

    def add(name: str, target: str, cells: list[tuple[str, bool | None]]) -> None:
        rows.append(
            {
                "figure": name,
                "target": target,
                "values": {
                    str(run.rate): value for run, (value, _) in zip(runs, cells, strict=True)
                },
                "met": {str(run.rate): met for run, (_, met) in zip(runs, cells, strict=True)},
            }
        )

    def each(cell: Any) -> list[tuple[str, bool | None]]:
        return [cell(run) for run in runs]

    add(
        "produced",
        f">= {TARGET_PRODUCED_SHARE:.0%} of the rate",
        each(
            lambda r: (
                f"{r.produced:,} ({r.produced_rate:,.0f}/s)",
                r.produced_rate >= TARGET_PRODUCED_SHARE * r.rate,
            )
        ),
    )
    add(
        "key -> repaint p50",
        "-",
        each(lambda r: (_ms(percentile(r.samples.press_ms[FEATURES], 0.5)), None)),
    )
    add(
        "key -> repaint p95",
        f"< {TARGET_KEY_P95_MS:.0f} ms",
        each(
            lambda r: (
                _ms(p95 := percentile(r.samples.press_ms[FEATURES], 0.95)),
                p95 < TARGET_KEY_P95_MS,
            )
        ),
    )
    add("key -> repaint max", "-", each(lambda r: (_ms(max(r.samples.press_ms[FEATURES])), None)))
    add(
        "  keys measured",
        "-",
        each(lambda r: (f"{len(r.samples.press_ms[FEATURES])}", None)),
    )
    for name, share in (("p50", 0.5), ("p95", 0.95), ("max", 1.0)):
        add(
            f"key -> repaint {name}, {BASELINE}",
            "-",
            each(lambda r, s=share: (_ms(percentile(r.samples.press_ms[BASELINE], s)), None)),
        )
    add(
        f"  keys measured, {BASELINE}",
        "-",
        each(lambda r: (f"{len(r.samples.press_ms[BASELINE])}", None)),
    )
    add(
        "lag p95",
        f"<= {TARGET_LAG_S:g} s",
        each(lambda r: (f"{(v := percentile(r.samples.lag_s, 0.95)):.2f} s", v <= TARGET_LAG_S)),
    )
    add(
        "lag max",
        f"<= {TARGET_LAG_S:g} s",
        each(lambda r: (f"{(v := max(r.samples.lag_s)):.2f} s", v <= TARGET_LAG_S)),
    )
    add(
        "RSS start / end",
        "-",
        each(lambda r: (f"{r.rss_figures()['start']:.0f} / {r.rss_figures()['end']:.0f} MB", None)),
    )
    add(
        "RSS max",
        f"< {TARGET_RSS_MB:.0f} MB",
        each(lambda r: (f"{(v := r.rss_figures()['max']):.0f} MB", v < TARGET_RSS_MB)),
    )
    add(
        "RSS slope, second half",
        f"< {TARGET_SLOPE_MB_PER_MIN:g} MB/min",
        each(
            lambda r: (
                f"{(v := r.rss_figures()['slope_second_half']):+.1f} MB/min",
                v < TARGET_SLOPE_MB_PER_MIN,
            )
        ),
    )
    add(
        "received by the app",
        "== produced",
        each(lambda r: (f"{r.received:,}", r.received == r.produced)),
    )
    add(
        "reached the feed",
        "== received",
        each(lambda r: (f"{r.reached_feed:,}", r.reached_feed == r.received)),
    )
    add(
        "feed ring length",
        "== min(capacity, received)",
        each(
            lambda r: (
                f"{r.ring_length:,} of {r.capacity:,}",
                r.ring_length == min(r.capacity, r.received),
            )
        ),
    )
    add(
        f"view (≥{FILTER_LEVEL}, {FIELD_FILTER}) ends with the ring's matches",
        "all of them, in order",
        each(
            lambda r: (
                f"{r.view_length:,} shown, {r.matching_in_ring:,} in ring",
                r.view_tail_matches,
            )
        ),
    )
    return rows


def render(rows: Sequence[dict[str, Any]], rates: Sequence[int]) -> str:
    header = ["figure", "target"]
    for rate in rates:
        header += [f"{rate:,} logs/s", "met?"]
    cells = []
    for row in rows:
        line = [row["figure"], row["target"]]
        for rate in rates:
            met = row["met"][str(rate)]
            line += [row["values"][str(rate)], verdict(met)]
        cells.append(line)
    return render_table(header, cells)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    settings = bench_settings("console")
    await check_kafka(settings)
    info = stack_machine("not queried (health only)")
    code = await announce(
        f"logdeck console benchmark: {', '.join(f'{r:,}' for r in args.rates)} logs/s, "
        f"{args.seconds:g} s each, namespace {settings.namespace}, {info['nproc']} CPUs, "
        f"Kafka {settings.kafka}",
        info,
    )
    runs: list[RateRun] = []
    try:
        await KafkaBus(settings.kafka, settings.partitions).ensure_topics(
            settings.topics.all(), settings.topics.compacted()
        )
        for index, rate in enumerate(args.rates):
            runs.append(await run_rate(settings, rate, args.seconds, args.seed + index))
    finally:
        await drop_topics(settings)
    rows = figure_rows(runs)
    print()
    print(render(rows, args.rates))
    print(
        "\nkey -> repaint: key event posted to the app until the re-filtered feed is drawn "
        f"(headless: the terminal write is not included); {FEATURES}: {FIELD_FILTER} and "
        f"the highlight /{HIGHLIGHT}/ on, {BASELINE}: the same keys, in turn, without them"
    )
    return {
        "benchmark": "console",
        "timestamp": timestamp(),
        "namespace": settings.namespace,
        "machine": info,
        "code": code,
        "settings": {
            "rates": list(args.rates),
            "seconds": args.seconds,
            "quick": args.quick,
            "size": list(SIZE),
            "filter": f">= {FILTER_LEVEL}",
            "field_filter": FIELD_FILTER,
            "highlight": HIGHLIGHT,
            "modes": {
                FEATURES: f">= {FILTER_LEVEL}, the field filter and the highlight on",
                BASELINE: f">= {FILTER_LEVEL} alone (the baseline)",
            },
            "keys_per_mode_in_turn": 2,
            "toggle_key": TOGGLE_KEY,
            "press_every_s": PRESS_EVERY_S,
            "nodes": len(PROFILES) * NODES_PER_SERVICE,
            "partitions": settings.partitions,
            "drain_s": DRAIN_S,
            "seed": args.seed,
        },
        "runs": [run.to_json() for run in runs],
        "figures": rows,
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = bench_parser(
        "console", "The console's key response, lag, memory and lost lines under a live feed."
    )
    parser.add_argument(
        "--seconds", type=float, help=f"load per rate, in seconds (default {DEFAULT_SECONDS:g})"
    )
    parser.add_argument(
        "--quick", action="store_true", help=f"smoke run of {QUICK_SECONDS:g} s per rate"
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the simulated traffic")
    args = parser.parse_args(argv)
    if args.seconds is None:
        args.seconds = QUICK_SECONDS if args.quick else DEFAULT_SECONDS
    if args.seconds < 2:
        parser.error("--seconds must be at least 2")
    args.rates = RATES
    return args


def main(argv: Sequence[str] | None = None) -> int:
    return run_and_record(run, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
