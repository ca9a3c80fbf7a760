"""The live log feed: level, service/node and text filters, follow and pause, detail."""

from __future__ import annotations

import json
from datetime import timedelta

from textual.events import MouseScrollUp
from textual.widgets import Input, Label, Static

from backend.schemas import Level
from console.screens.detail import DetailScreen
from tests.console.fake_observer import (
    NOW,
    FakeObserver,
    make_app,
    make_log,
    pane_lines,
    sample_logs,
    sample_nodes,
    settle,
)
from widgets.log_feed import LogFeed
from widgets.prompt import FilterPrompt

SIZE = (120, 40)


def shown_levels(feed: LogFeed) -> set[Level]:
    return {log.log_level for log in feed.view.entries}


async def test_new_logs_show_at_the_bottom_in_order() -> None:
    observer = FakeObserver(clock=lambda: NOW)
    app = make_app(observer)
    async with app.run_test(size=SIZE) as pilot:
        logs = sample_logs(30)
        observer.push_logs(logs[:10])
        observer.push_logs(logs[10:])
        await settle(pilot)
        feed = app.main.feed
        assert list(feed.view.entries) == logs
        assert feed.view.follow and feed.view.is_vertical_scroll_end
        assert feed.view.selected() == logs[-1]


async def test_keys_1_to_4_toggle_levels_and_m_cycles_a_minimum() -> None:
    observer = FakeObserver(clock=lambda: NOW)
    app = make_app(observer)
    async with app.run_test(size=SIZE) as pilot:
        observer.push_logs(sample_logs(100))
        await settle(pilot)
        feed = app.main.feed
        assert shown_levels(feed) == set(Level)

        await pilot.press("3")
        await settle(pilot)
        assert shown_levels(feed) == {Level.ERROR}
        assert "filter: ERROR" in str(feed.border_subtitle)

        await pilot.press("4")
        await settle(pilot)
        assert shown_levels(feed) == {Level.ERROR, Level.FATAL}

        await pilot.press("3", "4", "m", "m")
        await settle(pilot)
        assert feed.filter.min_level is Level.ERROR
        assert shown_levels(feed) == {Level.ERROR, Level.FATAL}

        observer.push_logs(
            [make_log(900, NOW, level=Level.INFO), make_log(901, NOW, level=Level.ERROR)]
        )
        await settle(pilot)
        assert feed.view.entries[-1].log_id == "log-000901"
        assert shown_levels(feed) == {Level.ERROR, Level.FATAL}


async def test_service_and_node_picker_completes_and_filters() -> None:
    observer = FakeObserver(nodes=sample_nodes(), clock=lambda: NOW)
    app = make_app(observer)
    async with app.run_test(size=SIZE) as pilot:
        observer.push_logs(sample_logs(80))
        await settle(pilot)
        feed = app.main.feed

        await pilot.press("s")
        prompt_input = feed.query_one(FilterPrompt).input
        assert prompt_input.has_focus
        await pilot.press(*"pay")
        await pilot.pause()
        await pilot.press("right")
        assert prompt_input.value == "payments"
        await pilot.press("comma", "space", *"orders-1")
        assert prompt_input.value == "payments, orders-1"
        await pilot.press("enter")
        await settle(pilot)

        assert feed.filter.services == {"payments"}
        assert feed.filter.nodes == {"orders-1"}
        assert len(feed.view.entries) == 0  # no payments log comes from orders-1
        assert feed.view.has_focus

        await pilot.press("s", "ctrl+u", *"payments", "enter")
        await settle(pilot)
        assert {log.service_name for log in feed.view.entries} == {"payments"}
        assert len(feed.view.entries) == sum(log.service_name == "payments" for log in feed.ring)


