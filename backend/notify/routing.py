"""Which receivers an alert goes to, by the labels the routes match on.

An alert carries no rule or error code of its own: both are read back from its
fingerprint, which the alerter builds as `rule:service[:error_code]` (LOG_LEVEL rules add
the code) and the monitor as `NODE_DOWN:node`.
"""

from __future__ import annotations

from backend.notify.config import NotifyConfig, Route
from backend.schemas import Alert, AlertKind


def rule_of(alert: Alert) -> str:
    """The rule that raised `alert` (`NODE_DOWN` for the monitor's)."""
    return alert.fingerprint.split(":", 1)[0]


def error_code_of(alert: Alert) -> str | None:
    if alert.kind is not AlertKind.LOG_LEVEL or alert.service_name is None:
        return None
    prefix = f"{rule_of(alert)}:{alert.service_name}:"
    return alert.fingerprint[len(prefix) :] if alert.fingerprint.startswith(prefix) else None


def labels_of(alert: Alert) -> dict[str, str]:
    """The labels routes match on (names as in `match`); absent ones are left out."""
    labels = {"severity": str(alert.severity), "rule": rule_of(alert)}
    if alert.service_name:
        labels["service"] = alert.service_name
    if alert.node_id:
        labels["node"] = alert.node_id
    code = error_code_of(alert)
    if code:
        labels["error_code"] = code
    return labels


def matches(route: Route, labels: dict[str, str]) -> bool:
    """Whether every name of the route's `match` has one of its values among `labels`."""
    return all(labels.get(name) in values for name, values in route.match.items())


def routes_of(config: NotifyConfig, alert: Alert) -> dict[str, Route]:
    """The receivers `alert` goes to, each with the first of its routes that takes it.

    Without any route in the file, every receiver takes every alert.
    """
    if not config.routes:
        return {receiver.name: Route(receiver.name) for receiver in config.receivers}
    labels = labels_of(alert)
    chosen: dict[str, Route] = {}
    for route in config.routes:
        if route.receiver not in chosen and matches(route, labels):
            chosen[route.receiver] = route
    return chosen
