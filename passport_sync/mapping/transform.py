"""Turn one OpenMRS observation into one ``medicalrecords`` document, shaped as the app reads it.

Pure: the caller passes every fact (names, patient, doctor, clock) in a RecordContext.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any

from bson import ObjectId

from passport_sync.config import RecordType
from passport_sync.mapping import RENDER_VERSION
from passport_sync.models import ObsRow

DATE_DATATYPES = frozenset({"Date", "Time", "Datetime"})
NUMERIC_DATATYPES = frozenset({"Numeric", "Structured Numeric"})
# Values that mean nothing without their question ("No", "2020-04-15", "Amoxicillin"): wherever
# they are the headline of a card, the headline is "question: answer".
NEEDS_QUESTION = frozenset({"coded", "boolean", "drug", "date", "time", "datetime"})

# obs.interpretation (Platform 2.1+, core's Obs.Interpretation): the app's testStatus enum and the
# words the result shows, so the direction (high, low) and microbiology readings are not lost.
_INTERPRETATIONS: dict[str, tuple[str, str]] = {
    "NORMAL": ("Normal", "Normal"),
    "ABNORMAL": ("Abnormal", "Abnormal"),
    "CRITICALLY_ABNORMAL": ("Critical", "Critically abnormal"),
    "LOW": ("Abnormal", "Low"),
    "HIGH": ("Abnormal", "High"),
    "CRITICALLY_LOW": ("Critical", "Critically low"),
    "CRITICALLY_HIGH": ("Critical", "Critically high"),
    "OFF_SCALE_LOW": ("Abnormal", "Below the measurable range"),
    "OFF_SCALE_HIGH": ("Abnormal", "Above the measurable range"),
    "NEGATIVE": ("Normal", "Negative"),
    "POSITIVE": ("Abnormal", "Positive"),
    "SIGNIFICANT_CHANGE_DOWN": ("Abnormal", "Significant change down"),
    "SIGNIFICANT_CHANGE_UP": ("Abnormal", "Significant change up"),
    "VERY_SUSCEPTIBLE": ("Normal", "Very susceptible"),
    "SUSCEPTIBLE": ("Normal", "Susceptible"),
    "INTERMEDIATE": ("Abnormal", "Intermediate"),
    "RESISTANT": ("Abnormal", "Resistant"),
}

# Coded answers that say a test found what it looks for (CIEL Positive, Reactive, Detected): such a
# result is abnormal even when OpenMRS records no interpretation (a positive HIV rapid test, a
# positive pregnancy test, a positive malaria smear).
POSITIVE_ANSWERS = frozenset(f"{concept_id}".ljust(36, "A").lower() for concept_id in (703, 1228, 1301))
# CIEL "Other non-coded": the clinician typed the answer in obs.value_text.
OTHER_ANSWER = "5622".ljust(36, "A").lower()
# What the page shows (upper-cased) for a result neither OpenMRS nor the concept's ranges judged:
# the page calls any test without ``data.status`` NORMAL.
NOT_INTERPRETED = "not interpreted"
# obs.status (Platform 2.1+): a result that is not final says so beside the value.
_RESULT_STATUSES = {"PRELIMINARY": "preliminary", "AMENDED": "amended"}


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


def to_utc(value: datetime, tz: tzinfo) -> datetime:
    """OpenMRS DATETIMEs are naive local times of the hospital's server."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=tz)
    return value.astimezone(UTC)


def iso(value: datetime) -> str:
    """An ISO string the app's ``new Date(...)`` reads exactly, as JavaScript writes them."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def format_number(value: float, allow_decimal: bool | None) -> str:
    """As OpenMRS shows a number: a concept that allows no decimals shows the whole part
    (72.6 shows 72, as core's Obs.getValueAsString truncates), others their digits."""
    if allow_decimal is False:
        return str(int(value))
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.10g}"


