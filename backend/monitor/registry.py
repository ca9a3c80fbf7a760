"""The node registry and its failure detector: pure decisions over events and a clock.

Nothing here does I/O or reads a clock, so every rule (timeouts, replays, the grace after
a restart) is tested with a fake clock. Two clocks are involved, and kept apart:

* The monitor's clock (`seen_at`, `now`: monotonic seconds) says when the monitor saw an
  event and how far it has read each node's partitions. Silence is judged on it alone,
  so a skewed node or accumulator clock can never make a live node look dead.
* The ingestion clock (`ingested_ms`: the Kafka record timestamp the accumulator set)
  fills `registered_at` and `last_heartbeat`, measures the gaps between a node's
  heartbeats, and tells a record replayed after a restart from a new one: a record no
  newer than what the registry already holds changes nothing.

A node is judged only where the caller says it has read everything about it (see
`Observed`); the caller turns the decisions (`Change`) into registry snapshots and alert
commands. A node DOWN past its retention, or forgotten by an operator, is retired: dropped
here, and by the caller from the registry topic, so stale DOWN rows do not pile up.
"""

from __future__ import annotations

import enum
import statistics
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

import msgspec

from backend.schemas import ForgetNode, Heartbeat, NodeEntry, NodeStatus, Registration, iso_millis

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND: Final = timedelta(milliseconds=1)
DEFAULT_FLAP_COUNT: Final = 3
DEFAULT_FLAP_WINDOW_S: Final = 300.0
DEFAULT_RETIRE_AFTER_S: Final = 86400.0
DEFAULT_RETIRE_GOODBYE_S: Final = 600.0


@dataclass(frozen=True, slots=True)
class Policy:
    """How silence is judged and how often an unchanged node is republished.

    `timeout_s` fixes the silence after which a node is DOWN; without it each node gets
    `intervals` times its own heartbeat interval (the median of its last `gaps_kept`
    gaps, `default_interval_s` until it has one), but never less than `min_timeout_s`,
    which absorbs the jitter of the path from node to monitor.
    """

    timeout_s: float | None = None
    default_interval_s: float = 1.0
    intervals: float = 3.0
    min_timeout_s: float = 1.0
    gaps_kept: int = 10
    heartbeat_every_s: float = 5.0
    """A newer `last_heartbeat` alone is published at most this often per node."""
    flap_count: int = DEFAULT_FLAP_COUNT
    flap_window_s: float = DEFAULT_FLAP_WINDOW_S
    """A node that goes DOWN more than `flap_count` times within `flap_window_s` is
    flapping: one alert for all of it instead of a NODE_DOWN per fall, until it has gone
    `flap_window_s` without falling."""
    retire_after_s: float = DEFAULT_RETIRE_AFTER_S
    """A node DOWN this long is retired: dropped from the registry, its alerts cleared."""
    retire_goodbye_s: float = DEFAULT_RETIRE_GOODBYE_S
    """The same for a node that said goodbye (a DOWN heartbeat): it left on purpose."""


@dataclass(frozen=True, slots=True)
class Event:
    """A registration, heartbeat or request to forget, with when it was ingested and when
    the monitor saw it."""

    message: Registration | Heartbeat | ForgetNode
    ingested_ms: int
    seen_at: float


@dataclass(frozen=True, slots=True)
class Observed:
    """How far the monitor has read everything about one node, on the monitor's clock.

    `horizon`: every record about the node written before it has been read. `since`:
    when the monitor began watching the node's partitions (caught up after its start or
    after gaining them); silence before that was not watched, so it does not count.
    """

    horizon: float
    since: float


Observe = Callable[[str], Observed | None]
"""Where the node stands for the caller's reading, or None if it cannot be judged now."""


class Kind(enum.Enum):
    UPDATED = "updated"
    REGISTERED = "registered"
    UNREGISTERED = "heartbeat without registration"
    WENT_DOWN = "went down"
    CAME_BACK = "came back"
    STARTED_FLAPPING = "started flapping"
    STOPPED_FLAPPING = "stopped flapping"
    RETIRED = "retired"
    """Dropped from the registry: DOWN past its retention, or forgotten by an operator."""
    KEPT = "not forgotten"
    """A request to forget a node that is UP: nothing changes."""


