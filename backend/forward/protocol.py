"""Forward protocol v1 framing, as Fluentd, Fluent Bit and the fluent-logger libraries send it.

A connection carries a stream of msgpack arrays, each in one of four modes:
Message `[tag, time, record, option?]`, Forward `[tag, [[time, record], ...], option?]`,
PackedForward `[tag, bin, option?]` and, with option `compressed: "gzip"`,
CompressedPackedForward (any other `compressed` value, such as Node's `"text"`, means
plain entries, as in Fluentd's in_forward). Time is an integer, a float or an EventTime
(ext type 0); in Message and Forward mode a nil time means the time of arrival, as in
in_forward (Python's fluent-logger sends one from `emit_with_time(label, None, ...)`).

`ForwardDecoder` turns bytes into `Frame`s and never raises on client input: what does
not fit becomes a `Rejected` entry or a `StreamError` carrying its reason and raw bytes.
`close` reports a frame the stream ended in the middle of. Only a broken msgpack stream
(including msgpack Python cannot hold, such as a map keyed by an array, or an array longer
than `max_entries`) or a frame beyond `max_frame_bytes` is fatal to the connection, since
nothing after it can be framed again. A frame's work is bounded by its bytes and by
`max_entries`: packed entries past that many are not read but rejected as one, so a small
gzip frame cannot turn into millions of events. A frame with a `chunk` option keeps it
whatever is wrong inside, so the client is acknowledged once its dead letters are safe.
Strings that are not UTF-8 are kept with `surrogateescape`, so `repack` gives the client's
bytes back.

Given a `record_type` (a msgspec type), a PackedForward frame whose entries all read as
`[time, record_type]` is read in one pass straight into it, a third of the work of maps
validated later (`Entry.raw` keeps each record's bytes); any other frame is read as maps,
exactly as without one.
"""

from __future__ import annotations

import functools
import struct
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

import msgpack
import msgspec

EVENT_TIME_EXT: Final = 0
DEFAULT_MAX_FRAME_BYTES: Final = 16 * 1024 * 1024
DEFAULT_MAX_FRAME_ENTRIES: Final = 100_000
_READ_SIZE: Final = 16 * 1024
"""msgpack's first buffer per connection (its default is 1 MiB); it grows for big frames."""
_EVENT_TIME: Final = struct.Struct(">II")
_ARRAY32: Final = struct.Struct(">BI")
_BYTE: Final = struct.Struct(">B")
_MAP16: Final = struct.Struct(">H")
_MAP32: Final = struct.Struct(">I")


class EventTime(float):
    """Seconds since the epoch with nanosecond precision from the wire (ext type 0)."""

    __slots__ = ()


def _ext_hook(code: int, data: bytes | memoryview) -> object:
    """msgpack's and msgspec's (which gives a memoryview) ext hook."""
    if code == EVENT_TIME_EXT and len(data) == _EVENT_TIME.size:
        seconds, nanos = _EVENT_TIME.unpack(data)
        return EventTime(seconds + nanos / 1e9)
    return msgpack.ExtType(code, bytes(data))


def _unpack_record(raw: msgspec.Raw) -> Any:
    """A record's bytes as the map the plain way reads (options of `_entries`)."""
    return msgpack.unpackb(
        memoryview(raw),
        raw=False,
        unicode_errors="surrogateescape",
        ext_hook=_ext_hook,
        strict_map_key=False,
    )


def pack_event_time(seconds: float) -> msgpack.ExtType:
    """Encode `seconds` as the EventTime extension a Forward client sends."""
    whole = int(seconds)
    # Split after rounding: a fraction that rounds up to 1e9 ns carries into the seconds.
    extra, nanos = divmod(round((seconds - whole) * 1e9), 10**9)
    return msgpack.ExtType(EVENT_TIME_EXT, _EVENT_TIME.pack(whole + extra, nanos))


