"""Why a row waits instead of becoming a record, and the shape of the row kept while it waits.

A parked row lives in ``openmrs_sync_parked`` under its park key until its patient is known or its
data is fixed; the reasons are stable strings that ``status`` and JSON output show.
"""

from __future__ import annotations

from typing import Any

NO_NATIONAL_ID = "no_national_id"
INVALID_NATIONAL_ID = "invalid_national_id"
CONFLICTING_NATIONAL_IDS = "conflicting_national_ids"
SHARED_NATIONAL_ID = "shared_national_id"
NOT_IN_PASSPORT = "patient_not_in_passport"
AMBIGUOUS_PASSPORT_PATIENT = "ambiguous_passport_patient"
MISSING_CONCEPT = "missing_concept"
INVALID_DATA = "invalid_data"

# Data to fix in OpenMRS: each such row is named in a WARNING (hospital and row id, never the
# national ID). Rows parked for a missing concept or invalid data are re-read by the pass over
# every parked row (once per reconcile.full_pass_hours), in case OpenMRS was fixed in place.
DATA_PROBLEMS = {
    INVALID_NATIONAL_ID: "its patient's national ID is not 10-16 digits",
    CONFLICTING_NATIONAL_IDS: "its patient has two different national IDs",
    SHARED_NATIONAL_ID: "its patient's national ID is held by another OpenMRS patient too",
    AMBIGUOUS_PASSPORT_PATIENT: "its patient's national ID matches two Patient Passport patients",
}
RETRIED_BY_FULL_PASS = (MISSING_CONCEPT, INVALID_DATA)

# The data manager's worklist: each reason in plain words, and what fixes it. The rows land on the
# next run that finds the fix (a patient's new or corrected identifier), or on the daily pass over
# every parked row (reconcile.full_pass_hours), or at once with sync-patient.
FIXES = {
    INVALID_NATIONAL_ID: (
        "the national ID is not 10-16 digits",
        "correct the National ID identifier in OpenMRS (digits only; spaces and dashes are fine)",
    ),
    CONFLICTING_NATIONAL_IDS: (
        "the patient has two different national IDs",
        "void the wrong National ID identifier in OpenMRS",
    ),
    SHARED_NATIONAL_ID: (
        "another OpenMRS patient holds the same national ID",
        "merge the duplicate patients in OpenMRS, or correct the wrong one's National ID",
    ),
    AMBIGUOUS_PASSPORT_PATIENT: (
        "two Patient Passport patients hold this national ID",
        "ask Patient Passport support to merge the duplicate registration (nothing to fix in OpenMRS)",
    ),
    MISSING_CONCEPT: (
        "a row refers to a concept that does not exist",
        "restore the concept in OpenMRS, or void the row",
    ),
    INVALID_DATA: (
        "a row's value cannot be read (see status for the detail)",
        "correct or void the row in OpenMRS",
    ),
    NO_NATIONAL_ID: (
        "the patient has no national ID in OpenMRS",
        "add the patient's National ID identifier in OpenMRS, if they have one",
    ),
    NOT_IN_PASSPORT: (
        "the patient has not registered in Patient Passport",
        "nothing in OpenMRS: the rows land when the patient registers",
    ),
}


def park_key(hospital_id: str, source: str, uuid: str) -> str:
    """The ``_id`` of a parked row: one per OpenMRS row, whatever the reason."""
    return f"{hospital_id}:{source}:{uuid}"


def parked_row(
    hospital_id: str, source: str, uuid: str, pk: int, person_id: int, reason: str, detail: str = ""
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "_id": park_key(hospital_id, source, uuid),
        "hospitalId": hospital_id,
        "source": source,
        "uuid": uuid,
        "sourceId": pk,
        "personId": person_id,
        "reason": reason,
    }
    if source == "obs":
        doc["obsId"] = pk
    if detail:
        doc["detail"] = detail
    return doc
