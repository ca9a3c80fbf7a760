"""`s` on an entry shows the logs around it: its node's, from the store, oldest first."""

from __future__ import annotations

from datetime import datetime, timedelta

from textual.widgets import DataTable

from console.app import LogdeckApp
from console.screens.context import ContextScreen
from tests.console.fake_observer import burst, make_app, sample_logs, sample_observer, settle


def context_of(app: LogdeckApp) -> ContextScreen:
    screen = app.screen
    assert isinstance(screen, ContextScreen), type(screen).__name__
    return screen


async def test_the_logs_around_an_entry_are_its_nodes_within_the_window() -> None:
    observer = sample_observer(stored_logs=False)
    app = make_app(observer)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        observer.push_logs(sample_logs())
        await settle(pilot)
        await burst(pilot, "up", "up", "up", "enter", "s")
        await settle(pilot, "context")
        chosen = app.main.feed.view.selected()
        assert chosen is not None
        screen = context_of(app)
        logs = screen.logs
        at = datetime.fromisoformat(chosen.timestamp)
        assert chosen in logs
        assert {log.node_id for log in logs} == {chosen.node_id}
        assert [log.timestamp for log in logs] == sorted(log.timestamp for log in logs)
        assert all(
            abs(datetime.fromisoformat(log.timestamp) - at) <= timedelta(seconds=30) for log in logs
        )
        narrow = len(logs)
        assert screen.query_one("#context-logs", DataTable).cursor_row == logs.index(chosen)

        await burst(pilot, "plus", "plus")
        await settle(pilot, "context")
        assert len(screen.logs) > narrow
        assert chosen in screen.logs
        await burst(pilot, "escape")
        assert not isinstance(app.screen, ContextScreen)
