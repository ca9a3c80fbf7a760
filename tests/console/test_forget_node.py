"""Delete on a DOWN node asks the monitor to forget it; its row goes when the registry says so."""

from __future__ import annotations

from backend.schemas import NodeStatus
from console.app import LogdeckApp
from tests.console.fake_observer import make_app, sample_observer, settle

SIZE = (120, 40)


def highlighted(app: LogdeckApp) -> tuple[str, NodeStatus]:
    entry = app.main.nodes.highlighted()
    assert entry is not None
    return entry.node_id, entry.status


async def test_delete_forgets_the_highlighted_down_node_and_its_row_goes() -> None:
    observer = sample_observer()
    app = make_app(observer)
    async with app.run_test(size=SIZE) as pilot:
        await observer.subscribed("nodes")  # the rows are in before the table has the focus
        await settle(pilot)
        nodes = app.main.nodes
        nodes.focus()
        nodes.move_cursor(row=nodes.get_row_index("orders-1"))
        await pilot.pause()
        assert highlighted(app) == ("orders-1", NodeStatus.DOWN)
        rows = nodes.row_count
        await pilot.press("delete")
        await settle(pilot)
        assert [call[:2] for call in observer.calls] == [("forget_node", "orders-1")]
        assert nodes.row_count == rows - 1
        assert "orders-1" not in {key.value for key in nodes.rows}
        assert "1 down" not in str(nodes.border_title)


async def test_delete_on_an_up_node_forgets_nothing_and_says_why() -> None:
    observer = sample_observer()
    app = make_app(observer)
    async with app.run_test(size=SIZE) as pilot:
        await observer.subscribed("nodes")  # the rows are in before the table has the focus
        await settle(pilot)
        nodes = app.main.nodes
        nodes.focus()
        await pilot.press("down", "delete")
        await settle(pilot)
        assert highlighted(app)[1] is NodeStatus.UP
        assert observer.calls == []
        assert any("only a DOWN node" in notice.message for notice in app._notifications)


async def test_a_read_only_console_forgets_nothing() -> None:
    observer = sample_observer()
    app = make_app(observer, read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        await observer.subscribed("nodes")  # the rows are in before the table has the focus
        await settle(pilot)
        app.main.nodes.focus()
        await pilot.press("delete")
        await settle(pilot)
        assert observer.calls == []
        assert app.main.nodes.row_count == len(observer.registry)
