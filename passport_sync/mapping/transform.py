"""Turn one OpenMRS observation into one ``medicalrecords`` document, shaped as the app reads it.

Pure: the caller passes every fact (names, patient, doctor, clock) in a RecordContext.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from bson import ObjectId

from passport_sync.config import RecordType
from passport_sync.mapping import RENDER_VERSION
from passport_sync.models import ObsRow

DATE_DATATYPES = frozenset({"Date", "Time", "Datetime"})
NUMERIC_DATATYPES = frozenset({"Numeric", "Structured Numeric"})

# obs.interpretation (Platform 2.1+) to the app's testStatus enum.
_INTERPRETATION_STATUS = {
    "NORMAL": "Normal",
    "NEGATIVE": "Normal",
    "ABNORMAL": "Abnormal",
    "LOW": "Abnormal",
    "HIGH": "Abnormal",
    "POSITIVE": "Abnormal",
    "OFF_SCALE_LOW": "Abnormal",
    "OFF_SCALE_HIGH": "Abnormal",
    "SIGNIFICANT_CHANGE_DOWN": "Abnormal",
    "SIGNIFICANT_CHANGE_UP": "Abnormal",
    "CRITICALLY_ABNORMAL": "Critical",
    "CRITICALLY_LOW": "Critical",
    "CRITICALLY_HIGH": "Critical",
}


def record_id(hospital_id: str, source: str, uuid: str) -> ObjectId:
    """The deterministic ``_id`` of the record for one source row of one hospital.

    The same observation always maps to the same ``_id``, so a second write of it is a duplicate
    key, never a second record, whichever run, process or host writes it.
    """
    digest = hashlib.sha256(f"{hospital_id}\x1f{source}\x1f{uuid.lower()}".encode()).digest()
    return ObjectId(digest[:12])


def placeholder_id(kind: str, *parts: str) -> ObjectId:
    """The deterministic ``_id`` of a placeholder document (user, doctor, hospital)."""
    digest = hashlib.sha256("\x1f".join(("placeholder", kind, *parts)).encode()).digest()
    return ObjectId(digest[:12])


def to_utc(value: datetime, tz: ZoneInfo) -> datetime:
    """OpenMRS DATETIMEs are naive local times of the hospital's server."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=tz)
    return value.astimezone(UTC)


