"""An alert in full (Enter), notes, and acknowledging with a note, typed as a person types."""

from __future__ import annotations

import getpass

from textual.widgets import DataTable, Static

from backend.schemas import AlertEventKind, AlertKind, AlertState, Level
from console.app import LogdeckApp
from console.screens.alert_detail import AlertDetailScreen, alert_logs_query
from console.screens.note import NoteScreen
from tests.console.fake_observer import (
    Notices,
    make_app,
    sample_alerts,
    sample_observer,
    settle,
)
from tests.console.test_alerts import focus_alerts

SIZE = (80, 24)


def detail(app: LogdeckApp) -> AlertDetailScreen:
    assert isinstance(app.screen, AlertDetailScreen), app.screen
    return app.screen


def history_rows(screen: AlertDetailScreen) -> list[tuple[str, ...]]:
    table = screen.query_one("#alert-history", DataTable)
    return [tuple(cell.plain for cell in table.get_row_at(row)) for row in range(table.row_count)]


async def test_enter_opens_the_alert_with_its_fields_and_latest_logs_from_the_store() -> None:
    observer = sample_observer()
    app = make_app(observer)
    async with app.run_test(size=SIZE) as pilot:
        await focus_alerts(pilot, app)
        await pilot.press("down", "enter")  # the payments alert, second by severity
        await settle(pilot, "alert-logs")
        fields = str(detail(app).query_one("#alert-fields", Static).render())
        assert "payments: 14 ERROR in 1 min (PAY-502)" in fields
        assert observer.queries[-1] == alert_logs_query(detail(app).alert)
        await pilot.press("escape", "up", "enter")  # the NODE_DOWN: what its node logged
        await settle(pilot, "alert-logs")
        screen = detail(app)
        assert screen.alert.alert_id == "a-node-down"
        logs = screen.query_one("#alert-logs", DataTable)
        assert logs.row_count > 0
        assert {logs.get_row_at(row)[2].plain for row in range(logs.row_count)} == {"orders-1"}
        assert "matching logs in the store" in str(
            screen.query_one("#alert-logs-status", Static).render()
        )
        await pilot.press("escape")
        assert app.screen is app.main


async def test_a_note_typed_in_one_burst_is_added_and_shown_in_the_history() -> None:
    observer = sample_observer()
    app = make_app(observer)
    async with app.run_test(size=SIZE) as pilot:
        await focus_alerts(pilot, app)
        await pilot.press("enter", "n", *"restarted orders-1", "enter")
        await settle(pilot, "alert-actions")
        await settle(pilot)
        user = getpass.getuser()
        assert observer.calls == [("annotate", "a-node-down", user)]
        screen = detail(app)
        assert history_rows(screen)[0][1:] == ("NOTE", user, "restarted orders-1")
        assert screen.alert.state is AlertState.OPEN


async def test_ack_with_a_note_from_the_queue_and_escape_cancels_without_a_call() -> None:
    observer = sample_observer()
    app = make_app(observer)
    notices = Notices()
    async with app.run_test(size=SIZE, message_hook=notices) as pilot:
        await focus_alerts(pilot, app)
        await pilot.press("A", *"looking", "escape")
        await settle(pilot, "alert-actions")
        assert observer.calls == []
        assert app.screen is app.main

        await pilot.press("A", *"on it, db failover", "enter")
        await settle(pilot, "alert-actions")
        alert = observer.alert_state["a-node-down"]
        assert alert.state is AlertState.ACKED
        assert [(e.event, e.note) for e in alert.history] == [
            (AlertEventKind.ACKED, "on it, db failover")
        ]
        assert notices.mention("Acknowledged")


async def test_a_read_only_console_offers_no_note_in_the_alert() -> None:
    observer = sample_observer()
    app = make_app(observer, read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        await focus_alerts(pilot, app)
        await pilot.press("enter")
        await settle(pilot)
        screen = detail(app)
        assert not screen.check_action("act", ("annotate",))
        await pilot.press("n")
        await pilot.pause()
        assert not isinstance(app.screen, NoteScreen)
        assert observer.calls == []


async def test_show_in_feed_filters_the_live_feed_to_the_alert_and_closes() -> None:
    observer = sample_observer()
    app = make_app(observer)
    async with app.run_test(size=SIZE) as pilot:
        await focus_alerts(pilot, app)
        await pilot.press("enter", "f")
        await pilot.pause()
        assert app.screen is app.main
        feed_filter = app.main.feed.filter
        assert (feed_filter.services, feed_filter.nodes) == (
            frozenset({"orders"}),
            frozenset({"orders-1"}),
        )


def test_the_logs_of_an_alert_are_those_of_its_code_service_and_node() -> None:
    by_id = {alert.alert_id: alert for alert in sample_alerts()}
    errors = alert_logs_query(by_id["a-pay-errors"])
    assert (errors.services, errors.nodes) == (frozenset({"payments"}), frozenset())
    assert errors.text == '"a-pay-errors"'  # the code a LOG_LEVEL fingerprint ends with
    down = alert_logs_query(by_id["a-node-down"])
    assert by_id["a-node-down"].kind is AlertKind.NODE_DOWN
    assert (down.nodes, down.services, down.text) == (frozenset({"orders-1"}), frozenset(), "")
    slow = alert_logs_query(by_id["a-slow"])
    assert slow.levels == frozenset({Level.WARN})
