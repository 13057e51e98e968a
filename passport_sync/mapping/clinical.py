"""Records for diagnoses, conditions, allergies and drug orders (the sources outside ``obs``).

Pure, like ``transform``: every fact that is not in the row (names, patient, doctor, clock) comes
in a ClinicalContext. Unlike observations these rows can change in place (a diagnosis' certainty,
an allergy's severity, an order's stop date), so their records are written with ``$set`` of the
fields listed here, never replacing ``data`` as a whole.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any

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
        for key in (
            "severity_concept_id",
            "dose_units",
            "frequency_concept",
            "route",
            "duration_units",
            "quantity_units",
            "order_reason",
            "stop_reason",
        ):
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
    tz: tzinfo


def _title(value: Any) -> str:
    return str(value).replace("_", " ").capitalize() if value else ""


def _when(value: datetime | None, tz: tzinfo) -> str | None:
    return iso(to_utc(value, tz)) if value else None


def calendar_date(value: datetime | None, tz: tzinfo) -> str | None:
    """A date-only value (an onset or end date typed as a day: local midnight) as the same
    calendar day for every reader: a date-time without an offset, which the page's ``new Date``
    reads as that midnight in the reader's own zone. A value with a time of day is an instant."""
    if value is None:
        return None
    if value.tzinfo is None and value.hour == value.minute == value.second == value.microsecond == 0:
        return value.strftime("%Y-%m-%dT00:00:00.000")
    return _when(value, tz)


def certain_name(name: str, certainty: Any) -> str:
    """The name with its certainty where the page shows it: "Malaria (provisional)"."""
    if str(certainty or "").upper() in ("PROVISIONAL", "PRESUMED", "DIFFERENTIAL"):
        return f"{name} ({str(certainty).lower()})"
    return name


def allergen_name(row: ClinicalRow, name_of: NameOf) -> str:
    """The allergen as OpenMRS shows it: the typed text when the clinician chose "Other"."""
    if row.non_coded and row.non_coded.strip():
        return row.non_coded.strip()
    return name_of(row.coded, None) or "Unknown allergen"


def reactions(row: ClinicalRow, name_of: NameOf) -> list[str]:
    """Each reaction once: its typed text when it has one (a coded "Other"), else its name."""
    coded = _int_list(row.extra.get("reaction_concept_ids"))
    typed = str(row.extra.get("reactions_non_coded") or "").split("\x1f")
    shown = []
    for index, concept_id in enumerate(coded):
        text = typed[index].strip() if index < len(typed) else ""
        shown.append(text or name_of(concept_id, None) or f"concept {concept_id}")
    return list(dict.fromkeys(shown))


def allergy_text(row: ClinicalRow, name_of: NameOf) -> str:
    """The string kept in ``patients.allergies``: allergen, severity, reactions."""
    text = allergen_name(row, name_of)
    severity = name_of(row.extra.get("severity_concept_id"), None)
    if severity:
        text += f" ({severity.lower()})"
    shown = reactions(row, name_of)
    if shown:
        text += ": " + ", ".join(shown)
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
        data.update(_condition_fields(row, ctx, name))
        # Dated by its onset (a calendar day); without one, by when it was recorded (the page
        # would date an undated condition today); the notes say which.
        data["date"] = data["diagnosedDate"]
        openmrs.update(clinicalStatus=extra.get("clinical_status"), verificationStatus=extra.get("verification_status"))
    elif row.source == "allergy":
        text = allergy_text(row, ctx.name_of)
        data.update(
            name="Allergy",
            diagnosis=f"Allergy: {allergen_name(row, ctx.name_of)}",
            details=text,
            diagnosedBy=ctx.doctor_name,
        )
        if extra.get("comments") and str(extra["comments"]).strip():
            # The card shows notes instead of details: the notes repeat what details says.
            data["notes"] = f"{text}. {str(extra['comments']).strip()}"
        openmrs.update(allergenType=extra.get("allergen_type"), allergyText=text)
    else:
        record_type = "medication"
        data.update(_drug_order_fields(row, ctx, name))
        # The dosing sentence as the sync rendered it: a condition's entry for the order shows this,
        # whatever a doctor later types into the record's details.
        openmrs.update(
            orderAction=extra.get("order_action"), orderReason=extra.get("order_reason"), dosing=data.get("details")
        )
    return medical_record(
        record_id(ctx.hospital_id, row.source, row.uuid),
        ctx.patient_id,
        record_type,
        data,
        ctx.created_by,
        openmrs,
        ctx.now,
    )


