"""One Forward connection's frame loop: framing, ordering of acks, and backpressure.

What the frames mean is the sink's business. A connection hands each read's frames to the
sink in one call, and writes the `{"ack": chunk}` answers only when the sink says those
records are safe, in the order the chunks arrived. At most `max_pending` reads wait for
that; past it the connection stops reading, so a slow Kafka slows the client down instead
of growing memory here.

Limits, each logged with the flag of `logdeck accumulator` that sets it when hit: a frame
beyond `max_frame_bytes` closes the connection (`--max-frame-bytes`), and so does an array
of more than `max_frame_entries` items (`--max-frame-entries`; packed entries past it are
rejected as one); a connection that sends nothing for `idle_timeout` seconds while none of
its chunks await an ack is closed (`--idle-timeout`), as is one that has not finished a
frame `frame_timeout` seconds after starting it (`--frame-timeout`, so one byte a second
cannot hold a connection) or has not taken its acks within `write_timeout` seconds
(`--write-timeout`). A frame left unfinished when a connection ends goes to the sink as a
`StreamError`, so it is dead-lettered, not lost without a word.

Memory: what all connections of a server have read and not yet seen acknowledged is at most
the server's `ByteBudget`, plus a read per connection; past it they stop reading until the
sink's deliveries release bytes, except for a small read by one that holds little (so
small frames are served while big ones wait) and a connection in the middle of a frame
when only partial frames fill the budget (one at a time, so frames bigger than what is
left never deadlock).
Work: reads of big frames are decoded, and gzip entries inflated, in a worker thread, so
one client's big or compressed frames never hold up another's acks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any, Protocol

from backend.bus import Delivery
from backend.forward.admission import NodeAccess
from backend.forward.budget import ByteBudget
from backend.forward.peers import peer_of
from backend.forward.protocol import ForwardDecoder, Frame, StreamError, ack_for

log = logging.getLogger("logdeck.forward")

_READ_BYTES = 256 * 1024
_SMALL_READ_BYTES = 16 * 1024
_SMALL_HOLD_BYTES = 64 * 1024
"""Past the byte budget a connection holding less may go on in small reads: small frames
are served while big ones wait."""
_INLINE_BYTES = 16 * 1024
"""Frames up to this size are decoded on the event loop; bigger ones in a worker thread."""


class FrameSink(Protocol):
    async def submit(
        self, frames: list[Frame | StreamError], peer: str, access: NodeAccess | None = None
    ) -> Delivery:
        """Take the frames of one read; the result completes when they are safe. `access`
        says which nodes the connection may speak for (None: any)."""


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """What every connection of one server is held to."""

    max_pending: int
    max_frame_bytes: int
    max_frame_entries: int
    idle_timeout: float
    frame_timeout: float
    write_timeout: float


class Connection:
    def __init__(
        self,
        sink: FrameSink,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        limits: ConnectionLimits,
        budget: ByteBudget,
        first: bytes = b"",
        access: NodeAccess | None = None,
        *,
        record_type: Any = None,
    ) -> None:
        self._sink = sink
        self._access = access
        self._reader = reader
        self._writer = writer
        self._peer = peer_of(writer)
        self._limits = limits
        self._decoder = ForwardDecoder(
            limits.max_frame_bytes, limits.max_frame_entries, record_type=record_type
        )
        self._pending: asyncio.Queue[tuple[list[str], Delivery, int] | None] = asyncio.Queue(
            limits.max_pending
        )
        self._awaiting = 0  # reads handed to the sink whose acks are not written yet
        self._first = first  # what a client wrote behind its PING, before any read here
        self._budget = budget
        self._unsettled = 0  # bytes taken from the budget and not handed to the sink yet
        self._held = 0  # bytes taken from the budget and not given back yet
        self._overdraft = False  # finishing a frame past the budget (see ByteBudget)
        self._frame_started = 0.0  # loop time of the first byte of the unfinished frame
        self._capped = 0  # frames seen past --max-frame-entries

    async def run(self) -> None:
        acker = asyncio.create_task(self._acknowledge())
        try:
            await self._read()
        except (ConnectionError, asyncio.IncompleteReadError) as error:
            log.debug("connection from %s lost: %s", self._peer, error)
        finally:
            self._end_overdraft()
            self._give_back(self._unsettled, settled=False)
            await self._pending.put(None)
            with contextlib.suppress(ConnectionError):
                await acker
            self._writer.close()
            try:
                async with asyncio.timeout(self._limits.write_timeout):
                    await self._writer.wait_closed()
            except (ConnectionError, TimeoutError):
                self._writer.transport.abort()  # unread acks would hold it open

    async def _read(self) -> None:
        error: StreamError | None = None
        if self._first:
            first, self._first = self._first, b""
            error = await self._take(first)
        loop = asyncio.get_running_loop()
        limits = self._limits
        while error is None:
            if self._budget.full:
                paused = loop.time()
                await self._wait_for_room()
                self._frame_started += loop.time() - paused  # the wait is not the client's
            # Past the budget (a connection that holds little) only a small read.
            size = _SMALL_READ_BYTES if self._budget.full else _READ_BYTES
            deadline = loop.time() + limits.idle_timeout
            if self._decoder.buffered:
                deadline = min(deadline, self._frame_started + limits.frame_timeout)
            try:
                async with asyncio.timeout_at(deadline):  # no task per read: wait_for's
                    data = await self._reader.read(size)
            except TimeoutError:
                if (
                    self._decoder.buffered
                    and loop.time() >= self._frame_started + limits.frame_timeout
                ):
                    log.warning(
                        "closing %s: a frame unfinished %g s after it started, the limit "
                        "(--frame-timeout)",
                        self._peer,
                        limits.frame_timeout,
                    )
                elif self._awaiting:
                    continue  # silent, but waiting for acks the bus still owes it
                else:
                    log.warning(
                        "closing %s: silent for %g s, the limit (--idle-timeout)",
                        self._peer,
                        limits.idle_timeout,
                    )
                await self._finish()
                return
            if not data:
                await self._finish()
                return
            error = await self._take(data)
        hint = " (--max-frame-bytes)" if error.too_large else ""
        if "max_array_len" in error.reason:
            hint = " (--max-frame-entries)"
        log.warning("closing %s: %s%s", self._peer, error.reason, hint)

    async def _take(self, data: bytes) -> StreamError | None:
        """Decode one read and hand its frames to the sink; the error that ends the stream."""
        self._budget.take(len(data))
        self._unsettled += len(data)
        self._held += len(data)
        in_frame = bool(self._decoder.buffered)
        items = await self._decode(data)
        if self._decoder.buffered and (items or not in_frame):
            self._frame_started = asyncio.get_running_loop().time()
        if self._decoder.entries_capped > self._capped:
            self._capped = self._decoder.entries_capped
            log.warning(
                "%s: a frame of more than %d entries, the limit (--max-frame-entries); "
                "the rest of it is dead-lettered as one",
                self._peer,
                self._limits.max_frame_entries,
            )
        if items or not self._decoder.buffered:
            self._end_overdraft()  # its deliveries will make room: no more overdraft
        if not items:
            return None
        settled = self._unsettled - self._decoder.buffered
        self._unsettled -= settled
        await self._submit(items, settled)
        return next((item for item in items if isinstance(item, StreamError)), None)

    async def _decode(self, data: bytes) -> list[Frame | StreamError]:
        """Small frames on the loop; big ones, and any gzip entries, in a worker thread."""
        decoder = self._decoder
        if decoder.buffered + len(data) > _INLINE_BYTES:
            return await asyncio.to_thread(decoder.feed, data)
        items = decoder.feed(data, inflate=False)
        if any(isinstance(item, Frame) and item.gzip is not None for item in items):
            return await asyncio.to_thread(
                lambda: [decoder.inflate(i) if isinstance(i, Frame) else i for i in items]
            )
        return items

    async def _wait_for_room(self) -> None:
        """Past the byte budget: wait for room, or finish a frame on the overdraft."""
        budget = self._budget
        if not budget.full or self._overdraft or self._held < _SMALL_HOLD_BYTES:
            return
        transport = self._writer.transport
        assert isinstance(transport, asyncio.ReadTransport)
        transport.pause_reading()  # nothing more piles up in the stream's buffer meanwhile
        try:
            while budget.full and not self._overdraft and self._held >= _SMALL_HOLD_BYTES:
                self._overdraft = await budget.wait(partial=bool(self._decoder.buffered))
        finally:
            transport.resume_reading()

    def _give_back(self, size: int, settled: bool) -> None:
        self._held -= size
        self._budget.release(size, settled)

    def _end_overdraft(self) -> None:
        if self._overdraft:
            self._overdraft = False
            self._budget.end_overdraft()

    async def _finish(self) -> None:
        """Dead-letter the frame a client left unfinished, if any."""
        if (error := self._decoder.close()) is not None:
            log.warning("%s: %s", self._peer, error.reason)
            settled, self._unsettled = self._unsettled, 0
            await self._submit([error], settled)

    async def _submit(self, items: list[Frame | StreamError], size: int) -> None:
        chunks = [item.chunk for item in items if isinstance(item, Frame) and item.chunk]
        self._budget.settle(size)
        try:
            delivery = await self._sink.submit(items, self._peer, self._access)
        except BaseException:
            self._give_back(size, settled=True)
            raise
        self._awaiting += 1
        await self._pending.put((chunks, delivery, size))

    async def _acknowledge(self) -> None:
        while (item := await self._pending.get()) is not None:
            chunks, delivery, size = item
            try:
                await delivery
            finally:
                self._awaiting -= 1
                self._give_back(size, settled=True)
            if chunks and not self._writer.is_closing():
                await self._write(b"".join(ack_for(chunk) for chunk in chunks))

    async def _write(self, data: bytes) -> None:
        """Write acks; a client that does not take them within the limit is cut off."""
        self._writer.write(data)
        try:
            async with asyncio.timeout(self._limits.write_timeout):
                await self._writer.drain()
        except TimeoutError:
            log.warning(
                "closing %s: acks not taken for %g s, the limit (--write-timeout)",
                self._peer,
                self._limits.write_timeout,
            )
            self._writer.transport.abort()
        except ConnectionError as error:
            log.debug("connection from %s lost: %s", self._peer, error)
            self._writer.transport.abort()
