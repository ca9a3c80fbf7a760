"""Silencing the selected alert (z) and the list of silences (S), typed as a person types."""

from __future__ import annotations

import getpass
from datetime import timedelta

from textual.widgets import DataTable, Input, Static

from backend.schemas import Matcher, MatcherName, iso_millis
from backend.silences.parsing import format_matcher, new_silence
from console.app import LogdeckApp
from console.screens.silence import SilenceScreen
from console.screens.silences import SilencesScreen
from tests.console.fake_observer import NOW, Notices, make_app, sample_observer, settle
from tests.console.test_alerts import focus_alerts

SIZE = (100, 30)


def dialog(app: LogdeckApp) -> SilenceScreen:
    assert isinstance(app.screen, SilenceScreen), app.screen
    return app.screen


def on_main(app: LogdeckApp) -> bool:
    return app.screen is app.main


def text_of(screen: SilenceScreen | SilencesScreen, selector: str) -> str:
    return str(screen.query_one(selector, Static).render())


def rows(screen: SilencesScreen) -> list[tuple[str, ...]]:
    table: DataTable[str] = screen.query_one("#silences-table", DataTable)
    return [tuple(table.get_row_at(row)) for row in range(table.row_count)]


async def test_z_silences_the_selected_alert_from_its_own_matchers() -> None:
    observer = sample_observer()
    app = make_app(observer)
    async with app.run_test(size=SIZE) as pilot:
        await focus_alerts(pilot, app)
        await pilot.press("z")  # the NODE_DOWN of orders-1, first by severity
        screen = dialog(app)
        assert screen.query_one("#silence-matchers", Input).value == "rule=NODE_DOWN node=orders-1"
        assert screen.query_one("#silence-duration", Input).value == "2h"
        assert "covers 1 of the 4 alerts listed" in text_of(screen, "#silence-preview")
        await pilot.press(*"rebooting orders-1", "enter")
        await settle(pilot, "alert-actions")
        assert on_main(app)

    [silence] = observer.silence_state.values()
    user = getpass.getuser()
    assert observer.calls == [("add_silence", silence.silence_id, user)]
    assert [format_matcher(m) for m in silence.matchers] == ["rule=NODE_DOWN", "node=orders-1"]
    assert (silence.comment, silence.created_by, silence.maintenance) == (
        "rebooting orders-1",
        user,
        False,
    )
    assert (silence.starts_at, silence.ends_at) == (
        iso_millis(NOW),
        iso_millis(NOW + timedelta(hours=2)),
    )


async def test_the_preview_follows_the_matchers_and_mistakes_keep_the_dialog_open() -> None:
    observer = sample_observer()
    app = make_app(observer)
    async with app.run_test(size=SIZE) as pilot:
        await focus_alerts(pilot, app)
        await pilot.press("z")
        screen = dialog(app)
        matchers = screen.query_one("#silence-matchers", Input)
        matchers.value = "service=~orders|payments"
        await pilot.pause()
        preview = text_of(screen, "#silence-preview")
        assert "covers 3 of the 4 alerts listed" in preview
        assert "payments: 14 ERROR in 1 min (PAY-502)" in preview
        assert "auth" not in preview

        matchers.value = "host=orders-1"
        await pilot.pause()
        assert "unknown name 'host'" in text_of(screen, "#silence-error")
        await pilot.press(*"why", "enter")
        assert app.screen is screen  # nothing added from a matcher that is wrong
        matchers.value = "node=orders-1"
        screen.query_one("#silence-duration", Input).value = "soon"
        await pilot.press("enter")
        assert "'soon' is not a duration" in text_of(screen, "#silence-error")
        assert app.screen is screen
        await pilot.press("escape")
        assert on_main(app)
    assert observer.calls == []


async def test_the_list_shows_silences_in_force_first_and_x_expires_one() -> None:
    node = Matcher(name=MatcherName.NODE, value="orders-1")
    service = Matcher(name=MatcherName.SERVICE, value="payments")
    ended = new_silence(
        [service], timedelta(minutes=5), comment="deploy", by="bo", now=NOW - timedelta(hours=1)
    )
    window = new_silence(
        [node], timedelta(minutes=30), comment="disk swap", by="ana", now=NOW, maintenance=True
    )
    observer = sample_observer()
    for silence in (ended, window):
        observer.silence_state[silence.silence_id] = silence
    app = make_app(observer)
    notices = Notices()
    async with app.run_test(size=SIZE, message_hook=notices) as pilot:
        await settle(pilot)
        await pilot.press("S")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, SilencesScreen)
        assert [row[0] for row in rows(screen)] == ["active MAINT", "expired"]
        assert rows(screen)[0][2:] == ("ana", "node=orders-1", "disk swap")

        await pilot.press("x")
        await settle(pilot, "silence-actions")
        assert observer.calls == [("expire_silence", window.silence_id, "")]
        assert [row[0] for row in rows(screen)] == ["expired MAINT", "expired"]
        await pilot.press("x")
        await pilot.pause()
        assert notices.mention("that silence has already ended")
        assert len(observer.calls) == 1
        await pilot.press("escape")
        assert on_main(app)


async def test_read_only_silences_nothing() -> None:
    observer = sample_observer()
    window = new_silence(
        [Matcher(name=MatcherName.NODE, value="orders-1")],
        timedelta(minutes=30),
        comment="disk swap",
        by="ana",
        now=NOW,
    )
    observer.silence_state[window.silence_id] = window
    app = make_app(observer, read_only=True)
    notices = Notices()
    async with app.run_test(size=SIZE, message_hook=notices) as pilot:
        await focus_alerts(pilot, app)
        await pilot.press("z")
        await pilot.pause()
        assert on_main(app)
        assert notices.mention("read-only: silences cannot be added")
        await pilot.press("S")
        await settle(pilot)
        await pilot.press("x")
        await pilot.pause()
        assert notices.mention("read-only: silences cannot be changed")
    assert observer.calls == []


async def test_m_puts_the_highlighted_node_in_maintenance() -> None:
    observer = sample_observer()
    app = make_app(observer)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        nodes = app.main.nodes
        nodes.focus()
        await pilot.pause()
        node = nodes.coordinate_to_cell_key(nodes.cursor_coordinate).row_key.value
        assert node is not None
        await pilot.press("M")
        screen = dialog(app)
        matchers = screen.query_one("#silence-matchers", Input)
        assert (matchers.value, matchers.disabled) == (f"node={node}", True)
        assert screen.query_one("#silence-comment", Input).value == "maintenance"
        screen.query_one("#silence-duration", Input).value = "30m"
        await pilot.press("enter")
        await settle(pilot, "alert-actions")
        assert on_main(app)

    [window] = observer.silence_state.values()
    assert window.maintenance
    assert [format_matcher(m) for m in window.matchers] == [f"node={node}"]
    assert window.ends_at == iso_millis(NOW + timedelta(minutes=30))
