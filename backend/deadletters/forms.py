"""What a dead letter's raw bytes hold, and the frames today's Forward decoder makes of them.

Where a letter was rejected decides what it kept: a whole Forward message (a broken frame,
a stream error), the packed entries of a PackedForward (plain or gzip), or one record
(which failed validation). A letter does not say which, so the bytes are read: gzip's
magic, a map, an array headed by a tag, or an array that is a `[time, record]` entry.
Each form is wrapped into the Forward message a client would have sent and handed to
`ForwardDecoder`, so a replay decodes exactly as the accumulator does now.
"""

from __future__ import annotations

import enum
from typing import Final

import msgpack

from backend.forward.protocol import ForwardDecoder, Frame, StreamError

GZIP_MAGIC: Final = b"\x1f\x8b"
_MAPS: Final = frozenset((*range(0x80, 0x90), 0xDE, 0xDF))
_ARRAYS: Final = frozenset((*range(0x90, 0xA0), 0xDC, 0xDD))
_ENTRY_OF_RECORD: Final = b"\x92\x00"
"""The msgpack header of `[0, ...]`: a record's bytes after it make an entry at time 0."""
_MALFORMED: Final = (msgpack.UnpackException, ValueError, TypeError)


class Form(enum.StrEnum):
    FRAME = "frame"
    """A whole Forward message `[tag, ...]`."""
    ENTRIES = "entries"
    """Packed `[time, record]` entries, one or more, uncompressed."""
    GZIP_ENTRIES = "gzip entries"
    """Packed entries, gzip-compressed (CompressedPackedForward)."""
    RECORD = "record"
    """One record map."""
    UNKNOWN = "unknown"


UNKNOWN_REASON: Final = (
    "raw bytes are neither a Forward message, packed entries (plain or gzip) nor a record"
)


def infer_form(raw: bytes) -> Form:
    """The form of `raw`, read from its first bytes; UNKNOWN when it fits none."""
    if raw.startswith(GZIP_MAGIC):
        return Form.GZIP_ENTRIES
    if not raw:
        return Form.UNKNOWN
    if raw[0] in _MAPS:
        return Form.RECORD
    if raw[0] not in _ARRAYS:
        return Form.UNKNOWN
    unpacker = _unpacker(raw)
    try:
        size = unpacker.read_array_header()
        head = unpacker.unpack() if size else None
    except _MALFORMED:
        return Form.UNKNOWN
    if isinstance(head, str):
        return Form.FRAME
    return Form.ENTRIES if size == 2 else Form.UNKNOWN


def decode(raw: bytes, tag: str) -> list[Frame | StreamError]:
    """What today's decoder makes of `raw`, as if a client had sent it with `tag`."""
    form = infer_form(raw)
    if form is Form.UNKNOWN:
        return [StreamError(UNKNOWN_REASON, raw)]
    if form is Form.FRAME:
        return _decoded(raw)
    if form is Form.GZIP_ENTRIES:
        return _decoded(msgpack.packb([tag, raw, {"compressed": "gzip"}]))
    entries = _ENTRY_OF_RECORD + raw if form is Form.RECORD else raw
    return _decoded(msgpack.packb([tag, entries]))


def _decoded(message: bytes) -> list[Frame | StreamError]:
    decoder = ForwardDecoder()
    items = decoder.feed(message)
    end = decoder.close()
    return [*items, end] if end is not None else items


def _unpacker(data: bytes) -> msgpack.Unpacker:
    unpacker = msgpack.Unpacker(
        raw=False,
        unicode_errors="surrogateescape",
        strict_map_key=False,
        max_buffer_size=max(len(data), 1),
    )
    unpacker.feed(data)
    return unpacker