def format_local(value: datetime) -> str:
    """A date-time value as the clinician entered it, in the hospital's local time."""
    text = value.strftime("%Y-%m-%d %H:%M")
    return text + (f":{value.second:02d}" if value.second else "")


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
) -> RenderedValue | None:
    """The value of an observation as OpenMRS shows it, or None if it carries none."""
    if row.concept_datatype == "Boolean":
        if row.value_coded is not None and row.value_coded in (true_concept_id, false_concept_id):
            return RenderedValue("Yes" if row.value_coded == true_concept_id else "No", "coded", "boolean")
        if row.value_numeric is not None and row.value_numeric in (0.0, 1.0):
            return RenderedValue("Yes" if row.value_numeric == 1.0 else "No", "coded", "boolean")
    if row.value_drug is not None and row.drug_name:
        return RenderedValue(row.drug_name, "coded", "drug")
    if row.value_coded is not None:
        answer = answer_name or f"Concept {row.value_coded}"
        typed = (row.value_text or "").strip()
        if typed:
            # Text typed with a coded answer: instead of "Other", beside any other answer.
            answer = typed if (row.value_coded_uuid or "").lower() == OTHER_ANSWER else f"{answer} ({typed})"
        return RenderedValue(answer, "coded", "coded")
    if row.value_numeric is not None:
        text = format_number(row.value_numeric, row.allow_decimal)
        if row.value_modifier:
            text = f"{row.value_modifier}{text}"
        if row.units and row.units.strip():
            text = f"{text} {row.units.strip()}"
        return RenderedValue(text, "numeric", "numeric")
    if row.value_datetime is not None:
        # Shown as entered: a date is a calendar date, a date-time the hospital's local time.
        if row.concept_datatype == "Date":
            return RenderedValue(row.value_datetime.date().isoformat(), "text", "date")
        if row.concept_datatype == "Time":
            return RenderedValue(row.value_datetime.strftime("%H:%M"), "text", "time")
        return RenderedValue(format_local(row.value_datetime), "text", "datetime")
    if row.value_complex is not None:
        title = row.value_complex.split("|", 1)[0].strip()
        return RenderedValue(title or "Attachment", "text", "complex")
    if row.value_text is not None:
        return RenderedValue(row.value_text, "text", "text")
    return None


def headline(question: str, value: RenderedValue) -> str:
    """``question: answer`` for answers that mean nothing alone; the value itself otherwise
    (a number with its units, a text, an attachment's title)."""
    return f"{question}: {value.text}" if value.kind in NEEDS_QUESTION else value.text


def test_status(row: ObsRow) -> str | None:
    """Normal/Abnormal/Critical from the obs' interpretation, else the concept's ranges."""
    return _judgement(row)[0]


def _judgement(row: ObsRow) -> tuple[str | None, str | None]:
    """(testStatus, the words the result shows) from the interpretation, else the ranges."""
    if row.interpretation and row.interpretation.upper() in _INTERPRETATIONS:
        return _INTERPRETATIONS[row.interpretation.upper()]
    if row.value_coded is not None and (row.value_coded_uuid or "").lower() in POSITIVE_ANSWERS:
        return "Abnormal", None  # the answer itself ("Positive") says which way
    value = row.value_numeric
    if value is None or row.value_modifier:
        return None, None
    if row.low_critical is not None and value < row.low_critical:
        return "Critical", "Critically low"
    if row.hi_critical is not None and value > row.hi_critical:
        return "Critical", "Critically high"
    if row.low_normal is not None and value < row.low_normal:
        return "Abnormal", "Low"
    if row.hi_normal is not None and value > row.hi_normal:
        return "Abnormal", "High"
    if row.low_normal is not None or row.hi_normal is not None:
        return "Normal", None
    return None, None


_SEVERITY = {"Critical": 2, "Abnormal": 1, "Normal": 0}


def group_status(rows: Sequence[ObsRow]) -> str | None:
    """The status of a result made of several observations: the worst member's; normal only when
    every member was judged normal."""
    statuses = [test_status(row) for row in rows]
    judged = [s for s in statuses if s is not None]
    worst = max(judged, key=_SEVERITY.__getitem__, default=None)
    if worst is None or (worst == "Normal" and len(judged) < len(statuses)):
        return None
    return worst


def status_fields(status: str | None) -> dict[str, str]:
    """``testStatus`` (the app's enum) and ``status`` (what the page shows, upper-cased). A result
    nobody judged says so: the page would call it NORMAL."""
    if status is None:
        return {"status": NOT_INTERPRETED}
    return {"testStatus": status, "status": status.lower()}


def reference_range(row: ObsRow) -> str | None:
    """The concept's normal range as a reader expects it: "normal 30-150 kg", "normal up to 5"."""
    low, high = row.low_normal, row.hi_normal
    if low is None and high is None:
        return None
    units = f" {row.units.strip()}" if row.units and row.units.strip() else ""
    if low is not None and high is not None:
        return f"normal {format_number(low, None)}-{format_number(high, None)}{units}"
    if high is not None:
        return f"normal up to {format_number(high, None)}{units}"
    return f"normal from {format_number(low or 0.0, None)}{units}"


