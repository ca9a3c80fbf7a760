"""The embedded store (SQLite + FTS5): idempotent writes, versioned states, the console's
searches as Elasticsearch answers them, hostile text, retention, the cap, several openers."""

from __future__ import annotations

import asyncio
import random
import sqlite3
import string
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import msgspec
import pytest

from backend.logfilter import parse_expression
from backend.schemas import (
    Alert,
    AlertKind,
    AlertState,
    Level,
    Log,
    NodeEntry,
    NodeStatus,
    Severity,
    iso_millis,
    validate_record,
)
from backend.store import Snapshot, StoreUnavailable
from backend.store.base import StoredLog
from backend.store.embedded import EmbeddedStore, connection, searching
from backend.store.query import LogQuery, SearchResult, histogram_interval
from tests.records import make_log

NOW = datetime.now(UTC).replace(microsecond=0)
EXHAUSTED = "database connection pool exhausted"
ACCEPTED = "payment accepted for order 17"
STAMP = "2026-11-24T10:00:00.000Z"


def _log(at: datetime, level: str, service: str, node: str, message: str, **extra: object) -> Log:
    record = make_log(node, level, service_name=service, message=message, **extra)
    record["timestamp"] = iso_millis(at)
    log = validate_record(record)
    assert isinstance(log, Log)
    return log


def ago(**delta: float) -> datetime:
    return NOW - timedelta(**delta)


LOGS = [
    _log(ago(minutes=1), "INFO", "PaymentService", "payment-01", "payment accepted for order 17"),
    _log(ago(minutes=2), "ERROR", "PaymentService", "payment-02", "card processor timed out"),
    _log(ago(minutes=5), "WARN", "OrderService", "order-01", "slow checkout (order 17)"),
    _log(
        ago(minutes=30), "FATAL", "OrderService", "order-01", "database connection pool exhausted"
    ),
    _log(ago(minutes=120), "INFO", "AuthService", "auth-01", "user logged in"),
    *[
        _log(ago(minutes=3), "INFO", "InventoryService", "inventory-01", f"stock level {n}")
        for n in range(60)
    ],
]


def stored(logs: list[Log]) -> list[StoredLog]:
    return [StoredLog(log, STAMP) for log in logs]


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[EmbeddedStore]:
    opened = EmbeddedStore(tmp_path / "logdeck.db", clock=lambda: NOW)
    await opened.ensure_schema()
    yield opened
    await opened.close()


@pytest.fixture
async def filled(store: EmbeddedStore) -> EmbeddedStore:
    outcome = await store.index_logs(stored(LOGS))
    assert (outcome.stored, outcome.duplicates, outcome.rejected) == (len(LOGS), 0, [])
    return store


async def ids(store: EmbeddedStore, **fields: object) -> set[str]:
    result = await store.search_logs(LogQuery(page_size=500, **fields))  # type: ignore[arg-type]
    assert result.total == len(result.logs)
    return {log.log_id for log in result.logs}


def messages(found: set[str]) -> set[str]:
    by_id = {log.log_id: log for log in LOGS}
    return {by_id[i].message for i in found}


# Writes -------------------------------------------------------------------------------------


async def test_a_log_stored_twice_counts_as_a_duplicate(store: EmbeddedStore) -> None:
    first = await store.index_logs(stored(LOGS[:3]))
    again = await store.index_logs(stored([*LOGS[:4], LOGS[3]]))
    assert (first.stored, first.duplicates) == (3, 0)
    assert (again.stored, again.duplicates) == (1, 4)
    result = await store.search_logs(LogQuery())
    assert result.total == 4
    assert sorted(log.log_id for log in result.logs) == sorted(log.log_id for log in LOGS[:4])


async def test_export_gives_every_log_once_newest_first_across_days(
    store: EmbeddedStore,
) -> None:
    logs = [
        _log(ago(days=days, seconds=n), "INFO", "AuthService", "auth-01", f"line {days}.{n}")
        for days in (0, 1, 2)
        for n in range(4_000)  # more than one export batch per day
    ]
    await store.index_logs(stored(logs))
    exported = [log async for batch in store.export_logs() for log in batch]
    assert sorted(log.log_id for log in exported) == sorted(log.log_id for log in logs)
    stamps = [log.timestamp for log in exported]
    assert stamps == sorted(stamps, reverse=True)


