"""The console on each backend: simulated nodes' logs in the feed, an ERROR as an alert,
and an acknowledgement made in the console reaching the store."""

from __future__ import annotations

import asyncio
import getpass
from pathlib import Path

import pytest

from backend.backends import open_bus, open_store
from backend.config import Settings
from backend.observe.live import LiveObserver
from console.app import LogdeckApp
from tests.integration.conftest import Launch
from tests.integration.harness import Process, Stored, until, wait_until
from widgets.alert_queue import AlertQueue
from widgets.log_feed import LogFeed
from widgets.node_table import NodeTable

pytestmark = pytest.mark.integration


async def test_console_shows_live_logs_and_alerts_and_its_ack_reaches_the_store(
    settings: Settings,
    stored: Stored,
    accumulator: Process,
    indexer: Process,
    launch: Launch,
    tmp_path: Path,
) -> None:
    launch("alerter")
    launch("monitor")
    app = LogdeckApp(LiveObserver(settings, open_bus(settings), open_store(settings)))
    async with app.run_test(size=(160, 48)) as pilot:
        launch(
            "simulate",
            "--port",
            str(settings.accumulator_port),
            "--node-prefix",
            f"{settings.namespace}-",
            "--nodes",
            "2",
            "--rate",
            "20",
            "--duration",
            "30",
            "--error-burst",
            "5@2",
        )
        feed = app.screen.query_one(LogFeed)
        nodes = app.screen.query_one(NodeTable)
        alerts = app.screen.query_one(AlertQueue)
        await until(lambda: len(feed.ring) > 50, 60, "logs in the console's feed")
        assert {log.node_id for log in feed.ring} <= {
            f"{settings.namespace}-payment-01",
            f"{settings.namespace}-order-01",
        }
        await until(lambda: nodes.row_count == 2, 30, "both nodes in the node table")
        await until(lambda: len(alerts.alerts) > 0, 60, "an alert in the console")

        alerts.focus()
        alerts.move_cursor(row=0)
        await pilot.pause()
        alert = alerts.selected_alert()
        assert alert is not None
        await pilot.press("a")

        def acked_in_the_store() -> bool:
            found = stored.alerts().get(alert.alert_id)
            return found is not None and found.state == "ACKED"

        await asyncio.to_thread(wait_until, acked_in_the_store, 60, "the ack in the store")
        acked = (await asyncio.to_thread(stored.alerts))[alert.alert_id]
        assert acked.acked_by == getpass.getuser()
        await until(
            lambda: alerts.alerts[alert.alert_id].state == "ACKED", 30, "the ack in the console"
        )
