"""Which receivers an alert goes to, by the labels the routes match on (see
`backend.alert_labels`)."""

from __future__ import annotations

from backend.alert_labels import labels_of
from backend.notify.config import NotifyConfig, Route
from backend.schemas import Alert


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
