"""The registry's decisions on a fake clock: registration, silence, DOWN, return, replays, grace.

`Run` keeps two aligned clocks, as the monitor sees them: the monitor's (`now`, seconds)
and the ingestion clock of Kafka record timestamps (`T0_MS` + the same seconds, unless a
test says a record was ingested earlier, as a replay or a backlog is).
"""

from __future__ import annotations

from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import IllegalStateError

from backend.bus import Incoming
from backend.bus.kafka.subscription import read_through
from backend.monitor.progress import Progress
from backend.monitor.registry import Change, Event, Kind, Observed, Policy, Registry
from backend.monitor.service import node_down_fingerprint
from backend.schemas import ForgetNode, Heartbeat, NodeEntry, NodeStatus, Registration

T0_MS = 1_700_000_000_000
UP, DOWN = NodeStatus.UP, NodeStatus.DOWN


class Run:
    """A registry fed events and judged at `now`; `observe` is the monitor's reading."""

    def __init__(self, policy: Policy | None = None) -> None:
        self.registry = Registry(policy)
        self.now = 0.0
        self.since = 0.0
        self.horizon_lag = 0.0
        self.lagging: set[str] = set()

    def register(
        self, node: str, service: str = "PaymentService", *, ingested: float | None = None
    ) -> list[Change]:
        return self._take(Registration(node, service, "2026-01-01T00:00:00.000Z"), ingested)

    def beat(
        self, node: str, status: NodeStatus = UP, *, ingested: float | None = None
    ) -> list[Change]:
        return self._take(Heartbeat(node, status, "2026-01-01T00:00:00.000Z"), ingested)

    def beats(self, node: str, start: float, stop: float, every: float = 1.0) -> None:
        """Heartbeats UP at start, start + every, ... while below stop; `now` ends at the last."""
        moment = start
        while moment < stop:
            self.now = moment
            self.beat(node)
            moment += every

    def forget(self, node: str, *, ingested: float | None = None) -> list[Change]:
        request = ForgetNode(node_id=node, by="oncall", at="2026-01-01T00:00:00.000Z")
        return self._take(request, ingested)

    def _take(
        self, message: Registration | Heartbeat | ForgetNode, ingested: float | None
    ) -> list[Change]:
        seconds = self.now if ingested is None else ingested
        return self.registry.take(Event(message, T0_MS + round(seconds * 1000), self.now))

    def observe(self, node_id: str) -> Observed | None:
        if node_id in self.lagging:
            return None
        return Observed(horizon=self.now - self.horizon_lag, since=self.since)

    def judge(self, at: float) -> list[Change]:
        self.now = at
        return self.registry.judge(at, self.observe)

    def status(self, node: str) -> NodeStatus:
        entry = self.registry.entry(node)
        assert entry is not None
        return entry.status


def kinds(changes: list[Change]) -> list[Kind]:
    return [change.kind for change in changes]


# Registration -------------------------------------------------------------------------------


def test_a_registration_adds_the_node_up_with_its_service_and_ingestion_time() -> None:
    run = Run()
    run.now = 0.123
    [change] = run.register("payment-01")
    assert change.kind is Kind.REGISTERED
    assert change.entry == NodeEntry(
        node_id="payment-01",
        service_name="PaymentService",
        status=UP,
        registered_at="2023-11-14T22:13:20.123Z",
        last_heartbeat=None,
    )


def test_a_heartbeat_without_registration_registers_the_node_without_a_service() -> None:
    run = Run()
    [change] = run.beat("ghost-01")
    assert change.kind is Kind.UNREGISTERED
    assert change.entry.service_name is None
    assert change.entry.status is UP
    assert change.entry.last_heartbeat == "2023-11-14T22:13:20.000Z"
    assert "without having registered" in change.summary


