"""An in-memory `Observer` for the console's tests, and a demo of the console on it.

Tests push batches, flip health and break feeds, then look at what the console did;
acknowledge/resolve change the fake's alerts and push the change down the alerts feed,
as the real alerter does. `python -m tests.console.fake_observer` runs the console on
generated traffic (nodes that go down, bursts of errors, a flapping Elasticsearch).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import random
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, TypeVar

import msgspec
from textual import events
from textual.keys import REPLACED_KEYS, key_to_character
from textual.message import Message
from textual.notifications import Notify
from textual.worker import WorkerCancelled, WorkerFailed

from backend.observe.base import ServiceHealth
from backend.schemas import (
    Alert,
    AlertEvent,
    AlertEventKind,
    AlertKind,
    AlertState,
    ErrorDetails,
    Level,
    Log,
    NodeEntry,
    NodeStatus,
    RetiredNode,
    Severity,
    Silence,
    iso_millis,
)
from backend.store.query import Bucket, LogQuery, SearchResult, histogram_interval
from console.app import LogdeckApp
from widgets.feeds import Backoff

if TYPE_CHECKING:
    from textual.app import App
    from textual.pilot import Pilot
    from textual.widget import Widget

T = TypeVar("T")
NOW = datetime(2026, 11, 24, 10, 16, 0, tzinfo=UTC)
"""The frozen `now` of the tests' fixed data."""
SERVICES = {"payments": 3, "orders": 2, "auth": 2, "search": 1}
_ERROR_CODES = [("PAY-502", "upstream gateway timeout"), ("DB-1205", "lock wait timeout")]


def utc_now() -> datetime:
    return datetime.now(UTC)


