"""Guarantees of writing a row again, each against a real MariaDB and a real MongoDB wire server.

Each test here was first run against the code broken on purpose (the guarantee removed) and seen
to fail: a record inserted again follows its row to the right patient, a row OpenMRS did not
change keeps what a doctor edited in the app, and the hospital's lease is renewed through a run
longer than it lasts.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from bson import ObjectId

from passport_sync import service
from passport_sync.config import Settings
from passport_sync.models import HospitalReport
from passport_sync.sink.passport import PassportStore
from tests.conftest import hospital_entry, make_settings, register_patient
from tests.helpers import Clinic, run_sync, synced
from tests.test_clinical_sources import NID as WARD_NID
from tests.test_clinical_sources import Ward

HOSPITAL = "60a7c2f5e4b0c1a2d3e4f5a6"
NID_A = "1111111111111"
NID_B = "2222222222222"


@pytest.fixture
def settings(openmrs: Any, mongo_uri: str, mongo_db_name: str) -> Settings:
    # With the patients' medicalHistory links, so a moved record's link is seen to move too.
    return make_settings(
        mongo_uri, mongo_db_name, [hospital_entry(openmrs.name)], batch_size=50, medical_history_links=True
    )


def sync_patient(settings: Settings, national_id: str) -> HospitalReport:
    store = PassportStore.connect(settings)
    try:
        result = service.sync_patient(settings, store, settings.enabled_hospitals(), national_id)
    finally:
        store.close()
    (report,) = result.reports
    assert report.outcome == "ok", report.errors
    return report


def reset_and_sync(settings: Settings) -> HospitalReport:
    """``reset-checkpoint`` to the start, then ``sync-all``: every row is inserted again."""
    store = PassportStore.connect(settings)
    try:
        service.reset_checkpoint(settings, store, settings.enabled_hospitals()[0])
    finally:
        store.close()
    report = run_sync(settings)[0]
    assert report.outcome == "ok", report.errors
    return report


def history(passport: Any, patient_id: str) -> set[Any]:
    return set(passport.patients.find_one({"_id": ObjectId(patient_id)}).get("medicalHistory") or [])


# A record inserted again follows its row to the right patient ----------------------------------------------
@pytest.mark.parametrize("again", ["reset-checkpoint", "sync-patient"])
def test_a_record_written_again_moves_to_the_patient_its_row_belongs_to_now(
    again: str, openmrs: Any, passport: Any, settings: Settings
) -> None:
    clinic = Clinic(openmrs)
    person = clinic.patient(NID_A)  # typed wrong: NID_A is someone else's number
    someone_else, right = register_patient(passport, NID_A), register_patient(passport, NID_B)
    observations = clinic.visit(person, weights=2)
    run_sync(settings)
    records = {d["_id"]: d["patientId"] for d in passport.medicalrecords.find({"openmrsData.hospitalId": HOSPITAL})}
    assert len(records) == len(observations) + 1  # and the visit record
    assert set(records.values()) == {someone_else}

    # Corrected in OpenMRS by SQL: no trace the incremental sync follows.
    openmrs.execute("UPDATE patient_identifier SET identifier = %s WHERE patient_id = %s", (NID_B, person))
    report = reset_and_sync(settings) if again == "reset-checkpoint" else sync_patient(settings, NID_B)

    # The observations' records are inserted again: each one is a duplicate key, and moves.
    moved = {d["_id"]: d["patientId"] for d in passport.medicalrecords.find({"openmrsData.hospitalId": HOSPITAL})}
    assert set(moved) == set(records)
    assert set(moved.values()) == {right}
    assert history(passport, right) == set(records)
    assert history(passport, someone_else) == set()
    assert report.written == 0
    assert report.reassigned >= len(observations)


# A row OpenMRS did not change keeps a doctor's edit ----------------------------------------------------------
def _doctor_edits(passport: Any, record: dict[str, Any], when: datetime) -> None:
    """What the app's edit endpoint does: the record's ``data`` reassigned, ``lastEditedAt`` set."""
    data = {**record["data"], "notes": "Reviewed by the cardiologist", "details": "Seen again on the ward"}
    passport.medicalrecords.update_one(
        {"_id": record["_id"]}, {"$set": {"data": data, "lastEditedAt": when, "updatedAt": when}}
    )


@pytest.mark.parametrize("again", ["reset-checkpoint", "sync-patient"])
def test_a_row_openmrs_did_not_change_keeps_a_doctors_edit_when_written_again(
    again: str, make_openmrs: Any, passport: Any, mongo_uri: str, mongo_db_name: str
) -> None:
    ward = Ward(make_openmrs())
    settings = make_settings(mongo_uri, mongo_db_name, [hospital_entry(ward.db.name)])
    register_patient(passport, WARD_NID)
    b = ward.b
    b.condition(ward.person, condition_coded=ward.asthma, clinical_status="ACTIVE")
    b.encounter_diagnosis(ward.encounter, diagnosis_coded=ward.malaria, certainty="CONFIRMED")
    b.allergy(ward.person, ward.penicillin, severity_concept_id=ward.severe)
    b.drug_order(
        ward.encounter,
        ward.provider,
        drug_id=ward.drug,
        concept_id=ward.amoxicillin,
        dose=500,
        dose_units=ward.tablet,
        duration=7,
        date_activated=datetime(2025, 11, 6, 10, 30),
    )
    assert run_sync(settings)[0].outcome == "ok"
    edited_at = datetime(2025, 11, 7, 9, 0)
    sources = {"condition", "diagnosis", "allergy", "drug_order"}
    for record in passport.medicalrecords.find(synced({"openmrsData.hospitalId": HOSPITAL})):
        assert record["openmrsData"]["source"] in sources
        _doctor_edits(passport, record, edited_at)
    before = {d["_id"]: d for d in passport.medicalrecords.find(synced({}))}
    assert {d["openmrsData"]["source"] for d in before.values()} == sources

    # Every row is read and written again; OpenMRS changed none of them.
    report = reset_and_sync(settings) if again == "reset-checkpoint" else sync_patient(settings, WARD_NID)
    assert report.read >= len(sources)
    assert report.updated == 0
    after = {d["_id"]: d for d in passport.medicalrecords.find(synced({}))}
    assert after == before


# The lease is renewed through a run longer than it lasts -----------------------------------------------------
class SlowAndIntruding:
    """An observer that makes each batch slow, and once the run has lasted longer than its lease
    (twice over), starts a second sync of the same hospital, as the next timer tick would."""

    def __init__(self, settings: Settings, passport: Any, ttl: timedelta) -> None:
        self.settings = settings
        self.passport = passport
        self.ttl = ttl
        self.started = datetime.now(UTC)
        self.batches = 0
        self.second: HospitalReport | None = None
        self.holder_then: dict[str, Any] | None = None

    def hospital_started(self, hospital_id: str, hospital_name: str) -> None:
        self.started = datetime.now(UTC)

    def batch_done(self, report: HospitalReport, phase: str) -> None:
        self.batches += 1
        time.sleep(self.ttl.total_seconds() / 20)
        if self.second is None and datetime.now(UTC) - self.started > 2 * self.ttl:
            self.holder_then = self.passport.openmrs_sync_locks.find_one({"_id": HOSPITAL})
            self.second = run_sync(self.settings)[0]

    def hospital_done(self, report: HospitalReport) -> None:
        return None


def test_a_run_longer_than_its_lease_keeps_it_and_a_second_sync_is_refused(
    openmrs: Any, passport: Any, mongo_uri: str, mongo_db_name: str
) -> None:
    clinic = Clinic(openmrs)
    persons = [clinic.patient(f"33333333330{i:02d}") for i in range(4)]
    for i in range(4):
        register_patient(passport, f"33333333330{i:02d}")
    clinic.many(persons, 300)
    settings = make_settings(mongo_uri, mongo_db_name, [hospital_entry(openmrs.name)], batch_size=5)
    # A three-second lease (shorter than the configuration allows): 60 slow batches outlast it
    # three times, while a batch is far shorter than the third of it after which the lease is renewed.
    ttl = timedelta(seconds=3)
    settings = settings.model_copy(update={"sync": settings.sync.model_copy(update={"lock_ttl_seconds": 3})})
    observer = SlowAndIntruding(settings, passport, ttl)

    store = PassportStore.connect(settings)
    try:
        (first,) = service.sync_all(settings, store, settings.enabled_hospitals(), observer=observer)
    finally:
        store.close()

    assert observer.second is not None, "the run ended before it outlasted its lease"
    assert observer.second.outcome == "locked", observer.second
    assert observer.holder_then is not None
    # Renewed: the lease ran out long after the run took it.
    assert observer.holder_then["expiresAt"] > observer.holder_then["acquiredAt"] + 2 * ttl
    assert first.outcome == "ok", first.errors
    assert first.written == 300
    assert observer.batches >= 300 // 5
    assert passport.openmrs_sync_locks.count_documents({}) == 0
