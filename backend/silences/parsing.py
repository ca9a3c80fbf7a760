"""What a person types to make a silence: matchers (`service=Payment`, `node=~pay-0[12]`),
spans of time (`2h`), and the silence they make.

Shared by the command line and the console, so both accept and refuse the same things with
the same one-line reasons.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Final

from backend.schemas import Matcher, MatcherName, Severity, Silence, iso_millis

_NAMES: Final = ", ".join(name.value for name in MatcherName)
_SPAN: Final = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
_UNITS: Final = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


class SilenceInputError(ValueError):
    """A matcher or span that cannot be used; the message says why, in one line."""


def parse_matcher(text: str) -> Matcher:
    """`name=value` (equality) or `name=~regex` (the whole label must match)."""
    name, equals, value = text.partition("=")
    if not equals:
        raise SilenceInputError(f"matcher {text!r} is not name=value or name=~regex")
    name = name.strip()
    try:
        known = MatcherName(name)
    except ValueError:
        raise SilenceInputError(
            f"matcher {text!r}: unknown name {name!r} (expected one of {_NAMES})"
        ) from None
    regex = value.startswith("~")
    if regex:
        value = value[1:]
        try:
            re.compile(value)
        except re.error as error:
            raise SilenceInputError(
                f"matcher {text!r}: not a regular expression: {error}"
            ) from None
    if not value:
        raise SilenceInputError(f"matcher {text!r} has no value")
    if known is MatcherName.SEVERITY and not regex:
        value = _severity(text, value)
    return Matcher(name=known, value=value, regex=regex)


def _severity(text: str, value: str) -> str:
    try:
        return Severity(value.upper()).value
    except ValueError:
        choices = ", ".join(severity.value for severity in Severity)
        raise SilenceInputError(
            f"matcher {text!r}: unknown severity {value!r} (expected {choices})"
        ) from None


def parse_duration(text: str) -> timedelta:
    """`90s`, `30m`, `2h`, `1d` or `1h30m`: a span greater than zero."""
    value = text.strip().lower()
    spans = list(_SPAN.finditer(value))
    if not spans or "".join(span.group(0) for span in spans) != value:
        raise SilenceInputError(f"{text!r} is not a duration (e.g. 30m, 2h, 1d, 1h30m)")
    try:
        total = sum(
            (timedelta(**{_UNITS[span.group(2)]: float(span.group(1))}) for span in spans),
            timedelta(),
        )
    except OverflowError:
        raise SilenceInputError(f"duration {text!r} is too long") from None
    if total <= timedelta():
        raise SilenceInputError(f"duration {text!r} must be longer than zero")
    return total


def format_matcher(matcher: Matcher) -> str:
    """The matcher as it is typed: `name=value` or `name=~regex`."""
    return f"{matcher.name}={'~' if matcher.regex else ''}{matcher.value}"


def new_silence(
    matchers: Sequence[Matcher],
    duration: timedelta,
    *,
    comment: str,
    by: str,
    now: datetime,
    maintenance: bool = False,
) -> Silence:
    """A silence starting `now` for `duration`, with a fresh id (`ValueError` if invalid:
    no matcher, or an end beyond the years stored)."""
    return Silence(
        silence_id=uuid.uuid4().hex[:16],
        matchers=tuple(matchers),
        starts_at=iso_millis(now),
        ends_at=end_of(now, duration),
        comment=comment,
        created_by=by,
        maintenance=maintenance,
    )


def end_of(now: datetime, duration: timedelta) -> str:
    """`duration` after `now`, as a timestamp (`ValueError` past what a datetime holds)."""
    try:
        return iso_millis(now + duration)
    except OverflowError:
        raise ValueError(f"a silence of {duration} would end beyond the years stored") from None