def test_a_late_registration_fills_in_the_service_of_a_node_first_heard_by_heartbeat() -> None:
    run = Run()
    run.beat("payment-01")
    # Same millisecond, other topic: read after the heartbeat.
    [change] = run.register("payment-01")
    assert change.kind is Kind.REGISTERED
    assert change.entry.service_name == "PaymentService"
    assert change.entry.status is UP


def test_the_first_heartbeat_is_published_and_later_ones_at_most_every_few_seconds() -> None:
    run = Run(Policy(heartbeat_every_s=5.0))
    run.register("payment-01")
    run.now = 0.5
    assert kinds(run.beat("payment-01")) == [Kind.UPDATED]
    published = []
    for second in range(1, 12):
        run.now = 0.5 + second
        published += [run.now for _ in run.beat("payment-01")]
    assert published == [5.5, 10.5]
    entry = run.registry.entry("payment-01")
    assert entry is not None and entry.last_heartbeat == "2023-11-14T22:13:31.500Z"


# Silence ------------------------------------------------------------------------------------


def test_a_silent_node_goes_down_once_its_timeout_has_passed_and_is_raised_once() -> None:
    run = Run()
    run.register("payment-01")
    run.beats("payment-01", 0.0, 10.0)  # last heartbeat at 9.0
    assert run.judge(12.0) == []
    [change] = run.judge(12.02)
    assert change.kind is Kind.WENT_DOWN
    assert change.entry.status is DOWN
    assert "payment-01 (PaymentService) silent for 3.0 s (timeout 3.0 s)" in change.summary
    assert "last heartbeat 2023-11-14T22:13:29.000Z" in change.summary
    assert run.judge(20.0) == []
    assert run.judge(60.0) == []


def test_the_timeout_is_three_of_the_nodes_own_heartbeat_intervals() -> None:
    run = Run()
    run.register("slow-01")
    run.beats("slow-01", 0.0, 20.0, every=2.0)  # last at 18.0
    assert run.registry.timeout_of("slow-01") == pytest.approx(6.0)
    assert run.judge(23.9) == []
    assert kinds(run.judge(24.1)) == [Kind.WENT_DOWN]


def test_before_any_gap_is_known_the_interval_is_taken_as_one_second() -> None:
    run = Run()
    run.register("payment-01")
    assert run.registry.timeout_of("payment-01") == 3.0
    assert run.judge(2.9) == []
    assert kinds(run.judge(3.1)) == [Kind.WENT_DOWN]


def test_one_long_gap_does_not_stretch_the_estimated_interval() -> None:
    run = Run()
    run.register("payment-01")
    run.beats("payment-01", 0.0, 6.0)
    run.beats("payment-01", 8.5, 12.0)  # a 2.5 s hiccup, within the timeout
    assert run.registry.timeout_of("payment-01") == pytest.approx(3.0)


def test_a_fixed_timeout_overrides_the_estimate_and_a_floor_absorbs_transport_jitter() -> None:
    fixed = Run(Policy(timeout_s=5.0))
    fixed.register("payment-01")
    fixed.beats("payment-01", 0.0, 3.0, every=0.1)
    assert fixed.registry.timeout_of("payment-01") == 5.0

    fast = Run(Policy(min_timeout_s=1.0))
    fast.register("fast-01")
    fast.beats("fast-01", 0.0, 3.0, every=0.05)
    assert fast.registry.timeout_of("fast-01") == 1.0


def test_no_node_is_judged_where_the_monitor_has_not_read_everything() -> None:
    run = Run()
    run.register("payment-01")
    run.beats("payment-01", 0.0, 5.0)
    run.lagging.add("payment-01")
    assert run.judge(60.0) == []
    run.lagging.clear()
    assert kinds(run.judge(60.0)) == [Kind.WENT_DOWN]


def test_silence_counts_only_up_to_the_horizon_read_so_far() -> None:
    run = Run()
    run.register("payment-01")
    run.beats("payment-01", 0.0, 5.0)  # last at 4.0
    run.horizon_lag = 2.5  # fetches stalled: nothing known after now - 2.5
    assert run.judge(9.0) == []
    assert kinds(run.judge(9.6)) == [Kind.WENT_DOWN]


