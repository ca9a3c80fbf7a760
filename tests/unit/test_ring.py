"""The feed's ring buffer: bounded, oldest dropped first, every drop counted."""

from __future__ import annotations

import pytest

from widgets.ring import Ring


def test_keeps_the_newest_items_and_counts_the_dropped() -> None:
    ring: Ring[int] = Ring(3)
    assert ring.extend([1, 2]) == 0
    assert ring.extend([3, 4, 5]) == 2
    assert list(ring) == [3, 4, 5]
    assert ring.dropped == 2
    assert len(ring) == 3
    assert ring[0] == 3 and ring[-1] == 5


def test_a_batch_larger_than_the_ring_keeps_its_tail() -> None:
    ring: Ring[int] = Ring(2)
    assert ring.extend(range(5)) == 3
    assert list(ring) == [3, 4]
    assert ring.dropped == 3


def test_sequence_numbers_count_every_item_appended() -> None:
    ring: Ring[str] = Ring(4)
    ring.extend("abc")
    assert ring.first_seq == 0 and ring.end_seq == 3
    ring.extend("def")
    assert ring.first_seq == 2 and ring.end_seq == 6
    assert list(ring) == ["c", "d", "e", "f"]


def test_drain_empties_but_keeps_counting() -> None:
    ring: Ring[int] = Ring(2)
    ring.extend([1, 2, 3])
    assert ring.drain() == [2, 3]
    assert len(ring) == 0 and ring.dropped == 1
    assert ring.first_seq == ring.end_seq == 3


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Ring(0)


def _first(pair: tuple[int, str]) -> int:
    return pair[0]


def test_merge_appends_a_batch_that_comes_after_everything_held() -> None:
    ring: Ring[int] = Ring(5)
    assert ring.merge([3, 1, 2], int) == 0
    assert ring.merge([3, 4], int) == 0
    assert list(ring) == [1, 2, 3, 3, 4]
    assert ring.first_seq == 0 and ring.end_seq == 5


def test_merge_puts_late_items_in_their_place_after_equal_ones() -> None:
    ring: Ring[tuple[int, str]] = Ring(10)
    ring.extend([(1, "a"), (3, "b"), (5, "c"), (7, "d")])
    assert ring.merge([(8, "new"), (3, "late"), (6, "late")], _first) == 0
    assert list(ring) == [
        (1, "a"),
        (3, "b"),
        (3, "late"),
        (5, "c"),
        (6, "late"),
        (7, "d"),
        (8, "new"),
    ]
    assert ring.end_seq == 7 and ring.dropped == 0


def test_merge_into_a_full_ring_drops_the_oldest_even_a_late_one() -> None:
    ring: Ring[int] = Ring(3)
    ring.extend([5, 6, 7])
    assert ring.merge([1, 8], int) == 2
    assert list(ring) == [6, 7, 8]
    assert ring.dropped == 2 and ring.end_seq == 5


def test_resize_grows_without_loss_and_shrinks_to_the_newest() -> None:
    ring: Ring[int] = Ring(3)
    ring.extend(range(3))
    assert ring.resize(6) == 0
    assert ring.extend(range(3, 6)) == 0
    assert list(ring) == [0, 1, 2, 3, 4, 5]
    assert ring.resize(2) == 4
    assert list(ring) == [4, 5]
    assert (ring.dropped, ring.first_seq, ring.end_seq) == (4, 4, 6)
    with pytest.raises(ValueError):
        ring.resize(0)
