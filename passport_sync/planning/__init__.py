"""What a batch of OpenMRS rows becomes in Patient Passport: records to insert or rewrite, records
to remove, rows to park and parked rows to release. Pure: every fact a decision needs (concept
names, doctors, which patient each person is) is looked up before and handed in as ``PlanContext``;
nothing here reads or writes a database. One planner per source kind: ``observations`` and
``clinical``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any

from passport_sync.config import SyncOptions
from passport_sync.mapping.concepts import choose_concept_name, chosen_answer_name
from passport_sync.mapping.transform import record_id
from passport_sync.matching import UNKNOWN_PERSON, PersonMatch
from passport_sync.models import ConceptName, ObsRow, Provider
from passport_sync.parking import DATA_PROBLEMS, NO_NATIONAL_ID, park_key, parked_row
from passport_sync.writes import BatchWrite


def fallback_doctor(hospital_name: str) -> Provider:
    """The doctor shown on rows without a provider: the hospital's placeholder (uuid "")."""
    return Provider(provider_id=0, uuid="", display_name=f"{hospital_name} (OpenMRS)")


@dataclass(slots=True)
class RunFacts:
    """Facts looked up once per run, not once per batch: concept names, providers, and the
    Passport user of each provider (or the hospital's placeholder doctor)."""

    fallback_user_id: str
    fallback_doctor_name: str
    locale: str = "en"
    default_locale: str | None = None
    concept_names: dict[int, list[ConceptName]] = field(default_factory=dict)
    providers: dict[int, Provider] = field(default_factory=dict)
    doctor_users: dict[str, str] = field(default_factory=dict)

    def concept_name(self, concept_id: int | None) -> str:
        if concept_id is None:
            return ""
        names = self.concept_names.get(concept_id, [])
        return choose_concept_name(names, self.locale, self.default_locale) or f"Concept {concept_id}"

    def answer_name(self, concept_id: int | None, picked_name_id: int | None) -> str | None:
        if concept_id is None:
            return None
        names = self.concept_names.get(concept_id, [])
        return chosen_answer_name(names, self.locale, picked_name_id, self.default_locale) or f"Concept {concept_id}"

    def doctor(self, provider_id: int | None) -> tuple[str, str, str | None]:
        """(Passport user id, display name, provider uuid) of the doctor for a row."""
        provider = self.providers.get(provider_id or -1)
        if provider is None:
            return self.fallback_user_id, self.fallback_doctor_name, None
        return self.doctor_users.get(provider.uuid, self.fallback_user_id), provider.display_name, provider.uuid


@dataclass(frozen=True, slots=True)
class PlanContext:
    """Everything a planner needs besides the rows themselves."""

    hospital_id: str
    hospital_name: str
    tz: tzinfo
    now: datetime
    options: SyncOptions
    facts: RunFacts
    matches: Mapping[int, PersonMatch]
    # Persons whose rows this run parked: a row of theirs that lands releases its parked copy.
    parked_persons: Collection[int] = frozenset()
    # The hospital had parked rows when the run began: any landing row may have a parked copy.
    parked_before: bool = False
    # Reconciling: every record is rewritten field by field, and any row may have a parked copy
    # (under the person it belonged to before a merge).
    reconciling: bool = False
    booleans: tuple[int, int] = (1, 2)
    # Rows whose primary key is above this were never written or parked before this batch (the
    # feed's touched mark when the run began; None: not known). Their records and parked copies
    # cannot exist, so nothing is removed or released for them: no read and no delete.
    untouched_above: int | None = None

    def match(self, person_id: int) -> PersonMatch:
        return self.matches.get(person_id) or UNKNOWN_PERSON

    def was_parked(self, person_id: int) -> bool:
        return self.reconciling or self.parked_before or person_id in self.parked_persons

    def untouched(self, key: int | None) -> bool:
        """Whether the row with this primary key can have no record and no parked copy yet."""
        return key is not None and self.untouched_above is not None and key > self.untouched_above

    def who_and_when(self, patient_id: str, provider_id: int | None) -> dict[str, Any]:
        """The facts every record context has: hospital, patient, doctor, clock and time zone."""
        created_by, doctor_name, provider_uuid = self.facts.doctor(provider_id)
        return {
            "hospital_id": self.hospital_id,
            "hospital_name": self.hospital_name,
            "patient_id": patient_id,
            "created_by": created_by,
            "doctor_name": doctor_name,
            "provider_uuid": provider_uuid,
            "now": self.now,
            "tz": self.tz,
        }


@dataclass(frozen=True, slots=True)
class DataProblem:
    """A row parked for data to fix in OpenMRS: named in a WARNING by source and row id."""

    source: str
    pk: int
    detail: str
    reason: str


@dataclass(slots=True)
class Plan:
    """A planned batch, with what the run reports about it."""

    batch: BatchWrite = field(default_factory=BatchWrite)
    skipped: int = 0
    landed: int = 0
    # (source, primary key) parked by this batch: the parked phase of the same run skips them.
    parked: set[tuple[str, int]] = field(default_factory=set)
    problems: list[DataProblem] = field(default_factory=list)

    def park(
        self, ctx: PlanContext, source: str, uuid: str, pk: int, person_id: int, reason: str, detail: str = ""
    ) -> None:
        """Keep a row until its patient is known or its data is fixed; name data problems."""
        detail = detail or DATA_PROBLEMS.get(reason, "")
        if detail:
            self.problems.append(DataProblem(source, pk, detail, reason))
        self.batch.parks.append(parked_row(ctx.hospital_id, source, uuid, pk, person_id, reason, detail))
        self.parked.add((source, pk))

    def park_unmatched(self, ctx: PlanContext, source: str, uuid: str, pk: int, person_id: int) -> None:
        self.park(ctx, source, uuid, pk, person_id, ctx.match(person_id).park_reason or NO_NATIONAL_ID)

    def release(self, ctx: PlanContext, source: str, uuid: str, person_id: int, key: int | None = None) -> None:
        """The row (primary key ``key``) landed or went: forget its parked copy, if it may have one."""
        if ctx.was_parked(person_id) and not ctx.untouched(key):
            self.batch.unparks.append(park_key(ctx.hospital_id, source, uuid))

    def remove(self, ctx: PlanContext, rid: Any, why: dict[str, Any], key: int | None = None) -> None:
        """The record ``rid`` (of the row with primary key ``key``) goes, if it may exist."""
        if not ctx.untouched(key):
            self.batch.removals.append((rid, why))

    def retire(self, ctx: PlanContext, source: str, row: Any, key: int) -> None:
        """A voided row: its record goes (to the audit trail); a parked copy is forgotten."""
        self.remove(ctx, record_id(ctx.hospital_id, source, row.uuid), void_info(row), key)
        self.release(ctx, source, row.uuid, row.person_id, key)

    def replace(self, ctx: PlanContext, source: str, row: Any, replaced: str, replaced_key: int | None = None) -> None:
        """A new version of a row: the record of the version it replaces goes."""
        why = {"reason": "replaced", "replacedBy": row.uuid}
        self.remove(ctx, record_id(ctx.hospital_id, source, replaced), why, replaced_key)
        self.release(ctx, source, replaced, row.person_id, replaced_key)


def void_info(row: Any) -> dict[str, Any]:
    info: dict[str, Any] = {"reason": "voided", "voidReason": row.void_reason, "dateVoided": row.date_voided}
    if isinstance(row, ObsRow):
        info["obsId"] = row.obs_id
    return info