async def test_a_stored_log_comes_back_field_for_field(filled: EmbeddedStore) -> None:
    (log,) = (await filled.search_logs(LogQuery(text="processor"))).logs
    original = next(item for item in LOGS if item.log_id == log.log_id)
    assert msgspec.to_builtins(log) == msgspec.to_builtins(original)
    assert log.error_details is not None


async def test_a_timestamp_the_store_cannot_order_is_rejected_alone(store: EmbeddedStore) -> None:
    # Validation refuses such a log at the door; the store still guards itself.
    valid = _log(NOW, "INFO", "S", "n-1", "from before 1970")
    old = msgspec.structs.replace(valid)
    msgspec.structs.force_setattr(old, "timestamp", "1960-01-01T00:00:00.000Z")
    outcome = await store.index_logs(stored([old, LOGS[0]]))
    assert outcome.stored == 1
    assert [r.doc_id for r in outcome.rejected] == [old.log_id]
    assert "1970" in outcome.rejected[0].reason


async def test_timestamps_in_other_shapes_are_read_as_the_same_instant(
    store: EmbeddedStore,
) -> None:
    moment = ago(minutes=7)
    shapes = [
        moment.isoformat(),  # +00:00, no milliseconds
        (moment + timedelta(milliseconds=250)).astimezone(timezone(timedelta(hours=2))).isoformat(),
    ]
    logs = [_log(moment, "INFO", "S", "n-1", f"shape {i}") for i in range(2)]
    logs = [
        msgspec.structs.replace(log, timestamp=shape)
        for log, shape in zip(logs, shapes, strict=True)
    ]
    assert (await store.index_logs(stored(logs))).stored == 2
    since = await store.search_logs(LogQuery(since=moment, until=moment + timedelta(seconds=1)))
    assert since.total == 2
    before = await store.search_logs(LogQuery(until=moment - timedelta(milliseconds=1)))
    assert before.total == 0
    exactly = await store.search_logs(LogQuery(since=moment, until=moment))  # both inclusive
    assert [log.timestamp for log in exactly.logs] == [shapes[0]]


# Alert and node states ----------------------------------------------------------------------


def node(status: NodeStatus, node_id: str = "payment-01") -> NodeEntry:
    return NodeEntry(
        node_id=node_id,
        service_name="PaymentService",
        status=status,
        registered_at=STAMP,
        last_heartbeat=STAMP,
    )


def alert(state: AlertState, count: int = 1) -> Alert:
    return Alert(
        alert_id="a1",
        fingerprint="LOG_LEVEL:PaymentService:PAY-502",
        kind=AlertKind.LOG_LEVEL,
        severity=Severity.ERROR,
        node_id="payment-01",
        service_name="PaymentService",
        summary="PAY-502 on PaymentService",
        first_seen=STAMP,
        last_seen=STAMP,
        count=count,
        state=state,
    )


async def test_a_replayed_older_state_never_overwrites_a_newer_one(store: EmbeddedStore) -> None:
    newer = await store.put_snapshots(
        [Snapshot(10, node(NodeStatus.DOWN)), Snapshot(5, alert(AlertState.ACKED, 3))]
    )
    replayed = await store.put_snapshots(
        [
            Snapshot(9, node(NodeStatus.UP)),
            Snapshot(10, node(NodeStatus.UP)),  # the same version: a duplicate too
            Snapshot(4, alert(AlertState.OPEN, 2)),
        ]
    )
    assert (newer.stored, newer.duplicates) == (2, 0)
    assert (replayed.stored, replayed.duplicates) == (0, 3)
    assert [entry.status for entry in await store.stored_nodes()] == [NodeStatus.DOWN]
    assert [(a.state, a.count) for a in await store.stored_alerts()] == [(AlertState.ACKED, 3)]
    later = await store.put_snapshots(
        [Snapshot(11, node(NodeStatus.UP)), Snapshot(12, node(NodeStatus.UP, "order-01"))]
    )
    assert (later.stored, later.duplicates) == (2, 0)
    assert {(n.node_id, n.status) for n in await store.stored_nodes()} == {
        ("payment-01", NodeStatus.UP),
        ("order-01", NodeStatus.UP),
    }


