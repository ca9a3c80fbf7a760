"""Alerts that notify nobody stay listed, dimmed, saying why; nodes in maintenance say so."""

from __future__ import annotations

from datetime import timedelta

from backend.schemas import AlertKind, Matcher, MatcherName, Severity
from backend.silences.parsing import new_silence
from console.app import LogdeckApp
from tests.console.fake_observer import NOW, make_alert, make_app, sample_observer, settle

SIZE = (120, 40)


def state_of(app: LogdeckApp, alert_id: str) -> str:
    return app.main.alerts.get_row(alert_id)[1].plain


def status_of(app: LogdeckApp, node: str) -> str:
    return app.main.nodes.get_row(node)[1].plain


async def test_a_silenced_alert_is_listed_as_muted_until_its_silence_ends() -> None:
    observer = sample_observer()
    app = make_app(observer)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert state_of(app, "a-pay-errors") == "OPEN"
        matcher = Matcher(name=MatcherName.SERVICE, value="payments")
        hushed = new_silence([matcher], timedelta(hours=1), comment="deploy", by="bob", now=NOW)
        await observer.add_silence(hushed)
        await settle(pilot)
        assert state_of(app, "a-pay-errors") == "MUTED"
        assert state_of(app, "a-auth") != "MUTED"
        await observer.expire_silence(hushed.silence_id)
        await settle(pilot)
        assert state_of(app, "a-pay-errors") == "OPEN"


async def test_a_node_in_maintenance_shows_maint_and_so_do_its_alerts() -> None:
    observer = sample_observer()
    app = make_app(observer)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert state_of(app, "a-node-down") == "OPEN"
        matcher = Matcher(name=MatcherName.NODE, value="orders-1")
        window = new_silence(
            [matcher], timedelta(hours=1), comment="disk", by="bob", now=NOW, maintenance=True
        )
        await observer.add_silence(window)
        await settle(pilot)
        assert status_of(app, "orders-1") == "◌MAINT"
        assert state_of(app, "a-node-down") == "MAINT"
        assert status_of(app, "payments-0") != "◌MAINT"


async def test_the_alerts_of_a_node_that_is_down_are_inhibited_not_its_node_down() -> None:
    observer = sample_observer()
    app = make_app(observer)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        observer.push_alerts(
            [
                make_alert(
                    "a-orders-1-errors",
                    Severity.ERROR,
                    kind=AlertKind.LOG_LEVEL,
                    node_id="orders-1",
                    service_name="orders",
                    summary="ORD-500: cannot reach the database",
                )
            ]
        )
        await settle(pilot)
        assert state_of(app, "a-orders-1-errors") == "INHIB"
        assert state_of(app, "a-node-down") == "OPEN"  # the NODE_DOWN itself still pages


async def test_a_node_with_an_open_flapping_alert_shows_flap_until_it_is_resolved() -> None:
    observer = sample_observer()
    app = make_app(observer)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        flapping = make_alert(
            "a-flap",
            Severity.ERROR,
            kind=AlertKind.FLAPPING,
            node_id="payments-0",
            service_name="payments",
            summary="node payments-0 is flapping: down 4 times within 300 s",
        )
        observer.push_alerts([flapping])
        await settle(pilot)
        assert status_of(app, "payments-0") == "≈FLAP"
        await observer.resolve(flapping, "alice")
        await settle(pilot)
        assert status_of(app, "payments-0") != "≈FLAP"
