"""Alerts: rules over the log stream, folded into few alerts that people acknowledge.

The alerter (`service`) owns the alerts: it applies the rules (`rules`) and the commands
of consoles and the heartbeat monitor through a pure state machine (`engine`), and
publishes each alert's full snapshot to the compacted alerts topic, keyed by alert_id.
Consoles read and command them through `client`. This module reads both off the bus.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Final

import msgspec

from backend.bus import Incoming
from backend.schemas import Alert, AlertCommand, InvalidRecord, decode_as

log = logging.getLogger("logdeck.alerting")

_command_decoder: Final = msgspec.json.Decoder(AlertCommand)


def decode_command(data: bytes) -> AlertCommand:
    """A command back from its JSON bytes; `InvalidRecord` if they are not one."""
    try:
        command: AlertCommand = _command_decoder.decode(data)
    except (msgspec.ValidationError, msgspec.DecodeError) as error:
        raise InvalidRecord(f"not an alert command: {error}") from None
    return command


def latest_alerts(records: Iterable[Incoming]) -> dict[str, Alert]:
    """The last snapshot of each alert among `records` (read in order), by alert_id.

    Records that are not alerts are skipped, with a warning: one bad record must not hide
    the others.
    """
    alerts: dict[str, Alert] = {}
    for record in records:
        try:
            alert = decode_as(record.value, Alert)
        except InvalidRecord as error:
            log.warning(
                "skipped %s[%d]@%d: %s", record.topic, record.partition, record.offset, error
            )
            continue
        alerts[alert.alert_id] = alert
    return alerts
