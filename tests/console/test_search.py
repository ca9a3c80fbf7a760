"""The search screen: every field reaches the LogQuery, pages, errors, detail, histogram."""

from __future__ import annotations

import json
from datetime import timedelta

from textual.pilot import Pilot
from textual.widgets import DataTable, Input, OptionList, Select, Static

from backend.schemas import Level
from console.screens import DetailScreen, MainScreen, SearchScreen
from tests.console.fake_observer import NOW, make_app, sample_observer, settle
from widgets.level_histogram import LevelHistogram

SIZE = (120, 40)


async def open_search(pilot: Pilot[None]) -> SearchScreen:
    await pilot.press("f2")
    await settle(pilot, "search")
    screen = pilot.app.screen
    assert isinstance(screen, SearchScreen)
    return screen


async def choose(pilot: Pilot[None], select_id: str, label: str) -> None:
    """Pick an option of a Select by keyboard, as a user would."""
    select = pilot.app.screen.query_one(select_id, Select)
    select.focus()
    await pilot.press("enter")
    await pilot.pause()
    overlay = select.query_one("SelectOverlay", OptionList)
    for _ in range(len(overlay.options)):
        option = overlay.highlighted_option
        if option is not None and str(option.prompt) == label:
            break
        await pilot.press("down")
    await pilot.press("enter")
    await settle(pilot, "search")


async def type_into(pilot: Pilot[None], input_id: str, text: str) -> None:
    pilot.app.screen.query_one(input_id, Input).focus()
    await pilot.press("ctrl+u", *text, "enter")
    await settle(pilot, "search")


def status(screen: SearchScreen) -> str:
    return str(screen.query_one("#search-status", Static).render())


async def test_f2_searches_the_last_15_minutes_at_once_and_escape_goes_back() -> None:
    observer = sample_observer()
    app = make_app(observer)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_search(pilot)
        assert observer.queries[-1].since == NOW - timedelta(minutes=15)
        assert observer.queries[-1].until is None and observer.queries[-1].page == 0
        assert screen.query_one("#results", DataTable).row_count == 50
        assert "120 hits · page 1 of 3" in status(screen)
        await pilot.press("escape")
        assert isinstance(app.screen, MainScreen)
        await pilot.press("ctrl+f")
        await settle(pilot, "search")
        assert app.screen is screen  # the form keeps what was typed


async def test_text_service_and_node_reach_the_query() -> None:
    observer = sample_observer()
    app = make_app(observer)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_search(pilot)
        await type_into(pilot, "#q", "declined")
        assert observer.queries[-1].text == "declined"
        await type_into(pilot, "#service", "payments, orders")
        assert observer.queries[-1].services == {"payments", "orders"}
        await type_into(pilot, "#node", "payments-2")
        query = observer.queries[-1]
        assert (query.text, query.nodes) == ("declined", {"payments-2"})
        result = screen.result
        assert result is not None and result.total > 0
        assert all(log.node_id == "payments-2" for log in result.logs)


async def test_level_choices_reach_the_query() -> None:
    observer = sample_observer()
    app = make_app(observer)
    async with app.run_test(size=SIZE) as pilot:
        await open_search(pilot)
        await choose(pilot, "#level", "ERROR")
        assert observer.queries[-1].levels == {Level.ERROR}
        await choose(pilot, "#level", "≥ WARN")
        assert observer.queries[-1].levels == {Level.WARN, Level.ERROR, Level.FATAL}


async def test_time_range_presets_and_custom_since_until() -> None:
    observer = sample_observer()
    app = make_app(observer)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_search(pilot)
        since_input = screen.query_one("#since", Input)
        assert since_input.disabled

        await choose(pilot, "#range", "Last 1 h")
        assert observer.queries[-1].since == NOW - timedelta(hours=1)
        await choose(pilot, "#range", "Last 24 h")
        assert observer.queries[-1].since == NOW - timedelta(hours=24)

        await choose(pilot, "#range", "Custom")
        assert not since_input.disabled and since_input.has_focus
        await pilot.press(*"10:14")
        screen.query_one("#until", Input).focus()
        await pilot.press(*"2026-11-24 10:15:30", "enter")
        await settle(pilot, "search")
        query = observer.queries[-1]
        assert query.since == NOW.replace(minute=14)
        assert query.until == NOW.replace(minute=15, second=30)