def test_result(row: ObsRow, value: RenderedValue) -> str:
    """The result a test card shows: the value, its direction and its normal range, then the
    clinician's comment (the card has no other place for it)."""
    label = _judgement(row)[1]
    if label and label.lower() in ("normal", value.text.lower()):
        label = None  # "Positive (Positive)" says nothing more
    extras = [e for e in (_RESULT_STATUSES.get((row.status or "").upper()), label, reference_range(row)) if e]
    text = f"{value.text} ({'; '.join(extras)})" if extras else value.text
    return with_comment(text, row.comments)


def with_comment(text: str, comment: str | None) -> str:
    comment = (comment or "").strip()
    return f"{text} - {comment}" if comment else text


def _range_fields(row: ObsRow) -> dict[str, Any]:
    bounds: dict[str, Any] = {
        "lowNormal": row.low_normal,
        "hiNormal": row.hi_normal,
        "lowCritical": row.low_critical,
        "hiCritical": row.hi_critical,
    }
    present = {k: v for k, v in bounds.items() if v is not None}
    if present and row.units and row.units.strip():
        present["units"] = row.units.strip()
    return present


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
    tz: tzinfo
    true_concept_id: int = 1
    false_concept_id: int = 2


def obs_provenance(row: ObsRow, ctx: RecordContext, uuid: str, value_type: str) -> dict[str, Any]:
    """The ``openmrsData`` block common to every record made from observations."""
    assert row.obs_datetime is not None
    assert row.date_created is not None
    return {
        "hospitalId": ctx.hospital_id,
        "source": "obs",
        "uuid": uuid,
        "obsUuid": uuid,
        "obsId": row.obs_id,
        "personId": row.person_id,
        "obsDatetime": to_utc(row.obs_datetime, ctx.tz),
        "dateCreated": to_utc(row.date_created, ctx.tz),
        "creatorName": ctx.doctor_name,
        "locationName": row.location_name,
        "encounterUuid": row.encounter_uuid,
        "providerUuid": ctx.provider_uuid,
        "valueType": value_type,
        "renderVersion": RENDER_VERSION,
    }


def build_record(row: ObsRow, ctx: RecordContext) -> dict[str, Any] | None:
    """The ``medicalrecords`` document for ``row``, or None when it carries no value."""
    value = render_value(
        row,
        answer_name=ctx.answer_name,
        true_concept_id=ctx.true_concept_id,
        false_concept_id=ctx.false_concept_id,
    )
    if value is None or row.obs_datetime is None or row.date_created is None:
        return None  # the pipeline parks rows without valid dates before they get here
    when = iso(to_utc(row.obs_datetime, ctx.tz))
    question = ctx.concept_name
    if ctx.group_concept_name:
        # A member of a panel (vitals, a lab panel) names its panel where the card shows it.
        question = f"{question} ({ctx.group_concept_name})"
    data: dict[str, str] = {
        "name": question,
        "details": headline(question, value),
        "date": when,
        "doctor": ctx.doctor_name,
        "hospital": ctx.hospital_name,
    }
    if row.comments and row.comments.strip():
        data["notes"] = row.comments.strip()
    if ctx.group_concept_name:
        data["description"] = ctx.group_concept_name
    data.update(_type_fields(ctx.category, row, ctx, value, question, when))

    openmrs = obs_provenance(row, ctx, row.uuid, value.value_type)
    openmrs.update(
        conceptId=row.concept_id,
        conceptUuid=row.concept_uuid,
        conceptClass=row.concept_class,
        valueKind=value.kind,
        status=row.status,
    )
    if row.interpretation:
        openmrs["interpretation"] = row.interpretation
    ranges = _range_fields(row)
    if ranges:
        openmrs["referenceRange"] = ranges
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


@dataclass(frozen=True, slots=True)
class GroupMember:
    row: ObsRow
    question: str
    answer_name: str | None


