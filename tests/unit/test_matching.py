"""Matching an OpenMRS person to a Patient Passport patient, without any database."""

from __future__ import annotations

from collections.abc import Collection, Iterable

from passport_sync.matching import PatientMatcher, PersonMatch, decide, national_id_of
from passport_sync.models import PersonIdentity
from passport_sync.parking import (
    AMBIGUOUS_PASSPORT_PATIENT,
    CONFLICTING_NATIONAL_IDS,
    INVALID_NATIONAL_ID,
    NO_NATIONAL_ID,
    NOT_IN_PASSPORT,
    SHARED_NATIONAL_ID,
)


def test_the_national_id_is_looked_up_only_when_it_is_one_valid_id_held_by_one_person() -> None:
    assert national_id_of(PersonIdentity(1)) == (None, NO_NATIONAL_ID)
    assert national_id_of(PersonIdentity(1, ("1199-7800-1234-5678",), (1,))) == ("1199780012345678", None)
    assert national_id_of(PersonIdentity(1, ("1199780012345678",), (2,))) == (None, SHARED_NATIONAL_ID)
    assert national_id_of(PersonIdentity(1, ("12AB",), (1,))) == (None, INVALID_NATIONAL_ID)
    two = PersonIdentity(1, ("1199780012345678", "1199780012345679"), (1, 1))
    assert national_id_of(two) == (None, CONFLICTING_NATIONAL_IDS)
    # The same number written twice is one ID.
    same = PersonIdentity(1, ("1199780012345678", "1199 7800 1234 5678"), (1, 1))
    assert national_id_of(same) == ("1199780012345678", None)


def test_exactly_one_passport_patient_is_a_match_none_or_two_park_the_person() -> None:
    identities = {
        1: PersonIdentity(1, ("1199780012345678",), (1,)),
        2: PersonIdentity(2, ("1199780012345679",), (1,)),
        3: PersonIdentity(3, ("1199780012345670",), (1,)),
    }
    found = {"1199780012345678": ["p1"], "1199780012345670": ["p3", "p3bis"]}
    assert decide(identities, found, [1, 2, 3, 4]) == {
        1: PersonMatch(patient_id="p1"),
        2: PersonMatch(park_reason=NOT_IN_PASSPORT),
        3: PersonMatch(park_reason=AMBIGUOUS_PASSPORT_PATIENT),
        4: PersonMatch(park_reason=NO_NATIONAL_ID),  # OpenMRS said nothing of person 4
    }


class _Reader:
    def __init__(self) -> None:
        self.asked: list[set[int]] = []
        self.identifier = "1199780012345678"

    def identities(self, person_ids: Collection[int], type_ids: Collection[int]) -> dict[int, PersonIdentity]:
        assert list(type_ids) == [5]
        self.asked.append(set(person_ids))
        return {pid: PersonIdentity(pid, (self.identifier,), (1,)) for pid in person_ids}


class _Patients:
    def __init__(self) -> None:
        self.known: dict[str, list[str]] = {}

    def by_national_id(self, national_ids: Iterable[str]) -> dict[str, list[str]]:
        return {n: self.known[n] for n in national_ids if n in self.known}


def test_verdicts_are_kept_for_the_run_unless_asked_fresh() -> None:
    reader, patients = _Reader(), _Patients()
    matcher = PatientMatcher(reader, patients, [5])
    assert matcher.match([7]) == {7: PersonMatch(park_reason=NOT_IN_PASSPORT)}
    patients.known["1199780012345678"] = ["p7"]
    assert matcher.match([7]) == {7: PersonMatch(park_reason=NOT_IN_PASSPORT)}  # cached
    assert matcher.match([7], fresh=True) == {7: PersonMatch(patient_id="p7")}
    assert matcher.match([7, 8]) == {7: PersonMatch(patient_id="p7"), 8: PersonMatch(patient_id="p7")}
    assert reader.asked == [{7}, {7}, {8}]  # only the unknown person was read the last time