async def test_an_unreadable_time_is_shown_and_not_searched() -> None:
    observer = sample_observer()
    app = make_app(observer)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_search(pilot)
        await choose(pilot, "#range", "Custom")
        asked = len(observer.queries)
        await pilot.press(*"yesterday", "enter")
        await settle(pilot, "search")
        assert len(observer.queries) == asked
        assert "cannot read 'yesterday'" in status(screen)


async def test_pages_forward_and_back() -> None:
    observer = sample_observer()
    app = make_app(observer)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_search(pilot)
        first = screen.result
        await pilot.press("pagedown")
        await settle(pilot, "search")
        assert observer.queries[-1].page == 1
        assert "page 2 of 3" in status(screen)

        screen.query_one("#results", DataTable).focus()
        await pilot.press("n")
        await settle(pilot, "search")
        assert observer.queries[-1].page == 2
        assert screen.query_one("#results", DataTable).row_count == 20

        asked = len(observer.queries)
        await pilot.press("n")
        await settle(pilot, "search")
        assert len(observer.queries) == asked
        assert "no more pages" in status(screen)

        await pilot.press("p", "pageup")
        await settle(pilot, "search")
        assert observer.queries[-1].page == 0
        assert screen.result is not None and first is not None
        assert screen.result.logs == first.logs
        assert screen.result.logs[0].timestamp >= screen.result.logs[-1].timestamp


async def test_backend_errors_and_notes_show_on_the_screen() -> None:
    observer = sample_observer()
    app = make_app(observer)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_search(pilot)
        observer.search_error = ConnectionError("Elasticsearch unreachable")
        await type_into(pilot, "#q", "anything")
        assert "Search failed: ConnectionError: Elasticsearch unreachable" in status(screen)
        assert not screen.query_one("#results", DataTable).loading

        observer.search_error = None
        observer.search_note = "searched literally: '(' is not a valid pattern"
        await type_into(pilot, "#q", "(")
        assert "searched literally" in status(screen)


async def test_histogram_and_opening_a_result_as_json() -> None:
    observer = sample_observer()
    app = make_app(observer)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_search(pilot)
        histogram = screen.query_one(LevelHistogram)
        assert str(histogram.query_one("#hist-start").render()) == "10:11:00"
        assert str(histogram.query_one("#hist-end").render()) == "10:16:30"
        assert str(histogram.query_one("#hist-max").render()) == "max 12/30s"

        screen.query_one("#results", DataTable).focus()
        await pilot.press("down", "enter")
        await pilot.pause()
        assert isinstance(app.screen, DetailScreen)
        assert screen.result is not None
        assert json.loads(app.screen.text)["log_id"] == screen.result.logs[1].log_id
        await pilot.press("escape")
        assert app.screen is screen


async def test_a_new_query_cancels_the_one_still_running() -> None:
    observer = sample_observer()
    app = make_app(observer)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_search(pilot)
        slow_started = []
        original = observer.search

        async def slow_then_fast(query):  # type: ignore[no-untyped-def]
            if query.text == "slow":
                slow_started.append(query)
                import asyncio

                await asyncio.sleep(30)
            return await original(query)

        observer.search = slow_then_fast  # type: ignore[method-assign]
        screen.query_one("#q", Input).focus()
        await pilot.press(*"slow", "enter")
        await pilot.pause()
        await pilot.press("ctrl+u", *"fast", "enter")
        await settle(pilot, "search")
        assert slow_started
        assert screen.current_query is not None and screen.current_query.text == "fast"
        assert "hits" in status(screen)


async def test_the_command_palette_offers_the_main_actions() -> None:
    app = make_app(sample_observer())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        titles = [command.title for command in app.get_system_commands(app.main)]
        assert {"Search logs", "Keys", "Filter logs by service or node"} <= set(titles)
        assert "Show or hide acknowledged alerts" in titles
        assert "Search logs" in [command.title for command in app.get_system_commands(app.screen)]
