"""Defects found beside reconciliation, each as a scenario against MariaDB and the MongoDB wire
server, written with the SQL that OpenMRS (or a site's admin) runs."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from bson import ObjectId

from tests.conftest import hospital_entry, make_settings, register_patient
from tests.helpers import Clinic, run_sync
from tests.test_clinical_sources import Ward

NID = "1199780012345678"
HOSPITAL = "60a7c2f5e4b0c1a2d3e4f5a6"


@pytest.fixture
def ward(openmrs: Any) -> Ward:
    return Ward(openmrs)


@pytest.fixture
def settings(openmrs: Any, mongo_uri: str, mongo_db_name: str) -> Any:
    return make_settings(mongo_uri, mongo_db_name, [hospital_entry(openmrs.name)])


def record_of(passport: Any, source: str, pk: int) -> dict[str, Any]:
    found: dict[str, Any] = passport.medicalrecords.find_one({"openmrsData.source": source, "openmrsData.sourceId": pk})
    return found


# The clinical sources' change watermark ---------------------------------------------------------------
def test_an_idle_run_rereads_no_old_clinical_change_and_rewrites_nothing(
    ward: Ward, passport: Any, settings: Any
) -> None:
    register_patient(passport, NID)
    old = ward.b.encounter_diagnosis(ward.encounter, diagnosis_coded=ward.malaria, certainty="PROVISIONAL")
    recent = ward.b.encounter_diagnosis(ward.encounter, diagnosis_coded=ward.asthma, certainty="PROVISIONAL")
    allergy = ward.b.allergy(ward.person, ward.penicillin, severity_concept_id=ward.severe)
    run_sync(settings)

    # Clinicians confirm the diagnoses days apart and change the allergy's severity.
    confirm = (
        "UPDATE encounter_diagnosis SET certainty = 'CONFIRMED', date_changed = %s, changed_by = 1"
        " WHERE diagnosis_id = %s"
    )
    ward.db.execute(confirm, (datetime(2025, 11, 7, 9, 0), old))
    ward.db.execute(confirm, (datetime(2025, 11, 12, 9, 0), recent))
    ward.db.execute(
        "UPDATE allergy SET severity_concept_id = %s, date_changed = %s, changed_by = 1 WHERE allergy_id = %s",
        (ward.mild, datetime(2025, 11, 8, 9, 0), allergy),
    )
    changed = run_sync(settings)[0]
    assert changed.updated == 3, changed
    status = passport.syncstatus.find_one({"hospitalId": HOSPITAL})
    assert status["sources"]["diagnosis"]["voidWatermark"] == datetime(2025, 11, 12, 9, 0)
    assert status["sources"]["allergy"]["voidWatermark"] == datetime(2025, 11, 8, 9, 0)

    # A doctor edits the synced records in the app.
    for source, pk in (("diagnosis", old), ("diagnosis", recent), ("allergy", allergy)):
        passport.medicalrecords.update_one(
            {"_id": record_of(passport, source, pk)["_id"]}, {"$set": {"data.details": "seen by the cardiologist"}}
        )

    idle = run_sync(settings)[0]
    # Only the latest change of each source is inside the look-back; nothing older is read again.
    assert idle.read == 2, idle
    assert idle.updated == 0 and idle.written == 0
    for source, pk in (("diagnosis", old), ("diagnosis", recent), ("allergy", allergy)):
        assert record_of(passport, source, pk)["data"]["details"] == "seen by the cardiologist"


# Clock-skewed voids ----------------------------------------------------------------------------------
def test_a_future_dated_void_does_not_stop_later_voids(openmrs: Any, passport: Any, settings: Any) -> None:
    clinic = Clinic(openmrs)
    person = clinic.patient(NID)
    register_patient(passport, NID)
    skewed, later, *_ = clinic.visit(person, weights=2)
    run_sync(settings)
    assert passport.medicalrecords.count_documents({}) == 3

    # An application server whose clock runs a year ahead voids one observation.
    openmrs.execute(
        "UPDATE obs SET voided = 1, voided_by = 1, void_reason = 'wrong patient',"
        " date_voided = NOW() + INTERVAL 1 YEAR WHERE obs_id = %s",
        (skewed,),
    )
    assert run_sync(settings)[0].removed == 1
    (db_now,) = openmrs.execute("SELECT NOW()")[0]
    watermark = passport.syncstatus.find_one({"hospitalId": HOSPITAL})["voidWatermark"]
    assert watermark <= db_now + timedelta(seconds=5)

    # A later void with a correct clock still reaches the Passport.
    openmrs.execute(
        "UPDATE obs SET voided = 1, voided_by = 1, void_reason = 'entered in error', date_voided = NOW()"
        " WHERE obs_id = %s",
        (later,),
    )
    assert run_sync(settings)[0].removed == 1
    assert passport.medicalrecords.count_documents({}) == 1


def test_a_future_dated_clinical_change_does_not_stop_later_ones(ward: Ward, passport: Any, settings: Any) -> None:
    register_patient(passport, NID)
    first = ward.b.encounter_diagnosis(ward.encounter, diagnosis_coded=ward.malaria)
    second = ward.b.encounter_diagnosis(ward.encounter, diagnosis_coded=ward.asthma)
    run_sync(settings)
    void = (
        "UPDATE encounter_diagnosis SET voided = 1, voided_by = 1, void_reason = 'error', date_voided = {}"
        " WHERE diagnosis_id = %s"
    )
    ward.db.execute(void.format("NOW() + INTERVAL 30 DAY"), (first,))
    assert run_sync(settings)[0].removed == 1
    ward.db.execute(void.format("NOW()"), (second,))
    assert run_sync(settings)[0].removed == 1
    assert passport.medicalrecords.count_documents({"openmrsData.source": "diagnosis"}) == 0


# The patient's own allergies -----------------------------------------------------------------------------
def test_an_allergy_the_patient_typed_survives_openmrs_changing_and_voiding_the_same_allergen(
    ward: Ward, passport: Any, settings: Any
) -> None:
    patient_id = register_patient(passport, NID)
    # The patient typed these in the app before any sync.
    own = ["Penicillin (severe)", "Peanuts"]
    passport.patients.update_one({"_id": ObjectId(patient_id)}, {"$set": {"allergies": own}})
    allergy = ward.b.allergy(ward.person, ward.penicillin, severity_concept_id=ward.severe)
    run_sync(settings)
    assert passport.patients.find_one({"_id": ObjectId(patient_id)})["allergies"] == own

    # OpenMRS changes the severity, then voids the allergy.
    ward.db.execute(
        "UPDATE allergy SET severity_concept_id = %s, date_changed = %s, changed_by = 1 WHERE allergy_id = %s",
        (ward.mild, datetime(2025, 11, 9), allergy),
    )
    run_sync(settings)
    assert passport.patients.find_one({"_id": ObjectId(patient_id)})["allergies"] == [*own, "Penicillin (mild)"]
    ward.db.execute(
        "UPDATE allergy SET voided = 1, date_voided = %s, voided_by = 1, void_reason = 'error' WHERE allergy_id = %s",
        (datetime(2025, 11, 10), allergy),
    )
    assert run_sync(settings)[0].removed == 1
    assert passport.patients.find_one({"_id": ObjectId(patient_id)})["allergies"] == own


# Doctors' additions ------------------------------------------------------------------------------------------
def test_doctors_additions_move_to_the_new_version_of_an_edited_observation(
    openmrs: Any, passport: Any, settings: Any
) -> None:
    clinic = Clinic(openmrs)
    person = clinic.patient(NID)
    patient_id = register_patient(passport, NID)
    diagnosis, weight = clinic.visit(person)
    run_sync(settings)
    old = record_of_obs(passport, diagnosis)
    medication = {"name": "Metformin", "dosage": "500 mg", "frequency": "twice daily"}
    passport.medicalrecords.update_one(
        {"_id": old["_id"]}, {"$push": {"data.medications": medication}, "$set": {"data.severity": "moderate"}}
    )

    # The clinician corrects the diagnosis: OpenMRS voids the obs and saves a new version.
    asthma = clinic.b.concept("Asthma", datatype="N/A", concept_class="Diagnosis")
    new_id = clinic.b.edit_obs(diagnosis, value_coded=asthma, when=datetime(2025, 11, 7))
    report = run_sync(settings)[0]
    assert report.removed == 1 and report.written == 1
    new = record_of_obs(passport, new_id)
    assert new["data"]["diagnosis"] == "Asthma"
    assert new["data"]["medications"] == [medication]
    assert new["data"]["severity"] == "moderate"
    assert passport.medicalrecords.find_one({"_id": old["_id"]}) is None
    assert new["patientId"] == patient_id

    # Runs in which OpenMRS did not change leave the doctor's work alone.
    passport.medicalrecords.update_one({"_id": new["_id"]}, {"$set": {"data.details": "Asthma, exercise-induced"}})
    for _ in range(2):
        idle = run_sync(settings)[0]
        assert idle.written == 0 and idle.updated == 0 and idle.removed == 0
    kept = record_of_obs(passport, new_id)
    assert kept["data"]["medications"] == [medication]
    assert kept["data"]["details"] == "Asthma, exercise-induced"
    assert record_of_obs(passport, weight)["data"]["result"] == "60 kg"


def test_doctors_medications_move_to_the_new_version_of_an_edited_condition(
    ward: Ward, passport: Any, settings: Any
) -> None:
    register_patient(passport, NID)
    onset = datetime(2024, 3, 1)
    first = ward.b.condition(ward.person, condition_coded=ward.asthma, clinical_status="ACTIVE", onset_date=onset)
    run_sync(settings)
    medication = {"name": "Salbutamol inhaler", "dosage": "2 puffs"}
    passport.medicalrecords.update_one(
        {"_id": record_of(passport, "condition", first)["_id"]}, {"$push": {"data.medications": medication}}
    )

    # OpenMRS edits a condition by voiding it and saving a new version pointing back at it.
    ward.db.execute(
        "UPDATE conditions SET voided = 1, date_voided = %s, voided_by = 1 WHERE condition_id = %s",
        (datetime(2025, 11, 8), first),
    )
    second = ward.b.condition(
        ward.person, condition_coded=ward.asthma, clinical_status="INACTIVE", onset_date=onset, previous_version=first
    )
    run_sync(settings)
    current = record_of(passport, "condition", second)
    assert current["data"]["status"] == "Inactive"
    assert current["data"]["medications"] == [medication]
    idle = run_sync(settings)[0]
    assert idle.updated == 0 and idle.written == 0
    assert record_of(passport, "condition", second)["data"]["medications"] == [medication]


def record_of_obs(passport: Any, obs_id: int) -> dict[str, Any]:
    found: dict[str, Any] = passport.medicalrecords.find_one({"openmrsData.obsId": obs_id})
    return found