async def test_unknown_name_is_refused_in_the_prompt() -> None:
    observer = FakeObserver(nodes=sample_nodes(), clock=lambda: NOW)
    app = make_app(observer)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("s", *"nosuch", "enter")
        prompt = app.main.feed.query_one(FilterPrompt)
        assert prompt.has_class("-open")
        assert "unknown: nosuch" in str(prompt.query_one("#prompt-error", Label).render())
        assert app.main.feed.filter.services == frozenset()


async def test_text_filter_regex_and_inversion() -> None:
    observer = FakeObserver(clock=lambda: NOW)
    app = make_app(observer)
    async with app.run_test(size=SIZE) as pilot:
        observer.push_logs(sample_logs(60))
        await settle(pilot)
        feed = app.main.feed

        await pilot.press("slash", *"declined|crashed", "enter")
        await settle(pilot)
        assert feed.view.entries
        assert all(
            "declined" in log.message or "crashed" in log.message for log in feed.view.entries
        )

        await pilot.press("slash", "ctrl+u", *"!cache", "enter")
        await settle(pilot)
        assert feed.view.entries
        assert all("cache" not in log.message for log in feed.view.entries)
        assert "!/cache/" in str(feed.border_subtitle)

        await pilot.press("x")
        await settle(pilot)
        assert len(feed.view.entries) == 60


async def test_invalid_regex_shows_a_message_in_the_prompt_and_keeps_the_filter() -> None:
    observer = FakeObserver(clock=lambda: NOW)
    app = make_app(observer)
    async with app.run_test(size=SIZE) as pilot:
        observer.push_logs(sample_logs(20))
        await settle(pilot)
        feed = app.main.feed
        await pilot.press("slash", *"(unclosed")
        prompt = feed.query_one(FilterPrompt)
        error = prompt.query_one("#prompt-error", Label)
        assert "invalid regex" in str(error.render())
        assert prompt.input.has_class("-invalid")

        await pilot.press("enter")
        await pilot.pause()
        assert prompt.has_class("-open")
        assert feed.filter.pattern is None
        assert len(feed.view.entries) == 20

        await pilot.press("escape")
        await pilot.pause()
        assert not prompt.has_class("-open")
        assert feed.view.has_focus


async def test_filters_apply_to_entries_already_in_the_ring_and_to_new_ones() -> None:
    observer = FakeObserver(clock=lambda: NOW)
    app = make_app(observer)
    async with app.run_test(size=SIZE) as pilot:
        observer.push_logs([make_log(1, NOW, level=Level.ERROR, message="old error")])
        await settle(pilot)
        await pilot.press("3")
        observer.push_logs(
            [
                make_log(2, NOW, level=Level.INFO, message="new info"),
                make_log(3, NOW, level=Level.ERROR, message="new error"),
            ]
        )
        await settle(pilot)
        messages = [log.message for log in app.main.feed.view.entries]
        assert messages == ["old error", "new error"]


async def test_space_pauses_counts_new_lines_and_end_resumes() -> None:
    observer = FakeObserver(clock=lambda: NOW)
    app = make_app(observer)
    async with app.run_test(size=SIZE) as pilot:
        observer.push_logs(sample_logs(100))
        await settle(pilot)
        feed = app.main.feed
        view = feed.view

        await pilot.press("space")
        assert not view.follow
        top = view.scroll_offset.y
        # the paused bar took a row: the entry under the cursor, the newest, is still shown
        assert pane_lines(app, view)[-1].startswith("10:16:00.000")
        observer.push_logs(sample_logs(25, end=NOW + timedelta(minutes=2)))
        await settle(pilot)
        paused = feed.query_one("#paused", Static)
        assert paused.display
        assert "+25 new lines" in str(paused.render())
        assert view.scroll_offset.y == top
        assert "paused" in str(feed.border_title)

        await pilot.press("end")
        await pilot.pause()
        assert view.follow and view.unseen == 0
        assert not paused.display
        assert view.is_vertical_scroll_end


