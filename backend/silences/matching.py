"""Which silence, if any, covers an alert at a given moment: pure, for notifier and console.

Matchers read an alert's labels (`backend.alert_labels`), the names of a notifier
route's `match`: severity, service, node, rule and error_code. A label an alert lacks
reads as the empty string, as in Alertmanager: `node=x` never covers an alert without a
node, `node=~.*` does. A regex must match the whole label.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from datetime import datetime

from backend.alert_labels import labels_of
from backend.schemas import Alert, AlertKind, Matcher, MatcherName, Silence


def is_active(silence: Silence, at: datetime) -> bool:
    """Whether `silence` is in force at `at` (timezone-aware): from starts_at, until ends_at."""
    return moment(silence.starts_at) <= at < moment(silence.ends_at)


def covers(silence: Silence, alert: Alert, at: datetime) -> bool:
    """Whether `silence` is active at `at` and every one of its matchers matches `alert`."""
    return is_active(silence, at) and matches_all(silence.matchers, alert)


def matches_all(matchers: Iterable[Matcher], alert: Alert) -> bool:
    """Whether every matcher matches `alert`, whatever the time: a draft silence's preview."""
    labels = labels_of(alert)
    return all(matches(matcher, labels.get(matcher.name, "")) for matcher in matchers)


def matchers_for(alert: Alert) -> tuple[Matcher, ...]:
    """Equality matchers on the labels that make `alert` what it is (those its fingerprint
    is built of: rule, service, error code, or NODE_DOWN and node), to silence exactly it
    and its later repeats; a person widens them from there."""
    labels = labels_of(alert)
    names = [MatcherName.RULE, MatcherName.SERVICE, MatcherName.ERROR_CODE]
    if alert.kind is AlertKind.NODE_DOWN:
        names = [MatcherName.RULE, MatcherName.NODE]
    return tuple(Matcher(name=name, value=labels[name]) for name in names if name in labels)


def silencing(silences: Iterable[Silence], alert: Alert, at: datetime) -> Silence | None:
    """The silence that covers `alert` at `at` and lasts longest, or None: the alert notifies."""
    covering = [silence for silence in silences if covers(silence, alert, at)]
    return max(covering, key=lambda silence: moment(silence.ends_at), default=None)


def active_maintenance(silences: Iterable[Silence], at: datetime) -> set[str]:
    """The nodes under a maintenance window at `at`: they raise no NODE_DOWN."""
    return {
        matcher.value
        for silence in silences
        if silence.maintenance and is_active(silence, at)
        for matcher in silence.matchers
        if matcher.name is MatcherName.NODE and not matcher.regex
    }


def matches(matcher: Matcher, value: str) -> bool:
    if matcher.regex:
        return _pattern(matcher.value).fullmatch(value) is not None
    return matcher.value == value


@functools.lru_cache(maxsize=1024)
def _pattern(text: str) -> re.Pattern[str]:
    return re.compile(text)


@functools.lru_cache(maxsize=4096)
def moment(stamp: str) -> datetime:
    """An ISO 8601 timestamp of a silence as a datetime (silences are read on every alert)."""
    return datetime.fromisoformat(stamp)
