"""Field filters in the search box: terms typed become chips, each removable, the words left
search as before, a malformed term is shown and not searched, chips survive paging."""

from __future__ import annotations

from datetime import datetime

from textual.pilot import Pilot
from textual.widgets import Input, Label, Static

from backend.logfilter import Expression
from backend.schemas import Level, Log
from console.screens import SearchScreen
from tests.console.fake_observer import (
    FakeObserver,
    burst,
    make_app,
    sample_observer,
    screen_lines,
    settle,
)
from tests.console.test_search import SIZE, open_search, status
from widgets.filter_chips import FilterChip, FilterChips


def chips(screen: SearchScreen) -> list[str]:
    return [str(chip.query_one(Label).render()) for chip in screen.query(FilterChip)]


def box(screen: SearchScreen) -> Input:
    return screen.query_one("#q", Input)


def error_under_box(screen: SearchScreen) -> str:
    shown = screen.query_one("#q-error", Static)
    return str(shown.render()) if shown.display else ""


def expected_hits(observer: FakeObserver, expression: Expression, text: str = "") -> list[Log]:
    query = observer.queries[-1]
    assert query.since is not None
    return [
        log
        for log in observer.history
        if expression.matches(log)
        and text in log.message
        and datetime.fromisoformat(log.timestamp) >= query.since
    ]


async def typed(pilot: Pilot[None], *keys: str) -> None:
    await burst(pilot, *keys)
    await settle(pilot, "search")


async def test_field_terms_typed_in_the_box_become_chips_and_the_words_stay() -> None:
    observer = sample_observer()
    app = make_app(observer)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_search(pilot)
        await typed(pilot, *"level:error service:pay* declined", "enter")
        query = observer.queries[-1]
        assert query.expression.describe() == "level:ERROR service:pay*"
        assert query.text == "declined"
        assert chips(screen) == ["level:ERROR", "service:pay*"]
        assert box(screen).value == "declined" and box(screen).has_focus
        assert any(
            "level:ERROR ✕" in line and "service:pay* ✕" in line for line in screen_lines(app)
        )
        result = screen.result
        assert result is not None and result.total > 0
        assert {log.log_level for log in result.logs} == {Level.ERROR}
        assert {log.service_name for log in result.logs} == {"payments"}
        assert result.total == len(expected_hits(observer, query.expression, "declined"))

        await typed(pilot, "ctrl+u", *"response_time_ms>1000 -node:auth-1", "enter")
        query = observer.queries[-1]
        assert chips(screen)[2:] == ["response_time_ms>1000", "-node:auth-1"]
        assert query.text == "" and len(query.expression.terms) == 4


async def test_plain_text_is_searched_as_before() -> None:
    observer = sample_observer()
    app = make_app(observer)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_search(pilot)
        await typed(pilot, *'pay | "request served" -slow prefix*', "enter")
        query = observer.queries[-1]
        assert query.text == 'pay | "request served" -slow prefix*'
        assert query.expression == Expression()
        assert chips(screen) == [] and not screen.query_one(FilterChips).display


async def test_each_chip_is_removed_by_key_or_by_its_cross_and_the_search_reruns() -> None:
    observer = sample_observer()
    app = make_app(observer)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_search(pilot)
        await typed(pilot, *"-level:INFO node:payments-* code:PAY-502 x", "enter")
        assert chips(screen) == ["-level:INFO", "node:payments-*", "code:PAY-502"]

        await typed(pilot, "tab", "delete")  # the first chip; the focus goes to the next
        assert chips(screen) == ["node:payments-*", "code:PAY-502"]
        assert observer.queries[-1].expression.describe() == "node:payments-* code:PAY-502"
        focused = app.focused
        assert isinstance(focused, FilterChip) and str(focused.term) == "node:payments-*"

        await typed(pilot, "right", "enter")  # right does nothing on a chip: Enter removes it
        assert chips(screen) == ["code:PAY-502"]
        hits = expected_hits(observer, observer.queries[-1].expression, "x")
        assert screen.result is not None and screen.result.total == len(hits)

        # The last chip goes; the keys typed right behind Backspace land in the box.
        await typed(pilot, "backspace", *"yz")
        assert chips(screen) == [] and observer.queries[-1].expression == Expression()
        assert box(screen).has_focus and box(screen).value == "xyz"

        await typed(pilot, "ctrl+u", *"level:fatal level:warn", "enter")
        cross = screen.query(FilterChip).first().query_one(".remove", Label)
        await pilot.click(cross)
        await settle(pilot, "search")
        assert chips(screen) == ["level:WARN"]
        assert observer.queries[-1].expression.describe() == "level:WARN"


async def test_a_malformed_term_shows_the_parsers_message_and_is_not_searched() -> None:
    observer = sample_observer()
    app = make_app(observer)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_search(pilot)
        await typed(pilot, *"level:warn", "enter")
        asked = len(observer.queries)
        await typed(pilot, *"level:loud timeout", "enter")
        assert len(observer.queries) == asked
        assert "'level:loud': the level is one of INFO, WARN, ERROR, FATAL" in error_under_box(
            screen
        )
        assert box(screen).value == "level:loud timeout" and chips(screen) == ["level:WARN"]

        await typed(pilot, "ctrl+u", *'x:1 "open', "enter")
        assert "unknown field 'x' in 'x:1'" in error_under_box(screen)
        await typed(pilot, "ctrl+u", *'level:error "open', "enter")
        assert "unclosed quote" in error_under_box(screen) and len(observer.queries) == asked

        await typed(pilot, "ctrl+u", *"response_time_ms>abc", "enter")
        assert "'abc' is not a number" in error_under_box(screen)

        await typed(pilot, "ctrl+u", *"response_time_ms>1500", "enter")
        assert error_under_box(screen) == "" and len(observer.queries) == asked + 1
        assert chips(screen) == ["level:WARN", "response_time_ms>1500"]
        assert "hits" in status(screen)


async def test_chips_and_the_query_survive_paging_and_leaving_the_screen() -> None:
    observer = sample_observer()
    app = make_app(observer)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_search(pilot)
        await typed(pilot, *"-level:FATAL", "enter")
        first = observer.queries[-1]
        assert screen.result is not None and screen.result.total == 118
        await typed(pilot, "pagedown")
        assert observer.queries[-1].page == 1
        assert observer.queries[-1].expression == first.expression
        assert "page 2 of 3" in status(screen) and chips(screen) == ["-level:FATAL"]
        assert all(log.log_level is not Level.FATAL for log in screen.result.logs)

        await typed(pilot, "escape", "f2", "f5")
        assert app.screen is screen and chips(screen) == ["-level:FATAL"]
        assert observer.queries[-1] == first
