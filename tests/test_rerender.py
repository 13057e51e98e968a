"""Records written by an older rendering are rewritten once, by the next sync-all run.

The older records are made the way the previous rendering wrote them (an answer as a condition,
a family-history group as one condition per member, no renderVersion, digest or list of synced
fields); a doctor's addition in the app (``data.medications``) must survive the rewrite.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from passport_sync import pipeline
from passport_sync.mapping import RENDER_VERSION
from passport_sync.mapping.transform import record_id
from tests import ciel_concepts
from tests.conftest import OpenMRSDatabase, hospital_entry, make_settings, register_patient
from tests.helpers import run_sync

NATIONAL_ID = "1199780012345678"
HOSPITAL = "60a7c2f5e4b0c1a2d3e4f5a6"
DOCTORS_MEDICATION = {"name": "Paracetamol", "dosage": "500 mg", "frequency": "Thrice daily"}


def _uuid(openmrs: OpenMRSDatabase, obs_id: int) -> str:
    return str(openmrs.execute("SELECT uuid FROM obs WHERE obs_id = %s", (obs_id,))[0][0]).lower()


@pytest.fixture
def chart(openmrs: OpenMRSDatabase) -> dict[str, Any]:
    """Fever = No, and a family-history group (Mother, Diabetes Mellitus)."""
    ids = ciel_concepts.load(openmrs.build)
    b = openmrs.build
    person = b.patient(national_id=NATIONAL_ID)
    encounter = b.encounter(person, provider_ids=[b.provider("Jean", "Uwimana")], when=datetime(2025, 11, 6, 10, 30))
    fever = b.obs(person, ids["fever"], encounter_id=encounter, value_coded=ids["no"])
    group = b.obs(person, ids["family_history"], encounter_id=encounter)
    mother = b.obs(person, ids["relationship"], encounter_id=encounter, obs_group_id=group, value_coded=ids["mother"])
    diabetes = b.obs(
        person, ids["problem_list"], encounter_id=encounter, obs_group_id=group, value_coded=ids["diabetes"]
    )
    return {
        "fever": _uuid(openmrs, fever),
        "group": _uuid(openmrs, group),
        "members": {_uuid(openmrs, mother): "Mother", _uuid(openmrs, diabetes): "Diabetes Mellitus"},
    }


def _make_it_look_like_the_older_rendering(passport: Any, chart: dict[str, Any]) -> None:
    fever_id = record_id(HOSPITAL, "obs", chart["fever"])
    passport.medicalrecords.update_one(
        {"_id": fever_id},
        {
            "$set": {"type": "condition", "data.diagnosis": "No", "data.details": "No", "data.diagnosedDate": "x"},
            "$unset": {
                "openmrsData.renderVersion": "",
                "openmrsData.contentDigest": "",
                "openmrsData.syncedFields": "",
                "data.testName": "",
                "data.result": "",
                "data.testDate": "",
            },
        },
    )
    # A doctor added a medication to the "condition" in the app.
    passport.medicalrecords.update_one({"_id": fever_id}, {"$push": {"data.medications": DOCTORS_MEDICATION}})
    group = passport.medicalrecords.find_one({"_id": record_id(HOSPITAL, "obs", chart["group"])})
    passport.medicalrecords.delete_one({"_id": group["_id"]})
    for uuid, answer in chart["members"].items():
        member = {
            **group,
            "_id": record_id(HOSPITAL, "obs", uuid),
            "type": "condition",
            "data": {**group["data"], "diagnosis": answer, "details": answer},
            "openmrsData": {
                k: v
                for k, v in group["openmrsData"].items()
                if k not in ("renderVersion", "contentDigest", "syncedFields")
            }
            | {"uuid": uuid},
        }
        member["data"].pop("testName")
        passport.medicalrecords.insert_one(member)
    passport.syncstatus.update_many({}, {"$unset": {"renderVersion": "", "renderAfter": ""}})


def test_older_records_are_rewritten_once_keeping_doctors_additions(
    openmrs: OpenMRSDatabase, passport: Any, mongo_uri: str, chart: dict[str, Any]
) -> None:
    patient_id = register_patient(passport, NATIONAL_ID)
    settings = make_settings(mongo_uri, passport.name, [hospital_entry(openmrs.name, timezone="Africa/Kigali")])
    run_sync(settings)
    _make_it_look_like_the_older_rendering(passport, chart)
    conditions = {r["data"]["diagnosis"] for r in passport.medicalrecords.find({"type": "condition"})}
    assert conditions == {"No", "Mother", "Diabetes Mellitus"}

    [report] = run_sync(settings)

    assert report.outcome == "ok", report.errors
    assert report.rerendered >= 1
    assert report.as_dict()["rerendered"] == report.rerendered
    fever = passport.medicalrecords.find_one({"_id": record_id(HOSPITAL, "obs", chart["fever"])})
    assert fever["type"] == "test"
    assert fever["data"]["testName"] == "Fever: No"
    assert "diagnosis" not in fever["data"]
    assert "diagnosedDate" not in fever["data"]
    assert fever["data"]["medications"] == [DOCTORS_MEDICATION]
    assert fever["openmrsData"]["renderVersion"] == RENDER_VERSION
    records = list(passport.medicalrecords.find({"patientId": patient_id}))
    assert [r for r in records if r["type"] == "condition"] == []
    # Besides the visit record of the encounter, which carries no test.
    tests = {r["data"].get("testName") for r in records if r["type"] != "visit"}
    assert tests == {"Fever: No", "Family history: Mother - Diabetes Mellitus"}
    for uuid in chart["members"]:
        assert passport.medicalrecords.find_one({"_id": record_id(HOSPITAL, "obs", uuid)}) is None
    assert passport.syncstatus.find_one({"hospitalId": HOSPITAL})["renderVersion"] == RENDER_VERSION

    # Once: the next run finds nothing to rewrite and writes nothing.
    [again] = run_sync(settings)
    assert (again.rerendered, again.written, again.updated, again.removed) == (0, 0, 0, 0)


def test_the_rewrite_is_bounded_per_run_and_resumes(
    openmrs: OpenMRSDatabase,
    passport: Any,
    mongo_uri: str,
    chart: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    register_patient(passport, NATIONAL_ID)
    hospitals = [hospital_entry(openmrs.name, timezone="Africa/Kigali")]
    settings = make_settings(mongo_uri, passport.name, hospitals, batch_size=1)
    run_sync(settings)
    _make_it_look_like_the_older_rendering(passport, chart)
    monkeypatch.setattr(pipeline, "RERENDER_BATCHES_PER_RUN", 1)

    run_sync(settings)
    status = passport.syncstatus.find_one({"hospitalId": HOSPITAL})
    assert "renderVersion" not in status or status["renderVersion"] != RENDER_VERSION
    assert status["renderAfter"] is not None
    for _ in range(5):
        run_sync(settings)
    assert passport.syncstatus.find_one({"hospitalId": HOSPITAL})["renderVersion"] == RENDER_VERSION
    stale = passport.medicalrecords.count_documents({"openmrsData.renderVersion": {"$ne": RENDER_VERSION}})
    assert stale == 0
    assert passport.medicalrecords.count_documents({"type": "condition"}) == 0
