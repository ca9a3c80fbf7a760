"""Property-based fuzzing of the Forward decoder and the accumulator's router.

Whatever bytes a client sends (random bytes, msgpack of any shape, strings that are not
UTF-8, nesting beyond msgpack's limit, headers that promise gigabytes, truncated frames,
every Forward mode with bad entries, gzip bombs), `ForwardDecoder.feed` only returns
`Frame`s and `StreamError`s, keeps its buffer within `max_frame_bytes`, frames the same
however the bytes are split, and reports a frame the stream ends in the middle of; the
`Router` turns every rejected entry, every record that does not fit its shape and every
broken stream into exactly one dead letter with a reason.

The default run tries 200 examples per property, for a quick suite. For a long run set
`LOGDECK_FUZZ_EXAMPLES`, e.g. `LOGDECK_FUZZ_EXAMPLES=20000 pytest tests/unit/test_forward_fuzz.py`.
"""

from __future__ import annotations

import gzip
import os
import struct
from typing import Any

import msgpack
import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backend.accumulator import DEAD_LETTER_RAW_BYTES, Router
from backend.config import Settings
from backend.forward.protocol import (
    ForwardDecoder,
    Frame,
    Rejected,
    StreamError,
    pack_event_time,
)
from backend.schemas import DeadLetter, now_iso
from tests.fuzz.decoded import summary

EXAMPLES = int(os.environ.get("LOGDECK_FUZZ_EXAMPLES", "200"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
SETTINGS = Settings(namespace="fuzz")
TIMESTAMP = now_iso()  # inside the window the router keeps
LIMITS = (64, 1024, 64 * 1024)
ARRIVAL = 1_700_000_000.0
"""The time of arrival both decoders give an event sent with a nil time."""


class BadStr(bytes):
    """Bytes packed with a msgpack *str* header: a string that need not be UTF-8."""


class Raw(bytes):
    """Bytes spliced into the stream as they are (a header with no body, garbage)."""


def pack(value: Any) -> bytes:
    """msgpack, plus `BadStr` and `Raw` anywhere inside lists and maps."""
    if isinstance(value, Raw):
        return bytes(value)
    if isinstance(value, BadStr):
        size = len(value)
        header = bytes([0xA0 | size]) if size < 32 else b"\xd9" + bytes([size])
        return header + bytes(value)
    if isinstance(value, list):
        return _header(len(value), 0x90, b"\xdc") + b"".join(pack(v) for v in value)
    if isinstance(value, dict):
        body = b"".join(pack(k) + pack(v) for k, v in value.items())
        return _header(len(value), 0x80, b"\xde") + body
    packed: bytes = msgpack.packb(value)
    return packed


def _header(size: int, fix: int, sixteen: bytes) -> bytes:
    return bytes([fix | size]) if size < 16 else sixteen + struct.pack(">H", size)


bad_utf8 = st.binary(max_size=40).map(BadStr)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64 - 1),
    st.floats(),
    st.text(max_size=30),
    st.binary(max_size=30),
    bad_utf8,
    st.builds(msgpack.ExtType, st.integers(0, 127), st.binary(max_size=12)),
    st.floats(0, 2**32 - 1).map(pack_event_time),
)
keys = st.one_of(st.text(max_size=12), st.integers(-(2**31), 2**31), bad_utf8, st.none())
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=6), st.dictionaries(keys, inner, max_size=6)),
    max_leaves=30,
)
# Headers whose bodies never come, bodies too big to buffer, and unhashable map keys.
hostile_raw = st.one_of(
    st.sampled_from(
        [
            b"\xdd\xff\xff\xff\xff",  # array32 of 4 billion items
            b"\xdf\xff\xff\xff\xff",  # map32 of 4 billion pairs
            b"\xdb\x7f\xff\xff\xff",  # str32 of 2 GiB
            b"\xc6\x7f\xff\xff\xff",  # bin32 of 2 GiB
            b"\xc1",  # never used in msgpack
            b"\x81\x91\x01\x01",  # a map keyed by an array
            b"\x81\x81\x01\x01\x01",  # a map keyed by a map
        ]
    ),
    st.integers(1, 3000).map(lambda depth: b"\x91" * depth + b"\xc0"),
    st.binary(max_size=64),
).map(Raw)

levels = st.sampled_from(["INFO", "WARN", "ERROR", "FATAL", "DEBUG", "", 7])


@st.composite
def records(draw: st.DrawFn) -> Any:
    """Records near the shapes of DESIGN.md: valid, broken by a field, or anything at all."""
    kind = draw(st.sampled_from(["LOG", "HEARTBEAT", "REGISTRATION", "other"]))
    if kind == "other":
        return draw(values)
    record: dict[Any, Any] = {
        "node_id": draw(st.one_of(st.just("node-1"), bad_utf8, st.integers(-(2**63), 2**63 - 1))),
        "message_type": kind,
        "timestamp": TIMESTAMP,
    }
    if kind == "LOG":
        level = draw(levels)
        record |= {
            "log_id": "id-1",
            "log_level": level,
            "message": draw(st.one_of(st.text(max_size=40), bad_utf8)),
            "service_name": "Fuzz",
        }
        if level == "WARN":
            record |= {"response_time_ms": 500.0, "threshold_limit_ms": 300.0}
        if level in ("ERROR", "FATAL"):
            record["error_details"] = {"error_code": "E1", "error_message": "boom"}
    elif kind == "HEARTBEAT":
        record["status"] = draw(st.sampled_from(["UP", "DOWN", "SIDEWAYS"]))
    else:
        record["service_name"] = "Fuzz"
    for name in draw(st.lists(st.sampled_from(sorted(record)), max_size=2, unique=True)):
        if draw(st.booleans()):
            del record[name]
        else:
            record[name] = draw(values)
    return record


