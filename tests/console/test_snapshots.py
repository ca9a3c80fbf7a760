"""Snapshots of the main, search and help screens at 80x24 and 160x48.

Fixed data with fixed timestamps, a frozen clock and no cursor blink make them stable.
Regenerate with `pytest tests/console/test_snapshots.py --snapshot-update`, look at the
SVGs, and copy them to docs/screenshots/ for the README.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from tests.console.fake_observer import FakeObserver, make_app, sample_logs, sample_observer, settle

SnapCompare = Callable[..., bool]
SIZES = [(80, 24), (160, 48)]


def live(
    observer: FakeObserver, *keys: str, keys_first: bool = False
) -> Callable[[Pilot[None]], object]:
    """Feed the fixed logs through the live feed and press `keys` (before, if `keys_first`:
    a modal screen then shows the tables as they draw under it, not a stale first draw)."""

    async def run_before(pilot: Pilot[None]) -> None:
        await observer.subscribed("logs")
        if keys_first:
            await pilot.press(*keys)
        observer.push_logs(sample_logs())
        await settle(pilot)
        if keys and not keys_first:
            await pilot.press(*keys)
            await settle(pilot, "search")
        for field in pilot.app.screen.query(Input):
            field.cursor_blink = False
        await pilot.pause()

    return run_before


@pytest.mark.parametrize("size", SIZES, ids=lambda size: f"{size[0]}x{size[1]}")
def test_main_screen(snap_compare: SnapCompare, size: tuple[int, int]) -> None:
    observer = sample_observer(stored_logs=False)
    assert snap_compare(make_app(observer), terminal_size=size, run_before=live(observer))


@pytest.mark.parametrize("size", SIZES, ids=lambda size: f"{size[0]}x{size[1]}")
def test_search_screen(snap_compare: SnapCompare, size: tuple[int, int]) -> None:
    observer = sample_observer(stored_logs=False)
    assert snap_compare(make_app(observer), terminal_size=size, run_before=live(observer, "f2"))


def test_help_screen(snap_compare: SnapCompare) -> None:
    observer = sample_observer(stored_logs=False)
    assert snap_compare(
        make_app(observer),
        terminal_size=(160, 48),
        run_before=live(observer, "question_mark", keys_first=True),
    )


def test_feed_investigation(snap_compare: SnapCompare) -> None:
    """A field filter as a chip, a highlight, and the cursor on the newest marked entry."""
    observer = sample_observer(stored_logs=False)
    keys = ("slash", *"service:pay*", "enter", "h", *"timeout", "enter", "N")
    assert snap_compare(
        make_app(observer), terminal_size=(160, 48), run_before=live(observer, *keys)
    )
