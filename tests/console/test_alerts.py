"""The alert queue: order, acknowledge/un-acknowledge/resolve, hiding acked, new CRITICAL."""

from __future__ import annotations

import getpass

import pytest
from textual.pilot import Pilot
from textual.widgets import Footer, Static

from backend.schemas import AlertState, Severity
from console.app import LogdeckApp
from tests.console.fake_observer import (
    NOW,
    FakeObserver,
    Notices,
    make_alert,
    make_app,
    sample_alerts,
    settle,
)
from widgets.health_bar import HealthBar

SIZE = (120, 40)


def observer_with_alerts() -> FakeObserver:
    return FakeObserver(alerts=sample_alerts(), clock=lambda: NOW)


def row_ids(app: LogdeckApp) -> list[str]:
    table = app.main.alerts
    return [
        str(table.coordinate_to_cell_key((row, 0)).row_key.value) for row in range(table.row_count)
    ]


async def focus_alerts(pilot: Pilot[None], app: LogdeckApp) -> None:
    await settle(pilot)
    app.main.alerts.focus()
    await pilot.pause()


async def test_alerts_are_ordered_by_severity_then_recency() -> None:
    observer = observer_with_alerts()
    app = make_app(observer)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert row_ids(app) == ["a-node-down", "a-pay-errors", "a-auth", "a-slow"]
        observer.push_alerts(
            [make_alert("a-new", Severity.WARNING, summary="newer warning", service_name="auth")]
        )
        await settle(pilot)
        assert row_ids(app) == ["a-node-down", "a-pay-errors", "a-new", "a-auth", "a-slow"]
        assert "1 CRITICAL" in str(app.main.alerts.border_title)


async def test_acknowledge_then_unacknowledge_goes_through_the_observer() -> None:
    observer = observer_with_alerts()
    app = make_app(observer)
    async with app.run_test(size=SIZE) as pilot:
        await focus_alerts(pilot, app)
        await pilot.press("a")
        await settle(pilot, "alert-actions")
        user = getpass.getuser()
        assert observer.calls == [("acknowledge", "a-node-down", user)]
        alert = observer.alert_state["a-node-down"]
        assert alert.state is AlertState.ACKED and alert.acked_by == user
        assert app.main.alerts.alerts["a-node-down"].state is AlertState.ACKED
        assert app.main.alerts.get_row("a-node-down")[1].plain == "ACKED"
        assert "CRITICAL" not in str(app.main.alerts.border_title)

        await pilot.press("u")
        await settle(pilot, "alert-actions")
        assert observer.calls[-1] == ("unacknowledge", "a-node-down", user)
        assert observer.alert_state["a-node-down"].state is AlertState.OPEN
        assert app.main.alerts.get_row("a-node-down")[1].plain == "OPEN"


async def test_resolve_removes_the_alert_from_the_queue() -> None:
    observer = observer_with_alerts()
    app = make_app(observer)
    async with app.run_test(size=SIZE) as pilot:
        await focus_alerts(pilot, app)
        await pilot.press("down", "r")
        await settle(pilot, "alert-actions")
        assert observer.calls[-1][:2] == ("resolve", "a-pay-errors")
        assert observer.alert_state["a-pay-errors"].state is AlertState.RESOLVED
        assert "a-pay-errors" not in row_ids(app)
        assert len(row_ids(app)) == 3


async def test_h_hides_and_shows_acknowledged_alerts() -> None:
    observer = observer_with_alerts()
    app = make_app(observer)
    async with app.run_test(size=SIZE) as pilot:
        await focus_alerts(pilot, app)
        assert "a-slow" in row_ids(app)
        await pilot.press("h")
        await pilot.pause()
        assert "a-slow" not in row_ids(app)
        assert "acked hidden" in str(app.main.alerts.border_title)

        await pilot.press("a")  # acknowledging the top alert hides it too
        await settle(pilot, "alert-actions")
        assert "a-node-down" not in row_ids(app)

        await pilot.press("h")
        await pilot.pause()
        assert {"a-slow", "a-node-down"} <= set(row_ids(app))


async def test_read_only_refuses_to_change_alerts() -> None:
    observer = observer_with_alerts()
    app = make_app(observer, read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        await focus_alerts(pilot, app)
        await pilot.press("a", "r", "u", "A", "n")
        await settle(pilot, "alert-actions")
        assert observer.calls == []
        assert app.screen is app.main  # no note asked for


def footer_offers(app: LogdeckApp) -> set[str]:
    """What the footer's keys say, as drawn: `a Ack` gives `Ack`."""
    keys = app.screen.query_one(Footer).query("FooterKey")
    return {str(key.render()).strip().partition(" ")[2].strip() for key in keys}


@pytest.mark.parametrize("read_only", [False, True], ids=["read-write", "read-only"])
async def test_a_read_only_console_says_so_and_offers_no_alert_changes(read_only: bool) -> None:
    observer = observer_with_alerts()
    app = make_app(observer, read_only=read_only)
    async with app.run_test(size=(80, 24)) as pilot:
        await focus_alerts(pilot, app)
        changes = {"Ack", "Un-ack", "Resolve"}
        assert "Hide acked" in footer_offers(app)
        assert (changes & footer_offers(app)) == (set() if read_only else changes)

        mode = app.screen.query_one(HealthBar).query_one("#mode", Static)
        assert mode.display == read_only
        if read_only:
            assert str(mode.render()) == "read-only"
            assert app.screen.region.contains_region(mode.region)
            assert mode.region.width == len("read-only") + 2


async def test_a_failing_action_is_a_notification_not_a_crash() -> None:
    observer = observer_with_alerts()

    async def refuse(alert_id: str, by: str) -> None:
        raise ConnectionError("bus unreachable")

    observer.acknowledge = refuse  # type: ignore[method-assign]
    app = make_app(observer)
    notices = Notices()
    async with app.run_test(size=SIZE, message_hook=notices) as pilot:
        await focus_alerts(pilot, app)
        await pilot.press("a")
        await settle(pilot, "alert-actions")
        assert notices.mention("bus unreachable")
        assert app.main.alerts.alerts["a-node-down"].state is AlertState.OPEN


async def test_a_new_critical_alert_rings_notifies_and_badges(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    observer = observer_with_alerts()
    app = make_app(observer)
    bells: list[None] = []
    monkeypatch.setattr(app, "bell", lambda: bells.append(None))
    notices = Notices()
    async with app.run_test(size=SIZE, message_hook=notices) as pilot:
        await settle(pilot)
        assert bells == []  # the alerts found on connecting ring no bell
        observer.push_alerts(
            [
                make_alert(
                    "a-fatal",
                    Severity.CRITICAL,
                    summary="payments: FATAL worker crashed",
                    service_name="payments",
                )
            ]
        )
        await settle(pilot)
        assert bells == [None]
        assert "2 CRITICAL" in str(app.main.alerts.border_title)
        assert app.main.alerts.has_class("-critical")
        assert notices.mention("FATAL worker crashed")

        observer.push_alerts([observer.alert_state["a-fatal"]])  # a change, not a new alert
        await settle(pilot)
        assert bells == [None]
