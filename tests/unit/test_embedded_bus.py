"""The embedded bus on SQLite: what services rely on, with no Kafka."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path

import pytest
from aiokafka.partitioner import murmur2

from backend.bus.base import BusUnavailable, Incoming, Outgoing, PublisherFenced
from backend.bus.embedded import EmbeddedBus, EmbeddedSubscription, Retention
from backend.bus.embedded import subscription as polling
from backend.bus.embedded.records import Records

LOGS = "t.logs"
STATE = "t.state"
PARTITIONS = 6
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def bus(tmp_path: Path) -> AsyncIterator[EmbeddedBus]:
    # A long session: partitions move only because members tell each other, never by lapse.
    opened = EmbeddedBus(tmp_path / "bus.db", PARTITIONS, retention=None, session_s=60)
    await opened.ensure_topics([LOGS, STATE], compacted=[STATE])
    yield opened
    await opened.close()


def records(count: int, *, start: int = 0, nodes: int = 20, topic: str = LOGS) -> list[Outgoing]:
    return [
        Outgoing(
            topic,
            f"node-{i % nodes}".encode(),
            f"{i}".encode(),
            (("seq", str(i).encode()), ("source", b"test")),
        )
        for i in range(start, start + count)
    ]


async def publish(bus: EmbeddedBus, batch: Sequence[Outgoing]) -> None:
    publisher = bus.publisher()
    await publisher.start()
    try:
        await publisher.publish(batch)
    finally:
        await publisher.stop()


async def drain(
    subscription: EmbeddedSubscription, count: int, limit_s: float = 5.0
) -> list[Incoming]:
    """Poll until `count` records came, or fail after `limit_s`."""
    got: list[Incoming] = []
    deadline = time.monotonic() + limit_s
    while len(got) < count:
        assert time.monotonic() < deadline, f"only {len(got)} of {count} records arrived"
        got += await subscription.poll(1000, 100)
    return got


async def until(check: Callable[[], Awaitable[bool]], limit_s: float = 5.0) -> None:
    deadline = time.monotonic() + limit_s
    while not await check():
        assert time.monotonic() < deadline, "condition not reached in time"


def partition_of(key: bytes) -> int:
    return int(murmur2(key) & 0x7FFFFFFF) % PARTITIONS


async def test_keys_choose_partitions_and_order_is_kept_within_each(bus: EmbeddedBus) -> None:
    before_ms = int(time.time() * 1000)
    await publish(bus, records(300))
    after_ms = int(time.time() * 1000)

    got = await bus.snapshot(LOGS)

    assert len(got) == 300
    by_partition: dict[int, list[Incoming]] = {}
    for record in got:
        assert record.key is not None
        assert record.partition == partition_of(record.key)
        assert record.header("seq") == record.value
        assert record.headers == (("seq", record.value), ("source", b"test"))
        assert before_ms <= record.timestamp_ms <= after_ms
        by_partition.setdefault(record.partition, []).append(record)
    assert len(by_partition) > 1
    for lane in by_partition.values():
        assert [record.offset for record in lane] == list(range(len(lane)))
        sequence = [int(record.value) for record in lane]
        assert sequence == sorted(sequence)


async def test_read_ranges_gives_each_lane_its_offsets_from_start_to_end(bus: EmbeddedBus) -> None:
    await publish(bus, records(300))
    lanes = sorted({(LOGS, record.partition) for record in await bus.snapshot(LOGS)})
    (first, second), unknown = lanes[:2], ("no-such-topic", 0)

    got = await bus.read_ranges({first: (-5, 3), second: (2, 4), unknown: (0, 9)})

    assert [(r.partition, r.offset) for r in got] == [
        *((first[1], offset) for offset in range(3)),
        *((second[1], offset) for offset in (2, 3)),
    ]
    assert await bus.read_ranges({first: (3, 3)}) == []


async def test_a_key_none_spreads_over_partitions(bus: EmbeddedBus) -> None:
    await publish(bus, [Outgoing(LOGS, None, b"x") for _ in range(200)])
    assert len({record.partition for record in await bus.snapshot(LOGS)}) > 1


async def test_group_members_split_partitions_and_take_over_from_one_that_stops(
    bus: EmbeddedBus,
) -> None:
    first = bus.subscription([LOGS], "g")
    second = bus.subscription([LOGS], "g")
    await first.start()
    await second.start()

    async def split() -> bool:
        await first.poll(1000, 20)
        await second.poll(1000, 20)
        return len(first.assignment()) == len(second.assignment()) == PARTITIONS // 2

    await until(split)
    assert first.assignment().isdisjoint(second.assignment())
    assert first.assignment() | second.assignment() == {(LOGS, p) for p in range(PARTITIONS)}

    await publish(bus, records(600))
    got_first: list[Incoming] = []
    got_second: list[Incoming] = []
    while len(got_first) + len(got_second) < 600:
        got_first += await first.poll(1000, 20)
        got_second += await second.poll(1000, 20)
    assert {(LOGS, r.partition) for r in got_first} <= first.assignment()
    assert {(LOGS, r.partition) for r in got_second} <= second.assignment()
    assert sorted(int(r.value) for r in got_first + got_second) == list(range(600))
    await first.commit()
    await second.commit()

    await second.stop()

    async def took_over() -> bool:
        await first.poll(1000, 20)
        return len(first.assignment()) == PARTITIONS

    await until(took_over)
    await publish(bus, records(60, start=600))
    # The second member's committed offsets carry over: only the new records come.
    later = await drain(first, 60)
    assert sorted(int(r.value) for r in later) == list(range(600, 660))
    assert await first.poll(1000, 50) == []
    await first.stop()


async def test_a_member_that_stops_polling_loses_its_partitions(tmp_path: Path) -> None:
    bus = EmbeddedBus(tmp_path / "bus.db", PARTITIONS, retention=None, session_s=0.5)
    try:
        await bus.ensure_topics([LOGS])
        first = bus.subscription([LOGS], "g")
        silent = bus.subscription([LOGS], "g")
        await first.start()
        await silent.start()

        async def split() -> bool:
            await first.poll(100, 20)
            await silent.poll(100, 20)
            return len(first.assignment()) == PARTITIONS // 2 == len(silent.assignment())

        await until(split)

        async def took_over() -> bool:
            await first.poll(100, 20)
            return len(first.assignment()) == PARTITIONS

        started = time.monotonic()
        await until(took_over)
        assert time.monotonic() - started >= 0.2  # not before the lease could lapse
        await first.stop()
        await silent.stop()
    finally:
        await bus.close()


async def test_committed_offsets_survive_reopening_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bus.db"
    bus = EmbeddedBus(path, PARTITIONS, retention=None)
    await bus.ensure_topics([LOGS])
    await publish(bus, records(100))
    reader = bus.subscription([LOGS], "g")
    await reader.start()
    assert len(await drain(reader, 100)) == 100
    await reader.commit()
    await reader.stop()
    await bus.close()

    reopened = EmbeddedBus(path, PARTITIONS, retention=None)
    try:
        await publish(reopened, records(10, start=100))
        again = reopened.subscription([LOGS], "g")
        await again.start()
        got = await drain(again, 10)
        assert sorted(int(r.value) for r in got) == list(range(100, 110))
        assert await again.poll(1000, 50) == []
        await again.stop()

        newcomer = reopened.subscription([LOGS], "other", from_beginning=False)
        await newcomer.start()
        assert await newcomer.poll(1000, 50) == []  # a new group without offsets: the end
        await publish(reopened, records(5, start=110))
        assert sorted(int(r.value) for r in await drain(newcomer, 5)) == list(range(110, 115))
        await newcomer.stop()
    finally:
        await reopened.close()


async def test_uncommitted_records_come_again_to_the_next_member(bus: EmbeddedBus) -> None:
    await publish(bus, records(50))
    reader = bus.subscription([LOGS], "g")
    await reader.start()
    await drain(reader, 50)
    await reader.stop()  # no commit
    again = bus.subscription([LOGS], "g")
    await again.start()
    assert len(await drain(again, 50)) == 50
    await again.stop()


async def test_tail_misses_nothing_published_after_start(bus: EmbeddedBus) -> None:
    await publish(bus, records(40))
    tail = bus.tail([LOGS, "t.later"])
    await tail.start()
    assert await tail.poll(1000, 50) == []

    other = EmbeddedBus(bus.path, PARTITIONS, retention=None)  # as another process would
    try:
        await publish(other, records(40, start=40))
        await publish(other, records(3, topic="t.later"))  # a topic created after start()
    finally:
        await other.close()

    got = await drain(tail, 43)
    assert sorted(int(r.value) for r in got if r.topic == LOGS) == list(range(40, 80))
    assert sorted(int(r.value) for r in got if r.topic == "t.later") == [0, 1, 2]
    await tail.stop()


async def test_tail_started_while_publishing_misses_nothing_after_start(bus: EmbeddedBus) -> None:
    publisher = bus.publisher()
    await publisher.start()
    sent = 0

    async def keep_publishing() -> None:
        nonlocal sent
        while True:
            await publisher.publish(records(10, start=sent))
            sent += 10
            await asyncio.sleep(0)

    publishing = asyncio.create_task(keep_publishing())
    await asyncio.sleep(0.05)
    tail = bus.tail([LOGS])
    await tail.start()
    published_at_start = sent  # every record from here on was published after start()
    await asyncio.sleep(0.05)
    publishing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await publishing
    await publisher.stop()
    final = len(await bus.snapshot(LOGS))

    got: list[Incoming] = []
    while batch := await tail.poll(5000, 50):
        got += batch
    values = {int(r.value) for r in got}
    assert set(range(published_at_start + 10, final)) <= values
    assert len(values) == len(got)  # nothing twice
    await tail.stop()


async def test_a_poll_wakes_for_a_publish_of_this_process(
    bus: EmbeddedBus, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(polling, "_CHECK_EVERY_S", 10.0)  # no help from reading the file
    reader = bus.subscription([LOGS], None)
    await reader.start()
    waiting = asyncio.create_task(reader.poll(100, 10_000))
    await asyncio.sleep(0.1)
    started = time.monotonic()
    await publish(bus, records(1))
    got = await waiting
    assert len(got) == 1
    assert time.monotonic() - started < 2.0
    await reader.stop()


async def test_records_of_another_process_arrive(bus: EmbeddedBus) -> None:
    tail = bus.tail([LOGS])
    await tail.start()
    script = (
        "import asyncio, sys\n"
        "from pathlib import Path\n"
        "from backend.bus.base import Outgoing\n"
        "from backend.bus.embedded import EmbeddedBus\n"
        "async def main():\n"
        "    bus = EmbeddedBus(Path(sys.argv[1]), 6, retention=None)\n"
        "    publisher = bus.publisher()\n"
        "    await publisher.start()\n"
        "    batch = [Outgoing('t.logs', b'k', str(i).encode()) for i in range(25)]\n"
        "    await publisher.publish(batch)\n"
        "    await publisher.stop()\n"
        "    await bus.close()\n"
        "asyncio.run(main())\n"
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, str(bus.path), cwd=ROOT, stderr=subprocess.PIPE
    )
    _, errors = await process.communicate()
    assert process.returncode == 0, errors.decode()
    got = await drain(tail, 25)
    assert [int(r.value) for r in got] == list(range(25))
    await tail.stop()


async def test_transactional_commit_publishes_and_commits_together(bus: EmbeddedBus) -> None:
    await publish(bus, records(30))
    reader = bus.subscription([LOGS], "alerter")
    await reader.start()
    consumed = await drain(reader, 30)
    await reader.stop()

    writer = bus.transactional_publisher("alerter-0")
    await writer.start()
    await writer.commit([Outgoing(STATE, b"a", b"1")], consumed[:10], "alerter")

    assert [r.value for r in await bus.snapshot(STATE)] == [b"1"]
    again = bus.subscription([LOGS], "alerter")
    await again.start()
    rest = await drain(again, 20)
    committed = {(r.partition, r.offset) for r in consumed[:10]}
    assert {(r.partition, r.offset) for r in rest} == {
        (r.partition, r.offset) for r in consumed
    } - committed
    await again.stop()
    await writer.stop()


async def test_transactional_commit_is_all_or_nothing(
    bus: EmbeddedBus, monkeypatch: pytest.MonkeyPatch
) -> None:
    await publish(bus, records(10))
    consumed = await bus.snapshot(LOGS)
    writer = bus.transactional_publisher("alerter-0")
    await writer.start()

    append = Records._append

    def failing(self: Records, *args: object, **kwargs: object) -> None:
        append(self, *args, **kwargs)  # type: ignore[arg-type]
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(Records, "_append", failing)
    with pytest.raises(BusUnavailable):
        await writer.commit(
            [Outgoing(STATE, b"a", b"1"), Outgoing(LOGS, b"k", b"new")], consumed, "alerter"
        )
    monkeypatch.undo()

    assert await bus.snapshot(STATE) == []
    assert len(await bus.snapshot(LOGS)) == 10
    reader = bus.subscription([LOGS], "alerter")
    await reader.start()
    assert len(await drain(reader, 10)) == 10  # no offsets were committed either
    await reader.stop()

    await writer.commit([Outgoing(LOGS, b"k", b"new")], (), "alerter")
    fresh = [r for r in await bus.snapshot(LOGS) if r.value == b"new"]
    assert len(fresh) == 1
    others = [r for r in await bus.snapshot(LOGS) if r.partition == fresh[0].partition]
    assert [r.offset for r in others] == list(range(len(others)))  # no offset was lost


async def test_a_newer_transactional_publisher_fences_the_older(bus: EmbeddedBus) -> None:
    old = bus.transactional_publisher("alerter-0")
    await old.start()
    await old.commit([Outgoing(STATE, b"a", b"old")], (), "alerter")
    new = bus.transactional_publisher("alerter-0")
    await new.start()
    with pytest.raises(PublisherFenced):
        await old.commit([Outgoing(STATE, b"a", b"stale")], (), "alerter")
    await new.commit([Outgoing(STATE, b"a", b"new")], (), "alerter")
    assert [r.value for r in await bus.snapshot(STATE)] == [b"new"]
    unrelated = bus.transactional_publisher("alerter-1")
    await unrelated.start()
    await unrelated.commit([], (), "alerter")
    with pytest.raises(PublisherFenced):
        await old.commit([], (), "alerter")


async def test_compaction_keeps_the_latest_per_key_and_tombstones(bus: EmbeddedBus) -> None:
    await publish(
        bus,
        [
            Outgoing(STATE, b"a", b"a1"),
            Outgoing(STATE, b"b", b"b1"),
            Outgoing(STATE, b"a", b"a2"),
        ],
    )
    await publish(bus, [Outgoing(STATE, b"b", b""), Outgoing(STATE, b"c", b"c1")])

    snapshot = await bus.snapshot(STATE)
    assert sorted((r.key, r.value) for r in snapshot) == [
        (b"a", b"a2"),
        (b"b", b""),
        (b"c", b"c1"),
    ]
    latest_a = next(r for r in snapshot if r.key == b"a")
    assert latest_a.offset >= 1  # offsets are not reused by compaction

    reader = bus.subscription([STATE], None)
    await reader.start()
    got = await reader.poll(100, 50)
    assert sorted((r.key, r.value) for r in got) == sorted((r.key, r.value) for r in snapshot)
    await reader.stop()
    assert await bus.snapshot("t.missing") == []


async def test_retention_caps_count_and_age_but_not_compacted_topics(tmp_path: Path) -> None:
    bus = EmbeddedBus(tmp_path / "bus.db", PARTITIONS, Retention(max_age_s=None, max_records=60))
    try:
        await bus.ensure_topics([LOGS, STATE], compacted=[STATE])
        reader = bus.subscription([LOGS], None)
        await reader.start()
        await publish(bus, records(600))
        await publish(bus, [Outgoing(STATE, str(i).encode(), b"s") for i in range(100)])

        deleted = await bus.apply_retention()

        kept = await bus.snapshot(LOGS)
        assert deleted == 600 - len(kept)
        for partition in range(PARTITIONS):
            lane = [r for r in kept if r.partition == partition]
            assert len(lane) <= 10
            written = sum(1 for i in range(20) if partition_of(f"node-{i}".encode()) == partition)
            if written:
                assert lane[-1].offset == 30 * written - 1  # the newest are the ones kept
        assert len(await bus.snapshot(STATE)) == 100
        # A reader left behind the trimmed records goes on with what is left, to the end.
        got = await drain(reader, len(kept))
        assert sorted(int(r.value) for r in got) == sorted(int(r.value) for r in kept)
        assert await reader.read_through((LOGS, kept[0].partition)) is not None
        await reader.stop()
    finally:
        await bus.close()

    aging = EmbeddedBus(tmp_path / "age.db", PARTITIONS, Retention(max_age_s=0.3, max_records=None))
    old_lane = partition_of(b"node-0")
    young = next(
        f"node-{i}" for i in range(1, 100) if partition_of(f"node-{i}".encode()) != old_lane
    )
    try:
        await publish(aging, records(30, nodes=1))
        await asyncio.sleep(0.5)
        await publish(
            aging, [Outgoing(LOGS, young.encode(), str(i).encode()) for i in range(30, 60)]
        )
        assert await aging.apply_retention() == 30
        assert sorted(int(r.value) for r in await aging.snapshot(LOGS)) == list(range(30, 60))
        # A partition emptied by retention is still read to its end.
        reader = aging.subscription([LOGS], None)
        await reader.start()
        assert len(await drain(reader, 30)) == 30
        await reader.poll(100, 0)
        assert await reader.read_through((LOGS, old_lane)) is not None
        await reader.stop()
    finally:
        await aging.close()


async def test_two_buses_on_one_file_share_groups_and_records(tmp_path: Path) -> None:
    path = tmp_path / "bus.db"
    one = EmbeddedBus(path, PARTITIONS, retention=None)
    two = EmbeddedBus(path, PARTITIONS, retention=None)
    try:
        await one.ensure_topics([LOGS])
        await two.ensure_topics([LOGS])
        first = one.subscription([LOGS], "g")
        second = two.subscription([LOGS], "g")
        await first.start()
        await second.start()
        await publish(one, records(100))
        await publish(two, records(100, start=100))
        got: list[Incoming] = []
        deadline = time.monotonic() + 5
        while len(got) < 200:
            assert time.monotonic() < deadline
            got += await first.poll(1000, 20)
            got += await second.poll(1000, 20)
        assert sorted(int(r.value) for r in got) == list(range(200))
        assert first.assignment().isdisjoint(second.assignment())
        await first.stop()
        await second.stop()
    finally:
        await one.close()
        await two.close()


async def test_progress_of_a_reader(bus: EmbeddedBus) -> None:
    reader = bus.subscription([LOGS], "monitor")
    lane = (LOGS, partition_of(b"node-0"))
    assert reader.assignment() == frozenset()
    await reader.start()
    assert reader.partition_count(LOGS) == PARTITIONS
    assert reader.partition_count("t.missing") is None
    assert reader.assignment() == {(LOGS, p) for p in range(PARTITIONS)}
    assert await reader.read_through(lane) is None  # not checked yet

    before = time.time()
    await reader.poll(1000, 0)
    first = await reader.read_through(lane)
    assert first is not None
    assert before <= first <= time.time()

    await publish(bus, records(50, nodes=1))  # all on node-0's partition
    assert len(await reader.poll(10, 0)) == 10
    assert await reader.read_through(lane) is None  # 40 to go
    others = [(LOGS, p) for p in range(PARTITIONS) if (LOGS, p) != lane]
    for other in others:
        assert await reader.read_through(other) is not None

    await drain(reader, 40)
    caught_up = await reader.read_through(lane)
    assert caught_up is not None
    assert caught_up > first
    assert await reader.read_through(("t.missing", 0)) is None

    tail = bus.tail([LOGS])
    await tail.start()
    assert tail.assignment() == {(LOGS, p) for p in range(PARTITIONS)}
    await tail.poll(10, 0)
    assert await tail.read_through(lane) is not None
    await tail.stop()
    await reader.stop()
    assert reader.assignment() == frozenset()


async def test_a_locked_file_is_unavailable_then_works_again(tmp_path: Path) -> None:
    bus = EmbeddedBus(tmp_path / "bus.db", PARTITIONS, retention=None, busy_timeout_s=0.1)
    try:
        await bus.ensure_topics([LOGS])
        publisher = bus.publisher()
        await publisher.start()
        holder = sqlite3.connect(bus.path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        with pytest.raises(BusUnavailable):
            await publisher.publish(records(5))
        holder.execute("ROLLBACK")
        holder.close()
        await publisher.publish(records(5))
        await publisher.stop()
        assert len(await bus.snapshot(LOGS)) == 5
        assert await bus.healthy()
    finally:
        await bus.close()


async def test_an_unusable_file_is_unavailable(tmp_path: Path) -> None:
    (tmp_path / "bus.db").write_bytes(b"not a database at all, " * 100)
    bus = EmbeddedBus(tmp_path / "bus.db", PARTITIONS, retention=None)
    try:
        with pytest.raises(BusUnavailable):
            await bus.ensure_topics([LOGS])
        assert not await bus.healthy()
    finally:
        await bus.close()
