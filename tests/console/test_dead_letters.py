"""The header shows the dead letters waiting for a replay, as the observer counts them."""

from __future__ import annotations

from textual.widgets import Static

from console.app import LogdeckApp
from tests.console.fake_observer import NOW, FakeObserver, make_app, settle
from widgets.health_bar import HealthBar


def shown(app: LogdeckApp) -> str:
    """The dead-letter part of the header as it reads on screen ("" when hidden)."""
    bar = app.screen.query_one(HealthBar)
    parts = [bar.query_one("#dead", Static), bar.query_one("#dead-word", Static)]
    return "".join(str(part.render()) for part in parts if part.display and part.region.width)


async def test_the_header_shows_the_observers_count_and_follows_it() -> None:
    observer = FakeObserver(dead_letters=12, clock=lambda: NOW)
    app = make_app(observer)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        assert shown(app) == "✉ 12 dead letters"

        observer.dead_letter_count = 1500
        app.poll()
        await pilot.pause()
        assert shown(app) == "✉ 1.5k dead letters"

        observer.dead_letter_count = 0
        app.poll()
        await pilot.pause()
        assert shown(app) == ""


async def test_at_80_columns_it_is_short_and_the_services_still_fit() -> None:
    observer = FakeObserver(dead_letters=12, clock=lambda: NOW)
    app = make_app(observer)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert shown(app) == "✉ 12 dead"
        services = app.screen.query_one(HealthBar).query_one("#services", Static)
        text = str(services.render())
        assert text == "Kafka ● up  Elasticsearch ● up"
        assert services.region.width >= len(text)


async def test_nothing_shows_until_the_count_is_known() -> None:
    observer = FakeObserver(clock=lambda: NOW)
    app = make_app(observer)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        assert app.dead_letters is None
        assert shown(app) == ""


async def test_a_count_that_raises_is_not_known_and_not_fatal() -> None:
    observer = FakeObserver(dead_letters=3, clock=lambda: NOW)

    def broken() -> int:
        raise RuntimeError("bus gone")

    observer.dead_letters = broken  # type: ignore[method-assign]
    app = make_app(observer)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        assert app.dead_letters is None
        assert shown(app) == ""
