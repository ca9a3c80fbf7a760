"""New CRITICAL alerts: one notice that sums up a burst, not a toast per batch."""

from __future__ import annotations

import pytest

from backend.schemas import Severity
from console.app import LogdeckApp
from tests.console.fake_observer import NOW, FakeObserver, make_alert, make_app, settle

SIZE = (120, 40)


def critical_toasts(app: LogdeckApp) -> list[str]:
    return [
        f"{notice.title}: {notice.message}"
        for notice in app._notifications
        if notice.severity == "error" and "CRITICAL" in notice.title
    ]


async def test_a_burst_of_critical_alerts_is_one_notice_that_counts_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    observer = FakeObserver(clock=lambda: NOW)
    app = make_app(observer)
    bells: list[None] = []
    monkeypatch.setattr(app, "bell", lambda: bells.append(None))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        for index in range(20):  # as they come during an incident: batch after batch
            observer.push_alerts(
                [
                    make_alert(
                        f"a-fatal-{index}",
                        Severity.CRITICAL,
                        service_name=f"svc{index}",
                        summary=f"svc{index}: FATAL worker crashed",
                    )
                ]
            )
            await settle(pilot)
        toasts = critical_toasts(app)
        assert len(toasts) == 1
        assert toasts[0].startswith("20 new CRITICAL alerts: ")
        assert "svc19: FATAL worker crashed" in toasts[0]
        assert "+17 more" in toasts[0]
        assert len(bells) == 1
        assert "20 CRITICAL" in str(app.main.alerts.border_title)


async def test_a_notice_gone_from_screen_is_not_counted_again() -> None:
    observer = FakeObserver(clock=lambda: NOW)
    app = make_app(observer)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        for index in range(3):
            alert = make_alert(f"a-{index}", Severity.CRITICAL, summary=f"crash {index}")
            observer.push_alerts([alert])
            await settle(pilot)
        assert critical_toasts(app) == ["3 new CRITICAL alerts: crash 2 · crash 1 · crash 0"]
        app.clear_notifications()  # as if it timed out or was clicked away
        observer.push_alerts([make_alert("a-late", Severity.CRITICAL, summary="late crash")])
        await settle(pilot)
        assert critical_toasts(app) == ["CRITICAL alert: late crash"]
