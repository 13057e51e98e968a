"""What the app's patient page needs beside the records of single rows: one visit record per
OpenMRS encounter, and the encounter's drug orders inside a condition's ``data.medications``.

The page builds one row per ``visit`` record and shows, as that row's diagnosis,
``data.diagnosis`` (else ``data.reason``, else the names of same-day conditions); it shows
medications only inside conditions. So every encounter with synced records becomes a visit
record naming the encounter's conditions, and each medication record of the encounter (drug
orders, observations categorised as medications) is copied into
one of its conditions (the one the order gives as its reason, else the primary diagnosis, else
the first condition; an encounter with orders and no condition gets a "Prescription" condition
record of its own).

These records are derived: they are rebuilt from the encounter and the synced records that
carry its uuid whenever one of those is written, changed or removed, so they always equal what
a full sync of today's OpenMRS would derive. Pure: no I/O here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any

from bson import ObjectId

from passport_sync.mapping.transform import iso, medical_record, record_id, to_utc
from passport_sync.models import EncounterRow

VISIT_SOURCE = "encounter"
PRESCRIPTION_SOURCE = "encounter_prescription"
# The row of its own of a condition or allergy recorded outside any encounter (see ``own_row``).
OWN_ROW_SOURCE = "own_row"
DERIVED_SOURCES = (VISIT_SOURCE, PRESCRIPTION_SOURCE, OWN_ROW_SOURCE)
OUTSIDE_A_VISIT = "Recorded outside a visit"
# Why a row of its own goes with its voided record (marked: reports do not count it apart).
OWN_ROW_VOIDED = {"reason": "voided", "ownRow": True}
# Where a condition remembers the entries the sync put into its data.medications, so that a
# doctor's own entries (anything else in the list) are told apart and kept.
SYNCED_MEDICATIONS = "syncedMedications"
MEDICATION_FIELDS = (
    ("name", "medicationName"),
    ("dosage", "dosage"),
    ("frequency", "frequency"),
    ("startDate", "startDate"),
    ("endDate", "endDate"),
    ("prescribedBy", "prescribedBy"),
    ("medicationStatus", "medicationStatus"),
)
MAX_DIAGNOSIS_TEXT = 1000


@dataclass(frozen=True, slots=True)
class VisitContext:
    hospital_id: str
    hospital_name: str
    created_by: str
    doctor_name: str
    provider_uuid: str | None
    now: datetime
    tz: tzinfo


@dataclass(slots=True)
class EncounterPlan:
    """The derived writes of one encounter."""

    upserts: list[dict[str, Any]] = field(default_factory=list)
    removals: list[ObjectId] = field(default_factory=list)
    # Conditions whose data.medications must change: (record id, fields to $set).
    patches: list[tuple[ObjectId, dict[str, Any]]] = field(default_factory=list)


def derived_ids(hospital_id: str, encounter_uuid: str) -> tuple[ObjectId, ObjectId]:
    return (
        record_id(hospital_id, VISIT_SOURCE, encounter_uuid),
        record_id(hospital_id, PRESCRIPTION_SOURCE, encounter_uuid),
    )


def condition_label(record: Mapping[str, Any]) -> str:
    """How the page names a condition: ``data.diagnosis``, else ``data.name``."""
    data = record.get("data") or {}
    return str(data.get("diagnosis") or data.get("name") or "")


def medication_entry(order: Mapping[str, Any]) -> dict[str, str]:
    """A drug order's record as an entry of a condition's ``data.medications``.

    The page shows an entry's name, dosage, frequency, dates and prescriber only, so the dosage
    is the whole dosing sentence as OpenMRS reads it (dose, route, frequency, duration, PRN and
    its condition, free-text dosing, instructions, quantity) and a stopped order says so there."""
    data = order.get("data") or {}
    entry = {entry: str(data[key]) for entry, key in MEDICATION_FIELDS if data.get(key)}
    is_order = (order.get("openmrsData") or {}).get("source") == "drug_order"
    openmrs = order.get("openmrsData") or {}
    dosing = openmrs["dosing"] if "dosing" in openmrs else data.get("details")
    sentence = "; ".join(str(part) for part in (dosing, data.get("status")) if part)
    if is_order and sentence:
        entry["dosage"] = sentence
    return entry


def _is_diagnosis(record: Mapping[str, Any]) -> bool:
    openmrs = record.get("openmrsData") or {}
    return openmrs.get("source") == "diagnosis" or bool(openmrs.get("legacyDiagnosisGroup"))


def _condition_order(record: Mapping[str, Any]) -> tuple[int, int, str, str]:
    """Diagnoses first (primary before secondary), then other conditions, by date."""
    openmrs = record.get("openmrsData") or {}
    rank = openmrs.get("rank")
    date = str((record.get("data") or {}).get("date", ""))
    return (0 if _is_diagnosis(record) else 1, rank if isinstance(rank, int) else 9, date, str(record["_id"]))


def _holder(conditions: Sequence[Mapping[str, Any]], order: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The condition a drug order is shown under."""
    reason = (order.get("openmrsData") or {}).get("orderReason")
    if reason is not None:
        for condition in conditions:
            if (condition.get("openmrsData") or {}).get("conceptId") == reason:
                return condition
    candidates = [c for c in conditions if (c.get("openmrsData") or {}).get("source") != "allergy"]
    return candidates[0] if candidates else None


