"""Generated log lines fit the message shapes, and levels follow the configured mix."""

from __future__ import annotations

import random
import re
from collections import Counter

import msgspec
import pytest

from backend.schemas import Level, Log, validate_record
from simulators.traffic import DEFAULT_MIX, PROFILES, SLOW_WARN_SHARE, Traffic

SERVICES = [profile.name for profile in PROFILES]


def traffic(service: str = "PaymentService", seed: int = 1) -> Traffic:
    return Traffic("payment-01", service, random.Random(seed))


@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.parametrize("level", list(Level))
def test_every_service_and_level_validates(service: str, level: Level) -> None:
    source = traffic(service)
    for _ in range(50):
        record = msgspec.to_builtins(source.log(level))
        message = validate_record(record)
        assert isinstance(message, Log)
        assert message.log_level is level
        assert message.service_name == service
        assert message.message and "{" not in message.message


def test_warn_lines_carry_timings_on_both_sides_of_the_threshold() -> None:
    source = traffic("OrderService")
    warns = [source.log(Level.WARN) for _ in range(2000)]
    assert all(w.threshold_limit_ms == source.profile.threshold_ms for w in warns)
    slow = sum(1 for w in warns if (w.response_time_ms or 0) > (w.threshold_limit_ms or 0))
    assert slow / len(warns) == pytest.approx(SLOW_WARN_SHARE, abs=0.04)
    assert 0 < slow < len(warns)


@pytest.mark.parametrize("level", [Level.ERROR, Level.FATAL])
def test_errors_carry_a_service_error_code(level: Level) -> None:
    for profile in PROFILES:
        line = traffic(profile.name).log(level)
        assert line.error_details is not None
        assert re.fullmatch(r"[A-Z]{3,4}-\d{3}", line.error_details.error_code)
        assert line.error_details.error_message == line.message
        assert line.response_time_ms is None


def test_other_levels_carry_no_extra_fields() -> None:
    record = msgspec.to_builtins(traffic().log(Level.INFO))
    assert set(record) == {
        "message_type",
        "log_id",
        "node_id",
        "log_level",
        "message",
        "service_name",
        "timestamp",
    }


def test_the_level_mix_is_as_configured() -> None:
    source = traffic(seed=42)
    samples = 20_000
    counts = Counter(source.log().log_level for _ in range(samples))
    for level, share in DEFAULT_MIX.items():
        assert counts[level] / samples == pytest.approx(share, abs=0.01), level


def test_a_custom_mix_is_followed() -> None:
    source = Traffic("n", "AuthService", random.Random(3), mix={Level.INFO: 1, Level.FATAL: 1})
    counts = Counter(source.log().log_level for _ in range(4000))
    assert set(counts) == {Level.INFO, Level.FATAL}
    assert counts[Level.FATAL] / 4000 == pytest.approx(0.5, abs=0.03)


def test_a_burst_repeats_one_error_code() -> None:
    source = traffic("ShippingService")
    burst = [source.burst_error() for _ in range(30)]
    assert {line.log_level for line in burst} == {Level.ERROR}
    assert len({line.error_details.error_code for line in burst if line.error_details}) == 1


def test_a_seed_repeats_the_content_but_never_the_log_ids() -> None:
    one, two = traffic(seed=7), traffic(seed=7)
    for _ in range(20):
        a, b = one.log(), two.log()
        assert (a.message, a.log_level) == (b.message, b.log_level)
        assert a.log_id != b.log_id


def test_an_unknown_service_still_gets_content() -> None:
    line = Traffic("x-01", "BillingService", random.Random(1)).log(Level.ERROR)
    message = validate_record(msgspec.to_builtins(line))
    assert isinstance(message, Log) and message.service_name == "BillingService"