times = st.one_of(
    st.integers(0, 2**32),
    st.floats(),
    st.floats(0, 2**32 - 1).map(pack_event_time),
    scalars,
)
entries = st.one_of(st.tuples(times, records()).map(list), values)
tags = st.one_of(st.just("logdeck.log"), st.text(max_size=20), bad_utf8, scalars)
options = st.one_of(
    st.none(),
    st.fixed_dictionaries({"chunk": st.one_of(st.text(max_size=24), scalars)}),
    values,
)


def packed_entries(items: list[Any], cut: int | None) -> bytes:
    blob = b"".join(pack(item) for item in items)
    return blob if cut is None else blob[: cut % (len(blob) + 1)]


@st.composite
def frames(draw: st.DrawFn, limit: int) -> Any:
    """One Forward message in any mode, with anything wrong in any part of it."""
    tag = draw(tags)
    mode = draw(st.sampled_from(["Message", "Forward", "Packed", "Compressed", "Bomb", "Any"]))
    if mode == "Message":
        frame = [tag, draw(times), draw(records())]
    elif mode == "Forward":
        frame = [tag, draw(st.lists(entries, max_size=5))]
    elif mode in ("Packed", "Compressed"):
        items = draw(st.lists(entries, max_size=5))
        blob = packed_entries(items, draw(st.none() | st.integers(0)))
        if mode == "Compressed":
            blob = gzip.compress(blob, compresslevel=1)
            if draw(st.booleans()):
                blob = blob[: draw(st.integers(0, len(blob)))]
            option = {"compressed": draw(st.sampled_from(["gzip", "gzip", "zstd", 1]))}
            return [tag, blob, option]
        frame = [tag, draw(st.one_of(st.just(blob), bad_utf8))]
    elif mode == "Bomb":
        # Zeros compress about 1000:1: the output is past the limit, the input is small.
        blob = gzip.compress(bytes(limit + draw(st.integers(1, 4096))), compresslevel=9)
        return [tag, blob, {"compressed": "gzip", "chunk": "bomb"}]
    else:
        return draw(st.one_of(values, hostile_raw))
    option = draw(options)
    return frame if option is None else [*frame, option]


@st.composite
def streams(draw: st.DrawFn) -> tuple[int, bytes]:
    """A decoder's limit and the bytes of a connection: frames, garbage, then maybe a cut."""
    limit = draw(st.sampled_from(LIMITS))
    parts = draw(st.lists(st.one_of(frames(limit), hostile_raw), min_size=1, max_size=6))
    data = b"".join(pack(part) for part in parts)
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    return limit, data


def feed_in(decoder: ForwardDecoder, data: bytes, cuts: list[int]) -> list[Frame | StreamError]:
    items: list[Frame | StreamError] = []
    start = 0
    for cut in [*sorted({c % (len(data) + 1) for c in cuts}), len(data)]:
        items += decoder.feed(data[start:cut])
        start = cut
    return items


def check_items(decoder: ForwardDecoder, items: list[Any], limit: int) -> None:
    for position, item in enumerate(items):
        assert type(item) in (Frame, StreamError), item
        if isinstance(item, StreamError):
            assert item.reason and isinstance(item.raw, bytes)
            assert position == len(items) - 1, "nothing is framed after a broken stream"
            assert decoder.broken
            continue
        assert isinstance(item.tag, str)
        assert item.chunk is None or isinstance(item.chunk, str)
        for entry in item.entries:
            assert isinstance(entry.time, float) and isinstance(entry.record, dict)
        for rejected in item.rejected:
            assert rejected.reason and isinstance(rejected.raw, bytes)
    assert len(decoder._pending) <= limit  # memory stays within the frame limit


@FUZZ
@given(data=st.binary(max_size=2048), cuts=st.lists(st.integers(0), max_size=8))
def test_arbitrary_bytes_give_frames_or_a_stream_error(data: bytes, cuts: list[int]) -> None:
    decoder = ForwardDecoder(max_frame_bytes=1024)
    check_items(decoder, feed_in(decoder, data, cuts), 1024)