# DOWN and back ------------------------------------------------------------------------------


def test_a_down_heartbeat_takes_the_node_down_at_once() -> None:
    run = Run()
    run.register("payment-01")
    run.beats("payment-01", 0.0, 3.0)
    run.now = 3.2
    [change] = run.beat("payment-01", DOWN)
    assert change.kind is Kind.WENT_DOWN
    assert change.summary == "node payment-01 (PaymentService) reported DOWN in its heartbeat"
    assert change.entry.last_heartbeat == "2023-11-14T22:13:23.200Z"
    assert run.judge(30.0) == []


def test_a_heartbeat_up_after_down_brings_the_node_back() -> None:
    run = Run()
    run.register("payment-01")
    run.beats("payment-01", 0.0, 3.0)
    assert kinds(run.judge(10.0)) == [Kind.WENT_DOWN]
    run.now = 11.0
    [change] = run.beat("payment-01")
    assert change.kind is Kind.CAME_BACK
    assert change.entry.status is UP
    assert change.summary == "node payment-01 (PaymentService) is back: heartbeats UP again"


def test_a_new_registration_after_down_brings_the_node_back_with_its_new_time() -> None:
    run = Run()
    run.register("payment-01")
    run.now = 1.0
    run.beat("payment-01", DOWN)
    run.now = 30.0
    [change] = run.register("payment-01")
    assert change.kind is Kind.CAME_BACK
    assert change.entry.registered_at == "2023-11-14T22:13:50.000Z"


def test_a_node_back_from_down_starts_its_interval_estimate_afresh() -> None:
    run = Run()
    run.register("slow-01")
    run.beats("slow-01", 0.0, 20.0, every=2.0)
    run.now = 18.5
    run.beat("slow-01", DOWN)
    run.now = 40.0
    run.beat("slow-01")
    assert run.registry.timeout_of("slow-01") == 3.0
    run.now = 40.5
    run.beat("slow-01")
    assert run.registry.timeout_of("slow-01") == pytest.approx(1.5)


def test_a_node_unknown_until_it_says_down_is_registered_down_without_an_alert() -> None:
    run = Run()
    [change] = run.beat("gone-01", DOWN)
    assert change.kind is Kind.UNREGISTERED
    assert change.entry.status is DOWN


# Replays and restarts -----------------------------------------------------------------------


def test_records_replayed_after_a_crash_change_nothing() -> None:
    run = Run()
    run.register("payment-01", ingested=0.0)
    for second in range(1, 4):
        run.now = second
        run.beat("payment-01")
    run.now = 3.5
    run.beat("payment-01", DOWN)
    run.now = 4.0  # the uncommitted batch again: the registration and the UP beats before DOWN
    assert run.register("payment-01", ingested=0.0) == []
    for second in range(1, 4):
        assert run.beat("payment-01", ingested=second) == []
    assert run.status("payment-01") is DOWN


def test_a_registration_older_than_the_down_it_follows_does_not_bring_the_node_back() -> None:
    run = Run()
    run.now = 5.0
    run.beat("payment-01", DOWN)  # read first: the registrations partition lagged
    [change] = run.register("payment-01", ingested=1.0)
    assert change.kind is Kind.REGISTERED
    assert change.entry.status is DOWN


def restarted(run: Run, at: float) -> Run:
    """A new monitor at `at`, restored from what the old one published, caught up at once."""
    fresh = Run(run.registry.policy)
    fresh.registry.restore(run.registry.entries(), at, T0_MS + round(at * 1000))
    fresh.now = fresh.since = at
    return fresh


def test_a_restart_restores_every_entry_and_replays_do_not_touch_registered_at() -> None:
    run = Run()
    run.register("payment-01", ingested=0.0)
    run.beats("payment-01", 0.0, 10.0)
    before = run.registry.entries()
    after = restarted(run, 12.0)
    assert after.registry.entries() == before
    assert after.register("payment-01", ingested=0.0) == []
    assert after.registry.entries() == before


