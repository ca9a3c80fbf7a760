"""An alert's labels: what notifier routes and silences match on, read off the alert.

`rule` is the first part of the fingerprint (`NODE_DOWN` for the monitor's alerts);
`error_code` is the end of a LOG_LEVEL fingerprint (`rule:service:code`), which no other
alert has. Labels an alert lacks (a BURST alert's node, say) are left out.
"""

from __future__ import annotations

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
    """severity, rule, and where the alert has them, service, node and error_code."""
    labels = {"severity": str(alert.severity), "rule": rule_of(alert)}
    if alert.service_name:
        labels["service"] = alert.service_name
    if alert.node_id:
        labels["node"] = alert.node_id
    code = error_code_of(alert)
    if code:
        labels["error_code"] = code
    return labels
