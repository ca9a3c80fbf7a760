"""The console keeps running when the backend does not: health down, feeds failing."""

from __future__ import annotations

from datetime import timedelta

from textual.widgets import Static

from backend.schemas import Level
from tests.console.fake_observer import (
    NOW,
    FakeObserver,
    make_app,
    make_log,
    sample_observer,
    settle,
)
from widgets.health_bar import HealthBar, TroubleBanner

SIZE = (120, 40)


def header_text(app: object) -> str:
    from console.app import LogdeckApp

    assert isinstance(app, LogdeckApp)
    return str(app.screen.query_one(HealthBar).query_one("#services", Static).render())


async def test_health_down_shows_in_the_header_with_since() -> None:
    observer = sample_observer()
    app = make_app(observer)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert header_text(app) == "Kafka ● up  Elasticsearch ● up"
        banner = app.screen.query_one(TroubleBanner)
        assert not banner.has_class("-trouble")

        observer.set_health(
            "Elasticsearch", up=False, since=NOW - timedelta(seconds=57), detail="refused"
        )
        app.poll()
        await pilot.pause()
        assert header_text(app) == "Kafka ● up  Elasticsearch ✖ down since 10:15:03"
        assert banner.has_class("-trouble")
        assert "Elasticsearch down since 10:15:03: refused" in str(banner.render())

        await pilot.press("f2")
        await settle(pilot, "search")
        assert "Elasticsearch ✖ down since 10:15:03" in header_text(app)

        observer.set_health("Elasticsearch", up=True)
        app.poll()
        await pilot.pause()
        assert "Elasticsearch ● up" in header_text(app)


async def test_a_health_check_that_raises_is_shown_not_fatal() -> None:
    observer = sample_observer()

    def broken() -> tuple[()]:
        raise RuntimeError("no route to broker")

    observer.health = broken  # type: ignore[method-assign]
    app = make_app(observer)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert "observer ✖ down since 10:16:00" in header_text(app)
        assert "no route to broker" in str(app.screen.query_one(TroubleBanner).render())


async def test_a_feed_that_raises_is_reported_and_reopened() -> None:
    observer = FakeObserver(clock=lambda: NOW)
    app = make_app(observer)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        observer.feed_errors["logs"] = ConnectionError("broker gone")
        observer.break_feed("logs", ConnectionError("broker gone"))
        await pilot.pause(0.2)
        banner = app.screen.query_one(TroubleBanner)
        assert banner.has_class("-trouble")
        text = str(banner.render())
        assert "logs feed failing since 10:16:00: ConnectionError: broker gone" in text
        assert observer.opened["logs"] >= 3  # retried with backoff, still failing

        del observer.feed_errors["logs"]
        await pilot.pause(0.2)
        observer.push_logs([make_log(1, NOW, level=Level.ERROR, message="back again")])
        await settle(pilot)
        assert [log.message for log in app.main.feed.view.entries] == ["back again"]
        assert not banner.has_class("-trouble")


async def test_a_feed_that_fails_from_the_start_does_not_stop_the_others() -> None:
    observer = sample_observer()
    observer.feed_errors["alerts"] = RuntimeError("alerts topic missing")
    app = make_app(observer)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.1)
        await settle(pilot)
        assert app.main.nodes.row_count == 8
        assert app.main.alerts.row_count == 0
        assert "alerts feed failing" in str(app.screen.query_one(TroubleBanner).render())


async def test_a_feed_that_ends_is_reopened() -> None:
    observer = sample_observer()
    app = make_app(observer)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        observer.end_feed("nodes")
        await pilot.pause(0.1)
        await settle(pilot)
        assert observer.opened["nodes"] >= 2
        assert app.main.nodes.row_count == 8


async def test_an_observer_that_cannot_start_is_retried() -> None:
    observer = sample_observer()
    attempts: list[int] = []
    original = observer.start

    async def flaky_start() -> None:
        attempts.append(1)
        if len(attempts) < 3:
            raise OSError("connection refused")
        await original()

    observer.start = flaky_start  # type: ignore[method-assign]
    app = make_app(observer)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.2)
        await settle(pilot)
        assert len(attempts) == 3 and observer.started
        assert app.main.nodes.row_count == 8
        assert not app.screen.query_one(TroubleBanner).has_class("-trouble")
    assert observer.closed
