"""Routing a read's frames so that no frame costs the other connections much: in slices,
and with at most `max_dead_letters` dead letters a frame.

Otherwise one frame of a hundred thousand bad entries is a hundred thousand dead letters
built in one go on the event loop: every other connection's acks wait for it, and the
dead-letter topic fills with copies of one mistake. Here a big frame is routed `SLICE`
entries at a time, yielding to the loop between slices; past the cap its rejected records
are folded into one letter that counts them, with the first one's reason and as many of
their bytes as fit in 64 KiB (whole packed entries, which `logdeck deadletter replay`
reads).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from backend.bus import Outgoing
from backend.forward.admission import NodeAccess
from backend.forward.protocol import Entry, Frame, Rejected, StreamError, repack
from backend.schemas import DeadLetter, decode_as

log = logging.getLogger("logdeck.accumulator")

DEFAULT_MAX_FRAME_DEAD_LETTERS = 100
SLICE = 100
"""Entries routed between two turns of the event loop (a few ms of work at most)."""
_RAW_KEPT = 64 * 1024


class _Router(Protocol):
    def route(
        self, items: Sequence[Frame | StreamError], peer: str, access: NodeAccess | None = None
    ) -> list[Outgoing]: ...


@dataclass(slots=True)
class _Fold:
    """The rejected records of one frame past the cap."""

    count: int = 0
    first: str = ""
    raw: bytearray = field(default_factory=bytearray)
    full: bool = False
    """A record's bytes no longer fit in `raw`: the rest is only counted."""

    def add(self, reason: str, raw: bytes) -> None:
        self.count += 1
        self.first = self.first or reason
        if len(self.raw) + len(raw) <= _RAW_KEPT:  # whole records only, so replay reads them
            self.raw += raw
        else:
            self.full = True


class FrameRouting:
    def __init__(
        self,
        router: _Router,
        deadletter: str,
        max_dead_letters: int = DEFAULT_MAX_FRAME_DEAD_LETTERS,
    ) -> None:
        self._router = router
        self._deadletter = deadletter
        self._max = max_dead_letters

    async def route(
        self, items: Sequence[Frame | StreamError], peer: str, access: NodeAccess | None = None
    ) -> list[Outgoing]:
        """The records of one read's items, in order.

        Frames within the caps are routed together, a slice of about `SLICE` entries at a
        time with a turn for other connections in between; a bigger frame on its own.
        """
        small = min(SLICE, self._max)
        out: list[Outgoing] = []
        run: list[Frame | StreamError] = []
        entries = 0
        for item in items:
            size = _size(item)
            if isinstance(item, Frame) and size > small:
                out += self._router.route(run, peer, access) if run else []
                run, entries = [], 0
                out += await self._frame(item, peer, access)
                continue
            run.append(item)
            entries += size
            if entries >= SLICE:
                out += self._router.route(run, peer, access)
                run, entries = [], 0
                await asyncio.sleep(0)  # other connections' turn
        if run:
            out += self._router.route(run, peer, access)
        return out

    async def _frame(self, frame: Frame, peer: str, access: NodeAccess | None) -> list[Outgoing]:
        out: list[Outgoing] = []
        fold = _Fold()
        kept = frame.rejected[: self._max]
        for rejected in frame.rejected[self._max :]:
            fold.add(rejected.reason, rejected.raw)
        letters = 0
        for start in range(0, max(len(frame.entries), 1), SLICE):
            entries = frame.entries[start : start + SLICE]
            piece = Frame(frame.mode, frame.tag, entries, kept if start == 0 else [])
            routed = self._router.route([piece], peer, access)
            skip = len(routed) - len(entries)  # the letters of `kept` come first
            for index, record in enumerate(routed):
                if record.topic != self._deadletter or letters < self._max:
                    letters += record.topic == self._deadletter
                    out.append(record)
                else:
                    raw = b"" if fold.full else _packed(entries, index - skip)
                    fold.add(fold.first or _reason(record), raw)
            await asyncio.sleep(0)  # other connections' turn
        if fold.count:
            log.warning(
                "%s: %d more rejected records in one frame than the limit "
                "(--max-frame-dead-letters) of %d: folded into one dead letter",
                peer,
                fold.count,
                self._max,
            )
            reason = (
                f"{fold.count} more records of this frame rejected past {self._max} dead "
                f"letters a frame, counted in this one; the first: {fold.first}"
            )
            summary = Frame(frame.mode, frame.tag, rejected=[Rejected(reason, bytes(fold.raw))])
            out += self._router.route([summary], peer)
        return out


def _size(item: Frame | StreamError) -> int:
    return 1 if isinstance(item, StreamError) else len(item.entries) + len(item.rejected)


def _reason(letter: Outgoing) -> str:
    return decode_as(letter.value, DeadLetter).reason


def _packed(entries: list[Entry], index: int) -> bytes:
    if 0 <= index < len(entries):
        return repack([entries[index].time, entries[index].as_map()])
    return b""