def merged_medications(current: Any, previously_synced: Any, synced: list[dict[str, str]]) -> list[Any]:
    """The sync's entries, then every entry a doctor added (anything the sync did not write)."""
    current_list = current if isinstance(current, list) else []
    ours = [_bare(m) for m in previously_synced] if isinstance(previously_synced, list) else []
    return [*synced, *(m for m in current_list if _bare(m) not in ours and _bare(m) not in synced)]


def _bare(entry: Any) -> Any:
    """An entry without the ``_id`` the app's Mongoose adds to each entry when it saves the list."""
    return {k: v for k, v in entry.items() if k != "_id"} if isinstance(entry, dict) else entry


def _patch_medications(
    plan: EncounterPlan, _id: ObjectId, condition: Mapping[str, Any], synced: list[dict[str, str]]
) -> None:
    """Set the condition's medications to the sync's entries plus the doctors', when they differ."""
    current = (condition.get("data") or {}).get("medications", [])
    previous = (condition.get("openmrsData") or {}).get(SYNCED_MEDICATIONS) or []
    medications = merged_medications(current, previous, synced)
    if not medications:
        # Nothing left, the doctors' entries included: the fields go, as a fresh sync never wrote them.
        if "medications" in (condition.get("data") or {}) or previous:
            plan.patches.append((_id, {"data.medications": None, f"openmrsData.{SYNCED_MEDICATIONS}": None}))
        return
    if [_bare(m) for m in medications] != [_bare(m) for m in current or []] or previous != synced:
        plan.patches.append((_id, {"data.medications": medications, f"openmrsData.{SYNCED_MEDICATIONS}": synced}))


def plan_encounter(
    encounter: EncounterRow | None,
    members: Sequence[Mapping[str, Any]],
    ctx: VisitContext,
    existing_prescription: Mapping[str, Any] | None = None,
) -> EncounterPlan:
    """The visit record, the prescription record and the medication lists of one encounter.

    ``members`` are the synced records carrying the encounter's uuid (derived ones excluded).
    """
    plan = EncounterPlan()
    if encounter is None:
        return plan
    visit_id, prescription_id = derived_ids(ctx.hospital_id, encounter.uuid)
    live = [m for m in members if (m.get("openmrsData") or {}).get("source") not in DERIVED_SOURCES]
    if encounter.voided or encounter.encounter_datetime is None or not live:
        plan.removals += [visit_id, prescription_id]
        return plan
    patient_id = str(sorted(live, key=lambda m: str(m["_id"]))[0]["patientId"])
    conditions = sorted((m for m in live if m.get("type") == "condition"), key=_condition_order)
    # Drug orders, and observations categorised as medications: the page shows neither on its own.
    orders = sorted(
        (m for m in live if m.get("type") == "medication"),
        key=lambda m: (str((m.get("data") or {}).get("startDate", "")), str(m["_id"])),
    )
    when = iso(to_utc(encounter.encounter_datetime, ctx.tz))
    created = to_utc(encounter.date_created or encounter.encounter_datetime, ctx.tz)

    wanted: dict[ObjectId, list[dict[str, str]]] = {c["_id"]: [] for c in conditions}
    homeless: list[dict[str, str]] = []
    for order in orders:
        holder = _holder(conditions, order)
        (wanted[holder["_id"]] if holder is not None else homeless).append(medication_entry(order))
    for condition in conditions:
        _patch_medications(plan, condition["_id"], condition, wanted[condition["_id"]])

    openmrs: dict[str, Any] = {
        "hospitalId": ctx.hospital_id,
        "uuid": encounter.uuid,
        "encounterUuid": encounter.uuid,
        "encounterId": encounter.encounter_id,
        "personId": encounter.person_id,
        "encounterType": encounter.type_name,
        "dateCreated": created,
        "creatorName": ctx.doctor_name,
        "locationName": encounter.location_name,
        "providerUuid": ctx.provider_uuid,
        "valueType": "text",
        "derived": True,
    }
    reason = encounter.type_name or "Visit"
    common = {"date": when, "doctor": ctx.doctor_name, "hospital": ctx.hospital_name}
    if homeless:
        prescription = {
            **common,
            "name": "Prescription",
            "diagnosis": f"Medications prescribed ({reason})",
            "diagnosedDate": when,
            "diagnosedBy": ctx.doctor_name,
        }
        doc = medical_record(
            prescription_id,
            patient_id,
            "condition",
            prescription,
            ctx.created_by,
            {**openmrs, "source": PRESCRIPTION_SOURCE},
            ctx.now,
        )
        plan.upserts.append(doc)
        _patch_medications(plan, prescription_id, existing_prescription or {}, homeless)
        conditions = [*conditions, doc]
    else:
        plan.removals.append(prescription_id)

    visit = {**common, "name": reason, "reason": reason, "visitDate": when}
    labels = list(dict.fromkeys(label for label in map(condition_label, conditions) if label))
    if labels:
        visit["diagnosis"] = "; ".join(labels)[:MAX_DIAGNOSIS_TEXT]
    if encounter.location_name:
        visit["details"] = encounter.location_name
    plan.upserts.insert(
        0,
        medical_record(
            visit_id, patient_id, "visit", visit, ctx.created_by, {**openmrs, "source": VISIT_SOURCE}, ctx.now
        ),
    )
    return plan