@dataclass(slots=True)
class Entry:
    """One event that framed correctly; its record is a map not validated yet, or, with
    `raw`, already read into the decoder's `record_type`."""

    time: float
    record: Any
    raw: msgspec.Raw | None = None
    """The client's bytes of a typed record, so a refused one is dead-lettered as sent."""

    def as_map(self) -> Any:
        """The record as the client sent it (a map, unless the client sent something else)."""
        return self.record if self.raw is None else _unpack_record(self.raw)


@dataclass(slots=True)
class Rejected:
    """One event or frame that cannot be used, with why."""

    reason: str
    raw: bytes


@dataclass(slots=True)
class Frame:
    """One decoded Forward message: the events of one tag and the ack it asks for."""

    mode: str
    tag: str
    entries: list[Entry] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    chunk: str | None = None
    gzip: bytes | None = None
    """Compressed entries not inflated yet (`feed(..., inflate=False)`): see `inflate`."""


@dataclass(slots=True)
class StreamError:
    """The stream itself is broken (not msgpack, or a frame beyond the size limit)."""

    reason: str
    raw: bytes
    too_large: bool = False
    """True when the frame outgrew the decoder's `max_frame_bytes`."""


# What msgpack raises on input it cannot unpack: malformed bytes (UnpackException,
# ValueError, which includes nesting too deep) and maps keyed by arrays or maps (TypeError).
_UNPACK_ERRORS: Final = (msgpack.UnpackException, ValueError, TypeError)


def ack_for(chunk: str) -> bytes:
    """The response that tells the client its chunk is safe."""
    packed: bytes = msgpack.packb({"ack": chunk})
    return packed


