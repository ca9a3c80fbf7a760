"""Keys typed in one burst, as a person types: each key goes where the keys before it
have moved the focus, so what follows a prompt key is the prompt's and what follows Enter
or Escape in it is the feed's again.

Each test sends its keys through `burst`, all queued before the console handles the first,
at 80x24.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Input

from backend.schemas import Level
from console.screens.search import SearchScreen
from tests.console.fake_observer import (
    NOW,
    FakeObserver,
    burst,
    make_app,
    sample_logs,
    sample_nodes,
    sample_observer,
    settle,
)
from widgets.prompt import FilterPrompt

SIZE = (80, 24)


def exported(folder: Path) -> list[Path]:
    return list(folder.iterdir())


@pytest.mark.parametrize(("key", "mode"), [("slash", "text"), ("s", "names"), ("t", "time")])
async def test_keys_typed_right_after_a_prompt_key_are_the_prompts(
    key: str, mode: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    observer = FakeObserver(clock=lambda: NOW)
    app = make_app(observer)
    async with app.run_test(size=SIZE) as pilot:
        observer.push_logs(sample_logs(50))
        await settle(pilot)
        feed = app.main.feed
        before = feed.filter

        await burst(pilot, key, *"timed")  # t: go to time, m: minimum level, e: export
        await settle(pilot, "export")

        prompt = feed.query_one(FilterPrompt)
        assert prompt.mode == mode
        assert prompt.input.value == "timed"
        assert prompt.input.has_focus
        assert feed.filter == before
        assert not exported(tmp_path)


async def test_text_typed_right_after_f2_is_the_search_query() -> None:
    observer = sample_observer()
    app = make_app(observer)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        feed_filter = app.main.feed.filter

        await burst(pilot, "f2", *"pay timeout")  # p: previous page, n: next page
        await settle(pilot, "search")

        screen = app.screen
        assert isinstance(screen, SearchScreen)
        query = screen.query_one("#q", Input)
        assert query.value == "pay timeout"
        assert query.has_focus
        assert app.main.feed.filter == feed_filter

        await burst(pilot, "escape", "f2", *" slow")  # the form kept its text
        await settle(pilot, "search")
        assert app.screen is screen
        assert query.value == "pay timeout slow"
        assert query.has_focus


async def test_tab_completes_the_names_typed_in_the_service_node_prompt() -> None:
    observer = FakeObserver(nodes=sample_nodes(), clock=lambda: NOW)
    app = make_app(observer)
    async with app.run_test(size=SIZE) as pilot:
        observer.push_logs(sample_logs(80))
        await settle(pilot)
        feed = app.main.feed

        await pilot.press("s")
        await burst(pilot, *"pay", "tab", "comma", "space", *"orders-", "tab")

        prompt_input = feed.query_one(FilterPrompt).input
        assert prompt_input.has_focus
        assert prompt_input.value == "payments, orders-0"

        await burst(pilot, "tab", "enter")  # nothing more to complete: Tab stays
        assert feed.filter.services == {"payments"}
        assert feed.filter.nodes == {"orders-0"}
        assert feed.view.has_focus


async def test_keys_typed_right_after_enter_or_escape_in_the_prompt_are_the_feeds() -> None:
    observer = FakeObserver(clock=lambda: NOW)
    app = make_app(observer)
    async with app.run_test(size=SIZE) as pilot:
        observer.push_logs(sample_logs(50))
        await settle(pilot)
        feed = app.main.feed

        await burst(pilot, "slash", *"pay", "enter", "3")
        assert feed.filter.text == "pay"
        assert feed.filter.levels == {Level.ERROR}
        assert feed.view.has_focus

        await burst(pilot, "slash", "x", "escape", "4")
        assert feed.filter.text == "pay"
        assert feed.filter.levels == {Level.ERROR, Level.FATAL}
        assert feed.view.has_focus


async def test_keys_typed_right_before_a_prompt_key_are_still_the_feeds() -> None:
    observer = FakeObserver(clock=lambda: NOW)
    app = make_app(observer)
    async with app.run_test(size=SIZE) as pilot:
        observer.push_logs(sample_logs(50))
        await settle(pilot)
        feed = app.main.feed

        await burst(pilot, "space", "slash", "x")
        assert not feed.view.follow
        assert feed.query_one(FilterPrompt).input.value == "x"

        await burst(pilot, "escape", "3", "f2")
        assert feed.filter.levels == {Level.ERROR}
        assert isinstance(app.screen, SearchScreen)
