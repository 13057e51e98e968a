"""Which Patient Passport patient an OpenMRS person's rows belong to, or why they must wait.

The verdict is pure (``decide``): a person's national-ID identifiers in OpenMRS, and the Passport
patients holding the normalised ID. ``PatientMatcher`` gathers those facts through the two ports and
keeps the verdicts for the run, since a batch sees the same patients again and again.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from passport_sync.mapping.national_id import normalise_national_id
from passport_sync.models import PersonIdentity
from passport_sync.parking import (
    AMBIGUOUS_PASSPORT_PATIENT,
    CONFLICTING_NATIONAL_IDS,
    INVALID_NATIONAL_ID,
    NO_NATIONAL_ID,
    NOT_IN_PASSPORT,
    SHARED_NATIONAL_ID,
)
from passport_sync.passport_changes import PatientChange


@dataclass(frozen=True, slots=True)
class PersonMatch:
    """Where a person's rows go: a Passport patient id, or a reason to park them."""

    patient_id: str | None = None
    park_reason: str | None = None


UNKNOWN_PERSON = PersonMatch(park_reason=NO_NATIONAL_ID)


def national_id_of(identity: PersonIdentity) -> tuple[str | None, str | None]:
    """(the normalised national ID to look up, None) or (None, why the person's rows must wait)."""
    if not identity.identifiers:
        return None, NO_NATIONAL_ID
    if any(holders > 1 for holders in identity.holders):
        return None, SHARED_NATIONAL_ID
    valid = {n for n in map(normalise_national_id, identity.identifiers) if n}
    if not valid:
        return None, INVALID_NATIONAL_ID
    if len(valid) > 1:
        return None, CONFLICTING_NATIONAL_IDS
    return valid.pop(), None


def decide(
    identities: Mapping[int, PersonIdentity], passport_patients: Mapping[str, list[str]], person_ids: Iterable[int]
) -> dict[int, PersonMatch]:
    """Each person's verdict from their OpenMRS identity and the Passport patients holding each
    national ID: exactly one patient matches, or the row waits with a reason."""
    matches: dict[int, PersonMatch] = {}
    for pid in person_ids:
        national_id, reason = national_id_of(identities.get(pid, PersonIdentity(pid)))
        if national_id is None:
            matches[pid] = PersonMatch(park_reason=reason)
            continue
        patients = passport_patients.get(national_id, [])
        if len(patients) == 1:
            matches[pid] = PersonMatch(patient_id=patients[0])
        else:
            matches[pid] = PersonMatch(park_reason=AMBIGUOUS_PASSPORT_PATIENT if patients else NOT_IN_PASSPORT)
    return matches


class IdentityReader(Protocol):
    def identities(self, person_ids: Collection[int], type_ids: Collection[int]) -> dict[int, PersonIdentity]: ...


class PatientDirectory(Protocol):
    def by_national_id(self, national_ids: Iterable[str]) -> dict[str, list[str]]: ...
    def changed_since(self, moment: datetime) -> list[PatientChange]: ...
    def ids_between(self, first: str, last: str) -> set[str]: ...


class PatientMatcher:
    """Verdicts for the persons of one hospital, kept for the run unless asked ``fresh``."""

    def __init__(self, reader: IdentityReader, patients: PatientDirectory, type_ids: Collection[int]) -> None:
        self._reader = reader
        self._patients = patients
        self.type_ids = list(type_ids)
        self._known: dict[int, PersonMatch] = {}

    def match(self, person_ids: Iterable[int], *, fresh: bool = False) -> dict[int, PersonMatch]:
        wanted = set(person_ids)
        unknown = wanted if fresh else wanted - self._known.keys()
        if unknown:
            identities = self._reader.identities(unknown, self.type_ids)
            national_ids = {n for n, _ in (national_id_of(i) for i in identities.values()) if n}
            found = self._patients.by_national_id(national_ids)
            self._known.update(decide(identities, found, unknown))
        return {pid: self._known[pid] for pid in wanted}

    @property
    def known(self) -> Mapping[int, PersonMatch]:
        return self._known