def _is_time(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _entry(item: object, nil_time: float | None = None) -> Entry | Rejected:
    """`item` as an Entry; a nil time becomes `nil_time` where one is given."""
    if isinstance(item, list | tuple) and len(item) == 2 and isinstance(item[1], dict):
        if _is_time(item[0]):
            return Entry(float(item[0]), item[1])
        if item[0] is None and nil_time is not None:
            return Entry(nil_time, item[1])
    return Rejected(
        "entry is not [time, record] with a numeric or EventTime time and a map record",
        repack(item),
    )


def repack(value: object) -> bytes:
    """`value` as msgpack again (the client's own bytes), or its repr if it cannot be."""
    try:
        packed: bytes = msgpack.packb(value, datetime=False, unicode_errors="surrogateescape")
        return packed
    except (TypeError, ValueError, OverflowError, RecursionError):
        pass
    try:
        return repr(value).encode("utf-8", "backslashreplace")
    except RecursionError:
        return b"<nested too deeply to show>"


class ForwardDecoder:
    """Incremental decoder for one connection's byte stream."""

    def __init__(
        self,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
        max_entries: int = DEFAULT_MAX_FRAME_ENTRIES,
        clock: Callable[[], float] = time.time,
        record_type: Any = None,
    ) -> None:
        """`clock`: the time of arrival given to events sent with a nil time;
        `record_type`: what packed records are read straight into when they all fit."""
        self._max_frame_bytes = max_frame_bytes
        self._max_entries = max_entries
        self._clock = clock
        self._typed = None if record_type is None else _typed_entries(record_type, max_entries)
        # Made on the first bytes (about 60 KiB), dropped after a frame that made it grow.
        self._unpacker: msgpack.Unpacker | None = None
        self._fed = 0  # bytes the current unpacker was given
        self._pending = bytearray()
        self._base = 0
        self._broken = False
        self.entries_capped = 0
        """Frames whose entries went past `max_entries` (the rest was rejected as one)."""

    @property
    def buffered(self) -> int:
        """Bytes of a frame not complete yet."""
        return len(self._pending)

    @property
    def broken(self) -> bool:
        """True once the stream could not be framed; the connection should close."""
        return self._broken

    def feed(self, data: bytes, *, inflate: bool = True) -> list[Frame | StreamError]:
        """Frames completed by `data`, in order; a `StreamError` ends the stream.

        With `inflate=False` compressed entries stay in `Frame.gzip`, so the caller can
        inflate them (`inflate`) where the work blocks nobody.
        """
        out: list[Frame | StreamError] = []
        # In slices that fit the limit, so one read carrying many small frames is fine and
        # only a single frame larger than the limit breaks the stream.
        view = memoryview(data)
        while view and not self._broken:
            room = self._max_frame_bytes - len(self._pending)
            if room <= 0:
                self._broken = True
                out.append(
                    StreamError(
                        f"frame larger than the {self._max_frame_bytes}-byte limit",
                        bytes(self._pending[:4096]),
                        too_large=True,
                    )
                )
                break
            out += self._feed(view[:room], inflate)
            view = view[room:]
        return out

    def inflate(self, frame: Frame) -> Frame:
        """`frame` with its compressed entries (if any) read into entries or rejections."""
        if frame.gzip is None:
            return frame
        try:
            data = _gunzip(frame.gzip, self._max_frame_bytes)
        except ValueError as error:
            frame.rejected.append(Rejected(str(error), frame.gzip))
        else:
            self._entries(frame, data)
        frame.gzip = None
        return frame

    def close(self) -> StreamError | None:
        """The end of the stream: a `StreamError` if it stopped in the middle of a frame."""
        if self._broken or not self._pending:
            self._broken = True
            return None
        self._broken = True
        return StreamError(
            f"connection closed {len(self._pending)} bytes into a frame",
            bytes(self._pending[:4096]),
        )

    def _feed(self, data: memoryview, inflate: bool) -> list[Frame | StreamError]:
        if self._unpacker is None:
            self._unpacker = msgpack.Unpacker(
                raw=False,
                unicode_errors="surrogateescape",
                ext_hook=_ext_hook,
                max_buffer_size=self._max_frame_bytes,
                max_array_len=self._max_entries,
                read_size=min(_READ_SIZE, self._max_frame_bytes),
                strict_map_key=False,
            )
        unpacker = self._unpacker
        self._pending += data
        self._fed += len(data)
        unpacker.feed(data)
        out: list[Frame | StreamError] = []
        start = self._base
        try:
            for obj in unpacker:
                end = unpacker.tell()
                frame = self._frame(obj, start, end)
                out.append(self.inflate(frame) if inflate else frame)
                start = end
        except _UNPACK_ERRORS as error:
            self._broken = True
            out.append(
                StreamError(f"invalid msgpack: {error}", bytes(self._pending[start - self._base :]))
            )
            return out
        del self._pending[: start - self._base]
        self._base = start
        if not self._pending and self._fed > _READ_SIZE:
            # Between frames, after more than the first buffer's worth: drop the buffers a big
            # frame grew (msgpack's and ours), so an idle connection holds little.
            self._unpacker, self._pending, self._base, self._fed = None, bytearray(), 0, 0
        return out

    def _raw(self, start: int, end: int) -> bytes:
        return bytes(self._pending[start - self._base : end - self._base])

    def _frame(self, obj: object, start: int, end: int) -> Frame:
        if not (isinstance(obj, list) and 2 <= len(obj) <= 4 and isinstance(obj[0], str)):
            frame = _bad_frame(
                "a Forward message is an array [tag, ...] of 2 to 4 items", self._raw(start, end)
            )
            frame.chunk = _last_chunk(obj)
            return frame
        tag, body = obj[0], obj[1]
        if (_is_time(body) or body is None) and len(obj) >= 3:
            chunk = _chunk(obj[3] if len(obj) == 4 else None)
            if not isinstance(obj[2], dict):
                frame = Frame("Message", tag, chunk=chunk)
                frame.rejected.append(Rejected("Message record is not a map", repack(obj[2])))
                return frame
            at = self._clock() if body is None else float(body)
            return Frame("Message", tag, [Entry(at, obj[2])], chunk=chunk)
        option = obj[2] if len(obj) == 3 and isinstance(obj[2], dict) else {}
        if isinstance(body, list):
            frame = Frame("Forward", tag, chunk=_last_chunk(obj))
            now = self._clock()
            for item in body:
                _add(frame, _entry(item, now))
            return frame
        if isinstance(body, bytes | str):
            return self._packed(tag, body, option, _last_chunk(obj))
        frame = _bad_frame(
            "second item is neither a time, an array of entries nor packed entries",
            self._raw(start, end),
            tag,
        )
        frame.chunk = _last_chunk(obj)
        return frame

    def _packed(
        self, tag: str, body: bytes | str, option: dict[Any, Any], chunk: str | None
    ) -> Frame:
        data = body.encode("utf-8", "surrogateescape") if isinstance(body, str) else body
        # As Fluentd's in_forward: only "gzip" means compressed; any other value is plain
        # (Node's fluent-logger sends `compressed: "text"` with uncompressed entries).
        if option.get("compressed") == "gzip":
            return Frame("CompressedPackedForward", tag, chunk=chunk, gzip=data)
        frame = Frame("PackedForward", tag, chunk=chunk)
        self._entries(frame, data, option.get("size"))
        return frame

    def _entries(self, frame: Frame, data: bytes, size: object = None) -> None:
        """Packed entries into `frame`: at most `max_entries`, the rest rejected as one.
        `size`: how many the client says there are (its option), if it says."""
        if self._typed is not None and (typed := self._typed.read(data, size)) is not None:
            frame.entries = typed
            return
        unpacker = msgpack.Unpacker(
            raw=False,
            unicode_errors="surrogateescape",
            ext_hook=_ext_hook,
            max_buffer_size=max(len(data), 1),
            max_array_len=self._max_entries,
            strict_map_key=False,
        )
        unpacker.feed(data)
        position = 0
        count = 0
        try:
            for item in unpacker:
                if count == self._max_entries:
                    self.entries_capped += 1
                    frame.rejected.append(
                        Rejected(
                            f"more than {self._max_entries} entries in one frame: the "
                            f"{len(data) - position} bytes after the first {count} are not read",
                            data[position:],
                        )
                    )
                    return
                _add(frame, _entry(item))
                count += 1
                position = unpacker.tell()
        except _UNPACK_ERRORS as error:
            frame.rejected.append(Rejected(f"invalid packed entries: {error}", data[position:]))
            return
        if position < len(data):
            # The unpacker stops quietly at a partial value; here nothing more will come.
            cut = len(data) - position
            frame.rejected.append(
                Rejected(f"packed entries end {cut} bytes into an entry", data[position:])
            )


_TIME_TYPES: Final = frozenset({int, float, EventTime})
"""What msgspec reads a time that `_is_time` takes as: the plain way's times."""


class _TypedEntries:
    """Packed entries read straight into typed records, all or none.

    msgspec reads `[time, record]` pairs into a record type about three times faster
    than msgpack builds maps for validating later. Any entry that does not fit (a time
    that is not a number, a record that is not valid, bytes that are not msgpack or not
    UTF-8, a key that names no field, more than `max_entries`) makes `read` return None,
    and the frame is read the plain way: what becomes of a frame with anything wrong in
    it does not change. Keys naming no field are the plain way's too because msgspec
    skips them unread, where a map's key that is not UTF-8 makes the record invalid.
    """

    def __init__(self, record_type: Any, max_entries: int) -> None:
        self._pairs = msgspec.msgpack.Decoder(list[tuple[Any, msgspec.Raw]], ext_hook=_ext_hook)
        self._record = msgspec.msgpack.Decoder(record_type)
        self._max_entries = max_entries
        self._keys = _struct_keys(record_type)

    def read(self, data: bytes, size: object = None) -> list[Entry] | None:
        """The entries of `data`, typed, or None; `size`, if the client gave it, saves
        counting them (a wrong one only sends the frame the plain way)."""
        if type(size) is int and 0 <= size <= self._max_entries:
            count: int | None = size
        else:
            count = _count(data, self._max_entries)
        if count is None:
            return None
        entries: list[Entry] = []
        decode, keys, astuple = self._record.decode, self._keys, msgspec.structs.astuple
        try:
            # The entries with an array header in front: one array msgspec reads in one go.
            for at, raw in self._pairs.decode(_ARRAY32.pack(0xDD, count) + data):
                if type(at) not in _TIME_TYPES:
                    return None
                record = decode(raw)
                # Each key set a field (not None) or is the tag: none named no field.
                if _map_size(raw) != keys[type(record)] - astuple(record).count(None):
                    return None
                entries.append(Entry(float(at), record, raw))
        except (msgspec.DecodeError, RecursionError):  # and ValidationError, a DecodeError
            return None
        return entries


@functools.lru_cache(maxsize=8)
def _typed_entries(record_type: Any, max_entries: int) -> _TypedEntries:
    """One reader for every connection: it keeps no state, and making one takes about a
    third of a millisecond."""
    return _TypedEntries(record_type, max_entries)


def _struct_keys(record_type: Any) -> dict[type, int]:
    """Keys a map read into each struct of `record_type` has when each sets a field."""
    info = msgspec.inspect.type_info(record_type)
    structs = info.types if isinstance(info, msgspec.inspect.UnionType) else (info,)
    keys: dict[type, int] = {}
    for struct_type in structs:
        # A field that defaults to anything but None would hide a key that named no field.
        if not isinstance(struct_type, msgspec.inspect.StructType) or any(
            not (field.required or field.default is None) for field in struct_type.fields
        ):
            raise ValueError(
                "record_type: a msgspec Struct, or a union of them, whose optional fields "
                "default to None"
            )
        keys[struct_type.cls] = len(struct_type.fields) + (struct_type.tag_field is not None)
    return keys


def _map_size(raw: msgspec.Raw) -> int:
    """The length of the msgpack map `raw`, from its header."""
    first: int = _BYTE.unpack_from(raw)[0]
    if first >> 4 == 0x8:  # fixmap
        return first & 0x0F
    size: int = (_MAP16 if first == 0xDE else _MAP32).unpack_from(raw, 1)[0]
    return size


def _count(data: bytes, limit: int) -> int | None:
    """How many msgpack values `data` holds, or None if not whole ones, or over `limit`."""
    unpacker = msgpack.Unpacker(max_buffer_size=max(len(data), 1), max_array_len=limit)
    unpacker.feed(data)
    count = 0
    try:
        while unpacker.tell() < len(data):
            if count == limit:
                return None
            unpacker.skip()
            count += 1
    except _UNPACK_ERRORS:
        return None
    return count


def _chunk(option: object) -> str | None:
    chunk = option.get("chunk") if isinstance(option, dict) else None
    return chunk if isinstance(chunk, str) else None


def _last_chunk(obj: object) -> str | None:
    """The chunk of a frame too broken to read otherwise, from an option map at its end."""
    if isinstance(obj, list) and 3 <= len(obj) <= 4:
        return _chunk(obj[-1])
    return None


def _add(frame: Frame, item: Entry | Rejected) -> None:
    if isinstance(item, Entry):
        frame.entries.append(item)
    else:
        frame.rejected.append(item)


def _bad_frame(reason: str, raw: bytes, tag: str = "") -> Frame:
    return Frame("invalid", tag, rejected=[Rejected(reason, raw)])


def _gunzip(data: bytes, limit: int) -> bytes:
    """Decompress one or more gzip members, refusing more than `limit` bytes of output."""
    out = bytearray()
    while data:
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            out += inflater.decompress(data, limit - len(out) + 1)
        except zlib.error as error:
            raise ValueError(f"invalid gzip: {error}") from None
        if len(out) > limit or inflater.unconsumed_tail:
            raise ValueError(f"decompressed entries exceed the {limit}-byte limit")
        if not inflater.eof:
            raise ValueError("truncated gzip")
        data = inflater.unused_data
    return bytes(out)
