"""The seven guarantees of the core sync, each against a real MariaDB and a real MongoDB wire server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta
from typing import Any

import pymongo
import pytest
from bson import ObjectId

from passport_sync import service
from passport_sync.errors import SinkUnavailable
from passport_sync.parking import NOT_IN_PASSPORT
from passport_sync.sink import records as sink_module
from passport_sync.sink.passport import PassportStore
from passport_sync.synthetic.builder import OpenMRSBuilder
from tests.conftest import hospital_entry, make_settings, mysql_connect, register_patient
from tests.helpers import Clinic, live_obs_uuids, obs_uuids, run_sync, synced, with_links, write_config

NID = "1234567890123"
HOSPITAL = "60a7c2f5e4b0c1a2d3e4f5a6"


@pytest.fixture
def clinic(openmrs: Any) -> Clinic:
    return Clinic(openmrs)


@pytest.fixture
def settings(openmrs: Any, mongo_uri: str, mongo_db_name: str) -> Any:
    return make_settings(mongo_uri, mongo_db_name, [hospital_entry(openmrs.name)], batch_size=50)


# 1. Nothing is lost -------------------------------------------------------------------------------
def test_observation_committed_late_is_synced_by_a_later_run(clinic: Clinic, passport: Any, settings: Any) -> None:
    person = clinic.patient(NID)
    register_patient(passport, NID)
    clinic.visit(person)

    # A transaction opens, inserts an obs (taking the next obs_id) and stays open.
    late_conn = mysql_connect(clinic.db.name)
    late_conn.autocommit(False)
    late = OpenMRSBuilder(late_conn, commit=False, now=clinic.when - timedelta(hours=1))
    late_conn.begin()
    late_id = late.obs(person, clinic.note, value_text="written in a long transaction")
    # Meanwhile another obs with a higher id commits, and a sync passes both ids.
    later_id = clinic.b.obs(person, clinic.note, value_text="committed at once")
    assert later_id > late_id
    run_sync(settings)
    checkpoint = passport.syncstatus.find_one({"hospitalId": HOSPITAL})
    assert checkpoint["lastObsId"] == later_id
    assert obs_uuids(passport) == {u: 1 for u in live_obs_uuids(clinic.db) if u}  # the late one is invisible yet

    late_conn.commit()  # commits with an obs_id and date_created below the checkpoint
    late_conn.close()
    run_sync(settings)
    assert set(obs_uuids(passport)) == live_obs_uuids(clinic.db)
    assert max(obs_uuids(passport).values()) == 1
    assert passport.syncstatus.find_one({"hospitalId": HOSPITAL})["gaps"] == []


def test_an_observation_committed_late_below_the_first_id_ever_synced_is_synced_by_a_later_run(
    clinic: Clinic, passport: Any, settings: Any
) -> None:
    person = clinic.patient(NID)
    register_patient(passport, NID)

    # The first observation of this OpenMRS is inserted in a transaction that stays open while
    # another commits and the very first sync passes it.
    late_conn = mysql_connect(clinic.db.name)
    try:
        late_conn.autocommit(False)
        late_conn.begin()
        late = OpenMRSBuilder(late_conn, commit=False, now=clinic.when)
        late_id = late.obs(person, clinic.note, value_text="late")
        first_synced = clinic.b.obs(person, clinic.note, value_text="committed at once")
        assert late_id < first_synced
        assert run_sync(settings)[0].written == 1
        checkpoint = passport.syncstatus.find_one({"hospitalId": HOSPITAL})
        assert checkpoint["lastObsId"] == first_synced
        assert [gap[:2] for gap in checkpoint["gaps"]] == [[1, first_synced - 1]]
        # status counts rows waiting, not ids: the open transaction's row is not there yet.
        assert behind(settings) == 0
        late_conn.commit()
    finally:
        late_conn.close()  # rolls back if the test failed before the commit
    assert behind(settings) == 1
    assert run_sync(settings)[0].written == 1
    assert set(obs_uuids(passport)) == live_obs_uuids(clinic.db)
    assert max(obs_uuids(passport).values()) == 1
    assert passport.syncstatus.find_one({"hospitalId": HOSPITAL})["gaps"] == ([[1, late_id - 1]] if late_id > 1 else [])


def behind(settings: Any) -> int:
    store = PassportStore.connect(settings)
    try:
        status = service.hospital_status(settings, store, settings.hospitals[0])
    finally:
        store.close()
    assert status["behind_error"] is None
    return int(status["behind"])


# 2. Nothing is duplicated -------------------------------------------------------------------------
@pytest.mark.parametrize("links", [False, True])
def test_running_twice_and_after_a_checkpoint_reset_writes_each_observation_once(
    clinic: Clinic, passport: Any, settings: Any, links: bool
) -> None:
    settings = with_links(settings) if links else settings
    persons = [clinic.patient(f"11111111110{i:02d}") for i in range(5)]
    for i, person in enumerate(persons):
        register_patient(passport, f"11111111110{i:02d}")
        clinic.visit(person, weights=3)
    expected = live_obs_uuids(clinic.db)

    first = run_sync(settings)[0]
    assert first.written == len(expected)
    second = run_sync(settings)[0]
    assert second.read == 0 and second.written == 0

    passport.syncstatus.delete_many({})  # the seed's own troubleshooting advice
    third = run_sync(settings)[0]
    assert third.written == 0 and third.already_present == len(expected)
    counts = obs_uuids(passport)
    assert set(counts) == expected
    assert set(counts.values()) == {1}
    # With links configured, each patient's medicalHistory lists each of their records once: 4
    # observations and the visit record of their encounter; without, none.
    for patient in passport.patients.find():
        assert len(patient["medicalHistory"]) == len(set(patient["medicalHistory"])) == (5 if links else 0)


def test_kill_9_mid_run_then_rerun_leaves_exactly_one_record_per_observation(
    clinic: Clinic, passport: Any, openmrs: Any, mongo_uri: str, mongo_db_name: str, tmp_path: Any
) -> None:
    persons = [clinic.patient(f"22222222220{i:02d}") for i in range(20)]
    for i in range(20):
        register_patient(passport, f"22222222220{i:02d}")
    clinic.many(persons, 3000)
    config = write_config(
        tmp_path / "hospitals.yaml", mongo_uri, mongo_db_name, [hospital_entry(openmrs.name)], batch_size=25
    )
    command = [sys.executable, "-m", "passport_sync", "sync-all", "--config", str(config), "--quiet"]

    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        doc = passport.syncstatus.find_one({"hospitalId": HOSPITAL})
        if doc and doc.get("lastObsId", 0) > 500:
            break
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    interrupted = passport.syncstatus.find_one({"hospitalId": HOSPITAL})["lastObsId"]
    assert 500 < interrupted < 3000, "the run was not killed mid-way"

    done = subprocess.run(command, capture_output=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    counts = obs_uuids(passport)
    assert len(counts) == 3000
    assert set(counts.values()) == {1}


# 3. Unmatched patients are parked, not skipped --------------------------------------------------------
def test_unregistered_patient_is_parked_and_lands_after_registration(
    clinic: Clinic, passport: Any, settings: Any
) -> None:
    known = clinic.patient("3333333333001")
    stranger = clinic.patient("3333333333002")
    register_patient(passport, "3333333333001")
    clinic.visit(known)
    stranger_obs = clinic.visit(stranger, weights=2)

    report = run_sync(settings)[0]
    assert report.parked == 3
    parked = list(passport.openmrs_sync_parked.find())
    assert {p["obsId"] for p in parked} == set(stranger_obs)
    assert {p["reason"] for p in parked} == {NOT_IN_PASSPORT}
    checkpoint = passport.syncstatus.find_one({"hospitalId": HOSPITAL})
    assert checkpoint["lastObsId"] == max(stranger_obs)  # the checkpoint still advanced

    store = PassportStore.connect(settings)
    assert service.hospital_status(settings, store, settings.hospitals[0])["parked"] == 3

    stranger_patient = register_patient(passport, "3333333333002")
    report = run_sync(settings)[0]
    assert report.written == 3
    assert passport.openmrs_sync_parked.count_documents({}) == 0
    landed = passport.medicalrecords.count_documents(synced({"patientId": stranger_patient}))
    assert landed == 3
    assert service.hospital_status(settings, store, settings.hospitals[0])["parked"] == 0
    store.close()


# 4. Voids and edits propagate --------------------------------------------------------------------------
def test_edit_and_void_propagate_within_one_run(clinic: Clinic, passport: Any, settings: Any) -> None:
    settings = with_links(settings)  # and the records removed leave the patient's medicalHistory
    person = clinic.patient(NID)
    patient_id = register_patient(passport, NID)
    diagnosis_id, weight_id = clinic.visit(person)
    note_id = clinic.b.obs(person, clinic.note, value_text="patient reports headache")
    run_sync(settings)
    assert passport.medicalrecords.count_documents(synced({"patientId": patient_id})) == 3

    new_weight_id = clinic.b.edit_obs(
        weight_id, value_numeric=81.0, reason="typo", when=clinic.when + timedelta(days=1)
    )
    clinic.b.void_obs(note_id, reason="wrong patient", when=clinic.when + timedelta(days=1))
    report = run_sync(settings)[0]
    assert report.removed == 2

    visible = {d["openmrsData"]["obsId"]: d for d in passport.medicalrecords.find(synced({"patientId": patient_id}))}
    assert set(visible) == {diagnosis_id, new_weight_id}
    # OpenMRS marks the new version of an edited observation AMENDED, and the result says so.
    assert visible[new_weight_id]["data"]["result"] == "81 kg (amended; normal 30-150 kg)"
    patient = passport.patients.find_one({"_id": ObjectId(patient_id)})
    every = {d["_id"] for d in passport.medicalrecords.find({"patientId": patient_id})}  # the visit record too
    assert set(patient["medicalHistory"]) == every and len(every) == len(visible) + 1
    trail = {d["record"]["openmrsData"]["obsId"]: d for d in passport.openmrs_sync_removed.find()}
    assert set(trail) == {weight_id, note_id}
    assert trail[note_id]["voidReason"] == "wrong patient"
    assert trail[weight_id]["record"]["data"]["result"] == "60 kg (normal 30-150 kg)"


# 5. The checkpoint moves only after MongoDB acknowledged the batch -----------------------------------------
def test_checkpoint_stays_at_the_last_acknowledged_batch_when_mongodb_fails(
    clinic: Clinic, passport: Any, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    person = clinic.patient(NID)
    register_patient(passport, NID)
    clinic.many([person], 200)  # four batches of 50
    real_apply = sink_module.Records.apply
    calls = {"n": 0}

    def failing_apply(self: sink_module.Records, batch: Any, now: datetime, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 3:
            raise SinkUnavailable("MongoDB went away")
        return real_apply(self, batch, now, **kwargs)

    monkeypatch.setattr(sink_module.Records, "apply", failing_apply)
    report = run_sync(settings)[0]
    assert report.outcome == "failed"
    ids = sorted(int(r[0]) for r in clinic.db.execute("SELECT obs_id FROM obs ORDER BY obs_id"))
    assert passport.syncstatus.find_one({"hospitalId": HOSPITAL})["lastObsId"] == ids[99]
    assert passport.medicalrecords.count_documents(synced({})) == 100

    monkeypatch.setattr(sink_module.Records, "apply", real_apply)
    assert run_sync(settings)[0].outcome == "ok"
    assert len(obs_uuids(passport)) == 200


# 6. One hospital's failure does not stop the others ------------------------------------------------------
def test_a_hospital_that_is_down_is_retried_reported_and_does_not_stop_the_others(
    clinic: Clinic, passport: Any, openmrs: Any, mongo_uri: str, mongo_db_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    person = clinic.patient(NID)
    register_patient(passport, NID)
    clinic.visit(person)
    down = hospital_entry("openmrs", hospital_id="down-hospital", name="Down Hospital")
    down["db"]["port"] = 1  # nothing listens there: connection refused, a transient error
    settings = make_settings(mongo_uri, mongo_db_name, [down, hospital_entry(openmrs.name)])
    with caplog.at_level("WARNING", logger="passport_sync"):
        reports = run_sync(settings)
    by_id = {r.hospital_id: r for r in reports}
    assert by_id["down-hospital"].outcome == "failed"
    assert "MySQL error 2003" in by_id["down-hospital"].errors[0]
    assert by_id[HOSPITAL].outcome == "ok" and by_id[HOSPITAL].written == 2
    assert any("retrying" in r.getMessage() for r in caplog.records)
    summaries = list(passport.auditlogs.find({"action": "openmrs_auto_sync", "changes.errorCount": {"$gt": 0}}))
    assert [s["changes"]["hospital_id"] for s in summaries] == ["down-hospital"]


def test_wrong_password_is_not_retried(openmrs: Any, mongo_uri: str, mongo_db_name: str, caplog: Any) -> None:
    entry = hospital_entry(openmrs.name)
    entry["db"]["user"] = "nobody_here"
    entry["db"]["password"] = "s3cret-Pa55"
    settings = make_settings(mongo_uri, mongo_db_name, [entry])
    with caplog.at_level("WARNING", logger="passport_sync"):
        report = run_sync(settings)[0]
    assert report.outcome == "failed"
    assert "Access denied for user 'nobody_here'" in report.errors[0]
    assert "check db.user and the password" in report.errors[0]
    assert not any("retrying" in r.getMessage() for r in caplog.records)
    assert "s3cret-Pa55" not in " ".join(report.errors) + caplog.text


# 7. Re-syncs never overwrite what doctors added ------------------------------------------------------------
def test_resync_keeps_medications_a_doctor_added(clinic: Clinic, passport: Any, settings: Any) -> None:
    person = clinic.patient(NID)
    register_patient(passport, NID)
    diagnosis_id, _ = clinic.visit(person)
    run_sync(settings)
    record = passport.medicalrecords.find_one({"openmrsData.obsId": diagnosis_id})
    added = {"name": "Metformin", "dosage": "500mg", "frequency": "Twice daily", "medicationStatus": "Active"}
    passport.medicalrecords.update_one({"_id": record["_id"]}, {"$push": {"data.medications": added}})

    passport.syncstatus.delete_many({})
    run_sync(settings)  # a checkpoint reset: sync-all re-reads everything
    store = PassportStore.connect(settings)
    try:
        patient_run = service.sync_patient(settings, store, settings.enabled_hospitals(), NID)
    finally:
        store.close()
    assert patient_run.reports[0].outcome == "ok"
    assert patient_run.reports[0].read > 0  # it did re-read the patient's history
    after = passport.medicalrecords.find_one({"_id": record["_id"]})
    assert after["data"]["medications"] == [added]
    assert after["data"]["diagnosis"] == "Diabetes Type 2"


# The written documents are shaped the way the app reads them ---------------------------------------------------
EMAIL = r"^\w+([.-]?\w+)*@\w+([.-]?\w+)*(\.\w{2,3})+$"


def test_records_and_placeholders_are_app_valid(clinic: Clinic, passport: Any, settings: Any) -> None:
    import re

    import bcrypt

    person = clinic.patient(NID)
    patient_id = register_patient(passport, NID)
    clinic.visit(person)
    clinic.b.obs(person, clinic.note, value_text="no encounter, no provider")
    run_sync(settings)

    records = list(passport.medicalrecords.find(synced()))
    assert len(records) == 3
    for record in records:
        assert record["patientId"] == patient_id
        assert ObjectId.is_valid(record["createdBy"]) and isinstance(record["createdBy"], str)
        user = passport.users.find_one({"_id": ObjectId(record["createdBy"])})
        assert user is not None and user["role"] == "doctor"
        assert re.match(EMAIL, user["email"]) and 2 <= len(user["name"]) <= 50
        assert user["password"].startswith("$2b$12$")
        assert not bcrypt.checkpw(b"", user["password"].encode())
        assert passport.doctors.find_one({"user": user["_id"]})["specialization"] == "General Practice"
        assert record["type"] in {"condition", "medication", "test", "visit", "image"}
        assert all(isinstance(v, str) for v in record["data"].values())
        assert record["openmrsData"]["valueType"] in {"text", "numeric", "coded"}
        assert record["data"]["hospital"] == "Central Hospital"
    by_type = {r["type"]: r for r in records if r["openmrsData"]["providerUuid"]}
    assert by_type["condition"]["data"]["diagnosis"] == "Diabetes Type 2"
    assert by_type["condition"]["data"]["doctor"] == "John Doe"
    assert by_type["test"]["data"]["result"] == "60 kg (normal 30-150 kg)"
    no_provider = passport.medicalrecords.find_one({"openmrsData.providerUuid": None})
    assert no_provider["data"]["doctor"] == "Central Hospital (OpenMRS)"
    hospital = passport.hospitals.find_one({"_id": ObjectId(HOSPITAL)})
    assert hospital["name"] == "Central Hospital" and hospital["status"] == "active"
    assert passport.users.find_one({"_id": hospital["user"]})["role"] == "hospital"
    index = passport.medicalrecords.index_information()["passport_sync_source_key"]
    assert index["unique"] is True
    copy = dict(records[0])
    copy["_id"] = ObjectId()
    with pytest.raises(pymongo.errors.DuplicateKeyError):
        passport.medicalrecords.insert_one(copy)


def test_first_run_stores_every_feeds_checkpoint_and_void_watermark(
    clinic: Clinic, passport: Any, settings: Any
) -> None:
    person = clinic.patient(NID)
    register_patient(passport, NID)
    _, weight_id = clinic.visit(person)
    voided_at = clinic.when + timedelta(hours=2)
    clinic.b.void_obs(weight_id, when=voided_at)
    run_sync(settings)
    doc = passport.syncstatus.find_one({"hospitalId": HOSPITAL})
    # Voids before the first run were read as voided; later runs look back from here.
    assert doc["voidWatermark"] == voided_at
    # Empty clinical tables still get a checkpoint, so the next run is not a first run again.
    assert set(doc["sources"]) == {"diagnosis", "condition", "allergy", "drug_order"}
    second = run_sync(settings)[0]
    # The look-back window holds the void, unchanged since the first run read it: not read again.
    assert second.read == 0
