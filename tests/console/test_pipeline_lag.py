"""The header shows the pipeline's consumer lag: quiet while it is small, a warning when not."""

from __future__ import annotations

from textual.widgets import Static

from console.app import LogdeckApp
from tests.console.fake_observer import NOW, FakeObserver, make_app, settle
from widgets.health_bar import LAGGING, HealthBar


def lag_part(app: LogdeckApp) -> Static:
    return app.screen.query_one(HealthBar).query_one("#lag", Static)


def shown(app: LogdeckApp) -> str:
    part = lag_part(app)
    return str(part.render()) if part.display and part.region.width else ""


async def test_the_largest_lag_shows_with_every_service_in_its_tooltip() -> None:
    observer = FakeObserver(clock=lambda: NOW)
    app = make_app(observer)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        assert shown(app) == "", "nothing before the observer knows"

        observer.lag_state = {"indexer": 120, "alerter": 3, "monitor": 0, "notifier": None}
        app.poll()
        await pilot.pause()
        assert shown(app) == "lag 120"
        assert not app.screen.query_one(HealthBar).has_class("-lagging")
        tooltip = str(lag_part(app).tooltip)
        assert "indexer: 120 records behind" in tooltip
        assert "notifier: never ran here" in tooltip

        observer.lag_state["indexer"] = LAGGING + 2_000
        app.poll()
        await pilot.pause()
        assert shown(app) == "lag 12k"
        assert app.screen.query_one(HealthBar).has_class("-lagging")


async def test_at_80_columns_only_a_service_that_lags_shows() -> None:
    observer = FakeObserver(dead_letters=12, clock=lambda: NOW)
    observer.lag_state = {"indexer": 40, "alerter": 0, "monitor": 0, "notifier": None}
    app = make_app(observer)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        app.poll()
        await pilot.pause()
        assert shown(app) == ""
        observer.lag_state["alerter"] = 250_000
        app.poll()
        await pilot.pause()
        assert shown(app) == "lag 250k"
        services = app.screen.query_one(HealthBar).query_one("#services", Static)
        text = str(services.render())
        assert text == "Kafka ● up  Elasticsearch ● up"
        assert services.region.width >= len(text)
