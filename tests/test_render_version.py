"""Records written by an earlier rendering are rewritten from OpenMRS by the next run, once."""

from __future__ import annotations

from typing import Any

import pytest

from passport_sync import pipeline
from passport_sync.mapping import RENDER_VERSION
from tests.conftest import hospital_entry, make_settings, register_patient
from tests.helpers import Clinic, run_sync

NID = "1199780012345671"


@pytest.fixture
def clinic(openmrs: Any) -> Clinic:
    return Clinic(openmrs)


def _as_written_before(passport: Any) -> None:
    """What records looked like before rendering versions: no version, no syncDate, no status."""
    passport.medicalrecords.update_many(
        {}, {"$unset": {"openmrsData.renderVersion": "", "syncDate": "", "data.status": ""}}
    )
    passport.syncstatus.update_many({}, {"$unset": {"renderVersion": "", "renderAfter": ""}})


def test_records_of_an_earlier_rendering_are_rewritten_once_keeping_doctors_additions(
    clinic: Clinic, passport: Any, mongo_uri: str, mongo_db_name: str
) -> None:
    settings = make_settings(mongo_uri, mongo_db_name, [hospital_entry(clinic.db.name)])
    person = clinic.patient(NID)
    register_patient(passport, NID)
    encounter = clinic.b.encounter(person, location_id=clinic.location, provider_ids=[clinic.provider])
    clinic.b.obs(person, clinic.diagnosis, encounter_id=encounter, value_coded=clinic.diabetes)
    clinic.b.obs(person, clinic.weight, encounter_id=encounter, value_numeric=160)  # above hi_normal
    voided_later = clinic.b.obs(person, clinic.note, encounter_id=encounter, value_text="to be voided")
    run_sync(settings)
    fresh = {d["_id"]: d for d in passport.medicalrecords.find()}
    test = next(d for d in fresh.values() if d["type"] == "test")
    assert test["data"]["status"] == "abnormal"

    _as_written_before(passport)
    condition = next(d for d in fresh.values() if d["data"].get("diagnosis") == "Diabetes Type 2")
    added = {"name": "Metformin", "dosage": "500 mg", "frequency": "Twice daily"}
    passport.medicalrecords.update_one({"_id": condition["_id"]}, {"$push": {"data.medications": added}})
    clinic.db.execute("UPDATE obs SET voided = 1, date_voided = NOW() WHERE obs_id = %s", (voided_later,))

    report = run_sync(settings)[0]
    now = {d["_id"]: d for d in passport.medicalrecords.find()}
    assert report.outcome == "ok" and report.rerendered == len(now)
    # Equal to what a fresh sync of today's OpenMRS writes: the voided obs is gone, the rest restored.
    assert set(now) == set(fresh) - {d["_id"] for d in fresh.values() if d["openmrsData"].get("obsId") == voided_later}
    for rid, doc in now.items():
        assert doc["openmrsData"]["renderVersion"] == RENDER_VERSION
        assert doc["syncDate"] == fresh[rid]["syncDate"]
        if doc["type"] != "visit":  # the encounter's visit record no longer names the voided note
            assert {k: v for k, v in doc["data"].items() if k != "medications"} == fresh[rid]["data"]
    assert now[condition["_id"]]["data"]["medications"] == [added]  # the doctor's addition stays

    again = run_sync(settings)[0]
    assert again.rerendered == 0 and again.written == 0 and again.updated == 0


def test_rerendering_is_bounded_per_run(
    clinic: Clinic, passport: Any, mongo_uri: str, mongo_db_name: str, monkeypatch: Any
) -> None:
    settings = make_settings(mongo_uri, mongo_db_name, [hospital_entry(clinic.db.name)], batch_size=3)
    person = clinic.patient(NID)
    register_patient(passport, NID)
    clinic.many([person], 10)
    run_sync(settings)
    _as_written_before(passport)
    monkeypatch.setattr(pipeline, "RERENDER_BATCHES_PER_RUN", 2)
    assert run_sync(settings)[0].rerendered == 6
    assert run_sync(settings)[0].rerendered == 4
    assert run_sync(settings)[0].rerendered == 0
    assert passport.medicalrecords.count_documents({"openmrsData.renderVersion": RENDER_VERSION}) == 10