@FUZZ
@given(stream=streams(), cuts=st.lists(st.integers(0), max_size=8))
def test_hostile_streams_frame_the_same_however_they_are_split(
    stream: tuple[int, bytes], cuts: list[int]
) -> None:
    limit, data = stream
    # One clock for both: an event sent with a nil time gets the time of arrival.
    whole = ForwardDecoder(max_frame_bytes=limit, clock=lambda: ARRIVAL)
    at_once = whole.feed(data)
    check_items(whole, at_once, limit)
    split = ForwardDecoder(max_frame_bytes=limit, clock=lambda: ARRIVAL)
    in_pieces = feed_in(split, data, cuts)
    check_items(split, in_pieces, limit)
    assert summary(in_pieces) == summary(at_once)
    assert whole.broken == split.broken
    if whole.broken:
        assert whole.feed(data) == []
    # The end of the stream: a frame left unfinished is reported, the same either way.
    unfinished = not whole.broken and bool(whole._pending)
    whole_end, split_end = whole.close(), split.close()
    assert (whole_end is not None) == (split_end is not None) == unfinished
    if whole_end and split_end:
        assert "into a frame" in whole_end.reason
        assert (whole_end.reason, whole_end.raw) == (split_end.reason, split_end.raw)


@FUZZ
@given(stream=streams())
def test_the_router_dead_letters_everything_rejected_with_a_reason(
    stream: tuple[int, bytes],
) -> None:
    limit, data = stream
    decoder = ForwardDecoder(max_frame_bytes=limit)
    items = decoder.feed(data)
    if (end := decoder.close()) is not None:
        items.append(end)
    router = Router(SETTINGS, "fuzz:1")
    out = router.route(items, "127.0.0.1:5555")

    rejected = sum(1 if isinstance(i, StreamError) else len(i.rejected) for i in items)
    entries = sum(len(i.entries) for i in items if isinstance(i, Frame))
    assert len(out) == rejected + entries, "every entry and rejection gives one record"
    letters = [o for o in out if o.topic == SETTINGS.topics.deadletter]
    assert len(letters) >= rejected
    assert sum(router.counts.values()) == len(out)
    for record in out:
        assert record.topic in SETTINGS.topics.all()
        if record.topic != SETTINGS.topics.deadletter:
            msgspec.json.decode(record.value)  # valid JSON on the bus
            assert isinstance(record.key, bytes)
            continue
        letter = msgspec.json.decode(record.value, type=DeadLetter)
        assert letter.reason.strip() and letter.source == "accumulator"
        assert len(letter.raw) <= DEAD_LETTER_RAW_BYTES
        assert letter.peer == "127.0.0.1:5555"


@FUZZ
@given(
    limit=st.sampled_from(LIMITS[1:]),
    extra=st.integers(1, 100_000),
    members=st.integers(1, 3),
)
def test_gzip_bombs_are_dead_lettered_and_the_stream_goes_on(
    limit: int, extra: int, members: int
) -> None:
    bomb = b"".join(gzip.compress(bytes((limit + extra) // members + 1)) for _ in range(members))
    frame = msgpack.packb(["t", bomb, {"compressed": "gzip", "chunk": "c"}])
    assert len(frame) < limit  # small on the wire, beyond the limit once inflated
    good = ["logdeck.heartbeat", 1, {"node_id": "n", "message_type": "HEARTBEAT"}]
    decoder = ForwardDecoder(max_frame_bytes=limit)
    items = decoder.feed(frame + msgpack.packb(good))
    first, second = items
    assert isinstance(first, Frame) and not first.entries
    assert first.chunk == "c"  # still acknowledged: the client must not resend a bomb
    [rejected] = first.rejected
    assert "limit" in rejected.reason
    assert isinstance(second, Frame) and second.entries and not decoder.broken
    [letter, _] = Router(SETTINGS, "fuzz:1").route(items, "p")
    assert letter.topic == SETTINGS.topics.deadletter


def test_a_dead_letter_keeps_at_most_its_share_of_raw_bytes_and_says_so() -> None:
    big = Frame("invalid", "t", rejected=[Rejected("too odd", b"x" * (DEAD_LETTER_RAW_BYTES + 10))])
    [record] = Router(SETTINGS, "fuzz:1").route([big], "p")
    letter = msgspec.json.decode(record.value, type=DeadLetter)
    assert letter.raw == b"x" * DEAD_LETTER_RAW_BYTES
    assert letter.reason == (
        f"too odd (raw cut to the first {DEAD_LETTER_RAW_BYTES} of "
        f"{DEAD_LETTER_RAW_BYTES + 10} bytes)"
    )


def test_strings_that_are_not_utf8_are_dead_lettered_with_the_client_bytes() -> None:
    heartbeat = {"node_id": BadStr(b"n\xff"), "message_type": "HEARTBEAT", "status": "UP"}
    heartbeat["timestamp"] = TIMESTAMP
    items = ForwardDecoder().feed(pack([BadStr(b"tag\xfe"), 1, heartbeat]))
    [record] = Router(SETTINGS, "fuzz:1").route(items, "p")
    assert record.topic == SETTINGS.topics.deadletter
    letter = msgspec.json.decode(record.value, type=DeadLetter)
    assert letter.reason == "record has strings that are not valid UTF-8"
    assert letter.tag == "tag\\udcfe" and letter.node_id == "n\\udcff"
    assert b"n\xff" in letter.raw  # the client's own bytes, not a replacement
