"""What a decoder made of a stream, in a form two runs can be compared by (for the fuzzers)."""

from __future__ import annotations

from typing import Any

from backend.forward.protocol import Frame, StreamError, repack


def summary(items: list[Frame | StreamError]) -> list[Any]:
    """Comparable text of what was decoded (msgpack bytes, so NaN equals NaN).

    A broken stream's raw bytes are those that had arrived when it broke, so they depend on
    the reads; only their start is compared.
    """
    out: list[Any] = []
    for item in items:
        if isinstance(item, StreamError):
            out.append(("error", item.too_large, item.raw[:1]))
        else:
            entries = [(repack(e.time), repack(e.record)) for e in item.entries]
            rejected = [(r.reason, r.raw) for r in item.rejected]
            out.append((item.mode, repack(item.tag), item.chunk, entries, rejected))
    return out