async def test_scrolling_up_pauses_and_moving_up_selects_older_entries() -> None:
    observer = FakeObserver(clock=lambda: NOW)
    app = make_app(observer)
    async with app.run_test(size=SIZE) as pilot:
        logs = sample_logs(100)
        observer.push_logs(logs)
        await settle(pilot)
        view = app.main.feed.view

        await pilot.press("up", "up", "up")
        assert not view.follow
        assert view.selected() == logs[-3]

        await pilot.press("space")
        assert view.follow
        view.post_message(MouseScrollUp(view, 5, 5, 0, -1, 0, False, False, False))
        await pilot.pause()
        assert not view.follow
        assert view.scroll_offset.y < view.max_scroll_y


async def test_paused_view_keeps_its_entry_when_old_ones_drop_out() -> None:
    observer = FakeObserver(clock=lambda: NOW)
    app = make_app(observer, capacity=100)
    async with app.run_test(size=SIZE) as pilot:
        logs = sample_logs(150)
        observer.push_logs(logs[:100])
        await settle(pilot)
        view = app.main.feed.view
        await pilot.press("up", "up")
        assert view.selected() is logs[98]
        observer.push_logs(logs[100:])
        await settle(pilot)
        assert len(view.entries) == 150  # a paused view keeps what the reader may read
        assert view.selected() is logs[98]
        assert app.main.feed.ring.dropped == 50
        assert "50 dropped" in str(app.main.feed.border_subtitle)


async def test_enter_opens_the_selected_entry_as_json() -> None:
    observer = FakeObserver(clock=lambda: NOW)
    app = make_app(observer)
    async with app.run_test(size=SIZE) as pilot:
        logs = sample_logs(20)
        observer.push_logs(logs)
        await settle(pilot)

        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, DetailScreen)
        assert json.loads(app.screen.text)["log_id"] == logs[-1].log_id
        await pilot.press("escape")

        await pilot.press("up", "up", "o")
        await pilot.pause()
        assert isinstance(app.screen, DetailScreen)
        document = json.loads(app.screen.text)
        assert document["log_id"] == logs[-2].log_id
        assert document["message_type"] == "LOG"
        assert set(document) >= {"node_id", "service_name", "timestamp", "log_level", "message"}


async def test_enter_on_a_node_filters_the_feed_to_it_and_again_shows_all() -> None:
    observer = FakeObserver(nodes=sample_nodes(), clock=lambda: NOW)
    app = make_app(observer)
    async with app.run_test(size=SIZE) as pilot:
        observer.push_logs(sample_logs(80))
        await settle(pilot)
        nodes = app.main.nodes
        nodes.focus()
        await pilot.press("down", "enter")
        await settle(pilot)
        chosen = nodes.feed_node
        assert chosen is not None
        assert {log.node_id for log in app.main.feed.view.entries} == {chosen}
        assert f"feed: {chosen}" in str(nodes.border_title)

        await pilot.press("enter")
        await settle(pilot)
        assert nodes.feed_node is None
        assert len(app.main.feed.view.entries) == 80


async def test_node_table_shows_down_first_ages_and_rates() -> None:
    observer = FakeObserver(nodes=sample_nodes(), clock=lambda: NOW)
    app = make_app(observer)
    async with app.run_test(size=SIZE) as pilot:
        observer.push_logs(
            [make_log(i, NOW, level=Level.ERROR, node_id="auth-0") for i in range(3)]
        )
        await settle(pilot)
        nodes = app.main.nodes
        first = nodes.get_row_at(0)
        assert first[0].plain == "orders-1" and "DOWN" in first[1].plain
        assert first[2].plain == "52s"
        row = nodes.get_row("auth-0")
        assert (row[3].plain, row[4].plain) == ("3", "3")
        assert "1 down" in str(nodes.border_title)


async def test_the_picker_input_is_an_input() -> None:
    observer = FakeObserver(clock=lambda: NOW)
    app = make_app(observer)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("slash")
        assert isinstance(app.focused, Input)
