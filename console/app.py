"""The logdeck console: a Textual app over an `Observer`.

The app owns the observer: it starts it, follows its three feeds in workers (reopening
them with backoff when they fail), and every 100 ms flushes what arrived to the main
screen as one message per kind. The feed starts with the store's last minutes, joined to
the live tail (`console.history`). Health and the count of dead letters waiting for a
replay are polled once a second into reactive state that each screen's header shows.
Screens and widgets never touch the backend except through the observer handed to them.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import suppress
from datetime import UTC, datetime
from typing import ClassVar, TypeVar

from textual import events, on
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.reactive import reactive
from textual.screen import Screen

from backend.observe.base import Observer, ServiceHealth
from backend.schemas import Alert, Level, Log, NodeEntry, RetiredNode, Silence
from console.history import (
    HISTORY,
    HISTORY_QUIET_TRIES,
    HISTORY_RETRIES,
    HISTORY_RETRY_S,
    HistoryJoin,
    history_query,
)
from console.key_order import KeyOrder
from console.screens import HelpScreen, MainScreen, SearchScreen
from console.screens.alert_detail import AlertDetailScreen
from console.screens.context import ContextScreen
from console.screens.detail import DetailScreen
from console.screens.help import Section
from console.screens.main import PANE_BINDINGS, SILENCE_BINDINGS
from console.screens.note import NoteScreen
from console.screens.silence import SilenceScreen
from console.screens.silences import SilencesScreen
from widgets.alert_queue import AlertQueue
from widgets.feeds import Backoff, FeedState, Follower
from widgets.log_feed import DEFAULT_CAPACITY, LogFeed
from widgets.log_view import LogView
from widgets.messages import (
    AlertsChanged,
    HistoryNote,
    LogsArrived,
    NodesChanged,
    SilencesChanged,
)
from widgets.names import KnownNames
from widgets.node_table import NodeTable
from widgets.rates import RateHistory
from widgets.ring import Ring

Clock = Callable[[], datetime]
T = TypeVar("T")
DEFAULT_BACKOFF = Backoff()


def utc_now() -> datetime:
    return datetime.now(UTC)


class LogdeckApp(App[None]):
    """Nodes, alerts and live logs from the observer; search of stored logs."""

    CSS_PATH = "app.tcss"
    TITLE = "logdeck"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f2,ctrl+f", "search", "Search", id="app.search"),
        Binding("question_mark", "help", "Keys", id="app.help"),
        Binding("q", "quit", "Quit", id="app.quit", show=False),
        Binding("ctrl+c", "quit", "Quit", id="app.interrupt", show=False),
    ]

    health: reactive[tuple[ServiceHealth, ...]] = reactive(())
    """What the observer last said about Kafka and Elasticsearch."""
    feed_states: reactive[tuple[FeedState, ...]] = reactive(())
    """The feeds that are failing (or were, and recovered)."""
    rate_series: reactive[tuple[int, ...]] = reactive(())
    """Logs received in each of the last 60 seconds."""
    dead_letters: reactive[int | None] = reactive(None)
    """Dead letters not replayed yet, as the observer last said (None: not known)."""
    lag: reactive[tuple[tuple[str, int | None], ...]] = reactive(())
    """Each pipeline service's consumer lag, as the observer last said (empty: not known)."""

    def __init__(
        self,
        observer: Observer,
        *,
        read_only: bool = False,
        clock: Clock = utc_now,
        capacity: int = DEFAULT_CAPACITY,
        flush_interval: float = 0.1,
        backoff: Backoff = DEFAULT_BACKOFF,
        keymap: Mapping[str, str] | None = None,
        history: int = HISTORY,
    ) -> None:
        super().__init__()
        self._key_order = KeyOrder(self, super().on_event)
        self._keymap = dict(keymap or {})
        self.HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide")]
        self.VERTICAL_BREAKPOINTS = [(0, "-short"), (40, "-tall")]
        self.observer = observer
        self.read_only = read_only
        self.clock = clock
        self.names = KnownNames()
        self._flush_interval = flush_interval
        self._backoff = backoff
        self._pending_logs: Ring[Log] = Ring(capacity)
        self._reported_drops = 0
        self._history_limit = history
        self._history = HistoryJoin()
        self._holding_logs = False
        self._pending_nodes: dict[str, NodeEntry | RetiredNode] = {}
        self._pending_alerts: dict[str, Alert] = {}
        self._pending_silences: dict[str, Silence] = {}
        self._alerts_initial = False
        self._rates = RateHistory()
        self._feeds: dict[str, FeedState] = {}
        self._health_failing_since: datetime | None = None
        self.main = MainScreen(
            observer, self.names, clock=clock, read_only=read_only, capacity=capacity
        )
        if read_only:
            self.sub_title = "read-only"

    def get_default_screen(self) -> Screen[None]:
        return self.main

    def on_mount(self) -> None:
        # What exists by now (modules, widgets, styles) lives as long as the app: frozen,
        # the garbage collector's full passes skip it. Walking it all took 80-100 ms per
        # pass at 20,000 logs/s, and a key pressed meanwhile waited that long.
        gc.freeze()
        if self._keymap:
            self.set_keymap(self._keymap)
        self.set_interval(self._flush_interval, self.flush)
        self.set_interval(1.0, self.poll)
        self.poll()
        self.run_worker(self._connect(), name="observer", group="observer", exit_on_error=False)

    async def on_event(self, event: events.Event) -> None:
        """Keys from the terminal are taken in order, each handled before the next."""
        if isinstance(event, events.Key) and not event.is_forwarded:
            await self._key_order.take(event)
        else:
            await super().on_event(event)

    async def on_unmount(self) -> None:
        with suppress(Exception):
            await self.observer.close()

    # Feeds

    async def _connect(self) -> None:
        """Start the observer (retrying with backoff), then follow its three feeds."""
        delay = self._backoff.first
        failing_since: datetime | None = None
        while True:
            try:
                await self.observer.start()
                break
            except Exception as error:  # shown in the banner, retried
                failing_since = failing_since or self.clock()
                detail = f"cannot start: {error}; retrying in {delay:g} s"
                self._report(FeedState("observer", ok=False, since=failing_since, detail=detail))
                await asyncio.sleep(delay)
                delay = self._backoff.after(delay)
        if failing_since is not None:
            self._report(FeedState("observer", ok=True, since=self.clock()))
        if self._history_limit:
            # Asked beside the tail's start, not after it: the store's lag is made up
            # for by `_fill_history_gap` anyway, and the tail takes a while to join.
            self._holding_logs = True
            self.run_worker(self._load_history(), name="history", group="history")
        self._follow("logs feed", self.observer.logs, self._take_logs)
        self._follow("nodes feed", self.observer.nodes, self._take_nodes)
        self._follow("alerts feed", self.observer.alerts, self._take_alerts)
        self._follow("silences feed", self.observer.silences, self._take_silences)

    def _follow(
        self,
        name: str,
        open_feed: Callable[[], AsyncIterator[list[T]]],
        deliver: Callable[[list[T], bool], None],
    ) -> None:
        follower = Follower(name, open_feed, deliver, self._report, self.clock, self._backoff)
        self.run_worker(follower.run(), name=name, group="feeds", exit_on_error=False)

    def _take_logs(self, batch: list[Log], first: bool) -> None:
        """Hold the live logs back while the history is read, then join them to it."""
        self._pending_logs.extend(batch)

    async def _load_history(self) -> None:
        """The store's newest logs, then the live ones held meanwhile, in one batch; then
        the logs the store had not made searchable yet, if any, as they become so."""
        self.main.post_message(HistoryNote("loading earlier logs from the store…"))
        try:
            result = await self.observer.search(history_query(self.clock(), self._history_limit))
        except Exception as error:  # the live tail goes on without the history
            self._holding_logs = False
            self._history.settle()
            self.main.post_message(HistoryNote("no history: the store is down"))
            self.notify(
                f"earlier logs could not be read from the store ({error}); the live tail goes on",
                title="History",
                severity="warning",
            )
            return
        self._holding_logs = False
        count = len(result.logs)
        self._deliver_logs(self._history.join(result.logs, self._pending_logs.drain()), count)
        self.main.post_message(HistoryNote(f"{count:,} earlier logs from the store"))
        if not self._history.caught_up(result.logs):
            await self._fill_history_gap(count)

    def _take_nodes(self, batch: list[NodeEntry | RetiredNode], first: bool) -> None:
        for entry in batch:
            self._pending_nodes[entry.node_id] = entry

    def _take_alerts(self, batch: list[Alert], first: bool) -> None:
        self._alerts_initial |= first
        for alert in batch:
            self._pending_alerts[alert.alert_id] = alert

    def _take_silences(self, batch: list[Silence], first: bool) -> None:
        for silence in batch:
            self._pending_silences[silence.silence_id] = silence

    def _report(self, state: FeedState) -> None:
        if state.ok:
            self._feeds.pop(state.name, None)
        else:
            self._feeds[state.name] = state
        self.feed_states = tuple(self._feeds.values())

    def flush(self) -> None:
        """Hand everything that arrived since the last flush to the main screen."""
        self._flush_logs()
        if self._pending_nodes:
            entries = list(self._pending_nodes.values())
            self._pending_nodes.clear()
            self.names.learn_nodes([entry for entry in entries if isinstance(entry, NodeEntry)])
            self.main.post_message(NodesChanged(entries))
        # An empty first batch goes too: "no alerts" is a starting state, so the first
        # alert after it is news (a bell and a notice), not part of what was found.
        if self._pending_alerts or self._alerts_initial:
            alerts = list(self._pending_alerts.values())
            self._pending_alerts.clear()
            self.main.post_message(AlertsChanged(alerts, initial=self._alerts_initial))
            self._alerts_initial = False
        if self._pending_silences:
            silences = list(self._pending_silences.values())
            self._pending_silences.clear()
            self.main.post_message(SilencesChanged(silences))

    def _flush_logs(self) -> None:
        if self._pending_logs and not self._holding_logs:
            self._deliver_logs(self._history.fresh(self._pending_logs.drain()))

    async def _fill_history_gap(self, shown: int) -> None:
        """Ask the store again, a bounded number of times, until its answer holds one of
        the logs the tail brought: Elasticsearch refreshes every second and the indexer
        batches, so logs sent just before the tail started may have been in neither at the
        first answer. A quiet tail is given `HISTORY_QUIET_TRIES` answers' time to bring
        something. An answer that fails (Elasticsearch answers 503 while the shards of a
        daily index just made are starting) is asked for again within the same bound; the
        history already on screen and the live tail stay either way."""
        join = self._history
        try:
            for tries in range(1, HISTORY_RETRIES + 1):
                if join.quiet() and tries > HISTORY_QUIET_TRIES:
                    break
                await asyncio.sleep(HISTORY_RETRY_S)
                query = history_query(self.clock(), self._history_limit)
                try:
                    result = await self.observer.search(query)
                except Exception:  # the next try asks again
                    continue
                self._flush_logs()  # the live logs first, so the gap leaves them out
                gap = join.gap(result.logs)
                if gap:
                    shown += len(gap)
                    self._deliver_logs(gap, len(gap))
                    self.main.post_message(HistoryNote(f"{shown:,} earlier logs from the store"))
                if join.caught_up(result.logs):
                    break
        finally:
            join.settle()

    def _deliver_logs(self, logs: list[Log], stored: int = 0) -> None:
        """Post `logs` to the feed with the count of live logs dropped since the last time;
        `stored` of them came from the store, and are not counted as received now."""
        now = self.clock()
        dropped = self._pending_logs.dropped - self._reported_drops
        self._reported_drops = self._pending_logs.dropped
        self.names.learn_logs(logs)
        self._rates.add(len(logs) - stored, now)
        self.rate_series = tuple(self._rates.series(now))
        if logs or dropped:
            self.main.post_message(LogsArrived(logs, dropped, stored))

    def poll(self) -> None:
        """Read the observer's health, its dead-letter count, the pipeline's lag and the
        logs/s history into reactive state."""
        try:
            self.health = tuple(self.observer.health())
            self._health_failing_since = None
        except Exception as error:  # a failing health check is itself news
            since = self._health_failing_since = self._health_failing_since or self.clock()
            self.health = (ServiceHealth("observer", up=False, since=since, detail=str(error)),)
        try:
            self.dead_letters = self.observer.dead_letters()
        except Exception:  # a count that cannot be had is shown as not known
            self.dead_letters = None
        try:
            self.lag = tuple(self.observer.lag().items())
        except Exception:  # as for the dead letters
            self.lag = ()
        self.rate_series = tuple(self._rates.series(self.clock()))

    # Actions

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Hide the search key on the search screen, where it would do nothing."""
        return not (action == "search" and isinstance(self.screen, SearchScreen))

    async def action_search(self) -> None:
        """Open the search with the cursor in its text field before the next key is taken,
        so the keys typed right behind F2 are the query's (see `KeyOrder`)."""
        if isinstance(self.screen, SearchScreen):
            return
        if "search" not in self._installed_screens:
            self.install_screen(SearchScreen(self.observer, self.names, clock=self.clock), "search")
        await self.push_screen("search")
        search = self.get_screen("search")
        assert isinstance(search, SearchScreen)
        search.focus_query()

    @on(DetailScreen.ContextWanted)
    def _show_context(self, message: DetailScreen.ContextWanted) -> None:
        """A log entry's surrounding logs, whichever screen showed the entry."""
        self.push_screen(ContextScreen(self.observer, message.log))

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            return
        self.push_screen(HelpScreen(help_sections(), self._keymap))

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("Search logs", "Search stored logs (F2)", self.action_search)
        yield SystemCommand("Keys", "Show every key binding (?)", self.action_help)
        if screen is not self.main:
            return
        feed, alerts = self.main.feed, self.main.alerts
        yield SystemCommand(
            "Pause or follow the log feed",
            "Stop or resume the live tail (space)",
            feed.view.action_toggle_follow,
        )
        yield SystemCommand(
            "Filter logs by service or node",
            "Pick names with completion (s)",
            feed.action_pick_names,
        )
        yield SystemCommand(
            "Filter logs by text", "A regex; !regex hides matches (/)", feed.action_edit_text
        )
        yield SystemCommand(
            "Show ERROR and FATAL only",
            "Set the minimum level to ERROR",
            lambda: feed.set_min_level(Level.ERROR),
        )
        yield SystemCommand(
            "Clear log filters", "Show every entry again (x)", feed.action_clear_filters
        )
        yield SystemCommand(
            "Show or hide acknowledged alerts",
            "Toggle ACKED alerts in the queue (h)",
            alerts.action_toggle_acked,
        )
        yield SystemCommand(
            "Silence the selected alert",
            "Matchers pre-filled, editable, with a preview (z)",
            self.main.action_silence_alert,
        )
        yield SystemCommand("Silences", "List and expire silences (S)", self.main.action_silences)