def test_after_a_restart_every_node_gets_a_full_timeout_from_the_catch_up() -> None:
    run = Run()
    run.register("payment-01")
    run.beats("payment-01", 0.0, 10.0)  # last at 9.0; the monitor is away until 30.0
    after = restarted(run, 30.0)
    assert after.judge(32.9) == []
    [change] = after.judge(33.1)
    assert change.kind is Kind.WENT_DOWN
    assert "silent for 3.1 s" in change.summary


def test_a_node_heartbeating_through_a_restart_is_never_judged_down() -> None:
    run = Run()
    run.register("payment-01")
    run.beats("payment-01", 0.0, 10.0)
    after = restarted(run, 10.5)
    after.since = 14.0  # caught up only at 14.0: the backlog of 10.0 .. 14.0 read at once
    for second in range(10, 14):
        after.now = 14.0
        after.beat("payment-01", ingested=second)
    after.beats("payment-01", 15.0, 40.0)
    for moment in (14.0, 16.0, 20.0, 39.5):
        assert after.judge(moment) == []


def test_a_node_already_down_before_a_restart_is_not_raised_again() -> None:
    run = Run()
    run.register("payment-01")
    run.beats("payment-01", 0.0, 3.0)
    assert kinds(run.judge(10.0)) == [Kind.WENT_DOWN]
    after = restarted(run, 20.0)
    assert after.status("payment-01") is DOWN
    assert after.judge(60.0) == []
    after.now = 61.0
    for second in range(3):  # the heartbeats of 0.0 .. 2.0 replayed
        assert after.beat("payment-01", ingested=second) == []
    assert after.status("payment-01") is DOWN


def test_fingerprints_name_the_node() -> None:
    assert node_down_fingerprint("payment-01") == "NODE_DOWN:payment-01"


# Progress: when the monitor has read everything of a partition -------------------------------


class FakeConsumer:
    """The parts of aiokafka's consumer that `Progress` reads."""

    def __init__(self, partitions: int = 3) -> None:
        self.partitions = partitions
        self.assigned: set[TopicPartition] = set()
        self.positions: dict[TopicPartition, int] = {}
        self.ends: dict[TopicPartition, int] = {}
        self.polled_ms: dict[TopicPartition, int] = {}

    def assignment(self) -> set[TopicPartition]:
        return set(self.assigned)

    def last_poll_timestamp(self, tp: TopicPartition) -> int | None:
        return self.polled_ms.get(tp)

    def last_stable_offset(self, tp: TopicPartition) -> int | None:
        return self.ends.get(tp)

    def highwater(self, tp: TopicPartition) -> int | None:
        return self.ends.get(tp)

    async def position(self, tp: TopicPartition) -> int:
        if tp not in self.assigned:
            raise IllegalStateError(f"{tp} is not assigned")
        return self.positions[tp]

    def partitions_for_topic(self, topic: str) -> set[int]:
        return set(range(self.partitions))

    def fetched(self, wall_ms: int, end: int, read: int, *tps: TopicPartition) -> None:
        for tp in tps:
            self.polled_ms[tp] = wall_ms
            self.ends[tp] = end
            self.positions[tp] = read


class ConsumerSubscription:
    """The progress calls of `KafkaSubscription`, on a `FakeConsumer`."""

    def __init__(self, consumer: FakeConsumer) -> None:
        self.consumer = consumer

    def assignment(self) -> frozenset[tuple[str, int]]:
        return frozenset((tp.topic, tp.partition) for tp in self.consumer.assignment())

    async def read_through(self, lane: tuple[str, int]) -> float | None:
        return await read_through(self.consumer, TopicPartition(*lane))

    def partition_count(self, topic: str) -> int | None:
        return len(self.consumer.partitions_for_topic(topic)) or None


