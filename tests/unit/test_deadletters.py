"""Dead letters after the fact: the form of their raw bytes, replaying them, choosing them,
and counting what is pending."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgpack
import pytest

from backend.bus import Incoming, Outgoing
from backend.bus.embedded import EmbeddedBus
from backend.config import Settings
from backend.deadletters.count import PendingCount
from backend.deadletters.forms import UNKNOWN_REASON, Form, decode, infer_form
from backend.deadletters.letters import LetterFilter, StoredLetter, read_pending
from backend.deadletters.replay import NOT_FORWARD_INPUT, Replayer
from backend.forward.protocol import Frame, StreamError, pack_event_time
from backend.schemas import DeadLetter, encode, iso_millis, validate_record
from tests.records import make_log
from widgets.timerange import TimeRangeError, parse_moment

SETTINGS = Settings(namespace="unit")
TOPICS = SETTINGS.topics
NOW = datetime(2026, 11, 24, 10, 16, tzinfo=UTC)


def entry(record: dict[str, Any], time: object = 1_700_000_000) -> bytes:
    packed: bytes = msgpack.packb([time, record])
    return packed


def packb(value: object) -> bytes:
    packed: bytes = msgpack.packb(value)
    return packed


LOGS = [make_log("node-a", level) for level in ("INFO", "WARN", "ERROR", "FATAL")]
ENTRIES = b"".join(entry(log) for log in LOGS)


def letter(raw: bytes, *, reason: str = "unsupported compression 'text'", **fields: Any) -> Any:
    values: dict[str, Any] = {
        "reason": reason,
        "source": "accumulator",
        "raw": raw,
        "received_at": "2026-11-24T10:15:00.000Z",
        "tag": "logdeck.log",
    }
    return DeadLetter(**(values | fields))


def stored(raw: bytes, **fields: Any) -> StoredLetter:
    return StoredLetter(0, 7, letter(raw, **fields))


# The form of the raw bytes


@pytest.mark.parametrize(
    ("raw", "form"),
    [
        (packb(["logdeck.log", ENTRIES, {"compressed": "text"}]), Form.FRAME),
        (packb(["logdeck.log", [[1, LOGS[0]]]]), Form.FRAME),
        (packb(["logdeck.log", 1, LOGS[0]]), Form.FRAME),
        (ENTRIES, Form.ENTRIES),
        (entry(LOGS[0]), Form.ENTRIES),
        (entry(LOGS[0], pack_event_time(1_700_000_000.5)), Form.ENTRIES),
        (gzip.compress(ENTRIES), Form.GZIP_ENTRIES),
        (packb(LOGS[0]), Form.RECORD),
        (b"", Form.UNKNOWN),
        (b"\xc1", Form.UNKNOWN),
        (packb([1, 2, 3]), Form.UNKNOWN),
        (packb([]), Form.UNKNOWN),
        (b'{"log_id": "x"}', Form.UNKNOWN),
    ],
    ids=[
        "packed-frame",
        "forward-frame",
        "message-frame",
        "entries",
        "one-entry",
        "event-time-entry",
        "gzip-entries",
        "record",
        "empty",
        "never-used-byte",
        "array-of-numbers",
        "empty-array",
        "json",
    ],
)
def test_the_form_is_read_from_the_bytes(raw: bytes, form: Form) -> None:
    assert infer_form(raw) is form


def records_of(items: list[Frame | StreamError]) -> list[Any]:
    return [e.record for item in items if isinstance(item, Frame) for e in item.entries]


def failures_of(items: list[Frame | StreamError]) -> list[str]:
    reasons = [item.reason for item in items if isinstance(item, StreamError)]
    return reasons + [r.reason for i in items if isinstance(i, Frame) for r in i.rejected]


@pytest.mark.parametrize(
    "raw",
    [
        ENTRIES,
        gzip.compress(ENTRIES),
        packb(["logdeck.log", ENTRIES, {"compressed": "text"}]),
        packb(["logdeck.log", gzip.compress(ENTRIES), {"compressed": "gzip"}]),
    ],
    ids=["entries", "gzip-entries", "text-frame", "gzip-frame"],
)
def test_every_form_decodes_to_its_records(raw: bytes) -> None:
    items = decode(raw, "logdeck.log")
    assert records_of(items) == LOGS
    assert failures_of(items) == []


def test_one_record_decodes_as_one_entry() -> None:
    assert records_of(decode(packb(LOGS[1]), "")) == [LOGS[1]]


def test_entries_cut_short_keep_failing_after_their_whole_entries() -> None:
    cut = ENTRIES[:-5]
    items = decode(cut, "logdeck.log")
    assert records_of(items) == LOGS[:3]
    [reason] = failures_of(items)
    assert reason.startswith("packed entries end ") and reason.endswith(" bytes into an entry")


def test_bytes_of_no_known_form_fail_with_a_reason() -> None:
    assert failures_of(decode(b'{"log_id": "x"}', "")) == [UNKNOWN_REASON]


def test_a_broken_frame_fails_with_the_decoders_reason() -> None:
    frame = packb(["logdeck.log", ENTRIES, {"compressed": "text"}])
    assert failures_of(decode(frame[:-3], "")) == [
        f"connection closed {len(frame) - 3} bytes into a frame"
    ]


# One letter through today's decoder and router


def test_a_letter_of_the_text_compression_bug_now_passes_whole() -> None:
    outcome = Replayer(SETTINGS).outcome(stored(ENTRIES))
    assert outcome.reasons == []
    assert [record.topic for record in outcome.records] == [TOPICS.logs] * 4
    assert [record.key for record in outcome.records] == [b"node-a"] * 4


def test_records_that_still_fail_are_reasons_not_new_dead_letters() -> None:
    raw = entry(LOGS[0]) + entry(make_log("node-a", "DEBUG"))
    outcome = Replayer(SETTINGS).outcome(stored(raw))
    assert [record.topic for record in outcome.records] == [TOPICS.logs]
    [reason] = outcome.reasons
    assert "DEBUG" in reason


def test_a_replay_is_judged_as_the_accumulator_judges_today() -> None:
    """The same router, so the same validation and window: nothing replayed that the store
    would refuse or drop."""
    moment = datetime.now(UTC)
    dated = [
        make_log("node-a", "WARN", response_time_ms=float("nan")),
        make_log("node-a", timestamp="2099-01-01T00:00:00.000Z"),
        make_log("node-a", timestamp=iso_millis(moment - timedelta(days=30))),
    ]
    outcome = Replayer(SETTINGS).outcome(stored(b"".join(entry(log) for log in dated)))
    assert outcome.records == []
    assert [reason.split(":")[0] for reason in outcome.reasons] == [
        "`response_time_ms` must be a finite number within ±3.4e+38, got nan",
        "timestamp too far ahead",
        "timestamp older than retention",
    ]


def test_a_letter_from_the_indexer_is_not_replayed() -> None:
    raw = encode(validate_record(LOGS[0]))
    outcome = Replayer(SETTINGS).outcome(stored(raw, source="indexer", tag=TOPICS.logs))
    assert outcome == type(outcome)([], [NOT_FORWARD_INPUT])


# Which letters a command is about


def test_the_reason_filter_is_a_substring_in_any_case() -> None:
    chosen = LetterFilter(reason="COMPRESSION 'TEXT'")
    assert chosen.matches(letter(b""))
    assert not chosen.matches(letter(b"", reason="invalid msgpack"))
    assert LetterFilter().matches(letter(b"", reason="anything"))


def test_the_since_filter_keeps_letters_received_at_or_after_it() -> None:
    chosen = LetterFilter(since=datetime(2026, 11, 24, 10, 15, tzinfo=UTC))
    assert chosen.matches(letter(b"", received_at="2026-11-24T10:15:00.000Z"))
    assert chosen.matches(letter(b"", received_at="2026-11-24T11:00:00.000Z"))
    assert not chosen.matches(letter(b"", received_at="2026-11-24T10:14:59.999Z"))
    assert not chosen.matches(letter(b"", received_at="yesterday"))


def test_since_reads_spans_back_from_now_and_moments() -> None:
    assert parse_moment("15m", NOW) == NOW - timedelta(minutes=15)
    assert parse_moment("2h", NOW) == NOW - timedelta(hours=2)
    assert parse_moment(" 1D ", NOW) == NOW - timedelta(days=1)
    assert parse_moment("30s", NOW) == NOW - timedelta(seconds=30)
    assert parse_moment("2026-11-24T09:00:00Z", NOW) == NOW.replace(hour=9, minute=0)
    assert parse_moment("10:15", NOW) == NOW.replace(minute=15)
    assert parse_moment("", NOW) is None
    with pytest.raises(TimeRangeError, match="15m"):
        parse_moment("a while ago", NOW)


async def test_pending_letters_are_those_without_a_replay_marker(tmp_path: Path) -> None:
    bus = EmbeddedBus(tmp_path / "bus.db", partitions=1)
    try:
        await bus.ensure_topics(TOPICS.all(), TOPICS.compacted())
        publisher = bus.publisher()
        await publisher.start()
        letters = [
            letter(b"1", received_at="2026-11-24T10:00:00.000Z"),
            letter(b"2", received_at="2026-11-24T10:20:00.000Z"),
            letter(b"3", reason="invalid msgpack", received_at="2026-11-24T10:30:00.000Z"),
        ]
        await publisher.publish(
            [Outgoing(TOPICS.deadletter, None, encode(each)) for each in letters]
            + [Outgoing(TOPICS.deadletter, None, b"not a dead letter")]
            + [Outgoing(TOPICS.deadletter_replays, b"0:1", b"{}")]
        )
        await publisher.stop()

        everything = await read_pending(bus, TOPICS, LetterFilter())
        assert [s.letter.raw for s in everything.letters] == [b"1", b"3"]
        assert [s.key for s in everything.letters] == ["0:0", "0:2"]
        assert (everything.replayed, everything.unreadable) == (1, 1)

        since = datetime(2026, 11, 24, 10, 10, tzinfo=UTC)
        chosen = await read_pending(bus, TOPICS, LetterFilter(reason="TEXT", since=since))
        assert (chosen.letters, chosen.replayed) == ([], 1)
    finally:
        await bus.close()


# The console's count


def letter_record(partition: int, offset: int) -> Incoming:
    return Incoming(TOPICS.deadletter, partition, offset, None, b"{}", (), 0)


def marker_record(key: str) -> Incoming:
    return Incoming(TOPICS.deadletter_replays, 0, 0, key.encode(), b"{}", (), 0)


def test_pending_is_letters_minus_the_markers_that_name_them() -> None:
    count = PendingCount(TOPICS)
    for offset in range(5):
        count.add(letter_record(0, offset))
    count.add(letter_record(1, 0))
    for key in ("0:1", "0:3", "0:3", "1:0"):  # a key compacted late is read twice
        count.add(marker_record(key))
    assert count.pending == 3


def test_a_marker_read_before_its_letter_counts_once_the_letter_is_read() -> None:
    count = PendingCount(TOPICS)
    count.add(marker_record("2:4"))
    count.add(marker_record("2:9"))
    for offset in range(3, 6):
        count.add(letter_record(2, offset))
    assert count.pending == 2
    count.add(letter_record(2, 9))
    assert count.pending == 2


def test_markers_of_letters_gone_before_the_reader_started_are_not_subtracted() -> None:
    count = PendingCount(TOPICS)
    count.add(marker_record("0:1"))  # its letter aged out of the dead-letter topic
    count.add(letter_record(0, 5))
    count.add(marker_record("0:2"))
    count.add(marker_record("junk"))
    assert count.pending == 1
