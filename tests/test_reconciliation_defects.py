"""Defects found beside reconciliation, each as a scenario against MariaDB and the MongoDB wire
server, written with the SQL that OpenMRS (or a site's admin) runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from bson import ObjectId

from passport_sync import service
from passport_sync.source.openmrs import OpenMRSSource
from passport_sync.synthetic.builder import OpenMRSBuilder
from tests.conftest import hospital_entry, make_settings, mysql_connect, register_patient, untouched
from tests.helpers import Clinic, run_sync, synced, write_config
from tests.test_cli import invoke
from tests.test_clinical_sources import Ward
from tests.test_reconcile import reconcile

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
    # Only the latest change of each source is inside the look-back, unchanged since the last run
    # read it: nothing is read again.
    assert idle.read == 0, idle
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
    assert passport.medicalrecords.count_documents(synced()) == 3

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
    assert passport.medicalrecords.count_documents(synced()) == 1


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
    assert record_of_obs(passport, weight)["data"]["result"] == "60 kg (normal 30-150 kg)"


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


# reset-checkpoint only moves back, under the hospital's lock -------------------------------------------------
def test_reset_checkpoint_to_a_moment_after_the_checkpoint_skips_nothing(
    openmrs: Any, passport: Any, tmp_path: Path, mongo_uri: str, mongo_db_name: str
) -> None:
    clinic = Clinic(openmrs)
    person = clinic.patient(NID)
    register_patient(passport, NID)
    clinic.visit(person)
    config = write_config(tmp_path / "hospitals.yaml", mongo_uri, mongo_db_name, [hospital_entry(openmrs.name)])
    assert invoke("sync-all", "--config", str(config)).exit_code == 0
    before = passport.syncstatus.find_one({"hospitalId": HOSPITAL})
    # Observations recorded since the last run, not synced yet.
    waiting = clinic.visit(person, weights=2)

    # A day after every row was created (the builder's clock), in the past: a future --to is refused.
    result = invoke("reset-checkpoint", HOSPITAL, "--to", "2025-11-07", "--yes", "--config", str(config))
    assert result.exit_code == 0, result.stderr
    assert "nothing moved" in result.stdout
    after = passport.syncstatus.find_one({"hospitalId": HOSPITAL})
    assert after["lastObsId"] == before["lastObsId"]
    assert after["voidWatermark"] == before["voidWatermark"]
    assert invoke("sync-all", "--config", str(config)).exit_code == 0
    assert {record_of_obs(passport, obs_id)["openmrsData"]["obsId"] for obs_id in waiting} == set(waiting)


def test_reset_checkpoint_waits_for_no_one_and_refuses_while_a_sync_holds_the_lock(
    openmrs: Any, passport: Any, tmp_path: Path, mongo_uri: str, mongo_db_name: str
) -> None:
    clinic = Clinic(openmrs)
    clinic.visit(clinic.patient(NID))
    config = write_config(tmp_path / "hospitals.yaml", mongo_uri, mongo_db_name, [hospital_entry(openmrs.name)])
    assert invoke("sync-all", "--config", str(config)).exit_code == 0
    checkpoint = passport.syncstatus.find_one({"hospitalId": HOSPITAL})["lastObsId"]
    passport.openmrs_sync_locks.insert_one(
        {"_id": HOSPITAL, "owner": "other-host:1:2:ab", "expiresAt": datetime.now(UTC) + timedelta(minutes=5)}
    )
    held = invoke("reset-checkpoint", HOSPITAL, "--yes", "--config", str(config))
    assert held.exit_code == 3, held.stderr
    assert "being synced" in held.stderr
    assert passport.syncstatus.find_one({"hospitalId": HOSPITAL})["lastObsId"] == checkpoint
    passport.openmrs_sync_locks.delete_many({})
    assert invoke("reset-checkpoint", HOSPITAL, "--yes", "--config", str(config)).exit_code == 0
    assert passport.syncstatus.count_documents({}) == 0
    assert passport.openmrs_sync_locks.count_documents({}) == 0


# Several writers: any id not seen when passed is a gap ------------------------------------------------------
def test_an_id_skipped_by_another_galera_node_is_read_when_it_commits(
    openmrs: Any, passport: Any, settings: Any
) -> None:
    clinic = Clinic(openmrs)
    person = clinic.patient(NID)
    register_patient(passport, NID)
    conn = mysql_connect(openmrs.name)
    with conn.cursor() as cursor:
        # Two writers interleave ids, as Galera's auto_increment_increment = 2 makes nodes do.
        cursor.execute("SET SESSION auto_increment_increment = 2")
    try:
        node_a = OpenMRSBuilder(conn, now=clinic.when)
        first = node_a.obs(person, clinic.note, value_text="node A")
        # Node B takes the next id in a transaction that commits after node A's next row.
        late_conn = mysql_connect(openmrs.name)
        late_conn.autocommit(False)
        with late_conn.cursor() as cursor:
            cursor.execute("SET SESSION auto_increment_increment = 2, auto_increment_offset = 2")
        late_conn.begin()
        late_id = OpenMRSBuilder(late_conn, commit=False, now=clinic.when).obs(person, clinic.note, value_text="B")
        second = node_a.obs(person, clinic.note, value_text="node A again")
        assert first < late_id < second
        report = run_sync(settings)[0]
        assert report.outcome == "ok", report.errors
        assert passport.syncstatus.find_one({"hospitalId": HOSPITAL})["gaps"] != []
        late_conn.commit()
        late_conn.close()
        run_sync(settings)
    finally:
        conn.close()
    assert record_of_obs(passport, late_id)["data"]["details"] == "B"


# The national-ID identifier type ----------------------------------------------------------------------------
def test_an_infants_chart_with_the_mothers_number_never_routes_to_the_mother(
    openmrs: Any, passport: Any, settings: Any
) -> None:
    clinic = Clinic(openmrs)
    national = clinic.b.national_id_type_id
    mothers = clinic.b.identifier_type("Mother's National ID")
    clinic.b.identifier_type("Father's National ID")
    mother = clinic.patient(NID)
    # The newborn's chart carries the mother's number under the mother's type, and none of its own.
    infant = clinic.b.patient(national_id=None, extra_identifiers=[(mothers, NID)])
    mother_patient = register_patient(passport, NID)
    mother_obs = clinic.visit(mother)
    infant_obs = clinic.visit(infant)

    report = run_sync(settings)[0]
    assert report.outcome == "ok", report.errors
    on_mother = {d["openmrsData"]["obsId"] for d in passport.medicalrecords.find(synced({"patientId": mother_patient}))}
    assert on_mother == set(mother_obs)
    parked = {p["obsId"]: p["reason"] for p in passport.openmrs_sync_parked.find()}
    assert parked == dict.fromkeys(infant_obs, "no_national_id")
    assert national != mothers

    with OpenMRSSource(settings.hospitals[0], settings.sync.retry) as source:
        result = service.check_source(settings.hospitals[0], settings, source)
    checks = {c["check"]: c for c in result["checks"]}
    assert result["ok"]
    assert checks["national ID identifier type"]["detail"].startswith('"National ID" (id ')
    look_alikes = checks["national ID look-alikes"]
    assert look_alikes["level"] == "warning"
    assert "Mother's National ID" in look_alikes["detail"] and "Father's National ID" in look_alikes["detail"]


def test_several_national_id_types_and_none_named_exactly_is_a_clear_configuration_error(
    openmrs: Any, passport: Any, settings: Any
) -> None:
    clinic = Clinic(openmrs)
    number = clinic.b.identifier_type("National ID Number")
    clinic.b.identifier_type("Mother's National ID")
    clinic.visit(clinic.b.patient(national_id=NID, identifier_type_id=number))
    register_patient(passport, NID)

    report = run_sync(settings)[0]
    assert report.outcome == "failed"
    (error,) = report.errors
    assert '"National ID Number"' in error and '"Mother\'s National ID"' in error
    assert "national_id_type.uuid" in error
    assert passport.medicalrecords.count_documents(synced()) == 0

    with OpenMRSSource(settings.hospitals[0], settings.sync.retry) as source:
        result = service.check_source(settings.hospitals[0], settings, source)
    assert not result["ok"]
    assert not {c["check"]: c for c in result["checks"]}["national ID identifier type"]["ok"]

    (uuid,) = openmrs.execute("SELECT uuid FROM patient_identifier_type WHERE name = 'National ID Number'")[0]
    configured = make_settings(
        settings.mongodb.uri.get_secret_value().rsplit("/", 1)[0],
        passport.name,
        [hospital_entry(openmrs.name, national_id_type={"uuid": uuid})],
    )
    assert run_sync(configured)[0].written == 2


# One OpenMRS database is one hospital ---------------------------------------------------------------------------
def test_two_hospital_entries_on_one_openmrs_database_are_a_configuration_error(
    openmrs: Any, passport: Any, tmp_path: Path, mongo_uri: str, mongo_db_name: str
) -> None:
    first = hospital_entry(openmrs.name, hospital_id="central", name="Central Hospital")
    again = hospital_entry(openmrs.name, hospital_id="central-2", name="Central Again")
    again["db"]["host"] = "LOCALHOST" if first["db"]["host"] == "127.0.0.1" else first["db"]["host"].upper()
    config = write_config(tmp_path / "hospitals.yaml", mongo_uri, mongo_db_name, [first, again])
    result = invoke("sync-all", "--config", str(config))
    assert result.exit_code == 2
    assert "hospitals[1].db: the same OpenMRS database as hospitals[0] ('central')" in result.stderr
    assert "remove one entry" in result.stderr
    assert untouched(passport)


def test_a_hospital_whose_id_changed_is_refused_instead_of_copied_twice(
    openmrs: Any, passport: Any, tmp_path: Path, mongo_uri: str, mongo_db_name: str
) -> None:
    clinic = Clinic(openmrs)
    clinic.visit(clinic.patient(NID))
    register_patient(passport, NID)
    old = write_config(tmp_path / "old.yaml", mongo_uri, mongo_db_name, [hospital_entry(openmrs.name)])
    assert invoke("sync-all", "--config", str(old)).exit_code == 0
    assert passport.medicalrecords.count_documents(synced()) == 2

    # The operator renames the hospital's id in the configuration (same database).
    renamed = hospital_entry(openmrs.name, hospital_id="central", name="Central Hospital")
    new = write_config(tmp_path / "new.yaml", mongo_uri, mongo_db_name, [renamed])
    result = invoke("sync-all", "--config", str(new))
    assert result.exit_code == 1
    assert f"this OpenMRS database was synced as hospital '{HOSPITAL}'" in result.stderr
    assert f"Set this hospital's id back to '{HOSPITAL}'" in result.stderr
    assert passport.medicalrecords.count_documents(synced()) == 2
    assert invoke("sync-patient", NID, "--config", str(new)).exit_code == 1
    assert passport.medicalrecords.count_documents(synced()) == 2

    # Synced from its old server before it moved here: the same data is still recognised.
    passport.syncstatus.update_one({"hospitalId": HOSPITAL}, {"$set": {"sourceDatabase": "old-db:3306/openmrs"}})
    result = invoke("sync-all", "--config", str(new))
    assert result.exit_code == 1 and "was synced as hospital" in result.stderr
    assert passport.medicalrecords.count_documents(synced()) == 2
    assert invoke("sync-all", "--config", str(old)).exit_code == 0


def test_reconciling_a_range_keeps_a_doctors_edit_of_a_row_openmrs_did_not_change(
    ward: Ward, passport: Any, settings: Any
) -> None:
    register_patient(passport, NID)
    asthma = ward.b.condition(ward.person, condition_coded=ward.asthma, clinical_status="ACTIVE")
    malaria = ward.b.condition(ward.person, condition_coded=ward.malaria, clinical_status="ACTIVE")
    run_sync(settings)
    reconcile(settings)
    edited = record_of(passport, "condition", asthma)["_id"]
    passport.medicalrecords.update_one({"_id": edited}, {"$set": {"data.details": "Active, exercise-induced"}})

    # A data fix changes the other condition in place, leaving no trace the sync follows.
    ward.db.execute("UPDATE conditions SET clinical_status = 'INACTIVE' WHERE condition_id = %s", (malaria,))
    assert run_sync(settings)[0].updated == 0
    report = reconcile(settings)
    assert report.reconcile is not None and report.reconcile["updated"] == 1
    assert record_of(passport, "condition", malaria)["data"]["status"] == "Inactive"
    assert passport.medicalrecords.find_one({"_id": edited})["data"]["details"] == "Active, exercise-induced"
    full = reconcile(settings, compare_all=True)
    assert full.reconcile is not None and full.reconcile["drifted"] == 0
    assert passport.medicalrecords.find_one({"_id": edited})["data"]["details"] == "Active, exercise-induced"