def progress_of(consumer: FakeConsumer) -> Progress:
    return Progress(ConsumerSubscription(consumer), TOPICS)  # type: ignore[arg-type]


def lanes(tps: set[TopicPartition]) -> set[tuple[str, int]]:
    return {(tp.topic, tp.partition) for tp in tps}


TOPICS = ("ns.registrations", "ns.heartbeats")


def every_partition(consumer: FakeConsumer) -> list[TopicPartition]:
    return [TopicPartition(t, p) for t in TOPICS for p in range(consumer.partitions)]


def record(topic: str, partition: int) -> Incoming:
    return Incoming(topic, partition, 0, b"payment-01", b"{}", (), T0_MS)


async def test_progress_judges_nothing_before_the_assignment_and_the_first_fetch(
    monkeypatch: Any,
) -> None:
    monkeypatch.setattr("time.time", lambda: T0_MS / 1000)
    consumer = FakeConsumer()
    progress = progress_of(consumer)
    assert await progress.refresh(100.0) == set()
    assert progress.observe("payment-01") is None
    consumer.assigned = set(every_partition(consumer))
    assert await progress.refresh(100.1) == lanes(consumer.assigned)
    assert progress.observe("payment-01") is None


def seen(progress: Progress) -> tuple[float, float]:
    observed = progress.observe("payment-01")
    assert observed is not None
    return observed.horizon, observed.since


async def test_progress_horizon_is_the_fetch_whose_end_was_reached(monkeypatch: Any) -> None:
    wall = {"now": T0_MS / 1000}
    monkeypatch.setattr("time.time", lambda: wall["now"])
    consumer = FakeConsumer()
    tps = every_partition(consumer)
    consumer.assigned = set(tps)
    progress = progress_of(consumer)
    consumer.fetched(T0_MS - 200, 10, 10, *tps)  # a fetch 0.2 s ago, all of it read
    await progress.refresh(50.0)
    assert seen(progress) == pytest.approx((49.8, 50.0))

    # A later fetch brought records the monitor has not read: the horizon stays.
    wall["now"] += 1.0
    consumer.fetched(T0_MS + 900, 20, 10, *tps)
    await progress.refresh(51.0)
    assert progress.caught_up == 0
    assert seen(progress) == pytest.approx((49.8, 50.0))

    wall["now"] += 1.0
    consumer.fetched(T0_MS + 1900, 20, 20, *tps)
    await progress.refresh(52.0)
    assert progress.caught_up == len(tps)
    assert seen(progress) == pytest.approx((51.9, 50.0))


async def test_progress_judges_a_node_only_on_the_partitions_its_records_are_on(
    monkeypatch: Any,
) -> None:
    monkeypatch.setattr("time.time", lambda: T0_MS / 1000)
    consumer = FakeConsumer()
    tps = every_partition(consumer)
    consumer.assigned = set(tps)
    progress = progress_of(consumer)
    progress.note("payment-01", record("ns.registrations", 2))
    progress.note("payment-01", record("ns.heartbeats", 2))
    lagging = TopicPartition("ns.heartbeats", 2)
    consumer.fetched(T0_MS, 10, 10, *(tp for tp in tps if tp != lagging))
    consumer.fetched(T0_MS, 10, 4, lagging)
    await progress.refresh(10.0)
    assert progress.observe("payment-01") is None
    progress.note("other-01", record("ns.registrations", 0))
    progress.note("other-01", record("ns.heartbeats", 0))
    assert progress.observe("other-01") is not None


