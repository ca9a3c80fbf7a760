"""One toast for new CRITICAL alerts, however many arrive, so a burst never buries the feed.

While the notice is on screen, alerts that arrive after it replace it with one that
counts them all ("20 new CRITICAL alerts: ...") and starts its time over; the bell rings
only when a notice appears, not for each batch it absorbs. Once the notice is gone (timed
out or clicked away), the next CRITICAL alert starts a new one.
"""

from __future__ import annotations

from typing import Any

from textual.app import App
from textual.notifications import Notification, Notify

from backend.schemas import Alert

TIMEOUT_S = 10.0
SHOWN = 3
"""How many summaries the notice names; the rest are counted."""


class CriticalNotice:
    """The console's single notice of new CRITICAL alerts."""

    def __init__(self) -> None:
        self._shown: Notification | None = None
        self._count = 0
        self._latest: list[str] = []
        """The summaries of the newest alerts told of, newest first, at most `SHOWN`."""

    def announce(self, app: App[Any], alerts: list[Alert]) -> None:
        """Tell of `alerts`, new CRITICAL ones, folded into the notice still on screen."""
        if not alerts:
            return
        if self._shown is not None and self._on_screen(app, self._shown):
            # Textual has no public call to withdraw one notification (its own toasts
            # use this one when clicked).
            app._unnotify(self._shown, refresh=False)
        else:
            self._count, self._latest = 0, []
            app.bell()
        self._count += len(alerts)
        self._latest = [alert.summary for alert in reversed(alerts)][:SHOWN] + self._latest
        del self._latest[SHOWN:]
        self._shown = self._notification()
        app.post_message(Notify(self._shown))

    def _notification(self) -> Notification:
        count = self._count
        names = " · ".join(self._latest)
        title = "CRITICAL alert" if count == 1 else f"{count} new CRITICAL alerts"
        if count > SHOWN:
            names += f" (+{count - SHOWN} more)"
        return Notification(names, title, "error", TIMEOUT_S, markup=False)

    @staticmethod
    def _on_screen(app: App[Any], notification: Notification) -> bool:
        return not notification.has_expired and notification in app._notifications
