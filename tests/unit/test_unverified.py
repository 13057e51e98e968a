"""The unverified keys: intervals of primary keys written since reconciliation compared them."""

from __future__ import annotations

import random

from passport_sync import unverified


def test_add_joins_overlapping_and_adjacent_intervals() -> None:
    assert unverified.add([(1, 3)], [(4, 6), (10, 12), (11, 15)]) == [(1, 6), (10, 15)]
    assert unverified.of_keys([5, 3, 4, 9]) == [(3, 5), (9, 9)]


def test_a_long_list_is_shortened_by_joining_the_closest_intervals_and_never_loses_a_key() -> None:
    rng = random.Random(7)
    keys = rng.sample(range(1, 1_000_000), 3 * unverified.MAX_INTERVALS)
    marks = unverified.of_keys(keys)
    assert len(marks) <= unverified.MAX_INTERVALS
    assert unverified.covers(marks, keys)
    assert all(a <= b for a, b in marks) and all(marks[i][1] < marks[i + 1][0] for i in range(len(marks) - 1))


def test_remove_cuts_a_span_out_of_the_intervals() -> None:
    marks = [(1, 10), (20, 30), (40, 50)]
    assert unverified.remove(marks, 5, 25) == [(1, 4), (26, 30), (40, 50)]
    assert unverified.remove(marks, 1, 100) == []
    assert unverified.within(marks, 5, 25) == [(5, 10), (20, 25)]


def test_covers_and_contains() -> None:
    marks = [(1, 10), (20, 30)]
    assert unverified.covers(marks, [1, 10, 25])
    assert not unverified.covers(marks, [11])
    assert unverified.contains(marks, 20) and not unverified.contains(marks, 15)


def test_ranges_touched_are_the_ranges_holding_a_key_among_those_checked() -> None:
    # Ranges of 10 keys: range i holds i*10+1 .. (i+1)*10.
    assert unverified.ranges_touched([(5, 25)], 10, 0, 5) == {0, 1, 2}
    assert unverified.ranges_touched([(5, 25)], 10, 1, 1) == {1}
    assert unverified.ranges_touched([(95, 200)], 10, 0, 9) == {9}


def test_marks_round_trip_through_the_checkpoint_document() -> None:
    stored = unverified.stored("obs", [(1, 5), (9, 9)])
    assert stored == {"unverified.obs": [[1, 5], [9, 9]]}
    assert unverified.load({"unverified": {"obs": [[1, 5], [9, 9]]}}) == {"obs": [(1, 5), (9, 9)]}
    assert unverified.load({}) == {}


def test_contains_finds_exactly_the_keys_inside_the_intervals() -> None:
    rng = random.Random(11)
    marks = unverified.of_keys(rng.sample(range(1, 5000), 700))
    for key in range(0, 5002):
        assert unverified.contains(marks, key) == any(a <= key <= b for a, b in marks), key