async def test_progress_forgets_a_revoked_partition_and_restarts_grace_when_regained(
    monkeypatch: Any,
) -> None:
    monkeypatch.setattr("time.time", lambda: T0_MS / 1000)
    consumer = FakeConsumer(partitions=1)
    tps = every_partition(consumer)
    consumer.assigned = set(tps)
    consumer.fetched(T0_MS, 5, 5, *tps)
    progress = progress_of(consumer)
    await progress.refresh(10.0)
    assert progress.observe("payment-01") is not None
    consumer.assigned = set()
    await progress.refresh(11.0)
    assert progress.observe("payment-01") is None
    consumer.assigned = set(tps)
    assert await progress.refresh(20.0) == lanes(set(tps))
    observed = progress.observe("payment-01")
    assert observed is not None and observed.since == 20.0


async def test_progress_guesses_an_unseen_nodes_partition_as_the_producer_hashes_it() -> None:
    consumer = FakeConsumer(partitions=6)
    progress = progress_of(consumer)
    # Kafka's default partitioner: murmur2(b"payment-01") & 0x7fffffff = 2081862125, % 6 = 5
    assert progress.lanes("payment-01") == (
        TopicPartition("ns.registrations", 5),
        TopicPartition("ns.heartbeats", 5),
    )
    progress.note("payment-01", record("ns.heartbeats", 2))
    assert progress.lanes("payment-01") == (
        TopicPartition("ns.registrations", 5),
        TopicPartition("ns.heartbeats", 2),
    )


def test_a_goodbye_in_the_same_millisecond_as_the_last_beat_still_takes_the_node_down() -> None:
    world = Run()
    world.register("n1")
    world.beat("n1", ingested=1.0)
    assert kinds(world.beat("n1", DOWN, ingested=1.0)) == [Kind.WENT_DOWN]
    assert world.beat("n1", ingested=1.0) == []  # replays of either change nothing
    assert world.beat("n1", DOWN, ingested=1.0) == []


# Flapping -----------------------------------------------------------------------------------


def flap(run: Run, node: str, times: int, start: float, every: float = 10.0) -> list[Kind]:
    """`times` falls (a DOWN heartbeat) and returns (an UP one), `every` seconds apart."""
    seen: list[Kind] = []
    for index in range(times):
        run.now = start + index * every
        seen += kinds(run.beat(node, DOWN))
        run.now += every / 2
        seen += kinds(run.beat(node, UP))
    return seen


def test_a_node_down_more_than_flap_count_times_in_the_window_flaps_as_one_alert() -> None:
    run = Run(Policy(flap_count=3, flap_window_s=300))
    run.register("payment-01")
    falls = flap(run, "payment-01", 6, start=10)
    assert falls == [
        *[Kind.WENT_DOWN, Kind.CAME_BACK] * 3,
        Kind.STARTED_FLAPPING,  # the 4th fall within 300 s: one alert, no NODE_DOWN
        Kind.UPDATED,
        *[Kind.UPDATED, Kind.UPDATED] * 2,  # later falls and returns raise nothing
    ]
    last_fall = 10 + 5 * 10
    run.beats("payment-01", last_fall + 6, last_fall + 301)  # up and heartbeating
    assert kinds(run.judge(last_fall + 300)) == []
    (settled,) = run.judge(last_fall + 301)
    assert (settled.kind, settled.entry.status) == (Kind.STOPPED_FLAPPING, UP)
    assert "stopped flapping: up for 300 s" in settled.summary


def test_falls_spread_wider_than_the_window_are_each_a_node_down() -> None:
    run = Run(Policy(flap_count=3, flap_window_s=60))
    run.register("payment-01")
    assert flap(run, "payment-01", 6, start=10, every=30) == [Kind.WENT_DOWN, Kind.CAME_BACK] * 6


def test_a_flapping_node_that_stays_down_stops_flapping_down() -> None:
    run = Run(Policy(flap_count=2, flap_window_s=100))
    run.register("payment-01")
    flap(run, "payment-01", 3, start=10)
    run.now = 50
    assert kinds(run.beat("payment-01", DOWN)) == [Kind.UPDATED]
    (settled,) = run.judge(151)
    assert (settled.kind, settled.entry.status) == (Kind.STOPPED_FLAPPING, DOWN)


