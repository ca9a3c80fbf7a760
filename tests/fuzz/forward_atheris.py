"""Coverage-guided fuzzing of the Forward decoder and the accumulator's router, with atheris.

Each input is a connection: the decoder's `max_frame_bytes` and the sizes of the reads are
taken from the end of the input (`FuzzedDataProvider` reads integers from the end), the
bytes of the reads from the start. The reads go through `ForwardDecoder`, which is then
closed, and everything it gives goes through a `Router` with the default `Settings`. An
exception, or a broken invariant, is a crash:

- the decoder only gives `Frame`s and a last `StreamError`, keeps its buffer within its
  limit, and frames the bytes the same when they arrive all at once;
- every entry, rejection and broken stream gives exactly one record: a message on the topic
  of its type that decodes as that type, keyed by its node, or a dead letter with a reason
  and at most `DEAD_LETTER_RAW_BYTES` of raw bytes.

The seed corpus (every Forward mode, with `chunk` options) is written to a temporary folder
at start and removed at the end; name a corpus folder to keep the inputs libFuzzer finds.
libFuzzer's flags apply:

    python -m tests.fuzz.forward_atheris -runs=300000 -max_len=4096 [corpus/]
    python -m tests.fuzz.forward_atheris crash-0123abcd   # replays one input
"""

from __future__ import annotations

import ctypes
import gzip
import os
import shutil
import sys
import tempfile
import traceback
from typing import Any

import atheris  # type: ignore[import-untyped]
import msgpack
import msgspec

with atheris.instrument_imports(include=["backend"]):
    from backend.accumulator import DEAD_LETTER_RAW_BYTES, Router
    from backend.bus import Outgoing
    from backend.config import Settings
    from backend.forward.protocol import (
        ForwardDecoder,
        Frame,
        StreamError,
        pack_event_time,
    )
    from backend.schemas import DeadLetter, Heartbeat, Log, Registration, now_iso
    from tests.fuzz.decoded import summary

LIMITS = (64, 1024, 64 * 1024, 1024 * 1024)
"""The decoder's `max_frame_bytes`, picked by the last byte of the input."""
MAX_READ = 4096
"""The largest read; each read's size takes two bytes from the end of the input."""
SETTINGS = Settings()
TOPICS = SETTINGS.topics
SHAPES: dict[str, type[Log] | type[Heartbeat] | type[Registration]] = {
    TOPICS.logs: Log,
    TOPICS.heartbeats: Heartbeat,
    TOPICS.registrations: Registration,
}
PEER = "127.0.0.1:5555"


def split(data: bytes) -> tuple[int, list[bytes]]:
    """The decoder's limit and the reads of the connection that `data` stands for."""
    provider = atheris.FuzzedDataProvider(data)
    limit = LIMITS[provider.ConsumeIntInRange(0, len(LIMITS) - 1)]
    reads: list[bytes] = []
    while provider.remaining_bytes():
        reads.append(provider.ConsumeBytes(provider.ConsumeIntInRange(1, MAX_READ)))
    return limit, reads


def join(limit: int, reads: list[bytes]) -> bytes:
    """The input that `split` turns into `limit` and `reads` (for the seed corpus)."""
    assert all(1 <= len(read) <= MAX_READ for read in reads)
    # Integers are read from the end, most significant byte first: the limit is the last
    # byte, the first read's size the two before it, and so on.
    sizes = b"".join((len(read) - 1).to_bytes(2, "little") for read in reversed(reads))
    return b"".join(reads) + sizes + bytes([LIMITS.index(limit)])


def check_items(decoder: ForwardDecoder, items: list[Frame | StreamError], limit: int) -> None:
    for position, item in enumerate(items):
        assert type(item) in (Frame, StreamError), item
        if isinstance(item, StreamError):
            assert item.reason and isinstance(item.raw, bytes), item
            assert position == len(items) - 1, "nothing is framed after a broken stream"
            assert decoder.broken
            continue
        assert isinstance(item.tag, str), item
        assert item.chunk is None or isinstance(item.chunk, str), item
        for entry in item.entries:
            assert isinstance(entry.time, float) and isinstance(entry.record, dict), entry
        for rejected in item.rejected:
            assert rejected.reason and isinstance(rejected.raw, bytes), rejected
    assert len(decoder._pending) <= limit, "the buffer outgrew the frame limit"


def decode(limit: int, reads: list[bytes]) -> list[Frame | StreamError]:
    """Everything the decoder gives for `reads` and the end of the stream, checked."""
    decoder = ForwardDecoder(max_frame_bytes=limit)
    items: list[Frame | StreamError] = []
    for read in reads:
        items += decoder.feed(read)
        check_items(decoder, items, limit)
    broken = decoder.broken
    end = decoder.close()
    assert (end is not None) == (not broken and bool(decoder._pending)), end

    # The same bytes at once frame the same way and end the same way.
    whole = ForwardDecoder(max_frame_bytes=limit)
    at_once = whole.feed(b"".join(reads))
    check_items(whole, at_once, limit)
    assert summary(at_once) == summary(items), "framing depends on how the bytes arrive"
    assert whole.broken == broken
    whole_end = whole.close()
    assert (whole_end is None) == (end is None)
    if whole_end is not None and end is not None:
        assert "into a frame" in end.reason, end
        assert (whole_end.reason, whole_end.raw) == (end.reason, end.raw)
        items.append(end)
    return items