def build_group_record(
    group_uuid: str, group_name: str, members: Sequence[GroupMember], ctx: RecordContext
) -> dict[str, Any] | None:
    """One record for an obs group whose members only mean something together (family history:
    relationship and diagnosis; an allergy captured as observations): "Family history: Mother -
    Diabetes Mellitus", never a condition of the patient's own."""
    parts: list[tuple[str, RenderedValue, ObsRow]] = []
    for member in members:
        value = render_value(
            member.row,
            answer_name=member.answer_name,
            true_concept_id=ctx.true_concept_id,
            false_concept_id=ctx.false_concept_id,
        )
        if value is not None:
            parts.append((member.question, value, member.row))
    first = next((row for _, _, row in parts if row.obs_datetime and row.date_created), None)
    if first is None or first.obs_datetime is None:
        return None
    # Coded answers read on their own inside the group's sentence ("Mother", "Diabetes Mellitus");
    # anything else keeps its question ("Age at diagnosis: 45").
    short = [v.text if v.kind in ("coded", "drug") else f"{q}: {v.text}" for q, v, _ in parts]
    title = f"{group_name}: {' - '.join(short)}"
    spelled = "; ".join(f"{q}: {v.text}" for q, v, _ in parts)
    comments = "; ".join(r.comments.strip() for _, _, r in parts if r.comments and r.comments.strip())
    when = iso(to_utc(first.obs_datetime, ctx.tz))
    data = {
        "name": group_name,
        "details": spelled,
        "date": when,
        "doctor": ctx.doctor_name,
        "hospital": ctx.hospital_name,
    }
    if comments:
        data["notes"] = comments
    if ctx.category == "condition":
        data.update(diagnosis=title, diagnosed=when, diagnosedDate=when, diagnosedBy=ctx.doctor_name)
    elif ctx.category == "medication":
        data.update(medicationName=title, startDate=when, prescribedBy=ctx.doctor_name, medicationStatus="Active")
    elif ctx.category == "visit":
        data.update(visitDate=when, reason=with_comment(title, comments))
    elif ctx.category == "image":
        data.update(description=title)
    else:
        data.update(testName=title, testDate=when, result=with_comment(spelled, comments))
        data.update(status_fields(group_status([row for _, _, row in parts])))
    openmrs = obs_provenance(
        first, ctx, group_uuid, "coded" if any(v.value_type == "coded" for _, v, _ in parts) else "text"
    )
    openmrs.update(obsId=first.obs_group_id, conceptId=first.group_concept_id, conceptUuid=first.group_concept_uuid)
    openmrs.update(groupUnit=True, memberUuids=[r.uuid for _, _, r in parts])
    _id = record_id(ctx.hospital_id, "obs", group_uuid)
    return medical_record(_id, ctx.patient_id, ctx.category, data, ctx.created_by, openmrs, ctx.now)


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
    field is a doctor's addition), the rendering it was written with (``renderVersion``) and a
    digest of everything the sync wrote (``contentDigest``: a record whose OpenMRS row did not
    change is never rewritten, whatever a doctor edited; a new rendering changes the digest).
    """
    # ``synced``: the doctor's view shows its "synced from OpenMRS" mark from it.
    openmrs = {"renderVersion": RENDER_VERSION, **openmrs, "synced": True, "syncedFields": sorted(data)}
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
    category: RecordType, row: ObsRow, ctx: RecordContext, value: RenderedValue, question: str, when: str
) -> dict[str, str]:
    if category == "condition":
        # The answer alone is the diagnosis only when it names one (a coded diagnosis, free text);
        # "Fever: No" or "Diagnosis date: 2020-04-15" keep their question.
        names_diagnosis = value.kind == "text" or (value.kind == "coded" and row.value_coded_class == "Diagnosis")
        return {
            "diagnosis": value.text if names_diagnosis else headline(question, value),
            "diagnosed": when,
            "diagnosedDate": when,
            "diagnosedBy": ctx.doctor_name,
        }
    if category == "medication":
        return {
            "medicationName": value.text if value.kind in ("drug", "coded", "text") else f"{question}: {value.text}",
            "startDate": when,
            "prescribedBy": ctx.doctor_name,
            "medicationStatus": "Active",
        }
    if category == "test":
        fields = {
            "testName": headline(question, value) if value.kind in NEEDS_QUESTION else question,
            "testDate": when,
            "result": test_result(row, value),
        }
        fields.update(status_fields(test_status(row)))
        return fields
    if category == "visit":
        return {"visitDate": when, "reason": with_comment(headline(question, value), row.comments)}
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
