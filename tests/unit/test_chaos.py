"""The demo's cast: every life ends, by a crash or a restart, and the first is calm."""

from __future__ import annotations

import random

from simulators.chaos import Mischief
from simulators.options import ErrorBurst, NodeOptions

BASE = NodeOptions(rate=5.0, error_burst=ErrorBurst(10, 1.0), crash_after=3.0)


def test_the_first_life_is_calm_and_ends_in_a_restart_within_the_life_span() -> None:
    mischief = Mischief.lasting(20.0)
    for seed in range(50):
        life = mischief.first_life(BASE, random.Random(seed))
        assert (life.error_burst, life.crash_after) == (None, None)
        assert 10.0 <= life.duration <= 30.0


def test_every_later_life_ends_by_a_crash_or_a_restart_and_both_happen() -> None:
    mischief = Mischief.lasting(20.0)
    rng = random.Random(7)
    lives = [mischief.next_life(BASE, rng) for _ in range(200)]
    crashes = [life.crash_after for life in lives if life.crash_after is not None]
    restarts = [life for life in lives if life.crash_after is None]
    assert crashes and restarts
    assert all(10.0 <= at <= 30.0 for at in crashes)
    assert all(life.duration == 0.0 for life in lives if life.crash_after is not None)
    assert all(10.0 <= life.duration <= 30.0 for life in restarts)
    for life in lives:
        end = life.crash_after or life.duration
        assert life.error_burst is None or life.error_burst.at <= end / 2
    assert any(life.error_burst is not None for life in lives)
    assert len({life.seed for life in lives}) > 190
