"""History on start: the feed opens with the store's last minutes, joined to the live tail
with no log twice and none missing, in time order; a store that is down leaves the tail."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

from backend.store.query import LogQuery, SearchResult
from console.history import HISTORY_QUIET_TRIES
from tests.console.fake_observer import (
    NOW,
    FakeObserver,
    Notices,
    make_app,
    make_log,
    sample_logs,
    settle,
)
from widgets.log_feed import LogFeed

SIZE = (120, 40)


class HeldStore(FakeObserver):
    """A store whose search answers only when the test lets it, so the live tail can bring
    logs while the history is being read."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.answer = asyncio.Event()

    async def search(self, query: LogQuery) -> SearchResult:
        await self.answer.wait()
        return await super().search(query)


class LaggingStore(FakeObserver):
    """A store whose searches answer one at a time when the test lets each, so what it has
    made searchable can change between the first answer and the next."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.answers: asyncio.Queue[None] = asyncio.Queue()

    async def search(self, query: LogQuery) -> SearchResult:
        await self.answers.get()
        return await super().search(query)


async def until(pilot: object, done: Callable[[], bool]) -> None:
    """Let the console run until `done`, a bounded number of turns."""
    for _ in range(400):
        if done():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the console never got there")


def ids(feed: LogFeed) -> list[str]:
    return [log.log_id for log in feed.view.entries]


async def test_the_feed_starts_with_the_newest_stored_logs_oldest_first() -> None:
    stored = sample_logs(120)
    old = make_log(999, NOW - timedelta(minutes=20))
    observer = FakeObserver(logs=[old, *stored], clock=lambda: NOW)
    app = make_app(observer, history=100)
    async with app.run_test(size=SIZE) as pilot:
        await observer.subscribed("logs")
        await settle(pilot, "history")
        feed = app.main.feed
        assert ids(feed) == [log.log_id for log in stored[-100:]]
        assert feed.view.follow
        assert "100 earlier logs from the store" in str(feed.border_subtitle)
        query = observer.queries[-1]
        assert query.page_size == 100
        assert query.since == NOW - timedelta(minutes=15)


async def test_a_log_both_stored_and_live_shows_once_and_none_is_missing() -> None:
    logs = sample_logs(64)
    observer = HeldStore(logs=logs[:50], clock=lambda: NOW)
    app = make_app(observer, history=1000)
    async with app.run_test(size=SIZE) as pilot:
        await observer.subscribed("logs")
        # the tail brings 45-59 while the store is read: 45-49 were indexed by then too
        observer.push_logs(logs[45:60])
        del observer.history[50:]
        await settle(pilot)
        feed = app.main.feed
        assert ids(feed) == []
        assert "loading earlier logs" in str(feed.border_subtitle)

        observer.answer.set()
        await settle(pilot, "history")
        assert ids(feed) == [log.log_id for log in logs[:60]]
        assert "50 earlier logs from the store" in str(feed.border_subtitle)

        # one of the stored logs is still on its way through the tail, with newer ones
        observer.push_logs([logs[48], logs[61], logs[60], logs[62]])
        await settle(pilot)
        assert ids(feed) == [log.log_id for log in logs[:63]]


async def test_the_history_shows_at_once_and_a_lagging_store_fills_its_gap_after() -> None:
    logs = sample_logs(70)
    observer = LaggingStore(logs=logs[:40], clock=lambda: NOW)
    app = make_app(observer, history=1000)
    async with app.run_test(size=SIZE) as pilot:
        await observer.subscribed("logs")
        # 40-49 were sent before the tail started, and are not searchable yet
        observer.push_logs(logs[50:60])
        del observer.history[40:]
        await settle(pilot)
        feed = app.main.feed

        observer.answers.put_nowait(None)
        await until(pilot, lambda: bool(ids(feed)))
        assert ids(feed) == [log.log_id for log in logs[:40] + logs[50:60]]
        assert "40 earlier logs from the store" in str(feed.border_subtitle)

        # the store catches up, and the tail goes on meanwhile
        observer.history[40:] = logs[40:60]
        observer.push_logs(logs[60:63])
        observer.answers.put_nowait(None)
        await settle(pilot, "history")
        assert ids(feed) == [log.log_id for log in logs[:63]]
        assert "50 earlier logs from the store" in str(feed.border_subtitle)
        assert len(observer.queries) == 2


async def test_a_quiet_tail_shows_the_first_answer_and_asks_only_a_few_times_more() -> None:
    stored = sample_logs(30)
    observer = LaggingStore(logs=stored, clock=lambda: NOW)
    app = make_app(observer, history=1000)
    async with app.run_test(size=SIZE) as pilot:
        await observer.subscribed("logs")
        observer.answers.put_nowait(None)
        await until(pilot, lambda: bool(ids(app.main.feed)))
        assert ids(app.main.feed) == [log.log_id for log in stored]
        for _ in range(HISTORY_QUIET_TRIES):
            observer.answers.put_nowait(None)
        await settle(pilot, "history")
        assert len(observer.queries) == 1 + HISTORY_QUIET_TRIES
        assert ids(app.main.feed) == [log.log_id for log in stored]


class FailingOnceStore(LaggingStore):
    """A lagging store whose second answer is an error, as Elasticsearch's 503 while the
    shards of a daily index just made are starting."""

    async def search(self, query: LogQuery) -> SearchResult:
        result = await super().search(query)
        if len(self.queries) == 2:
            raise ConnectionError("503 all shards failed")
        return result


async def test_a_store_failing_while_the_gap_is_filled_is_asked_again() -> None:
    logs = sample_logs(60)
    observer = FailingOnceStore(logs=logs[:40], clock=lambda: NOW)
    app = make_app(observer, history=1000)
    async with app.run_test(size=SIZE) as pilot:
        await observer.subscribed("logs")
        observer.push_logs(logs[50:55])
        del observer.history[40:]
        observer.answers.put_nowait(None)
        await until(pilot, lambda: bool(ids(app.main.feed)))
        observer.history[40:] = logs[40:55]
        observer.answers.put_nowait(None)  # this answer fails
        observer.answers.put_nowait(None)
        await settle(pilot, "history")
        assert app.is_running
        assert len(observer.queries) == 3
        assert ids(app.main.feed) == [log.log_id for log in logs[:55]]


async def test_with_the_store_down_the_live_tail_still_fills_the_feed() -> None:
    observer = FakeObserver(logs=sample_logs(40), clock=lambda: NOW)
    observer.search_error = ConnectionError("connection refused")
    app = make_app(observer, history=1000)
    notices = Notices()
    async with app.run_test(size=SIZE, message_hook=notices) as pilot:
        await observer.subscribed("logs")
        live = sample_logs(5, end=NOW + timedelta(seconds=30))
        observer.push_logs(live)
        await settle(pilot, "history")
        await settle(pilot)
        feed = app.main.feed
        assert ids(feed) == [log.log_id for log in live]
        assert "no history: the store is down" in str(feed.border_subtitle)
        assert notices.mention("connection refused")
        assert notices.mention("the live tail goes on")


async def test_without_history_the_store_is_not_asked() -> None:
    observer = FakeObserver(logs=sample_logs(40), clock=lambda: NOW)
    app = make_app(observer)
    async with app.run_test(size=SIZE) as pilot:
        await observer.subscribed("logs")
        await settle(pilot)
        assert observer.queries == []
        assert ids(app.main.feed) == []
