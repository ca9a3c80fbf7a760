"""A paused reader loses nothing it is reading: the view grows rather than drop the entry
under the cursor or any after it, and what could not be kept is counted on the paused bar."""

from __future__ import annotations

from textual.widgets import Static

from tests.console.fake_observer import NOW, FakeObserver, make_app, sample_logs, settle
from widgets.log_feed import LogFeed

SIZE = (120, 40)


def paused_bar(feed: LogFeed) -> str:
    return str(feed.query_one("#paused", Static).render())


async def test_the_entry_under_the_cursor_stays_and_the_skipped_are_counted() -> None:
    observer = FakeObserver(clock=lambda: NOW)
    app = make_app(observer, capacity=100)
    async with app.run_test(size=SIZE) as pilot:
        logs = sample_logs(1100)
        observer.push_logs(logs[:100])
        await settle(pilot)
        view = app.main.feed.view
        await pilot.press("home", *["down"] * 10)
        assert view.selected() is logs[10]

        for start in range(100, 1100, 100):
            observer.push_logs(logs[start : start + 100])
            await settle(pilot)
        assert view.selected() is logs[10]
        assert list(view.entries) == logs[10:1010]
        assert view.skipped == 90
        bar = paused_bar(app.main.feed)
        assert "+1,000 new lines" in bar
        assert "90 skipped" in bar

        await pilot.press("end")
        await settle(pilot)
        assert list(view.entries) == logs[910:1010]
        assert view.skipped == 0


async def test_logs_the_console_could_not_keep_up_with_are_skipped_not_silent() -> None:
    observer = FakeObserver(clock=lambda: NOW)
    app = make_app(observer, capacity=100)
    async with app.run_test(size=SIZE) as pilot:
        logs = sample_logs(350)
        observer.push_logs(logs[:100])
        await settle(pilot)
        feed = app.main.feed
        await pilot.press("up", "up")
        assert feed.view.selected() is logs[98]

        observer.push_logs(logs[100:])  # 250 at once: the app's buffer keeps the newest 100
        await settle(pilot)
        assert feed.view.selected() is logs[98]
        assert feed.view.skipped == 150
        assert "150 skipped" in paused_bar(feed)
        assert list(feed.view.entries) == [*logs[:100], *logs[250:]]
        # the subtitle's count adds the 100 the feed's own ring let go of (its capacity)
        assert "250 dropped" in str(feed.border_subtitle)


async def test_nothing_is_skipped_while_the_view_has_room() -> None:
    observer = FakeObserver(clock=lambda: NOW)
    app = make_app(observer, capacity=100)
    async with app.run_test(size=SIZE) as pilot:
        logs = sample_logs(300)
        observer.push_logs(logs[:100])
        await settle(pilot)
        view = app.main.feed.view
        await pilot.press("home")
        for start in range(100, 300, 100):
            observer.push_logs(logs[start : start + 100])
            await settle(pilot)
        assert view.selected() is logs[0]
        assert list(view.entries) == logs
        assert view.skipped == 0
        assert "skipped" not in paused_bar(app.main.feed)