class FakeObserver:
    """Logs, nodes and alerts in memory; every feed subscriber gets every pushed batch."""

    def __init__(
        self,
        *,
        logs: Iterable[Log] = (),
        nodes: Iterable[NodeEntry] = (),
        alerts: Iterable[Alert] = (),
        dead_letters: int | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.clock = clock
        self.dead_letter_count = dead_letters
        self.lag_state: dict[str, int | None] = {}
        self.history: list[Log] = list(logs)
        self.registry: dict[str, NodeEntry] = {entry.node_id: entry for entry in nodes}
        self.alert_state: dict[str, Alert] = {alert.alert_id: alert for alert in alerts}
        self.silence_state: dict[str, Silence] = {}
        since = clock()
        self._health = {
            name: ServiceHealth(name, up=True, since=since) for name in ("Kafka", "Elasticsearch")
        }
        self.queries: list[LogQuery] = []
        self.calls: list[tuple[str, str, str]] = []
        self.opened: Counter[str] = Counter()
        self.feed_errors: dict[str, Exception] = {}
        self.search_error: Exception | None = None
        self.search_note: str | None = None
        self.started = False
        self.closed = False
        self._subscribers: dict[str, list[asyncio.Queue[list[object] | Exception | None]]] = {
            "logs": [],
            "nodes": [],
            "alerts": [],
            "silences": [],
        }
        self._open = {kind: asyncio.Event() for kind in self._subscribers}

    # The Observer protocol

    async def start(self) -> None:
        self.started = True

    async def close(self) -> None:
        self.closed = True

    def health(self) -> tuple[ServiceHealth, ...]:
        return tuple(self._health.values())

    def dead_letters(self) -> int | None:
        return self.dead_letter_count

    def lag(self) -> dict[str, int | None]:
        return dict(self.lag_state)

    def logs(self) -> AsyncIterator[list[Log]]:
        """As the real tail: an empty first batch once subscribed, then what is pushed."""
        return self._feed("logs", [])

    def nodes(self) -> AsyncIterator[list[NodeEntry | RetiredNode]]:
        return self._feed("nodes", list(self.registry.values()))

    async def forget_node(self, node_id: str, by: str) -> None:
        """As the monitor would: the node is retired at once."""
        self.calls.append(("forget_node", node_id, by))
        self.registry.pop(node_id, None)
        self._broadcast("nodes", [RetiredNode(node_id=node_id)])

    def alerts(self) -> AsyncIterator[list[Alert]]:
        return self._feed("alerts", list(self.alert_state.values()))

    async def acknowledge(self, alert: Alert, by: str, note: str | None = None) -> None:
        self.calls.append(("acknowledge", alert.alert_id, by))
        at = iso_millis(self.clock())
        event = AlertEvent(at=at, event=AlertEventKind.ACKED, by=by, note=note)
        self._change(
            alert.alert_id,
            state=AlertState.ACKED,
            acked_by=by,
            acked_at=at,
            history=(*self.alert_state[alert.alert_id].history, event),
        )

    async def annotate(self, alert: Alert, by: str, note: str) -> None:
        self.calls.append(("annotate", alert.alert_id, by))
        event = AlertEvent(at=iso_millis(self.clock()), event=AlertEventKind.NOTE, by=by, note=note)
        self._change(alert.alert_id, history=(*self.alert_state[alert.alert_id].history, event))

    async def unacknowledge(self, alert: Alert, by: str) -> None:
        self.calls.append(("unacknowledge", alert.alert_id, by))
        self._change(alert.alert_id, state=AlertState.OPEN, acked_by=None, acked_at=None)

    async def resolve(self, alert: Alert, by: str) -> None:
        self.calls.append(("resolve", alert.alert_id, by))
        self._change(
            alert.alert_id, state=AlertState.RESOLVED, resolved_at=iso_millis(self.clock())
        )

    def silences(self) -> AsyncIterator[list[Silence]]:
        return self._feed("silences", list(self.silence_state.values()))

    async def add_silence(self, silence: Silence) -> None:
        self.calls.append(("add_silence", silence.silence_id, silence.created_by))
        self.silence_state[silence.silence_id] = silence
        self._broadcast("silences", [silence])

    async def expire_silence(self, silence_id: str) -> None:
        self.calls.append(("expire_silence", silence_id, ""))
        ended = msgspec.structs.replace(
            self.silence_state[silence_id], ends_at=iso_millis(self.clock())
        )
        self.silence_state[silence_id] = ended
        self._broadcast("silences", [ended])

    async def search(self, query: LogQuery) -> SearchResult:
        self.queries.append(query)
        if self.search_error is not None:
            raise self.search_error
        hits = sorted(
            (log for log in self.history if _matches(query, log)),
            key=lambda log: log.timestamp,
            reverse=True,
        )
        start = query.page * query.page_size
        interval = histogram_interval(query.since, query.until, self.clock())
        return SearchResult(
            total=len(hits),
            logs=hits[start : start + query.page_size],
            buckets=_buckets(hits, timedelta(seconds=interval)),
            took_ms=3.0,
            note=self.search_note,
        )

    # What tests (and the demo) do to it

    def push_logs(self, logs: list[Log]) -> None:
        self.history.extend(logs)
        self._broadcast("logs", logs)

    def push_nodes(self, entries: list[NodeEntry]) -> None:
        self.registry.update((entry.node_id, entry) for entry in entries)
        self._broadcast("nodes", entries)

    def push_alerts(self, alerts: list[Alert]) -> None:
        self.alert_state.update((alert.alert_id, alert) for alert in alerts)
        self._broadcast("alerts", alerts)

    async def subscribed(self, kind: str) -> None:
        """Wait until the console has opened the `kind` feed, so pushed batches reach it."""
        await self._open[kind].wait()

    def end_feed(self, kind: str) -> None:
        """Make every open `kind` feed end, as an iterator whose source went away."""
        self._broadcast(kind, None)

    def break_feed(self, kind: str, error: Exception) -> None:
        """Make every open `kind` feed raise `error` (reopening works unless `feed_errors`)."""
        self._broadcast(kind, error)

    def set_health(
        self,
        name: str,
        *,
        up: bool,
        since: datetime | None = None,
        detail: str = "",
        dropped_unread: int = 0,
    ) -> None:
        self._health[name] = ServiceHealth(
            name, up=up, since=since or self.clock(), detail=detail, dropped_unread=dropped_unread
        )

    # Internals

    async def _feed(self, kind: str, initial: list[T] | None) -> AsyncIterator[list[T]]:
        self.opened[kind] += 1
        if kind in self.feed_errors:
            raise self.feed_errors[kind]
        queue: asyncio.Queue[list[object] | Exception | None] = asyncio.Queue()
        self._subscribers[kind].append(queue)
        self._open[kind].set()
        try:
            if initial is not None:
                yield initial
            while True:
                item = await queue.get()
                if item is None:
                    return
                if isinstance(item, Exception):
                    raise item
                yield item  # type: ignore[misc]
        finally:
            self._subscribers[kind].remove(queue)
            if not self._subscribers[kind]:
                self._open[kind].clear()

    def _broadcast(self, kind: str, item: list[T] | Exception | None) -> None:
        for queue in self._subscribers[kind]:
            queue.put_nowait(item)  # type: ignore[arg-type]

    def _change(self, alert_id: str, **changes: object) -> None:
        alert = msgspec.structs.replace(self.alert_state[alert_id], **changes)
        self.push_alerts([alert])


def _matches(query: LogQuery, log: Log) -> bool:
    if query.text and query.text.lower() not in log.message.lower():
        return False
    if query.levels and log.log_level not in query.levels:
        return False
    if query.services and log.service_name not in query.services:
        return False
    if query.nodes and log.node_id not in query.nodes:
        return False
    if not query.expression.matches(log):
        return False
    moment = datetime.fromisoformat(log.timestamp)
    if query.since is not None and moment < query.since:
        return False
    return query.until is None or moment <= query.until


def _buckets(hits: list[Log], width: timedelta) -> list[Bucket]:
    """Hits by level in bars of `width` from the epoch, first hit's to last's, as the stores."""
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    counts: Counter[tuple[int, Level]] = Counter(
        ((datetime.fromisoformat(log.timestamp) - epoch) // width, log.log_level) for log in hits
    )
    if not counts:
        return []
    bars = [bar for bar, _ in counts]
    return [
        Bucket(
            epoch + width * bar,
            epoch + width * (bar + 1),
            {level: n for (at, level), n in counts.items() if at == bar},
        )
        for bar in range(min(bars), max(bars) + 1)
    ]


# Fixed data for tests and snapshots

NODE_IDS = [f"{service}-{index}" for service, count in SERVICES.items() for index in range(count)]
_MESSAGES = {
    Level.INFO: ["request served", "cache refreshed", "user signed in", "order accepted"],
    Level.WARN: ["slow response from inventory", "retrying downstream call"],
    Level.ERROR: ["payment declined by gateway", "query failed"],
    Level.FATAL: ["worker crashed: out of memory"],
}


def service_of(node_id: str) -> str:
    return node_id.rsplit("-", 1)[0]


def make_log(
    index: int,
    at: datetime,
    *,
    level: Level = Level.INFO,
    node_id: str = "payments-0",
    message: str | None = None,
) -> Log:
    """One valid log; WARN gets timings and ERROR/FATAL error details, as the schema wants."""
    extra: dict[str, object] = {}
    if level is Level.WARN:
        extra = {"response_time_ms": 1840.0, "threshold_limit_ms": 1000.0}
    if level in (Level.ERROR, Level.FATAL):
        code, text = _ERROR_CODES[index % len(_ERROR_CODES)]
        extra = {"error_details": ErrorDetails(error_code=code, error_message=text)}
    return Log(
        log_id=f"log-{index:06d}",
        node_id=node_id,
        log_level=level,
        message=message or _MESSAGES[level][index % len(_MESSAGES[level])],
        service_name=service_of(node_id),
        timestamp=iso_millis(at),
        **extra,  # type: ignore[arg-type]
    )


def sample_logs(count: int = 120, *, end: datetime = NOW) -> list[Log]:
    """`count` logs, one every 2.5 s up to `end`, from every node, mostly INFO."""
    pattern = [Level.INFO] * 6 + [Level.WARN, Level.INFO, Level.ERROR, Level.INFO]
    logs = []
    for index in range(count):
        level = Level.FATAL if index % 47 == 46 else pattern[index % len(pattern)]
        node = NODE_IDS[(index * 3) % len(NODE_IDS)]
        at = end - timedelta(milliseconds=2500 * (count - 1 - index))
        logs.append(make_log(index, at, level=level, node_id=node))
    return logs


def sample_nodes(now: datetime = NOW) -> list[NodeEntry]:
    entries = []
    for index, node in enumerate(NODE_IDS):
        down = node == "orders-1"
        heard = now - timedelta(seconds=52 if down else 1 + index % 4)
        entries.append(
            NodeEntry(
                node_id=node,
                service_name=service_of(node),
                status=NodeStatus.DOWN if down else NodeStatus.UP,
                registered_at=iso_millis(now - timedelta(hours=2)),
                last_heartbeat=iso_millis(heard),
            )
        )
    return entries


def make_alert(
    alert_id: str,
    severity: Severity,
    *,
    summary: str,
    kind: AlertKind = AlertKind.LOG_LEVEL,
    node_id: str | None = None,
    service_name: str | None = None,
    last_seen: datetime = NOW,
    count: int = 1,
    state: AlertState = AlertState.OPEN,
) -> Alert:
    return Alert(
        alert_id=alert_id,
        fingerprint=f"{kind}:{node_id or service_name}:{alert_id}",
        kind=kind,
        severity=severity,
        node_id=node_id,
        service_name=service_name,
        summary=summary,
        first_seen=iso_millis(last_seen - timedelta(minutes=count)),
        last_seen=iso_millis(last_seen),
        count=count,
        state=state,
        acked_by="alice" if state is AlertState.ACKED else None,
        acked_at=iso_millis(last_seen) if state is AlertState.ACKED else None,
    )


def sample_alerts(now: datetime = NOW) -> list[Alert]:
    return [
        make_alert(
            "a-node-down",
            Severity.CRITICAL,
            kind=AlertKind.NODE_DOWN,
            node_id="orders-1",
            service_name="orders",
            summary="orders-1 missed 3 heartbeats",
            last_seen=now - timedelta(seconds=45),
        ),
        make_alert(
            "a-pay-errors",
            Severity.ERROR,
            service_name="payments",
            summary="payments: 14 ERROR in 1 min (PAY-502)",
            last_seen=now - timedelta(seconds=20),
            count=14,
        ),
        make_alert(
            "a-slow",
            Severity.WARNING,
            kind=AlertKind.THRESHOLD,
            service_name="orders",
            summary="orders p95 1840 ms > 1000 ms",
            last_seen=now - timedelta(minutes=3),
            count=6,
            state=AlertState.ACKED,
        ),
        make_alert(
            "a-auth",
            Severity.WARNING,
            kind=AlertKind.BURST,
            service_name="auth",
            summary="auth: burst of WARN",
            last_seen=now - timedelta(minutes=1),
            count=3,
        ),
    ]


def sample_observer(*, stored_logs: bool = True) -> FakeObserver:
    """The fixed world of the tests at NOW: 8 nodes (one DOWN), 4 alerts, 120 stored logs,
    3 dead letters."""
    return FakeObserver(
        logs=sample_logs() if stored_logs else (),
        nodes=sample_nodes(),
        alerts=sample_alerts(),
        dead_letters=3,
        clock=lambda: NOW,
    )


# Driving the console in tests


def make_app(
    observer: FakeObserver, *, read_only: bool = False, capacity: int = 10_000, history: int = 0
) -> LogdeckApp:
    """The console on `observer`, on the observer's clock, with quick retries, for tests;
    the feed starts empty unless `history` asks for that many stored logs."""
    return LogdeckApp(
        observer,
        read_only=read_only,
        capacity=capacity,
        history=history,
        clock=observer.clock,
        flush_interval=0.05,
        backoff=Backoff(first=0.01, limit=0.05),
    )


class Notices:
    """The app's notifications, collected through `run_test(message_hook=...)`."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def __call__(self, message: Message) -> None:
        if isinstance(message, Notify):
            self.messages.append(message.notification.message)

    def mention(self, text: str) -> bool:
        return any(text in message for message in self.messages)


async def settle(pilot: Pilot[None], *groups: str) -> None:
    """Let pushed batches reach the screen, and the workers of `groups` finish.

    Flushes at once instead of waiting for the timer, so tests do not sleep.
    """
    app = pilot.app
    assert isinstance(app, LogdeckApp)
    for _ in range(3):
        await pilot.pause()
    app.flush()
    await pilot.pause()
    for worker in [worker for worker in app.workers if worker.group in groups]:
        with contextlib.suppress(WorkerCancelled, WorkerFailed):
            await worker.wait()
    await pilot.pause()


async def burst(pilot: Pilot[None], *keys: str) -> None:
    """Send `keys` as a person types them, then let the console settle.

    `pilot.press` waits for the app to go idle after each key, so each is handled before
    the next arrives. Keys typed quickly, or read from the terminal in one go, are all
    queued before the app handles the first: that is what this does, through the driver
    as the terminal's keys come, and it is where a key that opens a prompt can lose the
    keys after it.
    """
    app = pilot.app
    driver = app._driver
    assert driver is not None
    for key in keys:
        event = events.Key(key, key_to_character(REPLACED_KEYS.get(key, key)))
        event.set_sender(app)
        driver.send_message(event)
    await settle(pilot)


def screen_lines(app: App[None]) -> list[str]:
    """The characters the terminal shows, one string per row, as the screen composes them
    (what is clipped or scrolled away is not there)."""
    return [strip.text for strip in app.screen._compositor.render_strips()]


def pane_lines(app: App[None], widget: Widget) -> list[str]:
    """The rows of the screen inside `widget`'s content (borders and scrollbars cut off)."""
    region = widget.scrollable_content_region
    rows = screen_lines(app)[region.y : region.bottom]
    return [row[region.x : region.right] for row in rows]


# The demo


class DemoTraffic:
    """Drives a FakeObserver like a small live system, for trying the console by hand."""

    def __init__(self, observer: FakeObserver, rate: float, seed: int = 7) -> None:
        self._observer = observer
        self._rate = rate
        self._random = random.Random(seed)
        self._ids = itertools.count()
        self._down: dict[str, datetime] = {}

    async def run(self) -> None:
        tick = 0.1
        for step in itertools.count():
            now = utc_now()
            self._logs(now, tick)
            if step % 10 == 0:
                self._heartbeats(now)
            if step % 600 == 300:
                self._observer.set_health("Elasticsearch", up=False, detail="connection refused")
            if step % 600 == 400:
                self._observer.set_health("Elasticsearch", up=True)
            if step % 250 == 120:
                self._observer.dead_letter_count = (self._observer.dead_letter_count or 0) + 1
            await asyncio.sleep(tick)

    def _logs(self, now: datetime, tick: float) -> None:
        count = self._random.randint(0, int(self._rate * tick * 2))
        levels = [Level.INFO, Level.WARN, Level.ERROR, Level.FATAL]
        batch = []
        for _ in range(count):
            level = self._random.choices(levels, weights=[870, 100, 29, 1])[0]
            node = self._random.choice([n for n in NODE_IDS if n not in self._down])
            batch.append(make_log(next(self._ids), now, level=level, node_id=node))
        self._observer.push_logs(batch)
        del self._observer.history[:-50_000]
        fatal = [log for log in batch if log.log_level is Level.FATAL]
        if fatal:
            self._alert(fatal[0], now)

    def _alert(self, log: Log, now: datetime) -> None:
        alert_id = f"fatal-{log.service_name}"
        old = self._observer.alert_state.get(alert_id)
        if old is not None and old.state is not AlertState.RESOLVED:
            alert = msgspec.structs.replace(old, count=old.count + 1, last_seen=iso_millis(now))
        else:
            alert = make_alert(
                alert_id,
                Severity.CRITICAL,
                service_name=log.service_name,
                summary=f"{log.service_name}: FATAL {log.message}",
                last_seen=now,
            )
        self._observer.push_alerts([alert])

    def _heartbeats(self, now: datetime) -> None:
        if not self._down and self._random.random() < 0.05:
            self._down[self._random.choice(NODE_IDS)] = now
        for node, since in list(self._down.items()):
            if now - since > timedelta(seconds=40):
                del self._down[node]
        entries = []
        for node in NODE_IDS:
            old = self._observer.registry.get(node)
            down = node in self._down
            heard = old.last_heartbeat if down and old else iso_millis(now)
            entries.append(
                NodeEntry(
                    node_id=node,
                    service_name=service_of(node),
                    status=NodeStatus.DOWN
                    if down and now - self._down[node] > timedelta(seconds=6)
                    else NodeStatus.UP,
                    registered_at=old.registered_at if old else iso_millis(now),
                    last_heartbeat=heard,
                )
            )
        self._observer.push_nodes(entries)


class DemoObserver(FakeObserver):
    """A FakeObserver whose `start` sets the demo traffic going."""

    def __init__(self, rate: float) -> None:
        super().__init__(nodes=sample_nodes(utc_now()), dead_letters=0)
        self._traffic = DemoTraffic(self, rate)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await super().start()
        self._task = asyncio.create_task(self._traffic.run())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await super().close()


def main() -> None:
    parser = argparse.ArgumentParser(description="The logdeck console on generated traffic.")
    parser.add_argument("--rate", type=float, default=200.0, help="logs per second (200)")
    parser.add_argument("--read-only", action="store_true", help="no acknowledging or resolving")
    args = parser.parse_args()
    LogdeckApp(DemoObserver(args.rate), read_only=args.read_only).run()


if __name__ == "__main__":
    main()