def iso(value: datetime) -> str:
    """An ISO string the app's ``new Date(...)`` reads exactly, as JavaScript writes them."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def format_number(value: float, allow_decimal: bool | None) -> str:
    if allow_decimal is False or float(value).is_integer():
        return str(int(round(value)))
    return f"{value:.10g}"


@dataclass(frozen=True, slots=True)
class RenderedValue:
    text: str
    value_type: str  # the app's enum: text | numeric | coded
    kind: str  # ours, finer: coded | boolean | drug | numeric | text | date | datetime | time | complex


def render_value(
    row: ObsRow,
    *,
    answer_name: str | None,
    true_concept_id: int,
    false_concept_id: int,
    tz: ZoneInfo,
) -> RenderedValue | None:
    """The human-readable value of an observation, or None if it carries none."""
    if row.concept_datatype == "Boolean":
        if row.value_coded is not None and row.value_coded in (true_concept_id, false_concept_id):
            return RenderedValue("Yes" if row.value_coded == true_concept_id else "No", "coded", "boolean")
        if row.value_numeric is not None and row.value_numeric in (0.0, 1.0):
            return RenderedValue("Yes" if row.value_numeric == 1.0 else "No", "coded", "boolean")
    if row.value_drug is not None and row.drug_name:
        return RenderedValue(row.drug_name, "coded", "drug")
    if row.value_coded is not None:
        return RenderedValue(answer_name or f"Concept {row.value_coded}", "coded", "coded")
    if row.value_numeric is not None:
        text = format_number(row.value_numeric, row.allow_decimal)
        if row.value_modifier:
            text = f"{row.value_modifier}{text}"
        if row.units and row.units.strip():
            text = f"{text} {row.units.strip()}"
        return RenderedValue(text, "numeric", "numeric")
    if row.value_datetime is not None:
        if row.concept_datatype == "Date":
            return RenderedValue(row.value_datetime.date().isoformat(), "text", "date")
        if row.concept_datatype == "Time":
            return RenderedValue(row.value_datetime.time().isoformat(), "text", "time")
        return RenderedValue(iso(to_utc(row.value_datetime, tz)), "text", "datetime")
    if row.value_complex is not None:
        title = row.value_complex.split("|", 1)[0].strip()
        return RenderedValue(title or "Attachment", "text", "complex")
    if row.value_text is not None:
        return RenderedValue(row.value_text, "text", "text")
    return None


def test_status(row: ObsRow) -> str | None:
    """Normal/Abnormal/Critical from the obs' interpretation, else the concept's ranges."""
    if row.interpretation and row.interpretation.upper() in _INTERPRETATION_STATUS:
        return _INTERPRETATION_STATUS[row.interpretation.upper()]
    value = row.value_numeric
    if value is None or row.value_modifier:
        return None
    if (row.low_critical is not None and value < row.low_critical) or (
        row.hi_critical is not None and value > row.hi_critical
    ):
        return "Critical"
    if (row.low_normal is not None and value < row.low_normal) or (row.hi_normal is not None and value > row.hi_normal):
        return "Abnormal"
    if row.low_normal is not None or row.hi_normal is not None:
        return "Normal"
    return None


@dataclass(frozen=True, slots=True)
class RecordContext:
    """Everything about one observation that does not come from its own row."""

    hospital_id: str
    hospital_name: str
    patient_id: str
    created_by: str
    doctor_name: str
    provider_uuid: str | None
    concept_name: str
    answer_name: str | None
    group_concept_name: str | None
    category: RecordType
    now: datetime
    tz: ZoneInfo
    true_concept_id: int = 1
    false_concept_id: int = 2


def build_record(row: ObsRow, ctx: RecordContext) -> dict[str, Any] | None:
    """The ``medicalrecords`` document for ``row``, or None when it carries no value."""
    value = render_value(
        row,
        answer_name=ctx.answer_name,
        true_concept_id=ctx.true_concept_id,
        false_concept_id=ctx.false_concept_id,
        tz=ctx.tz,
    )
    if value is None or row.obs_datetime is None or row.date_created is None:
        return None  # the pipeline parks rows without valid dates before they get here
    when = iso(to_utc(row.obs_datetime, ctx.tz))
    data: dict[str, str] = {
        "name": ctx.concept_name,
        "details": value.text,
        "date": when,
        "doctor": ctx.doctor_name,
        "hospital": ctx.hospital_name,
    }
    if row.comments:
        data["notes"] = row.comments
    if ctx.group_concept_name:
        data["description"] = ctx.group_concept_name
    data.update(_type_fields(ctx.category, row, ctx, value, when))

    openmrs: dict[str, Any] = {
        "hospitalId": ctx.hospital_id,
        "source": "obs",
        "uuid": row.uuid,
        "obsUuid": row.uuid,
        "obsId": row.obs_id,
        "conceptId": row.concept_id,
        "conceptUuid": row.concept_uuid,
        "personId": row.person_id,
        "obsDatetime": to_utc(row.obs_datetime, ctx.tz),
        "dateCreated": to_utc(row.date_created, ctx.tz),
        "creatorName": ctx.doctor_name,
        "locationName": row.location_name,
        "encounterUuid": row.encounter_uuid,
        "providerUuid": ctx.provider_uuid,
        "valueType": value.value_type,
        "valueKind": value.kind,
        "status": row.status,
    }
    if row.group_uuid:
        openmrs["groupUuid"] = row.group_uuid
    if row.previous_version_uuid:
        openmrs["previousVersionUuid"] = row.previous_version_uuid
    if row.value_complex is not None:
        openmrs["valueComplex"] = row.value_complex
    if row.units:
        openmrs["units"] = row.units

    return medical_record(
        record_id(ctx.hospital_id, "obs", row.uuid),
        ctx.patient_id,
        ctx.category,
        data,
        ctx.created_by,
        openmrs,
        ctx.now,
    )


def medical_record(
    _id: ObjectId,
    patient_id: str,
    record_type: str,
    data: dict[str, str],
    created_by: str,
    openmrs: dict[str, Any],
    now: datetime,
) -> dict[str, Any]:
    """A ``medicalrecords`` document as the app's Mongoose model stores one.

    ``syncDate`` is the moment the row was written in OpenMRS: the app lets a doctor edit a record
    for three hours after its ``syncDate`` and locks it afterwards, so a record arriving during the
    consultation can still be completed in the app (medications added to a condition) while
    history arrives locked; OpenMRS stays where a record is corrected. Without ``syncDate`` the
    app would let any doctor edit the record forever.

    ``openmrsData`` also says which ``data`` fields the sync owns (``syncedFields``: any other
    field is a doctor's addition), the rendering version, and a digest of everything the sync
    wrote (``contentDigest``: a record whose OpenMRS row and rendering did not change is never
    rewritten, whatever a doctor edited).
    """
    openmrs = {**openmrs, "renderVersion": RENDER_VERSION, "syncedFields": sorted(data)}
    openmrs["contentDigest"] = content_digest(patient_id, record_type, data, openmrs)
    return {
        "_id": _id,
        "patientId": patient_id,
        "type": record_type,
        "data": data,
        "createdBy": created_by,
        "editableBy": [created_by],
        "openmrsData": openmrs,
        "syncDate": openmrs.get("dateCreated") or now,
        "createdAt": now,
        "updatedAt": now,
        "__v": 0,
    }


def content_digest(patient_id: str, record_type: str, data: Mapping[str, Any], openmrs: Mapping[str, Any]) -> str:
    """A digest of the fields the sync owns in a record (``contentDigest`` itself excluded)."""
    owned = {k: v for k, v in openmrs.items() if k != "contentDigest"}
    text = json.dumps([patient_id, record_type, data, owned], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _type_fields(
    category: RecordType, row: ObsRow, ctx: RecordContext, value: RenderedValue, when: str
) -> dict[str, str]:
    if category == "condition":
        return {
            "diagnosis": value.text,
            "diagnosed": when,
            "diagnosedDate": when,
            "diagnosedBy": ctx.doctor_name,
        }
    if category == "medication":
        return {
            "medicationName": value.text if value.kind in ("drug", "coded", "text") else ctx.concept_name,
            "startDate": when,
            "prescribedBy": ctx.doctor_name,
            "medicationStatus": "Active",
        }
    if category == "test":
        fields = {"testName": ctx.concept_name, "testDate": when, "result": value.text}
        status = test_status(row)
        if status:
            fields["testStatus"] = status
            fields["status"] = status.lower()  # what the patient page reads
        return fields
    if category == "visit":
        return {"visitDate": when, "reason": value.text}
    # image
    complex_value = row.value_complex or ""
    title = complex_value.split("|", 1)[0]
    extension = title.rsplit(".", 1)[1].lower() if "." in title else ""
    fields = {"description": value.text, "imageUrl": unavailable_image(value.text, ctx.hospital_name)}
    if not row.comments:
        fields["notes"] = f"The file is kept in OpenMRS at {ctx.hospital_name}; Patient Passport cannot show it."
    if extension:
        fields["imageType"] = extension
    return fields


def unavailable_image(title: str, hospital_name: str) -> str:
    """An image the app shows in the tile when the file itself cannot be served to it.

    OpenMRS keeps complex observations on its own server, behind its login; Patient Passport
    cannot fetch them. The tile then says where the file is instead of staying empty.
    """
    lines = ["Kept in OpenMRS", hospital_name[:40], title[:40]]
    text = "".join(
        f'<text x="160" y="{90 + 30 * i}" text-anchor="middle" font-family="sans-serif" font-size="16">'
        f"{html.escape(line)}</text>"
        for i, line in enumerate(lines)
    )
    svg = (
        '<svg xmlns="http://www.w3.org/2000/svg" width="320" height="200" viewBox="0 0 320 200">'
        f'<rect width="320" height="200" fill="#eef1f4"/>{text}</svg>'
    )
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()