@dataclass(frozen=True, slots=True)
class Change:
    """A registry entry to publish; WENT_DOWN, CAME_BACK and the flapping ones also call for
    an alert command."""

    kind: Kind
    entry: NodeEntry
    summary: str = ""


@dataclass(slots=True)
class _Node:
    entry: NodeEntry
    registered_ms: int | None
    beat_ms: int | None
    seen_at: float | None
    """When the monitor last saw a sign of life; None when restored and not heard since."""
    published_at: float
    gap_from: int | None = None
    """Ingestion time of the previous heartbeat of the current run of UP beats."""
    gaps: deque[float] = field(default_factory=deque)
    falls: deque[float] = field(default_factory=deque)
    """When it went DOWN lately (the monitor's clock), within the policy's flap window."""
    flapping: bool = False
    down_at: float | None = None
    """When it went DOWN (the monitor's clock); None while UP."""
    said_goodbye: bool = False

    @property
    def heard_ms(self) -> int | None:
        known = [ms for ms in (self.registered_ms, self.beat_ms) if ms is not None]
        return max(known) if known else None


class Registry:
    """The latest entry of every node, and the decisions each event or silence calls for."""

    def __init__(self, policy: Policy | None = None) -> None:
        self.policy = policy or Policy()
        self._nodes: dict[str, _Node] = {}

    def __len__(self) -> int:
        return len(self._nodes)

    def entry(self, node_id: str) -> NodeEntry | None:
        node = self._nodes.get(node_id)
        return node.entry if node else None

    def heard_ms(self, node_id: str) -> int | None:
        """When the node was last heard from (registration or heartbeat), on the ingestion
        clock; None for a node unknown or never heard."""
        node = self._nodes.get(node_id)
        return node.heard_ms if node else None

    def entries(self) -> list[NodeEntry]:
        return [node.entry for node in self._nodes.values()]

    def restore(self, entries: Iterable[NodeEntry], now: float, wall_ms: int) -> None:
        """Take `entries` as the truth (a snapshot); their nodes are watched afresh.

        A DOWN node's retention counts from when it was last heard (`wall_ms` is the time
        of day now), so a monitor that restarts often still retires it.
        """
        for entry in entries:
            node = self._nodes[entry.node_id] = _Node(
                entry=entry,
                registered_ms=_ms(entry.registered_at),
                beat_ms=_ms(entry.last_heartbeat),
                seen_at=None,
                published_at=now,
            )
            heard_ms = node.heard_ms
            if entry.status is NodeStatus.DOWN:
                age = 0.0 if heard_ms is None else max(0.0, (wall_ms - heard_ms) / 1000)
                node.down_at = now - age

    def timeout_of(self, node_id: str) -> float:
        """The silence after which this node is DOWN."""
        policy = self.policy
        if policy.timeout_s is not None:
            return policy.timeout_s
        node = self._nodes.get(node_id)
        interval = statistics.median(node.gaps) if node and node.gaps else policy.default_interval_s
        return max(policy.min_timeout_s, policy.intervals * interval)

    def take(self, event: Event) -> list[Change]:
        """The changes one registration, heartbeat or request to forget makes (none for a
        replayed record)."""
        if isinstance(event.message, Registration):
            return self._registration(event.message, event)
        if isinstance(event.message, ForgetNode):
            return self._forget(event.message, event)
        return self._heartbeat(event.message, event)

    def judge(self, now: float, observe: Observe) -> list[Change]:
        """Nodes silent for longer than their timeout, on the reading `observe` reports,
        flapping nodes that have stopped falling, and DOWN nodes past their retention."""
        changes = self._settled(now) + self._expired(now)
        for node_id, node in self._nodes.items():
            if node.entry.status is not NodeStatus.UP:
                continue
            observed = observe(node_id)
            if observed is None:
                continue
            start = observed.since if node.seen_at is None else max(node.seen_at, observed.since)
            timeout = self.timeout_of(node_id)
            if observed.horizon - start <= timeout:
                continue
            last = node.entry.last_heartbeat
            summary = (
                f"{_label(node.entry)} silent for {now - start:.1f} s "
                f"(timeout {timeout:.1f} s); last heartbeat {last or 'never'}"
            )
            changes.append(self._went_down(node, now, summary))
        return changes

    def _registration(self, message: Registration, event: Event) -> list[Change]:
        node = self._nodes.get(message.node_id)
        stamp = _iso(event.ingested_ms)
        if node is None:
            entry = NodeEntry(
                node_id=message.node_id,
                service_name=message.service_name,
                status=NodeStatus.UP,
                registered_at=stamp,
                last_heartbeat=None,
            )
            node = self._nodes[message.node_id] = _Node(
                entry, event.ingested_ms, None, event.seen_at, event.seen_at
            )
            return [Change(Kind.REGISTERED, entry, f"{_label(entry)} registered")]
        if node.registered_ms is not None and event.ingested_ms <= node.registered_ms:
            return []  # a replay of the registration the registry holds
        heard_ms = node.heard_ms
        returns = node.entry.status is NodeStatus.DOWN and (
            heard_ms is None or event.ingested_ms > heard_ms
        )
        node.registered_ms = event.ingested_ms
        node.seen_at = event.seen_at
        node.entry = msgspec.structs.replace(
            node.entry, service_name=message.service_name, registered_at=stamp
        )
        if returns:
            return [self._came_back(node, event.seen_at, "registered again")]
        node.published_at = event.seen_at
        return [Change(Kind.REGISTERED, node.entry, f"{_label(node.entry)} registered")]

    def _heartbeat(self, message: Heartbeat, event: Event) -> list[Change]:
        node = self._nodes.get(message.node_id)
        stamp = _iso(event.ingested_ms)
        if node is None:
            entry = NodeEntry(
                node_id=message.node_id,
                service_name=None,
                status=message.status,
                registered_at=None,
                last_heartbeat=stamp,
            )
            node = self._nodes[message.node_id] = _Node(
                entry, None, event.ingested_ms, event.seen_at, event.seen_at
            )
            if message.status is NodeStatus.UP:
                node.gap_from = event.ingested_ms
            summary = f"{_label(entry)} sends heartbeats without having registered"
            return [Change(Kind.UNREGISTERED, entry, summary)]
        if node.beat_ms is not None and not _newer_beat(event, message, node):
            return []  # a replay, or older than a heartbeat already taken
        was = node.entry.status
        first_beat = node.entry.last_heartbeat is None
        if node.gap_from is not None and message.status is NodeStatus.UP:
            node.gaps.append((event.ingested_ms - node.gap_from) / 1000)
            while len(node.gaps) > self.policy.gaps_kept:
                node.gaps.popleft()
        node.gap_from = event.ingested_ms if message.status is NodeStatus.UP else None
        node.beat_ms = event.ingested_ms
        node.seen_at = event.seen_at
        node.entry = msgspec.structs.replace(node.entry, last_heartbeat=stamp)
        if was is NodeStatus.UP and message.status is NodeStatus.DOWN:
            summary = f"{_label(node.entry)} reported DOWN in its heartbeat"
            change = self._went_down(node, event.seen_at, summary)
            node.said_goodbye = True
            return [change]
        if was is NodeStatus.DOWN and message.status is NodeStatus.UP:
            return [self._came_back(node, event.seen_at, "heartbeats UP again")]
        if not first_beat and event.seen_at - node.published_at < self.policy.heartbeat_every_s:
            return []
        node.published_at = event.seen_at
        return [Change(Kind.UPDATED, node.entry)]

    def _went_down(self, node: _Node, now: float, summary: str) -> Change:
        node.entry = msgspec.structs.replace(node.entry, status=NodeStatus.DOWN)
        node.gap_from = None
        node.gaps.clear()
        node.published_at = now
        node.down_at = now
        window = self.policy.flap_window_s
        node.falls.append(now)
        while now - node.falls[0] > window:
            node.falls.popleft()
        if node.flapping:
            return Change(Kind.UPDATED, node.entry)
        if len(node.falls) > self.policy.flap_count:
            node.flapping = True
            summary = (
                f"{_label(node.entry)} is flapping: down {len(node.falls)} times "
                f"within {window:g} s"
            )
            return Change(Kind.STARTED_FLAPPING, node.entry, summary)
        return Change(Kind.WENT_DOWN, node.entry, summary)

    def _came_back(self, node: _Node, now: float, how: str) -> Change:
        node.entry = msgspec.structs.replace(node.entry, status=NodeStatus.UP)
        node.published_at = now
        node.down_at = None
        node.said_goodbye = False
        if node.flapping:
            return Change(Kind.UPDATED, node.entry)
        return Change(Kind.CAME_BACK, node.entry, f"{_label(node.entry)} is back: {how}")

    def _settled(self, now: float) -> list[Change]:
        """Flapping nodes that have not gone down for a whole flap window: flapping no more
        (and, one that stayed DOWN, down for good: the caller raises its NODE_DOWN)."""
        window = self.policy.flap_window_s
        changes = []
        for node in self._nodes.values():
            if node.flapping and now - node.falls[-1] > window:
                node.flapping = False
                node.falls.clear()
                state = "down" if node.entry.status is NodeStatus.DOWN else "up"
                summary = f"{_label(node.entry)} stopped flapping: {state} for {window:g} s"
                changes.append(Change(Kind.STOPPED_FLAPPING, node.entry, summary))
        return changes

    def _expired(self, now: float) -> list[Change]:
        """DOWN nodes past their retention, retired."""
        policy = self.policy
        changes = []
        for node in list(self._nodes.values()):
            if node.down_at is None:
                continue
            retention = policy.retire_goodbye_s if node.said_goodbye else policy.retire_after_s
            if now - node.down_at > retention:
                why = "said goodbye" if node.said_goodbye else "went silent"
                summary = f"{_label(node.entry)} retired: {why} {now - node.down_at:.0f} s ago"
                changes.append(self._retire(node, summary))
        return changes

    def _forget(self, message: ForgetNode, event: Event) -> list[Change]:
        """Retire a DOWN node at an operator's request; one heard since the request, or UP,
        is kept (a replayed request thus changes nothing)."""
        node = self._nodes.get(message.node_id)
        if node is None:
            return []
        heard_ms = node.heard_ms
        if heard_ms is not None and event.ingested_ms <= heard_ms:
            return []
        if node.entry.status is NodeStatus.UP:
            summary = f"{_label(node.entry)} is UP: not forgotten (asked by {message.by})"
            return [Change(Kind.KEPT, node.entry, summary)]
        return [self._retire(node, f"{_label(node.entry)} forgotten by {message.by}")]

    def _retire(self, node: _Node, summary: str) -> Change:
        del self._nodes[node.entry.node_id]
        return Change(Kind.RETIRED, node.entry, summary)


def _label(entry: NodeEntry) -> str:
    return f"node {entry.node_id} ({entry.service_name or 'service unknown'})"


def _iso(ms: int) -> str:
    return iso_millis(_EPOCH + ms * _MILLISECOND)


def _ms(stamp: str | None) -> int | None:
    """Milliseconds since the epoch of an ISO 8601 timestamp, exactly (no float rounding)."""
    if stamp is None:
        return None
    return (datetime.fromisoformat(stamp) - _EPOCH) // _MILLISECOND


def _newer_beat(event: Event, message: Heartbeat, node: _Node) -> bool:
    """Whether a heartbeat comes after the node's last one.

    A node's goodbye (DOWN) often leaves in the same millisecond as its last UP: at equal
    times DOWN after UP is news, anything else is a replay.
    """
    assert node.beat_ms is not None
    if event.ingested_ms != node.beat_ms:
        return event.ingested_ms > node.beat_ms
    return message.status is NodeStatus.DOWN and node.entry.status is NodeStatus.UP