def route(items: list[Frame | StreamError]) -> list[Outgoing]:
    """The router's records for `items`, checked."""
    router = Router(SETTINGS, "atheris:1")
    out = router.route(items, PEER)
    rejected = sum(1 if isinstance(i, StreamError) else len(i.rejected) for i in items)
    entries = sum(len(i.entries) for i in items if isinstance(i, Frame))
    assert len(out) == rejected + entries, "every entry and rejection gives one record"
    assert sum(router.counts.values()) == len(out)
    letters = 0
    for record in out:
        if record.topic == TOPICS.deadletter:
            letters += 1
            letter = msgspec.json.decode(record.value, type=DeadLetter)
            assert letter.reason.strip(), letter
            assert letter.source == "accumulator" and letter.peer == PEER, letter
            assert len(letter.raw) <= DEAD_LETTER_RAW_BYTES, len(letter.raw)
            assert record.key == (letter.node_id.encode() if letter.node_id else None), record
            continue
        assert record.topic in SHAPES, record.topic
        message = msgspec.json.decode(record.value, type=SHAPES[record.topic])
        assert record.key == message.node_id.encode(), (record.key, message)
    assert letters >= rejected
    return out


def test_one_input(data: bytes) -> None:
    route(decode(*split(data)))


def _seeds() -> list[tuple[int, list[bytes]]]:
    """A few valid connections, one per Forward mode, then all of them in small reads."""
    stamp = now_iso()  # inside the window the router keeps
    log = {
        "log_id": "log-1",
        "node_id": "node-1",
        "message_type": "LOG",
        "log_level": "INFO",
        "message": "order placed",
        "service_name": "OrderService",
        "timestamp": stamp,
    }
    warn = log | {
        "log_id": "log-2",
        "log_level": "WARN",
        "response_time_ms": 512.5,
        "threshold_limit_ms": 300.0,
    }
    error = log | {
        "log_id": "log-3",
        "log_level": "ERROR",
        "error_details": {"error_code": "E42", "error_message": "payment declined"},
    }
    heartbeat = {"node_id": "node-1", "message_type": "HEARTBEAT", "status": "UP"}
    heartbeat["timestamp"] = stamp
    registration = {
        "node_id": "node-2",
        "message_type": "REGISTRATION",
        "service_name": "PaymentService",
        "timestamp": stamp,
    }
    when = pack_event_time(1795947330.123456789)
    packed = b"".join(msgpack.packb([t, r]) for t, r in [(when, registration), (1795947330, log)])
    frames = [
        ["logdeck.log", when, error, {"chunk": "c2VlZC0x"}],
        ["logdeck.heartbeat", 1795947330, heartbeat],
        ["logdeck.heartbeat", [[when, heartbeat], [1795947330.5, heartbeat]], {"chunk": "c-2"}],
        ["logdeck.registration", packed, {"chunk": "c-3", "size": 2}],
        [
            "logdeck.log",
            gzip.compress(b"".join(msgpack.packb([when, r]) for r in (log, warn, error))),
            {"compressed": "gzip", "chunk": "c-4"},
        ],
    ]
    blobs = [msgpack.packb(frame) for frame in frames]
    seeds = [(LIMITS[2], [blob]) for blob in blobs]
    stream = b"".join(blobs)
    seeds.append((LIMITS[3], [stream[i : i + 37] for i in range(0, len(stream), 37)]))
    return seeds


def write_seeds(folder: str) -> None:
    for number, (limit, reads) in enumerate(_seeds()):
        data = join(limit, reads)
        assert split(data) == (limit, reads), "join and split disagree"
        assert all(o.topic in SHAPES for o in route(decode(limit, reads))), "a seed is invalid"
        with open(os.path.join(folder, f"seed-{number}"), "wb") as file:
            file.write(data)


def main(argv: list[str]) -> None:
    args = list(argv)
    inputs = [arg for arg in args[1:] if not arg.startswith("-")]
    seeds = None
    # Files alone are replayed one by one; libFuzzer fuzzes only when it is given folders.
    if all(os.path.isdir(path) for path in inputs):
        seeds = tempfile.mkdtemp(prefix="logdeck-atheris-")
        try:
            write_seeds(seeds)
        except BaseException:
            shutil.rmtree(seeds, ignore_errors=True)
            raise
        _remove_at_c_exit(seeds)
        args.append(seeds)
    atheris.Setup(args, test_one_input)
    try:
        atheris.Fuzz()
    except BaseException as error:
        # atheris ends a crash, or `-atheris_runs`, with SystemExit; libFuzzer then ends
        # the process from its exit handler. So clean up now and leave through C's exit
        # while Python still runs: no handler may call Python once it is finalizing.
        code = error.code if isinstance(error, SystemExit) else 1
        if not isinstance(error, SystemExit):
            traceback.print_exc()
        if seeds is not None:
            shutil.rmtree(seeds, ignore_errors=True)
        sys.stdout.flush()
        sys.stderr.flush()
        _LIBC.exit(code if isinstance(code, int) else 1)


_LIBC = ctypes.CDLL(None)
_EXIT_HANDLER = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
_exit_handlers: list[Any] = []


def _remove_at_c_exit(folder: str) -> None:
    """Remove `folder` when libFuzzer ends the process (`-runs`) with C's exit.

    C's exit skips Python's exit handlers, so the removal is registered with C.
    """

    def remove(_: object) -> None:
        shutil.rmtree(folder, ignore_errors=True)

    handler = _EXIT_HANDLER(remove)
    _exit_handlers.append(handler)  # alive until the process ends
    _LIBC.__cxa_atexit(handler, None, None)


if __name__ == "__main__":
    main(sys.argv)