def own_row_id(hospital_id: str, source: str, uuid: str) -> ObjectId:
    """The ``_id`` of the row of its own of the record of one source row."""
    return record_id(hospital_id, OWN_ROW_SOURCE, f"{source}:{uuid}")


def needs_own_row(record: Mapping[str, Any]) -> bool:
    """A condition (an allergy, a problem-list entry, a diagnosis observed outside any encounter)
    or medication that no encounter's visit row names.

    The page hides every condition dated on a day that has a visit row (the row lists its own
    diagnoses), and it compares days in the reader's zone, so which days those are depends on
    the reader. Such a record therefore always gets a visit record of its own, on the same date
    string: its day is the condition's day for every reader, the row is never hidden, and the
    condition itself (hidden by that row) shows exactly once."""
    openmrs = record.get("openmrsData") or {}
    # A medication observed outside any encounter is inside no condition either: the same holds.
    # (Drug orders always belong to an encounter.)
    observed_medication = record.get("type") == "medication" and openmrs.get("source") == "obs"
    return (record.get("type") == "condition" or observed_medication) and not openmrs.get("encounterUuid")


def own_row(record: Mapping[str, Any]) -> dict[str, Any]:
    """The visit record that shows ``record`` (see ``needs_own_row``) on a row of its own."""
    data = record.get("data") or {}
    openmrs = record.get("openmrsData") or {}
    when = str(data.get("diagnosedDate") or data.get("date") or "")
    if openmrs.get("source") == "allergy" and openmrs.get("allergyText"):
        shown = f"Allergy: {openmrs['allergyText']}"
    elif record.get("type") == "medication":
        shown = f"Medication: {data.get('medicationName') or ''}"
        when = str(data.get("startDate") or data.get("date") or "")
    else:
        detail = str(data.get("details") or "")
        shown = condition_label(record) + (f" - {detail}" if detail else "")
    visit = {
        "name": OUTSIDE_A_VISIT,
        "reason": OUTSIDE_A_VISIT,
        "diagnosis": shown[:MAX_DIAGNOSIS_TEXT],
        "date": when,
        "visitDate": when,
        "doctor": str(data.get("doctor") or ""),
        "hospital": str(data.get("hospital") or ""),
    }
    origin = str(openmrs.get("source"))
    provenance: dict[str, Any] = {
        key: openmrs[key]
        for key in ("hospitalId", "personId", "dateCreated", "creatorName", "locationName", "providerUuid")
        if key in openmrs
    }
    provenance.update(
        source=OWN_ROW_SOURCE,
        uuid=f"{origin}:{openmrs.get('uuid')}",
        ownRowOf=origin,
        valueType="text",
        derived=True,
    )
    # The origin row's key, so that a new rendering re-reads that row and rewrites both.
    for key in ("obsId", "sourceId"):
        if key in openmrs:
            provenance[key] = openmrs[key]
    return medical_record(
        own_row_id(str(openmrs.get("hospitalId")), origin, str(openmrs.get("uuid"))),
        str(record["patientId"]),
        "visit",
        visit,
        str(record["createdBy"]),
        provenance,
        record["createdAt"],
    )
