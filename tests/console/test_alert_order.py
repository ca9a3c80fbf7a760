"""The alert queue's order: open before acknowledged, most severe first, then newest
first_seen; a repeat never moves a row, and the cursor stays on its alert."""

from __future__ import annotations

from datetime import timedelta

import msgspec
from textual.coordinate import Coordinate

from backend.schemas import Alert, AlertKind, Severity, iso_millis
from console.app import LogdeckApp
from tests.console.fake_observer import NOW, FakeObserver, make_alert, make_app, settle

SIZE = (120, 40)


def noisy_world() -> FakeObserver:
    """A NODE_DOWN, then the FATAL, ERROR and WARNING alerts that keep repeating after it."""
    alerts = [
        make_alert(
            "a-node-down",
            Severity.CRITICAL,
            kind=AlertKind.NODE_DOWN,
            node_id="orders-1",
            summary="orders-1 missed 3 heartbeats",
            last_seen=NOW - timedelta(minutes=5),
        ),
        make_alert(
            "a-fatal",
            Severity.CRITICAL,
            service_name="orders",
            summary="orders: FATAL worker crashed",
            last_seen=NOW - timedelta(minutes=1),
            count=3,
        ),
        make_alert(
            "a-pay",
            Severity.ERROR,
            service_name="payments",
            summary="payments: ERROR (PAY-502)",
            last_seen=NOW - timedelta(seconds=30),
            count=4,
        ),
        make_alert(
            "a-db",
            Severity.ERROR,
            service_name="orders",
            summary="orders: ERROR (DB-1205)",
            last_seen=NOW - timedelta(seconds=20),
            count=2,
        ),
        make_alert(
            "a-slow",
            Severity.WARNING,
            kind=AlertKind.THRESHOLD,
            service_name="orders",
            summary="orders p95 1840 ms > 1000 ms",
            last_seen=NOW - timedelta(seconds=10),
            count=6,
        ),
    ]
    return FakeObserver(alerts=alerts, clock=lambda: NOW)


def row_ids(app: LogdeckApp) -> list[str]:
    table = app.main.alerts
    return [
        str(table.coordinate_to_cell_key(Coordinate(row, 0)).row_key.value)
        for row in range(table.row_count)
    ]


def cursor_id(app: LogdeckApp) -> str | None:
    alert = app.main.alerts.selected_alert()
    return None if alert is None else alert.alert_id


def repeat(observer: FakeObserver, alert_id: str, seconds: int) -> Alert:
    """The alert once more: only its count and last_seen change, as the alerter folds it."""
    old = observer.alert_state[alert_id]
    return msgspec.structs.replace(
        old,
        count=old.count + 1,
        last_seen=iso_millis(NOW + timedelta(seconds=seconds)),
    )


async def test_repeats_move_no_row_and_node_down_stays_on_top() -> None:
    observer = noisy_world()
    app = make_app(observer)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        before = row_ids(app)
        assert before == ["a-node-down", "a-fatal", "a-db", "a-pay", "a-slow"]
        for second in range(6):
            for alert_id in ("a-slow", "a-fatal", "a-pay", "a-slow"):
                observer.push_alerts([repeat(observer, alert_id, second)])
            await settle(pilot)
            assert row_ids(app) == before
        assert observer.alert_state["a-slow"].count == 18
        assert app.main.alerts.get_row("a-slow")[3].plain == "18"


async def test_the_cursor_stays_on_its_alert_focused_or_not() -> None:
    observer = noisy_world()
    app = make_app(observer)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.main.alerts.focus()
        await pilot.press("down", "down", "down")
        assert cursor_id(app) == "a-pay"
        for focused in (True, False):
            if not focused:
                app.main.feed.view.focus()
                await pilot.pause()
            observer.push_alerts([repeat(observer, "a-pay", 1), repeat(observer, "a-slow", 1)])
            await settle(pilot)
            assert cursor_id(app) == "a-pay"
            fresh = make_alert(
                f"a-new-{focused}",
                Severity.ERROR,
                service_name="auth",
                summary="auth: ERROR",
                last_seen=NOW + timedelta(seconds=5),
            )
            observer.push_alerts([fresh])  # sorts above the cursor's row
            await settle(pilot)
            assert row_ids(app).index(fresh.alert_id) < row_ids(app).index("a-pay")
            assert cursor_id(app) == "a-pay"


async def test_an_acknowledged_alert_goes_below_the_open_ones() -> None:
    observer = noisy_world()
    app = make_app(observer)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.main.alerts.focus()
        await pilot.press("a")  # the NODE_DOWN on top
        await settle(pilot, "alert-actions")
        assert row_ids(app) == ["a-fatal", "a-db", "a-pay", "a-slow", "a-node-down"]
        assert cursor_id(app) == "a-node-down"

        await pilot.press("u")
        await settle(pilot, "alert-actions")
        assert row_ids(app) == ["a-node-down", "a-fatal", "a-db", "a-pay", "a-slow"]
        assert cursor_id(app) == "a-node-down"
