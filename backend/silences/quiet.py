"""Why an alert notifies nobody right now: a silence covers it, its node is in maintenance,
or its node is down (an open NODE_DOWN inhibits the alerts of that node's logs).

The notifier asks it before every delivery and the console shows its answer beside each
alert; both keep all of it, whichever alerts they follow: every silence, and the NODE_DOWN
alerts still open.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from backend.schemas import Alert, AlertKind, AlertState
from backend.silences.book import SilenceBook


@dataclass(frozen=True, slots=True)
class Hush:
    """Why an alert is quiet: `kind` in a word, `detail` in a phrase."""

    kind: Literal["silenced", "maintenance", "inhibited"]
    detail: str

    def __str__(self) -> str:
        return self.detail


class Quiet:
    """Silences, maintenance windows and the nodes down, as of what was taken so far."""

    def __init__(self) -> None:
        self.book = SilenceBook()
        self._down: dict[str, str] = {}
        """Open NODE_DOWN alerts: their node by alert_id."""

    def take_alert(self, alert: Alert) -> None:
        """Note an alert's latest state: only NODE_DOWNs matter here."""
        if alert.kind is not AlertKind.NODE_DOWN or not alert.node_id:
            return
        if alert.state is AlertState.RESOLVED:
            self._down.pop(alert.alert_id, None)
        else:
            self._down[alert.alert_id] = alert.node_id

    def reason(self, alert: Alert, at: datetime) -> Hush | None:
        """Why `alert` notifies nobody at `at`, or None when it may."""
        node = alert.node_id
        if node is not None and node in self.book.maintenance(at):
            return Hush("maintenance", f"{node} in maintenance")
        silence = self.book.silencing(alert, at)
        if silence is not None:
            return Hush("silenced", f"silenced by {silence.silence_id} ({silence.comment})")
        if (
            node is not None
            and alert.kind is not AlertKind.NODE_DOWN
            and node in self._down.values()
        ):
            return Hush("inhibited", f"inhibited: {node} is down")
        return None
