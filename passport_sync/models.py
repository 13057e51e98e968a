"""Plain value types passed between the adapters, the mapping and the pipeline. No I/O here."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Literal


@dataclass(frozen=True, slots=True)
class ObsRow:
    """One row of OpenMRS ``obs`` with the joined facts the mapping needs."""

    obs_id: int
    uuid: str
    person_id: int
    concept_id: int
    concept_uuid: str | None
    concept_datatype: str | None
    concept_class: str | None
    obs_datetime: datetime | None
    date_created: datetime | None
    voided: bool = False
    date_voided: datetime | None = None
    void_reason: str | None = None
    encounter_id: int | None = None
    encounter_uuid: str | None = None
    provider_id: int | None = None
    location_name: str | None = None
    obs_group_id: int | None = None
    group_uuid: str | None = None
    group_concept_id: int | None = None
    group_concept_uuid: str | None = None
    group_concept_class: str | None = None
    previous_version: int | None = None
    previous_version_uuid: str | None = None
    # Whether the row this one replaces is voided now (None: not known).
    previous_version_voided: bool | None = None
    value_coded: int | None = None
    value_coded_name_id: int | None = None
    value_coded_uuid: str | None = None
    value_coded_class: str | None = None
    value_drug: int | None = None
    drug_name: str | None = None
    value_numeric: float | None = None
    value_modifier: str | None = None
    value_text: str | None = None
    value_datetime: datetime | None = None
    value_complex: str | None = None
    comments: str | None = None
    status: str | None = None
    interpretation: str | None = None
    units: str | None = None
    allow_decimal: bool | None = None
    hi_normal: float | None = None
    low_normal: float | None = None
    hi_critical: float | None = None
    low_critical: float | None = None
    person_exists: bool = True
    # Set by the reader when the row cannot be synced as it is (zero date, text not UTF-8).
    problem: str | None = None

    def has_value(self) -> bool:
        """False for a group parent (or an empty obs): it carries no value of its own."""
        return any(
            v is not None
            for v in (
                self.value_coded,
                self.value_drug,
                self.value_numeric,
                self.value_text,
                self.value_datetime,
                self.value_complex,
            )
        )


@dataclass(frozen=True, slots=True)
class EncounterRow:
    """One OpenMRS ``encounter``: what its visit record in Patient Passport shows."""

    encounter_id: int
    uuid: str
    person_id: int
    encounter_datetime: datetime | None  # None: a zero date, not synced as a visit
    date_created: datetime | None
    voided: bool = False
    type_name: str | None = None
    location_name: str | None = None
    provider_id: int | None = None


@dataclass(frozen=True, slots=True)
class ConceptName:
    concept_name_id: int
    name: str
    locale: str
    name_type: str | None
    locale_preferred: bool


@dataclass(frozen=True, slots=True)
class Provider:
    provider_id: int
    uuid: str
    display_name: str


@dataclass(frozen=True, slots=True)
class IdentifierType:
    """A ``patient_identifier_type`` row."""

    type_id: int
    name: str
    uuid: str

    def describe(self) -> str:
        return f'"{self.name}" (id {self.type_id}, uuid {self.uuid})'


@dataclass(frozen=True, slots=True)
class PersonIdentity:
    """What OpenMRS says about a person's national ID(s).

    ``identifiers`` are the raw values of the configured type (non-voided); ``holders`` maps each
    raw value to how many distinct OpenMRS patients carry it.
    """

    person_id: int
    identifiers: tuple[str, ...] = ()
    holders: tuple[int, ...] = ()


@dataclass(slots=True)
class HospitalReport:
    """What one run did for one hospital."""

    hospital_id: str
    hospital_name: str
    outcome: Literal["ok", "failed", "locked", "skipped"] = "ok"
    read: int = 0
    written: int = 0
    updated: int = 0
    already_present: int = 0
    removed: int = 0
    parked: int = 0
    unparked: int = 0
    skipped: int = 0
    reassigned: int = 0
    # Records written by an earlier rendering version, re-read from OpenMRS and rewritten.
    rerendered: int = 0
    batches: int = 0
    errors: list[str] = field(default_factory=list)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    dry_run: bool = False
    # Rows still waiting in OpenMRS after the run, when the caller asked for the count (metrics);
    # not part of as_dict, whose keys are stable.
    behind: int | None = None
    # What reconciliation checked and repaired in this run (see passport_sync.reconcile).
    reconcile: dict[str, int] | None = None

    @property
    def error_count(self) -> int:
        return len(self.errors)

    @property
    def duration_seconds(self) -> float:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return 0.0

    def as_dict(self) -> dict[str, object]:
        return {
            "hospital_id": self.hospital_id,
            "hospital_name": self.hospital_name,
            "outcome": self.outcome,
            "read": self.read,
            "written": self.written,
            "updated": self.updated,
            "already_present": self.already_present,
            "removed": self.removed,
            "parked": self.parked,
            "unparked": self.unparked,
            "skipped": self.skipped,
            "reassigned": self.reassigned,
            # No run ever counted rejections: the key stays, always 0, for the scripts that read it.
            "rejected": 0,
            "rerendered": self.rerendered,
            "error_count": self.error_count,
            "errors": list(self.errors),
            "duration_seconds": round(self.duration_seconds, 3),
            "dry_run": self.dry_run,
            "reconcile": self.reconcile,
        }


@dataclass(frozen=True, slots=True)
class ServerTimeZone:
    zone: tzinfo
    description: str  # for test-connection and logs


@dataclass(frozen=True, slots=True)
class FeedHead:
    """A feed's highest primary key and latest change (void, edit, stop) now; None: none yet."""

    max_pk: int | None
    max_changed: datetime | None


@dataclass(frozen=True, slots=True)
class DatabaseProbe:
    """What a run asks of the database before it reads rows, answered by one statement."""

    now: datetime | None
    zone: ServerTimeZone
    fingerprint: str | None
    heads: dict[str, FeedHead]
    # The newest patient_identifier_id: a person may have just been given a national ID.
    identifier_max: int = 0
