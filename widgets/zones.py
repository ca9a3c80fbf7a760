"""Times on the search screen in UTC, as logged, or in the machine's local time.

Local time is the system's zone at each moment (`datetime.astimezone()`), so times on both
sides of a daylight-saving change read right; a typed time without a zone is read in the
zone shown, so what is typed means what is on screen.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime


class Zone(enum.Enum):
    UTC = "UTC"
    LOCAL = "local"

    def toggled(self) -> Zone:
        return Zone.LOCAL if self is Zone.UTC else Zone.UTC

    def show(self, moment: datetime) -> datetime:
        """`moment` on this zone's clock."""
        return moment.astimezone(UTC if self is Zone.UTC else None)

    def read(self, naive: datetime) -> datetime:
        """A time typed without a zone, taken as this zone's."""
        return naive.replace(tzinfo=UTC) if self is Zone.UTC else naive.astimezone()

    def label(self, now: datetime) -> str:
        """`UTC`, or `local UTC+01:00` with the offset it has at `now`."""
        if self is Zone.UTC:
            return "UTC"
        offset = self.show(now).strftime("%z")
        return f"local UTC{offset[:3]}:{offset[3:]}"

    def day_time(self, timestamp: str) -> str:
        """`11-24 10:15:30` for results that may span days; the text as is if unreadable."""
        try:
            moment = datetime.fromisoformat(timestamp)
        except ValueError:
            return timestamp[:14]
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return self.show(moment).strftime("%m-%d %H:%M:%S")

    def typed(self, moment: datetime) -> str:
        """`moment` as it would be typed in this zone: `2026-11-24 10:15:30[.250]`."""
        shown = self.show(moment)
        text = shown.strftime("%Y-%m-%d %H:%M:%S")
        millis = shown.microsecond // 1000
        return f"{text}.{millis:03d}" if millis else text