# Retirement ---------------------------------------------------------------------------------


def test_a_node_down_past_its_retention_is_retired_once() -> None:
    run = Run(Policy(timeout_s=3, retire_after_s=100))
    run.register("payment-01")
    run.beats("payment-01", 0.0, 5.0)
    assert kinds(run.judge(8.5)) == [Kind.WENT_DOWN]
    assert run.judge(108.0) == []
    (retired,) = run.judge(109.0)
    assert (retired.kind, retired.entry.node_id) == (Kind.RETIRED, "payment-01")
    assert "went silent 100 s ago" in retired.summary
    assert run.registry.entry("payment-01") is None
    assert run.judge(500.0) == []


def test_a_node_that_said_goodbye_is_retired_after_the_shorter_retention() -> None:
    run = Run(Policy(retire_after_s=1000, retire_goodbye_s=60))
    run.register("payment-01")
    run.now = 5.0
    assert kinds(run.beat("payment-01", DOWN)) == [Kind.WENT_DOWN]
    assert run.judge(64.0) == []
    (retired,) = run.judge(66.0)
    assert retired.kind is Kind.RETIRED
    assert "said goodbye" in retired.summary


def test_a_node_that_comes_back_is_not_retired() -> None:
    run = Run(Policy(timeout_s=3, retire_after_s=100))
    run.register("payment-01")
    run.beats("payment-01", 0.0, 5.0)
    run.judge(10.0)
    run.now = 50.0
    assert kinds(run.beat("payment-01")) == [Kind.CAME_BACK]
    run.beats("payment-01", 50.0, 200.0)
    assert run.judge(200.5) == []
    assert run.status("payment-01") is UP


def test_a_retired_node_that_registers_again_is_new() -> None:
    run = Run(Policy(retire_goodbye_s=10))
    run.register("payment-01")
    run.now = 1.0
    run.beat("payment-01", DOWN)
    assert kinds(run.judge(12.0)) == [Kind.RETIRED]
    run.now = 20.0
    assert kinds(run.register("payment-01")) == [Kind.REGISTERED]
    assert run.status("payment-01") is UP


def test_retention_counts_from_when_a_restored_down_node_was_last_heard() -> None:
    run = Run(Policy(timeout_s=3, retire_after_s=100))
    run.register("payment-01")
    run.beats("payment-01", 0.0, 5.0)
    run.judge(10.0)
    fresh = restarted(run, 60.0)  # last heard at 4 s: 56 s of its 100 s are gone
    assert fresh.judge(104.0) == []
    assert kinds(fresh.judge(105.0)) == [Kind.RETIRED]


def test_forgetting_a_down_node_retires_it_now() -> None:
    run = Run(Policy(timeout_s=3))
    run.register("payment-01")
    run.beats("payment-01", 0.0, 5.0)
    run.judge(10.0)
    run.now = 11.0
    (retired,) = run.forget("payment-01")
    assert retired.kind is Kind.RETIRED
    assert retired.summary.endswith("forgotten by oncall")
    assert run.registry.entry("payment-01") is None


def test_forgetting_an_up_node_keeps_it() -> None:
    run = Run()
    run.register("payment-01")
    run.beats("payment-01", 0.0, 5.0)
    run.now = 4.5
    (kept,) = run.forget("payment-01")
    assert kept.kind is Kind.KEPT
    assert run.status("payment-01") is UP


def test_a_request_to_forget_older_than_what_the_node_said_since_changes_nothing() -> None:
    run = Run(Policy(timeout_s=3))
    run.register("payment-01")
    run.beats("payment-01", 0.0, 5.0)
    run.judge(10.0)
    run.now = 20.0
    run.beat("payment-01", DOWN)  # heard at 20 s, DOWN: a request of 15 s is stale
    assert run.forget("payment-01", ingested=15.0) == []
    assert run.forget("unknown-01") == []
    assert run.status("payment-01") is DOWN