# Searches -----------------------------------------------------------------------------------


async def test_text_level_service_node_and_time_range_each_narrow_the_hits(
    filled: EmbeddedStore,
) -> None:
    assert len(await ids(filled)) == len(LOGS)
    assert messages(await ids(filled, text="order 17")) == {
        "payment accepted for order 17",
        "slow checkout (order 17)",
    }
    levels = frozenset({Level.ERROR, Level.FATAL})
    assert messages(await ids(filled, levels=levels)) == {
        "card processor timed out",
        "database connection pool exhausted",
    }
    orders = await ids(filled, services=frozenset({"OrderService"}))
    assert messages(orders) == {"slow checkout (order 17)", "database connection pool exhausted"}
    assert messages(await ids(filled, nodes=frozenset({"payment-02"}))) == {
        "card processor timed out"
    }
    recent = await ids(filled, since=NOW - timedelta(minutes=10))
    assert len(recent) == 63 and "user logged in" not in messages(recent)
    window = await ids(filled, since=ago(minutes=31), until=ago(minutes=4))
    assert messages(window) == {"slow checkout (order 17)", "database connection pool exhausted"}
    assert await ids(filled, services=frozenset({"NoSuchService"})) == set()
    assert await ids(filled, nodes=frozenset({"payment-01", "nobody"})) == {LOGS[0].log_id}


async def test_filters_combine_with_text_and_with_each_other(filled: EmbeddedStore) -> None:
    assert messages(
        await ids(filled, text="order", levels=frozenset({Level.WARN, Level.INFO}))
    ) == {"payment accepted for order 17", "slow checkout (order 17)"}
    assert messages(await ids(filled, text="order", services=frozenset({"OrderService"}))) == {
        "slow checkout (order 17)"
    }
    assert await ids(
        filled,
        levels=frozenset({Level.INFO}),
        services=frozenset({"InventoryService"}),
        nodes=frozenset({"inventory-01"}),
        since=ago(minutes=4),
    ) == {log.log_id for log in LOGS if log.service_name == "InventoryService"}
    assert await ids(filled, text="stock", levels=frozenset({Level.ERROR})) == set()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('"timed out"', {"card processor timed out"}),
        ('"out timed"', set()),
        ("timed -processor", set()),
        ("order -payment", {"slow checkout (order 17)"}),
        ("-order -stock -user", {"card processor timed out", "database connection pool exhausted"}),
        (
            "exhausted | accepted",
            {"database connection pool exhausted", "payment accepted for order 17"},
        ),
        ("(exhausted | accepted) payment", {"payment accepted for order 17"}),
        ("exhausted | accepted + payment", {"payment accepted for order 17"}),
        ("exhaust*", {"database connection pool exhausted"}),
        ("EXHAUST*", {"database connection pool exhausted"}),
        ("proc* tim*", {"card processor timed out"}),
        ("TST-500", {"card processor timed out", "database connection pool exhausted"}),
        ("test failure", {"card processor timed out", "database connection pool exhausted"}),
        ("checkout)", {"slow checkout (order 17)"}),
        ("Order", {"payment accepted for order 17", "slow checkout (order 17)"}),
        ("*", None),
    ],
)
async def test_simple_query_string_operators(
    filled: EmbeddedStore, text: str, expected: set[str] | None
) -> None:
    found = messages(await ids(filled, text=text))
    assert found == (expected if expected is not None else {log.message for log in LOGS})


async def test_pages_are_newest_first_and_histogram_counts_every_hit(
    filled: EmbeddedStore,
) -> None:
    query = LogQuery(page_size=20, since=NOW - timedelta(hours=3))
    pages = [await filled.search_logs(replace_page(query, n)) for n in range(4)]
    assert [len(page.logs) for page in pages] == [20, 20, 20, 5]
    listed = [log for page in pages for log in page.logs]
    assert len({log.log_id for log in listed}) == len(LOGS)
    keys = [(log.timestamp, log.log_id) for log in listed]
    assert keys == sorted(keys, reverse=True)
    first = pages[0]
    assert first.total == len(LOGS)
    assert sum(count for _, count in first.histogram) == len(LOGS)
    assert len(first.histogram) <= 61
    steps = {b[0] - a[0] for a, b in zip(first.histogram, first.histogram[1:], strict=False)}
    assert steps == {timedelta(minutes=5)}  # a 3-hour span in 5-minute bars
    assert (await filled.search_logs(replace_page(query, 9))).logs == []


