"""The feed's highlight: matches marked in every row, none hidden, and keys that move the
cursor between marked entries and between ERROR-or-worse ones."""

from __future__ import annotations

from rich.style import Style

from backend.schemas import Level, Log
from tests.console.fake_observer import NOW, FakeObserver, burst, make_app, sample_logs, settle
from widgets.log_view import LogView, row_texts

SIZE = (120, 40)


def marked_texts(view: LogView, style: Style) -> list[str]:
    """The pieces of text drawn in the highlight's colours, on the rows on screen."""
    pieces = []
    for y in range(view.scrollable_content_region.height):
        for segment in view.render_line(y):
            if segment.style is not None and segment.style.bgcolor == style.bgcolor:
                pieces.append(segment.text)
    return pieces


def has_timeout(log: Log) -> bool:
    return any("timeout" in text.lower() for text in row_texts(log))


async def test_h_marks_every_match_on_screen_and_hides_nothing() -> None:
    observer = FakeObserver(clock=lambda: NOW)
    app = make_app(observer)
    async with app.run_test(size=SIZE) as pilot:
        logs = sample_logs(60)
        observer.push_logs(logs)
        await settle(pilot)
        view = app.main.feed.view
        await burst(pilot, "h", *"timeout", "enter")
        assert view.mark is not None and view.mark.pattern == "timeout"
        assert len(view.entries) == len(logs)
        pieces = marked_texts(view, view.get_component_rich_style("log-view--match"))
        assert pieces and {piece.lower() for piece in pieces} == {"timeout"}
        assert "highlight /timeout/" in str(app.main.feed.border_subtitle)


async def test_n_and_shift_n_move_between_marked_entries_newest_first() -> None:
    observer = FakeObserver(clock=lambda: NOW)
    app = make_app(observer)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        logs = sample_logs(60)
        observer.push_logs(logs)
        await settle(pilot)
        view = app.main.feed.view
        marked = [log for log in logs if has_timeout(log)]
        assert len(marked) >= 3
        await burst(pilot, "h", *"timeout", "enter", "N", "N")
        assert not view.follow
        assert view.selected() is marked[-2]
        await burst(pilot, "n")
        assert view.selected() is marked[-1]
        await burst(pilot, "n")
        assert view.selected() is marked[-1]
        assert any("no later match" in note.message for note in app._notifications)


async def test_brackets_move_between_error_or_worse_entries() -> None:
    observer = FakeObserver(clock=lambda: NOW)
    app = make_app(observer)
    async with app.run_test(size=SIZE) as pilot:
        logs = sample_logs(60)
        observer.push_logs(logs)
        await settle(pilot)
        view = app.main.feed.view
        problems = [log for log in logs if log.log_level in (Level.ERROR, Level.FATAL)]
        await burst(pilot, *["left_square_bracket"] * 3)
        assert view.selected() is problems[-3]
        await burst(pilot, "right_square_bracket")
        assert view.selected() is problems[-2]


async def test_n_without_a_highlight_says_how_to_set_one() -> None:
    observer = FakeObserver(clock=lambda: NOW)
    app = make_app(observer)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        observer.push_logs(sample_logs(10))
        await settle(pilot)
        await burst(pilot, "n")
        assert app.main.feed.view.follow
        assert any("h marks" in note.message for note in app._notifications)


async def test_an_empty_highlight_clears_it_and_an_inverted_one_is_refused() -> None:
    observer = FakeObserver(clock=lambda: NOW)
    app = make_app(observer)
    async with app.run_test(size=SIZE) as pilot:
        observer.push_logs(sample_logs(10))
        await settle(pilot)
        view = app.main.feed.view
        await burst(pilot, "h", *"!slow")
        error = app.main.feed.query_one("#prompt-error")
        assert error.display and "no ! to invert" in str(error.render())
        await burst(pilot, "escape", "h", *"slow", "enter")
        assert view.mark is not None
        await burst(pilot, "h", "ctrl+u", "enter")
        assert view.mark is None
