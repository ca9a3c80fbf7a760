"""What the app's feed workers post to the main screen, one message per flush.

The workers collect batches from the observer between flushes (every 100 ms), so the
screen gets a handful of messages a second however many logs arrive.
"""

from __future__ import annotations

from textual.message import Message

from backend.schemas import Alert, Log, NodeEntry, RetiredNode, Silence


class LogsArrived(Message):
    """Logs received since the last flush, oldest first."""

    def __init__(self, logs: list[Log], dropped: int, stored: int = 0) -> None:
        super().__init__()
        self.logs = logs
        self.dropped = dropped
        """Logs the console could not keep up with and discarded before showing them."""
        self.stored = stored
        """How many of the first logs came from the store (the history), not the tail."""


class HistoryNote(Message):
    """How the feed's history from the store is coming: loading, how many, or why not."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


class NodesChanged(Message):
    """Registry entries that changed since the last flush (the whole registry at first)."""

    def __init__(self, entries: list[NodeEntry | RetiredNode]) -> None:
        super().__init__()
        self.entries = entries


class AlertsChanged(Message):
    """Alerts that changed since the last flush; `initial` marks the first state seen."""

    def __init__(self, alerts: list[Alert], *, initial: bool) -> None:
        super().__init__()
        self.alerts = alerts
        self.initial = initial


class SilencesChanged(Message):
    """Silences added or changed since the last flush (every silence at first)."""

    def __init__(self, silences: list[Silence]) -> None:
        super().__init__()
        self.silences = silences