def replace_page(query: LogQuery, page: int) -> LogQuery:
    return LogQuery(
        text=query.text,
        levels=query.levels,
        since=query.since,
        until=query.until,
        page=page,
        page_size=query.page_size,
    )


@pytest.mark.parametrize("text", ["", "tick"])
async def test_logs_of_one_millisecond_are_ordered_by_log_id_across_pages(
    store: EmbeddedStore, text: str
) -> None:
    rng = random.Random(7)
    moments = [ago(seconds=s) for s in (1, 2, 3)]
    logs = [
        _log(rng.choice(moments), "INFO", "S", f"n-{rng.randint(1, 3)}", "tick") for _ in range(150)
    ]
    rng.shuffle(logs)
    for start in range(0, len(logs), 40):
        await store.index_logs(stored(logs[start : start + 40]))
    expected = sorted(logs, key=lambda log: (log.timestamp, log.log_id), reverse=True)
    for size in (7, 50):
        listed: list[Log] = []
        for page in range(0, len(logs) // size + 1):
            result = await store.search_logs(LogQuery(text=text, page=page, page_size=size))
            listed += result.logs
        assert [log.log_id for log in listed] == [log.log_id for log in expected]


def brute_histogram(logs: list[Log], query: LogQuery, interval: int) -> dict[datetime, int]:
    counts: dict[datetime, int] = {}
    for log in logs:
        at = datetime.fromisoformat(log.timestamp)
        if (query.since and at < query.since) or (query.until and at > query.until):
            continue
        if query.levels and log.log_level not in query.levels:
            continue
        if query.text and query.text not in log.message.split():
            continue
        millis = int(at.timestamp() * 1000)
        bucket = datetime.fromtimestamp(millis // (interval * 1000) * interval, UTC)
        counts[bucket] = counts.get(bucket, 0) + 1
    return counts


@pytest.mark.parametrize("limit", [5000, 3])
@pytest.mark.parametrize(
    ("since", "until", "text", "levels"),
    [
        (None, None, "", frozenset()),
        (timedelta(hours=2, seconds=17.3), timedelta(minutes=5, seconds=-0.4), "", frozenset()),
        (timedelta(minutes=29, seconds=31.7), None, "", frozenset({Level.WARN})),
        (timedelta(hours=5, minutes=59), timedelta(hours=1, milliseconds=1), "red", frozenset()),
        (timedelta(minutes=14), None, "blue", frozenset({Level.INFO, Level.ERROR})),
        (timedelta(hours=30), timedelta(0), "", frozenset({Level.ERROR})),
    ],
)
async def test_totals_and_histograms_match_a_count_of_every_log(
    store: EmbeddedStore,
    monkeypatch: pytest.MonkeyPatch,
    limit: int,
    since: timedelta | None,
    until: timedelta | None,
    text: str,
    levels: frozenset[Level],
) -> None:
    """Aggregates, raw edges, and both ways of counting text, against a count by hand."""
    monkeypatch.setattr(searching, "EXACT_COUNT_LIMIT", limit)
    rng = random.Random(11)
    logs = [
        _log(
            NOW - timedelta(milliseconds=rng.randrange(30 * 3600 * 1000)),
            rng.choice(["INFO", "WARN", "ERROR"]),
            "S",
            "n-1",
            f"{rng.choice(['red', 'blue'])} thing",
        )
        for _ in range(3000)
    ]
    await store.index_logs(stored(logs))
    query = LogQuery(
        text=text,
        levels=levels,
        since=NOW - since if since is not None else None,
        until=NOW - until if until is not None else None,
    )
    result = await store.search_logs(query)
    expected = brute_histogram(logs, query, histogram_interval(query.since, query.until, NOW))
    assert result.total == sum(expected.values())
    bars = dict(result.histogram)
    assert {at: n for at, n in bars.items() if n} == expected
    assert list(bars) == sorted(bars) and min(bars) == min(expected) and max(bars) == max(expected)


async def test_the_histogram_only_spans_the_hits_like_elasticsearch(filled: EmbeddedStore) -> None:
    result = await filled.search_logs(LogQuery(text="exhausted", since=ago(hours=6)))
    assert result.total == 1
    assert result.histogram == [(datetime.fromtimestamp(bucket_start(LOGS[3], 600), UTC), 1)]


def bucket_start(log: Log, interval: int) -> int:
    seconds = int(datetime.fromisoformat(log.timestamp).timestamp())
    return seconds // interval * interval


# Text that is not what it seems --------------------------------------------------------------

HOSTILE = [
    *'+-=&|><!(){}[]^"~*?:\\/',
    '+-=&&||><!(){}[]^"~*?:\\/',
    "&&",
    "||",
    '"unbalanced',
    "a AND (b OR",
    "((((order",
    "order))))",
    '"',
    '""',
    "-",
    "--order",
    "order~",
    "order~2",
    '"order 17"~3',
    "order* | -*",
    "\\",
    "order\\",
    "\\-order",
    "NEAR(order 17)",
    "message:order",
    "{message}: order",
    "order^2",
    "'; DROP TABLE days; --",
    "x" * 5000,
    "(" * 600 + "order" + ")" * 600,
    " ".join(f"-w{i}" for i in range(300)),
    " | ".join(f"w{i}" for i in range(300)),
    "💥 ünïcödé 注文 order",
    "\x00\x01\x02",
    "a\u0301",
    "\u200b",
]


@pytest.mark.parametrize("text", HOSTILE)
async def test_query_text_never_fails(filled: EmbeddedStore, text: str) -> None:
    result = await filled.search_logs(LogQuery(text=text, levels=frozenset({Level.INFO})))
    assert isinstance(result, SearchResult) and result.total >= 0
    assert len(result.logs) == min(result.total, 50)
    if len(text) > 1000:
        assert result.note and "first 1000 characters" in result.note
    assert (await filled.search_logs(LogQuery())).total == len(LOGS)


async def test_a_100_kb_text_is_cut_and_said_so(filled: EmbeddedStore) -> None:
    text = "".join(random.Random(3).choices(string.printable, k=100_000))
    result = await filled.search_logs(LogQuery(text=text))
    assert result.note and "first 1000 characters" in result.note
    result = await filled.search_logs(LogQuery(text="order " + "x" * 100_000))
    assert result.total == 0 and result.note


@pytest.mark.parametrize(
    ("text", "total", "said"),
    [
        ("!!!", 0, "no letters or digits"),
        ("order~2", 2, "fuzzy"),
        ('"order 17"~3', 2, "slop"),
        ("order AND payment", 0, "'AND' was searched as a word"),
        ("(order", 2, "unmatched '('"),
        ('"order 17', 2, "unmatched '\"'"),
    ],
)
async def test_text_read_differently_comes_with_a_note(
    filled: EmbeddedStore, text: str, total: int, said: str
) -> None:
    result = await filled.search_logs(LogQuery(text=text))
    assert result.total == total
    assert result.note and said in result.note


async def test_plain_text_has_no_note(filled: EmbeddedStore) -> None:
    assert (await filled.search_logs(LogQuery(text='order -payment "order 17" ord*'))).note is None


async def test_an_fts5_refusal_falls_back_to_the_words(
    filled: EmbeddedStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = searching.render
    calls: list[str] = []

    def broken(*args: Any) -> str:
        calls.append("x")
        return "AND AND" if len(calls) == 1 else real(*args)

    monkeypatch.setattr(searching, "render", broken)
    result = await filled.search_logs(LogQuery(text="order -payment"))
    # Read as "order payment": the one log with both words.
    assert result.total == 1 and result.note and "plain words" in result.note


# Retention, the cap, several processes ------------------------------------------------------


async def test_retention_drops_whole_days_and_names_them(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "logdeck.db", retention_days=30)
    days = [NOW - timedelta(days=n) for n in (0, 3, 9, 10)]
    logs = [_log(day, "INFO", "S", "n-1", f"day {n}") for n, day in enumerate(days)]
    await store.index_logs(stored(logs))
    cutoff = (NOW - timedelta(days=5)).date()
    dropped = await store.delete_logs_before(cutoff)
    assert dropped == [f"logs-{day.date():%Y.%m.%d}" for day in sorted(days[2:])]
    assert (await store.search_logs(LogQuery())).total == 2
    assert (await store.search_logs(LogQuery(text="day"))).total == 2
    assert await store.delete_logs_before(cutoff) == []
    assert (await store.index_logs(stored(logs[2:]))).stored == 2  # the days come back
    await store.close()


async def test_writes_apply_the_retention_of_the_store(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "logdeck.db", retention_days=2)
    try:
        old = _log(NOW - timedelta(days=4), "INFO", "S", "n-1", "old")
        recent = _log(NOW - timedelta(days=1), "INFO", "S", "n-1", "recent")
        assert (await store.index_logs(stored([old, recent]))).stored == 2
        found = (await store.search_logs(LogQuery())).logs
        assert [log.log_id for log in found] == [recent.log_id]
    finally:
        await store.close()


async def test_the_cap_drops_the_oldest_logs_first(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "logdeck.db", max_logs=10)
    try:
        logs = [
            _log(
                NOW - timedelta(days=1, seconds=n) if n % 4 == 0 else ago(seconds=n),
                "ERROR",
                "S",
                "n-1",
                f"tick {n}",
            )
            for n in range(25)
        ]
        for start in range(0, 25, 6):
            await store.index_logs(stored(logs[start : start + 6]))
        newest = sorted(logs, key=lambda log: log.timestamp, reverse=True)[:10]
        for query in (LogQuery(), LogQuery(text="tick"), LogQuery(levels=frozenset({Level.ERROR}))):
            result = await store.search_logs(query)
            assert result.total == 10
            assert sum(n for _, n in result.histogram) == 10
            assert {log.log_id for log in result.logs} == {log.log_id for log in newest}
    finally:
        await store.close()


async def test_two_stores_on_one_file_see_each_others_writes(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    writer, reader = EmbeddedStore(path), EmbeddedStore(path)
    try:
        await asyncio.gather(writer.ensure_schema(), reader.ensure_schema())
        halves = [stored(LOGS[: len(LOGS) // 2]), stored(LOGS[len(LOGS) // 2 :])]
        outcomes = await asyncio.gather(writer.index_logs(halves[0]), reader.index_logs(halves[1]))
        assert sum(outcome.stored for outcome in outcomes) == len(LOGS)
        for store in (writer, reader):
            assert (await store.search_logs(LogQuery())).total == len(LOGS)
            assert (await store.search_logs(LogQuery(text="exhausted"))).total == 1
        await writer.put_snapshots([Snapshot(1, node(NodeStatus.UP))])
        assert [n.node_id for n in await reader.stored_nodes()] == ["payment-01"]
        await reader.delete_logs_before(date.today() + timedelta(days=2))
        assert (await writer.search_logs(LogQuery())).total == 0
        assert (await writer.index_logs(stored(LOGS[:2]))).stored == 2
        assert (await reader.search_logs(LogQuery(text="order"))).total == 1
    finally:
        await writer.close()
        await reader.close()


async def test_a_locked_file_is_unavailable_not_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(connection, "BUSY_TIMEOUT_S", 0.05)
    path = tmp_path / "locked.db"
    store = EmbeddedStore(path)
    await store.ensure_schema()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreUnavailable, match="locked"):
            await store.index_logs(stored(LOGS[:1]))
        assert await store.healthy()  # reading still works in WAL mode
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert (await store.index_logs(stored(LOGS[:1]))).stored == 1
    await store.close()
    with pytest.raises(StoreUnavailable):
        await store.search_logs(LogQuery())


async def test_a_store_that_cannot_open_its_file_is_unhealthy(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    store = EmbeddedStore(tmp_path / "file" / "logdeck.db")
    assert not await store.healthy()
    with pytest.raises(StoreUnavailable):
        await store.index_logs(stored(LOGS[:1]))
    await store.close()


async def test_the_event_loop_keeps_turning_during_a_large_write(store: EmbeddedStore) -> None:
    rng = random.Random(5)
    logs = [
        _log(NOW - timedelta(milliseconds=rng.randrange(86_400_000)), "INFO", "S", "n-1", f"m {n}")
        for n in range(20_000)
    ]
    # SQLite works in the store's threads: the loop turns all the while. Were the write done
    # on the loop, the task would finish within its first step.
    writing = asyncio.create_task(store.index_logs(stored(logs)))
    turns = 0
    while not writing.done():
        await asyncio.sleep(0)
        turns += 1
    assert (await writing).stored == len(logs)
    assert turns > 10


def test_every_log_id_is_kept_apart(tmp_path: Path) -> None:
    """Distinct log_ids stay distinct however alike they are (their hashes are only a hint)."""

    async def run() -> int:
        store = EmbeddedStore(tmp_path / "ids.db")
        logs = [
            msgspec.structs.replace(LOGS[0], log_id=log_id)
            for log_id in [str(uuid.UUID(int=n)) for n in range(500)] + ["a", "b", "ab", "ba"]
        ]
        outcome = await store.index_logs(stored(logs))
        await store.close()
        return outcome.stored

    assert asyncio.run(run()) == 504


@pytest.mark.parametrize(("limit", "expand"), [(5000, 64), (3, 64), (5000, 0)])
@pytest.mark.parametrize(
    ("text", "expression", "levels"),
    [
        ("", "", frozenset()),
        ("red", "", frozenset()),
        ("blue", "", frozenset({Level.INFO, Level.ERROR})),
        ("re*", "", frozenset()),
        ("", "code:E-1 -node:n-2", frozenset()),
        ("red", "-level:INFO response_time_ms>400", frozenset()),
    ],
)
async def test_each_bar_counts_its_hits_by_level(
    store: EmbeddedStore,
    monkeypatch: pytest.MonkeyPatch,
    limit: int,
    expand: int,
    text: str,
    expression: str,
    levels: frozenset[Level],
) -> None:
    """Aggregates, text hits read from their rows or counted through the level tags, a
    prefix FTS5 expands itself, terms tested on each log: per bar and level, as counted."""
    monkeypatch.setattr(searching, "EXACT_COUNT_LIMIT", limit)
    monkeypatch.setattr(searching, "_MAX_EXPANSION", expand)
    rng = random.Random(5)
    logs = []
    for _ in range(2000):
        level = rng.choice(["INFO", "INFO", "INFO", "WARN", "ERROR", "FATAL"])
        extra: dict[str, Any] = {}
        if level == "WARN":
            extra = {
                "response_time_ms": float(rng.randrange(300, 500)),
                "threshold_limit_ms": 300.0,
            }
        if level in ("ERROR", "FATAL"):
            code = rng.choice(["E-1", "E-2"])
            extra = {"error_details": {"error_code": code, "error_message": "failed"}}
        at = NOW - timedelta(milliseconds=rng.randrange(3 * 3600 * 1000))
        message = f"{rng.choice(['red', 'blue'])} thing"
        logs.append(_log(at, level, "S", rng.choice(["n-1", "n-2"]), message, **extra))
    await store.index_logs(stored(logs))
    query = LogQuery(
        text=text,
        levels=levels,
        expression=parse_expression(expression),
        since=NOW - timedelta(hours=2, seconds=13.7),
        until=NOW - timedelta(minutes=7, milliseconds=300),
    )
    result = await store.search_logs(query)
    interval = histogram_interval(query.since, query.until, NOW)
    expected: dict[tuple[datetime, Level], int] = {}
    for log in logs:
        at = datetime.fromisoformat(log.timestamp)
        words = log.message.split()
        wanted = (
            query.since is not None
            and query.until is not None
            and query.since <= at <= query.until
            and (not levels or log.log_level in levels)
            and (not text or any(word.startswith(text.rstrip("*")) for word in words))
            and (text.endswith("*") or not text or text in words)
            and query.expression.matches(log)
        )
        if wanted:
            start = datetime.fromtimestamp(at.timestamp() // interval * interval, UTC)
            expected[start, log.log_level] = expected.get((start, log.log_level), 0) + 1
    found = {
        (bucket.start, level): count
        for bucket in result.buckets
        for level, count in bucket.levels.items()
    }
    assert found == expected
    assert result.total == sum(expected.values()) > 0
    assert all(b.end - b.start == timedelta(seconds=interval) for b in result.buckets)