def help_sections() -> list[Section]:
    """Every binding of the console by where it works: the help screen and the keymap's ids."""
    return [
        ("Everywhere", [*LogdeckApp.BINDINGS, *_PALETTE_BINDINGS]),
        ("Panes", PANE_BINDINGS),
        ("Log feed", [*LogView.BINDINGS, *LogFeed.BINDINGS]),
        ("Nodes", NodeTable.BINDINGS),
        ("Alerts", [*AlertQueue.BINDINGS, _ALERT_DETAIL_BINDING]),
        ("Alert (Enter on an alert)", AlertDetailScreen.BINDINGS),
        ("Note", NoteScreen.BINDINGS),
        ("Silences", [*SILENCE_BINDINGS, *SilencesScreen.BINDINGS, *SilenceScreen.BINDINGS]),
        ("Search (F2)", SearchScreen.ALL_BINDINGS),
        ("Log entry", DetailScreen.BINDINGS),
        ("Around an entry (s on an entry)", ContextScreen.BINDINGS),
    ]


_ALERT_DETAIL_BINDING = Binding("enter", "select_cursor", "Show the alert in full")
"""The alert table's own Enter, listed for the help screen."""

_PALETTE_BINDINGS = [
    Binding("ctrl+p", "command_palette", "Command palette"),
    Binding("tab", "focus_next", "Next pane"),
    Binding("ctrl+q", "quit", "Quit"),
]
