"""Small terminals: what the panes show at 80x24 and 120x30, and maximising a pane.

The assertions read the characters on screen, so a column that is scrolled or clipped
away counts as missing.
"""

from __future__ import annotations

import re

from textual.geometry import Region
from textual.pilot import Pilot

from tests.console.fake_observer import (
    FakeObserver,
    make_app,
    pane_lines,
    sample_logs,
    sample_observer,
    screen_lines,
    settle,
)
from widgets.alert_queue import AlertQueue
from widgets.log_feed import LogFeed

ALERT_ROWS = {
    # severity, state, the summary's start, count, node or service, last seen
    "a-node-down": ("CRIT", "OPEN", "orders-1 missed", "1", "orders-1", "10:15:15"),
    "a-pay-errors": ("ERR", "OPEN", "payments: 14", "14", "payments", "10:15:40"),
    "a-auth": ("WARN", "OPEN", "auth: burst", "3", "auth", "10:15:00"),
    "a-slow": ("WARN", "ACKED", "orders p95", "6", "orders", "10:13:00"),
}
NEWEST_LOG = re.compile(r"10:16:00(\.000)? +INFO +auth-0 +auth +order accepted")
"""The last of `sample_logs()`: time, level, node, service and message in their columns."""


async def start(observer: FakeObserver, pilot: Pilot[None]) -> None:
    """The fixed logs through the live feed, on screen."""
    await observer.subscribed("logs")
    observer.push_logs(sample_logs())
    await settle(pilot)


def alert_row(lines: list[str], severity: str, summary: str) -> str:
    rows = [line for line in lines if line.lstrip().startswith(severity) and summary in line]
    assert len(rows) == 1, (severity, summary, lines)
    return rows[0]


async def test_at_80x24_alerts_show_severity_state_summary_and_count() -> None:
    observer = sample_observer(stored_logs=False)
    app = make_app(observer)
    async with app.run_test(size=(80, 24)) as pilot:
        await start(observer, pilot)
        lines = pane_lines(app, app.main.alerts)
        assert re.match(r"\s*Sev\s+State\s+Summary\s+#\s*$", lines[0]), lines[0]
        for severity, state, summary, count, _, _ in ALERT_ROWS.values():
            row = alert_row(lines, severity, summary)
            assert re.match(rf"\s*{severity}\s+{state}\s+{re.escape(summary)}.*\s{count}\s*$", row)


async def test_at_80x24_the_feed_shows_time_level_node_service_and_message() -> None:
    observer = sample_observer(stored_logs=False)
    app = make_app(observer)
    async with app.run_test(size=(80, 24)) as pilot:
        await start(observer, pilot)
        lines = pane_lines(app, app.main.feed.view)
        assert NEWEST_LOG.match(lines[-1]), lines[-1]
        assert any("payments-2 payments payment declined" in line for line in lines), lines


async def test_at_120x30_alerts_show_count_node_and_last_seen_too() -> None:
    observer = sample_observer(stored_logs=False)
    app = make_app(observer)
    async with app.run_test(size=(120, 30)) as pilot:
        await start(observer, pilot)
        lines = pane_lines(app, app.main.alerts)
        assert re.match(r"\s*Sev\s+State\s+Summary\s+#\s+Where\s+Last\s*$", lines[0]), lines[0]
        for severity, state, summary, count, where, last in ALERT_ROWS.values():
            row = alert_row(lines, severity, summary)
            pattern = (
                rf"\s*{severity}\s+{state}\s+{re.escape(summary)}.*\s{count}\s+{where}\s+{last}"
            )
            assert re.match(pattern, row), row
        feed = pane_lines(app, app.main.feed.view)
        assert NEWEST_LOG.match(feed[-1]) and "10:16:00.000" in feed[-1], feed[-1]


async def test_plus_maximises_the_focused_pane_and_restores_it_at_80x24() -> None:
    observer = sample_observer(stored_logs=False)
    app = make_app(observer)
    async with app.run_test(size=(80, 24)) as pilot:
        await start(observer, pilot)
        feed = app.main.feed
        before = feed.region
        whole = Region(0, 1, 80, 22)  # under the header, above the key footer

        await pilot.press("plus")
        assert app.screen.maximized is feed
        assert feed.region == whole
        assert not any("Nodes 8" in line or "Alerts 4" in line for line in screen_lines(app))
        assert NEWEST_LOG.match(pane_lines(app, feed.view)[-1])

        await pilot.press("slash", "escape")  # Escape closes the prompt, the pane stays
        assert app.screen.maximized is feed

        await pilot.press("plus")
        assert app.screen.maximized is None
        assert feed.region == before
        assert any("Nodes 8" in line and "Alerts 4" in line for line in screen_lines(app))
        assert NEWEST_LOG.match(pane_lines(app, feed.view)[-1])  # still following the end


async def test_a_maximised_alert_pane_shows_every_column_and_escape_restores_it() -> None:
    observer = sample_observer(stored_logs=False)
    app = make_app(observer)
    async with app.run_test(size=(80, 24)) as pilot:
        await start(observer, pilot)
        alerts = app.main.query_one(AlertQueue)
        alerts.focus()
        await pilot.press("plus")
        await pilot.pause()
        assert app.screen.maximized is alerts
        assert alerts.region == Region(0, 1, 80, 22)
        lines = pane_lines(app, alerts)
        for severity, state, summary, count, where, last in ALERT_ROWS.values():
            row = alert_row(lines, severity, summary)
            assert re.search(rf"{state}\s+{re.escape(summary)}.*\s{count}\s+{where}\s+{last}", row)

        await pilot.press("escape")
        await pilot.pause()
        assert app.screen.maximized is None
        assert app.main.query_one(LogFeed).display
        assert alerts.region.width < 80


async def test_the_key_is_on_the_help_screen() -> None:
    observer = sample_observer(stored_logs=False)
    app = make_app(observer)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("question_mark")
        await pilot.pause()
        lines = screen_lines(app)
        assert any(re.search(r"\+\s+Maximise the focused pane", line) for line in lines), lines
        assert any(re.search(r"esc\s+Restore the maximised pane", line) for line in lines)