def _condition_fields(row: ClinicalRow, ctx: ClinicalContext, name: str) -> dict[str, str]:
    """A condition from the conditions table: its status stays visible whatever else is shown."""
    extra = row.extra
    status = _title(extra.get("clinical_status"))
    details = status
    if extra.get("verification_status"):
        details += f", {str(extra['verification_status']).lower()}"
    onset = calendar_date(extra.get("onset_date"), ctx.tz)
    if not onset:
        entered = to_utc(row.date_created, ctx.tz).astimezone(ctx.tz).date().isoformat()
        details += f"; onset date not recorded (entered {entered})"
    end = calendar_date(extra.get("end_date"), ctx.tz)
    if end:
        # The page shows no end date of a condition: the status says when it ended.
        details += f"; ended {end[:10]}"
    recorded = onset or _when(row.date_created, ctx.tz) or ""
    fields = {
        "name": "Condition",
        "diagnosis": certain_name(name, extra.get("verification_status")),
        "details": details,
        "status": status,
        "diagnosedBy": ctx.doctor_name,
        "diagnosed": recorded,
        "diagnosedDate": recorded,
    }
    if end:
        fields["endDate"] = end
    if extra.get("additional_detail") and str(extra["additional_detail"]).strip():
        # The card shows notes instead of details: the notes start with the status.
        fields["notes"] = f"{details}. {str(extra['additional_detail']).strip()}"
    return fields


def diagnosis_data(name: str, certainty: Any, primary: bool, when: str, ctx: ClinicalContext) -> dict[str, str]:
    """The ``data`` of a diagnosis record, from encounter_diagnosis or a legacy obs group."""
    status = _title(certainty)
    rank = "primary" if primary else "secondary"
    return {
        "name": "Diagnosis",
        "diagnosis": certain_name(name, certainty),
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


def dosing_text(row: ClinicalRow, name_of: NameOf) -> str | None:
    """The dosing instructions as OpenMRS reads them (core's SimpleDosingInstructions:
    "1.0 Tablet Oral Thrice daily 5 Days PRN for pain after meals"); free-text dosing is its text."""
    extra = row.extra
    free_text = str(extra.get("dosing_instructions") or "").strip()
    if "FreeText" in str(extra.get("dosing_type") or "") or extra.get("dose") is None:
        return free_text or None
    parts = [str(float(extra["dose"]))]
    parts += [name_of(extra.get(k), None) or "" for k in ("dose_units", "route", "frequency_concept")]
    if extra.get("duration") is not None:
        parts += [str(extra["duration"]), name_of(extra.get("duration_units"), None) or ""]
    if extra.get("as_needed"):
        parts.append("PRN")
        parts.append(str(extra.get("as_needed_condition") or ""))
    parts.append(free_text)
    return " ".join(p.strip() for p in parts if p and p.strip())


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
    frequency = name_of(extra.get("frequency_concept"), None) or ""
    if extra.get("as_needed"):
        # A PRN order must not read as a standing one wherever its frequency is shown.
        condition = str(extra.get("as_needed_condition") or "").strip()
        frequency = ", ".join(p for p in (frequency, f"as needed {condition}".strip()) if p)
        frequency = frequency[:1].upper() + frequency[1:]
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
    if stopped is not None:
        reason = _reason(extra.get("stop_reason_non_coded"), extra.get("stop_reason"), name_of)
        fields["status"] = stopped_text(stopped, reason, ctx.tz)
    notes = []
    dosing = dosing_text(row, name_of)
    if dosing:
        notes.append(dosing)
    if extra.get("instructions") and str(extra["instructions"]).strip():
        notes.append(f"Instructions: {str(extra['instructions']).strip()}")
    if extra.get("quantity") is not None:
        units = name_of(extra.get("quantity_units"), None) or ""
        notes.append(f"Quantity: {format_number(float(extra['quantity']), None)} {units}".strip())
    if notes:
        fields["details"] = "; ".join(notes)
    return fields


def discontinuation_patch(row: ClinicalRow, ctx_tz: tzinfo, name_of: NameOf) -> dict[str, str]:
    """What a DISCONTINUE order changes on the record of the order it stops."""
    stopped = row.extra.get("date_activated") or row.date_created
    reason = _reason(row.extra.get("order_reason_non_coded"), row.extra.get("order_reason"), name_of)
    return {
        "data.medicationStatus": "Past",
        "data.endDate": _when(stopped, ctx_tz) or "",
        "data.status": stopped_text(stopped, reason, ctx_tz),
    }


def _reason(typed: Any, coded: Any, name_of: NameOf) -> str | None:
    text = str(typed or "").strip()
    return text or (name_of(coded, None) if coded is not None else None)


def stopped_text(stopped: datetime, reason: str | None, tz: tzinfo) -> str:
    """Stopped, when (the hospital's day) and why: "Stopped 2025-11-08: Rash"."""
    text = f"Stopped {_local_day(stopped, tz)}"
    return f"{text}: {reason}" if reason else text


def _local_day(value: datetime, tz: tzinfo) -> str:
    """The hospital's calendar day of a local date-time."""
    return to_utc(value, tz).astimezone(tz).date().isoformat()
