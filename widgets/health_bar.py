"""The header: the console's mode (read-only), reachability of Kafka and Elasticsearch,
records the bus dropped unread, the pipeline's consumer lag, dead letters waiting for a
replay, and the live logs/s sparkline.

All read reactive state the app keeps (`health`, `feed_states`, `lag`, `dead_letters`,
`rate_series`), so every screen's header shows the same thing without being told. A
banner under the header appears only while something is wrong, saying what and since when.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.markup import escape
from textual.widgets import Static

from backend.observe.base import ServiceHealth
from widgets.bars import Bars
from widgets.feeds import FeedState
from widgets.formatting import clock_time, compact_count

LAGGING: Final = 10_000
"""Records a service may have left to read before its lag shows as a warning: a few
batches in flight are normal."""


def lag_text(lag: Sequence[tuple[str, int | None]]) -> tuple[str, str, bool]:
    """`lag 1.2k`, its tooltip (every service, `never ran` for one whose group has
    committed nothing), and whether a service lags by `LAGGING` records or more."""
    most = max((count for _, count in lag if count is not None), default=0)
    lines = ["Consumer lag: records each service has not read and committed yet"]
    lines += [
        f"{service}: " + ("never ran here" if count is None else f"{count:,} records behind")
        for service, count in lag
    ]
    return f"lag {compact_count(most)}", "\n".join(lines), most >= LAGGING


def service_markup(health: ServiceHealth) -> str:
    """`Kafka ● up` or `Elasticsearch ✖ down since 10:15:03`, coloured by the theme."""
    name = escape(health.name)
    if health.up:
        return f"{name} [$text-success]● up[/]"
    return f"{name} [$text-error bold]✖ down since {clock_time(health.since)}[/]"


class HealthBar(Horizontal):
    """One line: title, mode, each backing service's state, pending dead letters, logs per
    second.

    The mode is the app's `sub_title` (`read-only`), shown beside the title when there is one.

    The lag is the largest consumer lag of indexer, alerter, monitor and notifier (each in
    the tooltip), in the warning colour from `LAGGING` records; under 120 columns it shows
    only then.

    Records a service's retention deleted before every consumer group had read them show
    only when there are some: `⚠ 1.0k lost`, for good, since they never reach the store.
    The dead letters show only when there are some: `✉ 12 dead`, and `letters` after it
    where the width allows (the app's stylesheet hides the word under 120 columns).
    """

    DEFAULT_CSS = """
    HealthBar {
        height: 1;
        background: $panel;
        color: $foreground;
        #brand { width: auto; padding: 0 1; color: $text-primary; text-style: bold; }
        #mode { display: none; width: auto; padding: 0 1; color: $text-warning; }
        &.-mode #mode { display: block; text-style: bold; }
        #services { width: 1fr; height: 1; text-wrap: nowrap; text-overflow: ellipsis; }
        #dead, #dead-word {
            display: none; width: auto; color: $text-warning; text-style: bold;
        }
        #dead { padding: 0 0 0 1; }
        &.-dead #dead, &.-dead #dead-word { display: block; }
        #lag { display: none; width: auto; padding: 0 0 0 1; color: $text-muted; }
        &.-lag #lag { display: block; }
        &.-lagging #lag { color: $text-warning; text-style: bold; }
        #lost { display: none; width: auto; padding: 0 0 0 1; color: $text-error; }
        &.-lost #lost { display: block; text-style: bold; }
        #rate-spark { width: 16; margin: 0 1; }
        #rate { width: auto; min-width: 9; padding: 0 1 0 0; text-align: right; }
    }
    """

    def __init__(self, title: str = "logdeck") -> None:
        super().__init__()
        self._title = title

    def compose(self) -> ComposeResult:
        yield Static(self._title, id="brand")
        yield Static("", id="mode")
        yield Static("connecting…", id="services")
        yield Static("", id="lost")
        yield Static("", id="lag")
        yield Static("", id="dead")
        yield Static(" letters", id="dead-word")
        yield Bars(id="rate-spark")
        yield Static("0 logs/s", id="rate")

    def on_mount(self) -> None:
        self.watch(self.app, "sub_title", self._show_mode)
        self.watch(self.app, "health", self._show_health)
        self.watch(self.app, "rate_series", self._show_rate)
        self.watch(self.app, "dead_letters", self._show_dead_letters)
        self.watch(self.app, "lag", self._show_lag)

    def _show_mode(self, mode: str) -> None:
        self.set_class(bool(mode), "-mode")
        self.query_one("#mode", Static).update(mode)

    def _show_health(self, health: Sequence[ServiceHealth]) -> None:
        text = "  ".join(service_markup(item) for item in health) or "connecting…"
        self.query_one("#services", Static).update(text)
        self.query_one("#services", Static).tooltip = "\n".join(
            f"{item.name}: {item.detail}" for item in health if item.detail
        )
        lost = [item for item in health if item.dropped_unread]
        self.set_class(bool(lost), "-lost")
        if lost:
            count = sum(item.dropped_unread for item in lost)
            shown = self.query_one("#lost", Static)
            shown.update(f"⚠ {compact_count(count)} lost")
            shown.tooltip = "\n".join(
                f"{item.name}: {item.dropped_unread} records deleted by its retention's hard"
                " cap before every consumer group had read them (its log names the topic,"
                " partition and groups)"
                for item in lost
            )

    def _show_lag(self, lag: Sequence[tuple[str, int | None]]) -> None:
        self.set_class(bool(lag), "-lag")
        if not lag:
            return
        text, tooltip, lagging = lag_text(lag)
        self.set_class(lagging, "-lagging")
        shown = self.query_one("#lag", Static)
        shown.update(text)
        shown.tooltip = tooltip

    def _show_dead_letters(self, count: int | None) -> None:
        self.set_class(bool(count), "-dead")
        if not count:
            return
        dead = self.query_one("#dead", Static)
        dead.update(f"✉ {compact_count(count)} dead")
        dead.tooltip = (
            f"{count} dead letters not replayed: "
            "`logdeck deadletter list` shows them, `logdeck deadletter replay` replays them"
        )

    def _show_rate(self, series: Sequence[int]) -> None:
        self.query_one(Bars).data = tuple(series)
        current = series[-1] if series else 0
        previous = series[-2] if len(series) > 1 else 0
        self.query_one("#rate", Static).update(f"{compact_count(max(current, previous))} logs/s")


class TroubleBanner(Static):
    """What is failing and since when: a service that is down, or a feed that keeps failing."""

    DEFAULT_CSS = """
    TroubleBanner {
        height: auto;
        max-height: 3;
        display: none;
        background: $error-muted;
        color: $text-error;
        padding: 0 1;
        &.-trouble { display: block; }
    }
    """

    def on_mount(self) -> None:
        self.watch(self.app, "health", self._refresh_trouble)
        self.watch(self.app, "feed_states", self._refresh_trouble)

    def _refresh_trouble(self) -> None:
        health: Sequence[ServiceHealth] = getattr(self.app, "health", ())
        feeds: Sequence[FeedState] = getattr(self.app, "feed_states", ())
        lines = [
            f"⚠ {escape(item.name)} down since {clock_time(item.since)}"
            + (f": {escape(item.detail)}" if item.detail else "")
            for item in health
            if not item.up
        ]
        lines += [
            f"⚠ {escape(state.name)} failing since {clock_time(state.since)}: "
            f"{escape(state.detail)}"
            for state in feeds
            if not state.ok
        ]
        self.update("\n".join(lines))
        self.set_class(bool(lines), "-trouble")
