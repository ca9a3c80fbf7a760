"""The feed's tools beyond filtering: going to a time, exporting, and remapped keys."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from console.app import LogdeckApp
from console.screens.help import KEY_NAMES, key_rows
from tests.console.fake_observer import NOW, FakeObserver, make_app, sample_logs, settle
from widgets.formatting import parse_time
from widgets.log_view import LogView
from widgets.prompt import FilterPrompt

SIZE = (120, 40)


async def test_t_pauses_at_the_first_entry_at_or_after_the_typed_time() -> None:
    observer = FakeObserver(clock=lambda: NOW)
    app = make_app(observer)
    async with app.run_test(size=SIZE) as pilot:
        logs = sample_logs(120)  # one every 2.5 s up to NOW (10:16:00)
        observer.push_logs(logs)
        await settle(pilot)
        view = app.main.feed.view
        await pilot.press("t")
        await pilot.press(*"10:12:31", "enter")
        await settle(pilot)
        chosen = view.selected()
        assert not view.follow
        assert chosen is not None and chosen.timestamp.startswith("2026-11-24T10:12:32.500")
        moment = parse_time(chosen.timestamp)
        earlier = [log for log in view.entries if (parse_time(log.timestamp) or moment) < moment]
        assert all(log.timestamp < "2026-11-24T10:12:31" for log in earlier)


async def test_a_time_after_every_entry_says_so_and_keeps_following() -> None:
    observer = FakeObserver(clock=lambda: NOW)
    app = make_app(observer)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        observer.push_logs(sample_logs(20))
        await settle(pilot)
        await pilot.press("t")
        await pilot.press(*"11:00", "enter")
        await settle(pilot)
        assert app.main.feed.view.follow
        assert any("no entry at or after 11:00:00" in n.message for n in app._notifications)


async def test_a_time_that_cannot_be_read_is_explained_in_the_prompt() -> None:
    observer = FakeObserver(clock=lambda: NOW)
    app = make_app(observer)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("t")
        await pilot.press(*"half past ten")
        await settle(pilot)
        prompt = app.main.feed.query_one(FilterPrompt)
        error = prompt.query_one("#prompt-error")
        assert error.display and "cannot read" in str(error.render())


def exported_records(folder: Path) -> list[dict[str, object]]:
    files = list(folder.glob("logdeck-feed-*.jsonl"))
    assert len(files) == 1, files
    return [json.loads(line) for line in files[0].read_text().splitlines()]


async def test_e_exports_the_entries_shown_as_json_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    observer = FakeObserver(clock=lambda: NOW)
    app = make_app(observer)
    async with app.run_test(size=SIZE) as pilot:
        logs = sample_logs(50)
        observer.push_logs(logs)
        await settle(pilot)
        await pilot.press("3")  # ERROR only
        await settle(pilot)
        shown = list(app.main.feed.view.entries)
        await pilot.press("e")
        await settle(pilot, "export")
    exported = exported_records(tmp_path)
    assert [record["log_id"] for record in exported] == [log.log_id for log in shown]
    assert shown and all(record["log_level"] == "ERROR" for record in exported)


async def test_a_keymap_moves_an_action_to_other_keys_and_the_help_shows_them() -> None:
    observer = FakeObserver(clock=lambda: NOW)
    app = LogdeckApp(observer, clock=observer.clock, keymap={"feed.pause": "p"})
    async with app.run_test(size=SIZE) as pilot:
        observer.push_logs(sample_logs(20))
        await settle(pilot)
        view = app.main.feed.view
        await pilot.press("space")
        await settle(pilot)
        assert view.follow
        await pilot.press("p")
        await settle(pilot)
        assert not view.follow


def test_the_help_lists_remapped_keys_in_place_of_the_defaults() -> None:
    rows = dict((text, keys) for keys, text in key_rows(LogView.BINDINGS, KEY_NAMES))
    assert rows["Pause or follow the live tail"] == "space"
    remapped = key_rows(LogView.BINDINGS, KEY_NAMES, {"feed.pause": "p,f9"})
    rows = dict((text, keys) for keys, text in remapped)
    assert rows["Pause or follow the live tail"] == "p f9"
    assert rows["Show the entry as JSON"] == "enter o"
