"""The header shows the records the bus's retention deleted before every group read them."""

from __future__ import annotations

from textual.widgets import Static

from console.app import LogdeckApp
from tests.console.fake_observer import NOW, FakeObserver, make_app, settle
from widgets.health_bar import HealthBar


def lost(app: LogdeckApp) -> Static:
    return app.screen.query_one(HealthBar).query_one("#lost", Static)


def shown(app: LogdeckApp) -> str:
    part = lost(app)
    return str(part.render()) if part.display and part.region.width else ""


async def test_nothing_shows_while_nothing_was_dropped_then_the_count_does() -> None:
    observer = FakeObserver(clock=lambda: NOW)
    app = make_app(observer)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        assert shown(app) == ""

        observer.set_health("Kafka", up=True, dropped_unread=1000)
        app.poll()
        await pilot.pause()
        assert shown(app) == "⚠ 1.0k lost"
        assert "1000 records deleted" in str(lost(app).tooltip)


async def test_at_80_columns_it_fits_beside_the_services_and_the_dead_letters() -> None:
    observer = FakeObserver(dead_letters=12, clock=lambda: NOW)
    observer.set_health("Kafka", up=True, dropped_unread=333_334)
    app = make_app(observer)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert shown(app) == "⚠ 333k lost"
        services = app.screen.query_one(HealthBar).query_one("#services", Static)
        text = str(services.render())
        assert text == "Kafka ● up  Elasticsearch ● up"
        assert services.region.width >= len(text)
