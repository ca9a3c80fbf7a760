"""Search hits over time: bars between the first and last bucket's times."""

from __future__ import annotations

from datetime import UTC, datetime

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Label

from widgets.bars import Bars
from widgets.formatting import compact_count


def _label(moment: datetime, span_days: bool) -> str:
    return moment.astimezone(UTC).strftime("%m-%d %H:%M" if span_days else "%H:%M:%S")


class HitHistogram(Horizontal):
    """`10:00:00 ▁▂▅█▃▁ 10:15:00  max 42/bucket`, scaled from zero."""

    DEFAULT_CSS = """
    HitHistogram {
        height: 1;
        Label { width: auto; color: $text-muted; padding: 0 1; }
        Bars { width: 1fr; }
    }
    """

    def compose(self) -> ComposeResult:
        yield Label("", id="hist-start")
        yield Bars(id="hist-spark")
        yield Label("", id="hist-end")
        yield Label("no hits", id="hist-max")

    def show(self, histogram: list[tuple[datetime, int]]) -> None:
        counts = [count for _, count in histogram]
        self.query_one(Bars).data = tuple(counts)
        if not histogram:
            self.query_one("#hist-start", Label).update("")
            self.query_one("#hist-end", Label).update("")
            self.query_one("#hist-max", Label).update("no histogram")
            return
        first, last = histogram[0][0], histogram[-1][0]
        span_days = first.date() != last.date()
        self.query_one("#hist-start", Label).update(_label(first, span_days))
        self.query_one("#hist-end", Label).update(_label(last, span_days))
        self.query_one("#hist-max", Label).update(f"max {compact_count(max(counts))}/bucket")
