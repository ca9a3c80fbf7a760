"""The publishers' shared queue: take everything at once, block past the limit, drain on close."""

from __future__ import annotations

import asyncio

from backend.bus import Outgoing
from backend.bus.outbox import Outbox


def records(count: int) -> list[Outgoing]:
    return [Outgoing("t", None, b"x") for _ in range(count)]


async def test_take_hands_out_every_caller_s_records_at_once() -> None:
    outbox = Outbox(limit=100)
    first, second = await outbox.put(records(2)), await outbox.put(records(3))
    taken = await outbox.take()
    assert taken is not None
    assert [len(batch) for batch, _ in taken] == [2, 3]
    assert [delivery for _, delivery in taken] == [first, second]


async def test_nothing_to_send_is_done_at_once() -> None:
    assert (await Outbox(limit=1).put([])).done()


async def test_put_blocks_past_the_limit_until_the_flusher_takes() -> None:
    outbox = Outbox(limit=5)
    await outbox.put(records(5))
    blocked = asyncio.create_task(outbox.put(records(1)))
    await asyncio.sleep(0.01)
    assert not blocked.done()
    assert await outbox.take() is not None
    await asyncio.wait_for(blocked, 1)


async def test_close_drains_what_waits_then_ends() -> None:
    outbox = Outbox(limit=10)
    await outbox.put(records(1))
    outbox.close()
    taken = await outbox.take()
    assert taken is not None and len(taken) == 1
    assert await outbox.take() is None


async def test_take_waits_for_work() -> None:
    outbox = Outbox(limit=10)
    waiting = asyncio.create_task(outbox.take())
    await asyncio.sleep(0.01)
    assert not waiting.done()
    await outbox.put(records(1))
    taken = await asyncio.wait_for(waiting, 1)
    assert taken is not None and len(taken) == 1
