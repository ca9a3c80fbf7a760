"""The Seen column: when the console last heard of a node, honest about the registry's
republishing a heartbeat time only every few seconds."""

from __future__ import annotations

from datetime import datetime, timedelta

from rich.text import Text

from backend.schemas import Level, NodeEntry, NodeStatus, iso_millis
from console.app import LogdeckApp
from tests.console.fake_observer import NOW, FakeObserver, make_app, make_log, settle
from widgets.cells import theme_style

SIZE = (120, 40)


class Clock:
    """A clock the test moves."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def node(node_id: str, status: NodeStatus, heard: datetime) -> NodeEntry:
    return NodeEntry(
        node_id=node_id,
        service_name=node_id.rsplit("-", 1)[0],
        status=status,
        registered_at=iso_millis(NOW - timedelta(hours=1)),
        last_heartbeat=iso_millis(heard),
    )


def seen(app: LogdeckApp, node_id: str) -> Text:
    return app.main.nodes.get_cell(node_id, "seen")


async def test_an_up_node_between_republishes_reads_live_not_its_entry_age() -> None:
    clock = Clock(NOW)
    observer = FakeObserver(
        nodes=[
            node("payments-0", NodeStatus.UP, NOW - timedelta(seconds=1)),
            node("payments-1", NodeStatus.UP, NOW - timedelta(seconds=12)),
        ],
        clock=clock,
    )
    app = make_app(observer)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert seen(app, "payments-0").plain == "live"
        assert seen(app, "payments-1").plain == "live"

        clock.now = NOW + timedelta(seconds=30)  # the registry has said nothing since
        app.main.nodes.tick()
        assert seen(app, "payments-0").plain == "31s"
        assert seen(app, "payments-1").plain == "42s"
        assert seen(app, "payments-1").style == theme_style(app, "text-warning")


async def test_a_log_from_the_node_counts_as_hearing_from_it() -> None:
    clock = Clock(NOW)
    observer = FakeObserver(
        nodes=[
            node("orders-1", NodeStatus.DOWN, NOW - timedelta(seconds=52)),
            node("auth-0", NodeStatus.UP, NOW - timedelta(seconds=40)),
        ],
        clock=clock,
    )
    app = make_app(observer)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await observer.subscribed("logs")
        assert seen(app, "orders-1").plain == "52s"
        assert seen(app, "auth-0").plain == "40s"

        observer.push_logs(
            [
                make_log(1, NOW - timedelta(seconds=2), level=Level.ERROR, node_id="orders-1"),
                make_log(2, NOW - timedelta(seconds=1), node_id="auth-0"),
                make_log(3, NOW - timedelta(minutes=5), node_id="auth-0"),  # late, older
            ]
        )
        await settle(pilot)
        assert seen(app, "orders-1").plain == "2s"  # DOWN, yet it still logs
        assert seen(app, "auth-0").plain == "live"

        clock.now = NOW + timedelta(seconds=10)
        app.main.nodes.tick()
        assert seen(app, "orders-1").plain == "12s"


async def test_a_node_clock_ahead_does_not_make_a_node_look_heard_from_the_future() -> None:
    clock = Clock(NOW)
    observer = FakeObserver(
        nodes=[node("search-0", NodeStatus.DOWN, NOW - timedelta(seconds=52))], clock=clock
    )
    app = make_app(observer)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await observer.subscribed("logs")
        observer.push_logs([make_log(1, NOW + timedelta(minutes=10), node_id="search-0")])
        await settle(pilot)
        assert seen(app, "search-0").plain == "0s"
        clock.now = NOW + timedelta(seconds=7)
        app.main.nodes.tick()
        assert seen(app, "search-0").plain == "7s"


async def test_logs_that_come_before_the_node_s_registry_entry_count() -> None:
    clock = Clock(NOW)
    observer = FakeObserver(clock=clock)
    app = make_app(observer)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await observer.subscribed("logs")
        observer.push_logs([make_log(1, NOW - timedelta(seconds=3), node_id="search-0")])
        await settle(pilot)
        observer.push_nodes([node("search-0", NodeStatus.DOWN, NOW - timedelta(seconds=52))])
        await settle(pilot)
        assert seen(app, "search-0").plain == "3s"
