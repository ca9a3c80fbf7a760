"""Field terms in the feed's filter box: they become chips, combine with the regex, and
each can be removed alone."""

from __future__ import annotations

from backend.schemas import Level
from tests.console.fake_observer import NOW, FakeObserver, burst, make_app, sample_logs, settle
from widgets.filter_chips import FilterChip, FilterChips

SIZE = (120, 40)


def chip_texts(app: object) -> list[str]:
    feed = app.main.feed  # type: ignore[attr-defined]
    return [str(chip.term) for chip in feed.query_one(FilterChips).query_children(FilterChip)]


async def test_field_terms_become_chips_and_filter_with_the_regex() -> None:
    observer = FakeObserver(clock=lambda: NOW)
    app = make_app(observer)
    async with app.run_test(size=SIZE) as pilot:
        logs = sample_logs(120)
        observer.push_logs(logs)
        await settle(pilot)
        feed = app.main.feed
        await burst(pilot, "slash", *"error_code:PAY-502 service:pay* gateway", "enter")
        await settle(pilot)
        assert chip_texts(app) == ["code:PAY-502", "service:pay*"]
        assert feed.filter.text == "gateway"
        expected = [
            log
            for log in logs
            if log.error_details is not None
            and log.error_details.error_code == "PAY-502"
            and log.service_name.startswith("pay")
        ]
        assert expected and list(feed.view.entries) == expected
        assert "code:PAY-502 service:pay*" in str(feed.border_subtitle)


async def test_a_comparison_keeps_only_the_slow_entries() -> None:
    observer = FakeObserver(clock=lambda: NOW)
    app = make_app(observer)
    async with app.run_test(size=SIZE) as pilot:
        logs = sample_logs(60)
        observer.push_logs(logs)
        await settle(pilot)
        await burst(pilot, "slash", *"response_time_ms>1000", "enter")
        await settle(pilot)
        shown = list(app.main.feed.view.entries)
        assert shown == [log for log in logs if log.log_level is Level.WARN]


async def test_delete_on_a_chip_removes_that_term_only() -> None:
    observer = FakeObserver(clock=lambda: NOW)
    app = make_app(observer)
    async with app.run_test(size=SIZE) as pilot:
        logs = sample_logs(120)
        observer.push_logs(logs)
        await settle(pilot)
        feed = app.main.feed
        await burst(pilot, "slash", *"level:ERROR -code:PAY-502", "enter")
        await settle(pilot)
        assert all(log.log_level is Level.ERROR for log in feed.view.entries)
        chips = list(feed.query_one(FilterChips).query_children(FilterChip))
        chips[0].focus()
        await burst(pilot, "delete")
        await settle(pilot)
        assert chip_texts(app) == ["-code:PAY-502"]
        shown = list(feed.view.entries)
        assert any(log.log_level is Level.INFO for log in shown)
        assert not any(
            log.error_details and log.error_details.error_code == "PAY-502" for log in shown
        )


async def test_x_clears_the_chips_with_the_other_filters() -> None:
    observer = FakeObserver(clock=lambda: NOW)
    app = make_app(observer)
    async with app.run_test(size=SIZE) as pilot:
        logs = sample_logs(30)
        observer.push_logs(logs)
        await settle(pilot)
        await burst(pilot, "slash", *"node:payments-1", "enter", "x")
        await settle(pilot)
        assert chip_texts(app) == []
        assert not app.main.feed.query_one(FilterChips).has_class("-some")
        assert len(app.main.feed.view.entries) == len(logs)


async def test_an_unknown_name_stays_regex_and_a_wrong_value_is_explained() -> None:
    observer = FakeObserver(clock=lambda: NOW)
    app = make_app(observer)
    async with app.run_test(size=SIZE) as pilot:
        observer.push_logs(sample_logs(10))
        await settle(pilot)
        feed = app.main.feed
        await burst(pilot, "slash", *"level:LOUD")
        error = feed.query_one("#prompt-error")
        assert error.display and "LOUD" in str(error.render())
        await burst(pilot, "escape", "slash", *"id:42", "enter")
        await settle(pilot)
        assert chip_texts(app) == [] and feed.filter.text == "id:42"
