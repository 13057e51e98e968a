"""Which Passport-side changes a run handles, how its watermark moves, whom it re-decides, and
which part of the patients records point to it checks for deleted ones (pure, no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from passport_sync import passport_changes as changes
from passport_sync.passport_changes import PatientChange

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
A, B, C = "a" * 24, "b" * 24, "c" * 24


def _change(pid: str, minutes_ago: float, national_id: str | None = "1199780012345678") -> PatientChange:
    # MongoDB hands dates back naive, in UTC, to the millisecond.
    at = (NOW - timedelta(minutes=minutes_ago)).replace(tzinfo=None, microsecond=123000)
    return PatientChange(pid, national_id, at)


def test_a_change_returned_again_by_the_look_back_is_handled_once_a_new_save_again() -> None:
    first = _change(A, 3)
    handled = changes.still_returned({}, [first], NOW)
    assert changes.to_handle([first], handled) == []
    # Read back aware or naive, the same save has the same stamp.
    assert changes.to_handle([PatientChange(A, "x", first.updated_at.replace(tzinfo=UTC))], handled) == []
    again = _change(A, 1, "1199780012345679")  # corrected a second time
    assert changes.to_handle([again, _change(B, 2)], handled) == [again, _change(B, 2)]


def test_the_watermark_follows_the_latest_save_but_never_passes_our_clock() -> None:
    start = NOW - timedelta(hours=1)
    assert changes.advance(start, [], NOW) == start
    assert changes.advance(start, [_change(A, 30), _change(B, 5)], NOW) == NOW - timedelta(minutes=5, seconds=-0.123)
    # A server whose clock runs ahead: the save is handled, the watermark stops at our clock.
    assert changes.advance(start, [_change(A, -120)], NOW) == NOW
    # Never backwards (an old save committed late is read through the look-back instead).
    assert changes.advance(NOW, [_change(A, 30)], NOW) == NOW
    assert changes.read_from(NOW) == NOW - changes.LOOKBACK


def test_handled_changes_are_kept_only_while_the_next_lookup_can_return_them() -> None:
    old, recent = _change(A, 11), _change(B, 9)
    kept = changes.still_returned({C: changes.stamp(NOW - timedelta(hours=2))}, [old, recent], NOW)
    assert kept == {B: changes.stamp(recent.updated_at)}


def test_a_burst_of_saves_keeps_only_the_newest_handled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(changes, "HANDLED_KEPT", 2)
    saves = [_change(A, 3), _change(B, 1), _change(C, 2)]
    assert changes.still_returned({}, saves, NOW) == {
        B: changes.stamp(saves[1].updated_at),
        C: changes.stamp(saves[2].updated_at),
    }
    # The one forgotten is handled again, never missed.
    assert changes.to_handle(saves, changes.still_returned({}, saves, NOW)) == [saves[0]]


def test_a_first_run_takes_the_saves_before_it_started_as_handled() -> None:
    before, during = _change(A, 5), _change(B, -1)
    assert changes.saved_before([before, during], NOW) == {A: changes.stamp(before.updated_at)}


def test_the_numbers_now_held_and_every_person_on_the_patients_are_re_decided() -> None:
    found = [_change(A, 1, "1199-7800-1234-5678"), _change(B, 1, None), _change(C, 1, "12AB")]
    assert changes.numbers_of(found) == {"1199780012345678"}
    holders = {"1199780012345678": {7}, "1199780012345679": set()}
    assert changes.persons_to_redecide(holders, [3, 7]) == {3, 7}
    assert changes.persons_to_redecide({}, []) == set()


def test_a_sweep_covers_every_patient_between_its_bounds_once_in_its_parts() -> None:
    low, high = "6" + "0" * 23, "6" + "0" * 21 + "ff"
    spans = [changes.sweep_span(low, high, part, part + 1, steps=4) for part in range(4)]
    assert spans[0] is not None and spans[0][0] == low
    assert spans[-1] is not None and spans[-1][1] == high
    covered = [int(b, 16) - int(a, 16) + 1 for a, b in (s for s in spans if s)]
    assert sum(covered) == 256
    for (_, end), (start, _) in zip(spans[:-1], spans[1:], strict=True):  # type: ignore[misc]
        assert int(start, 16) == int(end, 16) + 1
    assert changes.sweep_span(low, high, 0, 4, steps=4) == (low, high)  # all parts due at once
    assert changes.sweep_span(low, high, 2, 2, steps=4) is None  # nothing due
    assert changes.sweep_span("", "", 0, 4) is None  # no record points to a patient
    assert changes.sweep_span(high, high, 0, 1, steps=4) is None  # one patient: in the last part
    assert changes.sweep_span(high, high, 3, 4, steps=4) == (high, high)


def test_patients_records_point_to_that_no_longer_exist_are_dangling() -> None:
    assert changes.dangling([A, B, C], {A, C}) == {B}
    assert changes.dangling([], {A}) == set()
