"""The rule stage's pure part: which rules a log fires, as commands for the alerts' keeper.

Matching needs nothing but the rules and the log, so any number of alerter copies can
match logs from any partitions. What the matches add up to (folding, rates, lifecycle)
is the keeper's (`engine`), which sees every match of one fingerprint.
"""

from __future__ import annotations

from backend.alerting.rules import Rule, RuleSet
from backend.schemas import AlertKind, Level, Log, RuleMatch


def rule_matches(rules: RuleSet, log: Log) -> list[RuleMatch]:
    """One match per rule that fires on `log`, in the rules' order."""
    return [_match(rule, log) for rule in rules.rules if rule.matches(log)]


def _match(rule: Rule, log: Log) -> RuleMatch:
    service = log.service_name
    fingerprint = f"{rule.name}:{service}"
    node_id: str | None = log.node_id
    if rule.kind is AlertKind.BURST:
        assert rule.rate is not None
        node_id = None
        summary = (
            f"more than {rule.rate.count} {_what(rule)} from {service} "
            f"within {rule.rate.window_s:g} s"
        )
    elif rule.kind is AlertKind.THRESHOLD:
        summary = (
            f"{log.message} ({log.response_time_ms:g} ms, limit {log.threshold_limit_ms:g} ms)"
        )
    else:
        details = log.error_details
        code = details.error_code if details else "-"
        fingerprint = f"{fingerprint}:{code}"
        summary = f"{code}: {details.error_message}" if details else log.message
    return RuleMatch(
        fingerprint=fingerprint,
        rule=rule.name,
        log_id=log.log_id,
        kind=rule.kind,
        severity=rule.severity,
        node_id=node_id,
        service_name=service,
        summary=summary,
        at=log.timestamp,
        burst_count=rule.rate.count if rule.rate is not None else None,
        burst_window_s=rule.rate.window_s if rule.rate is not None else None,
    )


def _what(rule: Rule) -> str:
    if not rule.levels:
        return "matching logs"
    levels: list[Level] = sorted(rule.levels, key=lambda level: level.rank)
    return "/".join(levels) + " logs"
