"""Records for diagnoses, conditions, allergies and drug orders (the sources outside ``obs``).

Pure, like ``transform``: every fact that is not in the row (names, patient, doctor, clock) comes
in a ClinicalContext. Unlike observations these rows can change in place (a diagnosis' certainty,
an allergy's severity, an order's stop date), so their records are written with ``$set`` of the
fields listed here, never replacing ``data`` as a whole.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from passport_sync.config import LegacyDiagnosisConcepts
from passport_sync.mapping.transform import format_number, iso, medical_record, record_id, to_utc
from passport_sync.models import ObsRow


@dataclass(frozen=True, slots=True)
class ClinicalRow:
    """One row of a clinical source, with the aliases of ``source.clinical``."""

    source: str
    pk: int
    uuid: str
    person_id: int
    date_created: datetime
    voided: bool = False
    happened_at: datetime | None = None
    changed_at: datetime | None = None
    date_voided: datetime | None = None
    void_reason: str | None = None
    encounter_uuid: str | None = None
    provider_id: int | None = None
    location_name: str | None = None
    coded: int | None = None
    coded_name_id: int | None = None
    non_coded: str | None = None
    previous_pk: int | None = None
    previous_uuid: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def concept_ids(self) -> set[int]:
        """Every concept whose name the record shows."""
        ids = {self.coded}
        for key in ("severity_concept_id", "dose_units", "frequency_concept", "route", "duration_units"):
            ids.add(self.extra.get(key))
        ids.update(_int_list(self.extra.get("reaction_concept_ids")))
        return {i for i in ids if i is not None}

    @property
    def replaced_by(self) -> str | None:
        """The uuid of the order that revised or renewed this one (it then has no record)."""
        value = self.extra.get("replaced_by_uuid")
        return str(value).lower() if value else None

    @property
    def is_other_order(self) -> bool:
        """An order that is not a drug order (a lab test, a referral): not synced."""
        return self.source == "drug_order" and self.extra.get("drug_order_id") is None

    @property
    def is_discontinuation(self) -> bool:
        return self.source == "drug_order" and str(self.extra.get("order_action", "")).upper() == "DISCONTINUE"


def row_identity(source: str, uuid: str | None, pk: int) -> str:
    """The uuid, or a stable stand-in where the column is NULL (conditions and allergy allow it)."""
    return uuid.strip().lower() if uuid and uuid.strip() else f"{source}-{pk}"


def _int_list(value: Any) -> list[int]:
    if value is None:
        return []
    return [int(v) for v in str(value).split(",") if v.strip().isdigit()]


NameOf = Callable[[int | None, int | None], str | None]


@dataclass(frozen=True, slots=True)
class ClinicalContext:
    hospital_id: str
    hospital_name: str
    patient_id: str
    created_by: str
    doctor_name: str
    provider_uuid: str | None
    name_of: NameOf  # (concept_id, picked concept_name_id) -> display name
    now: datetime
    tz: ZoneInfo


def _title(value: Any) -> str:
    return str(value).replace("_", " ").capitalize() if value else ""


def _when(value: datetime | None, tz: ZoneInfo) -> str | None:
    return iso(to_utc(value, tz)) if value else None


def allergy_text(row: ClinicalRow, name_of: NameOf) -> str:
    """The string kept in ``patients.allergies``: allergen, severity, reactions."""
    allergen = row.non_coded or name_of(row.coded, None) or "Unknown allergen"
    text = allergen
    severity = name_of(row.extra.get("severity_concept_id"), None)
    if severity:
        text += f" ({severity.lower()})"
    reactions = [name_of(i, None) or f"concept {i}" for i in _int_list(row.extra.get("reaction_concept_ids"))]
    reactions += [r for r in str(row.extra.get("reactions_non_coded") or "").split("|") if r.strip()]
    # A coded "Other" reaction carries its text in reaction_non_coded: show the text only once.
    reactions = list(dict.fromkeys(r for r in reactions if r))
    if reactions:
        text += ": " + ", ".join(reactions)
    return text


def build_clinical_record(row: ClinicalRow, ctx: ClinicalContext) -> dict[str, Any] | None:
    """The record for a diagnosis, condition, allergy or drug order; None when it has none
    (a discontinuation order only ends its previous order's record)."""
    if row.is_discontinuation:
        return None
    when = _when(row.happened_at or row.date_created, ctx.tz) or ""
    name = row.non_coded if row.coded is None else (ctx.name_of(row.coded, row.coded_name_id) or row.non_coded)
    name = name or "Not recorded"
    data: dict[str, str] = {"date": when, "doctor": ctx.doctor_name, "hospital": ctx.hospital_name}
    openmrs: dict[str, Any] = {
        "hospitalId": ctx.hospital_id,
        "source": row.source,
        "uuid": row.uuid,
        "sourceId": row.pk,
        "personId": row.person_id,
        "conceptId": row.coded,
        "dateCreated": to_utc(row.date_created, ctx.tz),
        "creatorName": ctx.doctor_name,
        "locationName": row.location_name,
        "encounterUuid": row.encounter_uuid,
        "providerUuid": ctx.provider_uuid,
        "valueType": "coded" if row.coded is not None else "text",
    }
    if row.previous_uuid:
        openmrs["previousVersionUuid"] = row.previous_uuid
    extra = row.extra
    record_type = "condition"
    if row.source == "diagnosis":
        data.update(diagnosis_data(name, extra.get("certainty"), extra.get("diagnosis_rank") == 1, when, ctx))
        openmrs.update(certainty=extra.get("certainty"), rank=extra.get("diagnosis_rank"))
    elif row.source == "condition":
        status = _title(extra.get("clinical_status"))
        details = status
        onset = _when(extra.get("onset_date"), ctx.tz)
        end = _when(extra.get("end_date"), ctx.tz)
        if extra.get("verification_status"):
            details += f", {str(extra['verification_status']).lower()}"
        data.update(name="Condition", diagnosis=name, details=details, status=status, diagnosedBy=ctx.doctor_name)
        if onset:
            data.update(diagnosed=onset, diagnosedDate=onset)
        if end:
            data["endDate"] = end
        if extra.get("additional_detail"):
            data["notes"] = str(extra["additional_detail"])
        openmrs.update(clinicalStatus=extra.get("clinical_status"), verificationStatus=extra.get("verification_status"))
    elif row.source == "allergy":
        text = allergy_text(row, ctx.name_of)
        data.update(name="Allergy", diagnosis=f"Allergy: {name}", details=text, diagnosedBy=ctx.doctor_name)
        if extra.get("comments"):
            data["notes"] = str(extra["comments"])
        openmrs.update(allergenType=extra.get("allergen_type"), allergyText=text)
    else:
        record_type = "medication"
        data.update(_drug_order_fields(row, ctx, name))
        openmrs.update(orderAction=extra.get("order_action"), orderReason=extra.get("order_reason"))
    return medical_record(
        record_id(ctx.hospital_id, row.source, row.uuid),
        ctx.patient_id,
        record_type,
        data,
        ctx.created_by,
        openmrs,
        ctx.now,
    )


def diagnosis_data(name: str, certainty: Any, primary: bool, when: str, ctx: ClinicalContext) -> dict[str, str]:
    """The ``data`` of a diagnosis record, from encounter_diagnosis or a legacy obs group."""
    status = _title(certainty)
    rank = "primary" if primary else "secondary"
    return {
        "name": "Diagnosis",
        "diagnosis": name,
        "details": f"{status} {rank} diagnosis".strip().capitalize(),
        "diagnosed": when,
        "diagnosedDate": when,
        "diagnosedBy": ctx.doctor_name,
        "status": status,
    }


def diagnosis_group_record(
    group_uuid: str, members: Sequence[ObsRow], ctx: ClinicalContext, concepts: LegacyDiagnosisConcepts
) -> dict[str, Any] | None:
    """One diagnosis record for an emrapi "Diagnosis Concept Set" obs group (not one per member)."""

    def member(concept_uuid: str) -> ObsRow | None:
        wanted = concept_uuid.lower()
        return next((m for m in members if (m.concept_uuid or "").lower() == wanted), None)

    coded, non_coded = member(concepts.coded), member(concepts.non_coded)
    name = None
    if coded is not None and coded.value_coded is not None:
        name = ctx.name_of(coded.value_coded, coded.value_coded_name_id)
    elif non_coded is not None:
        name = non_coded.value_text
    if not name or not members:
        return None
    order, certainty = member(concepts.order), member(concepts.certainty)
    primary = order is None or (order.value_coded_uuid or "").lower() != concepts.secondary.lower()
    confirmed = certainty is not None and (certainty.value_coded_uuid or "").lower() == concepts.confirmed.lower()
    first = members[0]
    if first.obs_datetime is None or first.date_created is None:
        return None
    when = iso(to_utc(first.obs_datetime, ctx.tz))
    data = {
        **diagnosis_data(name, "CONFIRMED" if confirmed else "PROVISIONAL", primary, when, ctx),
        "date": when,
        "doctor": ctx.doctor_name,
        "hospital": ctx.hospital_name,
    }
    openmrs = {
        "hospitalId": ctx.hospital_id,
        "source": "obs",
        "uuid": group_uuid,
        "obsUuid": group_uuid,
        "obsId": first.obs_group_id,
        "personId": first.person_id,
        "obsDatetime": to_utc(first.obs_datetime, ctx.tz),
        "dateCreated": to_utc(first.date_created, ctx.tz),
        "creatorName": ctx.doctor_name,
        "locationName": first.location_name,
        "encounterUuid": first.encounter_uuid,
        "providerUuid": ctx.provider_uuid,
        "valueType": "coded" if coded is not None else "text",
        "certainty": "CONFIRMED" if confirmed else "PROVISIONAL",
        "rank": 1 if primary else 2,
        "legacyDiagnosisGroup": True,
    }
    _id = record_id(ctx.hospital_id, "obs", group_uuid)
    return medical_record(_id, ctx.patient_id, "condition", data, ctx.created_by, openmrs, ctx.now)


def _drug_order_fields(row: ClinicalRow, ctx: ClinicalContext, concept_name: str) -> dict[str, str]:
    extra = row.extra
    name_of = ctx.name_of
    medication = extra.get("drug_name") or row.non_coded or concept_name
    fields = {
        "name": "Medication",
        "medicationName": str(medication),
        "prescribedBy": ctx.doctor_name,
        "startDate": _when(extra.get("date_activated") or row.date_created, ctx.tz) or "",
    }
    if extra.get("dose") is not None:
        units = name_of(extra.get("dose_units"), None)
        fields["dosage"] = f"{format_number(float(extra['dose']), None)} {units or ''}".strip()
    frequency = name_of(extra.get("frequency_concept"), None)
    if frequency:
        fields["frequency"] = frequency
    # A live DISCONTINUE order decides the end, as its patch does, whichever row is read first.
    stopped = extra.get("discontinued_at") or extra.get("date_stopped")
    expires = extra.get("auto_expire_date")
    end = stopped or expires
    if end:
        fields["endDate"] = _when(end, ctx.tz) or ""
    ended = stopped is not None or (expires is not None and to_utc(expires, ctx.tz) <= ctx.now)
    fields["medicationStatus"] = "Past" if ended else "Active"
    notes = []
    route = name_of(extra.get("route"), None)
    if route:
        notes.append(route)
    if extra.get("duration") is not None:
        notes.append(f"for {extra['duration']} {name_of(extra.get('duration_units'), None) or ''}".strip())
    if extra.get("as_needed"):
        notes.append("as needed")
    instructions = extra.get("dosing_instructions") or extra.get("instructions")
    if instructions:
        notes.append(str(instructions))
    if notes:
        fields["details"] = "; ".join(notes)
    return fields


def discontinuation_patch(row: ClinicalRow, ctx_tz: ZoneInfo) -> dict[str, str]:
    """What a DISCONTINUE order changes on the record of the order it stops."""
    stopped = row.extra.get("date_activated") or row.date_created
    return {"data.medicationStatus": "Past", "data.endDate": _when(stopped, ctx_tz) or ""}
