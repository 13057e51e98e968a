"""Reconciliation: each change OpenMRS makes in place, written as the site makes it (the SQL that
OpenMRS or an admin runs), converges after sync-all + reconcile, against a real MariaDB and a real
MongoDB wire server. sync-all alone leaves each of them wrong; the tests check that too, so they
prove reconciliation did the repair."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from bson import ObjectId
from typer.testing import CliRunner

from passport_sync import service
from passport_sync.cli import app
from passport_sync.config import Settings
from passport_sync.models import HospitalReport
from passport_sync.sink.passport import PassportStore
from tests.conftest import hospital_entry, make_settings, register_patient
from tests.helpers import Clinic, run_sync, synced, with_links, write_config

HOSPITAL = "60a7c2f5e4b0c1a2d3e4f5a6"
NID_A = "1111111111111"
NID_B = "2222222222222"


@pytest.fixture
def clinic(openmrs: Any) -> Clinic:
    return Clinic(openmrs)


@pytest.fixture
def settings(openmrs: Any, mongo_uri: str, mongo_db_name: str) -> Settings:
    return make_settings(mongo_uri, mongo_db_name, [hospital_entry(openmrs.name)], batch_size=50)


def reconcile(settings: Settings, **kwargs: Any) -> HospitalReport:
    store = PassportStore.connect(settings)
    try:
        return service.reconcile(settings, store, settings.enabled_hospitals(), **kwargs)[0]
    finally:
        store.close()


def owners(passport: Any, source: str | None = None) -> dict[str, str]:
    """OpenMRS uuid -> Passport patient of every synced record (of one source)."""
    query: dict[str, Any] = {"openmrsData.hospitalId": HOSPITAL}
    if source:
        query["openmrsData.source"] = source
    return {d["openmrsData"]["uuid"]: d["patientId"] for d in passport.medicalrecords.find(synced(query))}


def uuids(clinic: Clinic, table: str, pk: str, person_column: str, person: int) -> set[str]:
    rows = clinic.db.execute(f"SELECT uuid FROM {table} WHERE {person_column} = %s AND voided = 0", (person,))
    return {r[0] for r in rows}


def drug_order(clinic: Clinic, person: int, **kwargs: Any) -> int:
    encounter = clinic.b.encounter(person, location_id=clinic.location, provider_ids=[clinic.provider])
    return clinic.b.drug_order(encounter, clinic.provider, concept_id=clinic.diabetes, dose=1, **kwargs)


def test_sql_merge_moves_obs_orders_and_conditions_to_the_winner(
    clinic: Clinic, passport: Any, settings: Settings
) -> None:
    settings = with_links(settings)  # the moved records' links move too
    loser, winner = clinic.patient(NID_A), clinic.patient(NID_B)
    pa, pb = register_patient(passport, NID_A), register_patient(passport, NID_B)
    clinic.visit(loser, weights=2)
    drug_order(clinic, loser)
    clinic.b.condition(loser, condition_coded=clinic.diabetes)
    clinic.visit(winner)
    run_sync(settings)
    moved = set(owners(passport)) - {u for u, p in owners(passport).items() if p == pb}
    assert moved and all(owners(passport)[u] == pa for u in moved)

    # The site's merge script: rows move in place, the loser is voided.
    for table, column in (("obs", "person_id"), ("encounter", "patient_id"), ("orders", "patient_id")):
        clinic.db.execute(f"UPDATE {table} SET {column} = %s WHERE {column} = %s", (winner, loser))
    clinic.db.execute("UPDATE conditions SET patient_id = %s WHERE patient_id = %s", (winner, loser))
    clinic.db.execute(
        "UPDATE patient SET voided = 1, date_voided = NOW(), void_reason = 'merged' WHERE patient_id = %s", (loser,)
    )
    run_sync(settings)
    assert any(owners(passport)[u] == pa for u in moved)  # sync-all alone leaves them on the loser

    report = reconcile(settings)
    assert report.outcome == "ok" and report.reconcile is not None
    assert all(owners(passport)[u] == pb for u in moved)
    assert report.reconcile["moved"] == len(moved)
    assert passport.patients.find_one({"_id": ObjectId(pa)})["medicalHistory"] == []
    history = set(passport.patients.find_one({"_id": ObjectId(pb)})["medicalHistory"])
    assert {d["_id"] for d in passport.medicalrecords.find({"patientId": pb})} == history

    again = reconcile(settings)
    assert again.reconcile is not None
    # The kept checksums (the range's rebuilt from its rows') equal MySQL's: nothing differs.
    assert again.reconcile["ranges_differing"] == 0
    assert again.reconcile["drifted"] == 0 and again.reconcile["rows_read"] == 0


def test_a_merged_patient_is_repaired_by_reading_about_that_patients_rows(
    clinic: Clinic, passport: Any, settings: Settings
) -> None:
    people = [clinic.patient(f"33333333330{i:02d}") for i in range(6)]
    passports = [register_patient(passport, f"33333333330{i:02d}") for i in range(6)]
    for _ in range(4):
        for person in people:  # interleaved: every range holds rows of every patient
            clinic.visit(person, weights=3)
    run_sync(settings)
    first = reconcile(settings)
    assert first.reconcile is not None and first.reconcile["drifted"] == 0
    loser, winner = people[0], people[1]
    loser_rows = clinic.db.execute("SELECT COUNT(*) FROM obs WHERE person_id = %s", (loser,))[0][0]

    clinic.db.execute("UPDATE obs SET person_id = %s WHERE person_id = %s", (winner, loser))
    report = reconcile(settings)
    assert report.reconcile is not None
    assert report.reconcile["rows_read"] == loser_rows == report.reconcile["moved"]
    assert set(owners(passport).values()) == set(passports[1:])


def test_api_merge_moves_orders_in_place_and_lands_rows_parked_for_the_unregistered_loser(
    clinic: Clinic, passport: Any, settings: Settings
) -> None:
    loser, winner = clinic.patient(None), clinic.patient(NID_B)  # a duplicate chart without the number
    pb = register_patient(passport, NID_B)
    order = drug_order(clinic, loser)
    weight = clinic.b.obs(loser, clinic.weight, value_numeric=70)
    run_sync(settings)
    assert passport.openmrs_sync_parked.count_documents({"personId": loser}) == 2

    # mergePatients: encounters move, obs are re-saved as new rows (old voided), orders move in place,
    # the loser is voided.
    clinic.db.execute("UPDATE encounter SET patient_id = %s WHERE patient_id = %s", (winner, loser))
    clinic.b.edit_obs(weight, reason="merged")
    clinic.db.execute("UPDATE obs SET person_id = %s WHERE person_id = %s AND voided = 0", (winner, loser))
    clinic.db.execute("UPDATE orders SET patient_id = %s WHERE order_id = %s", (winner, order))
    clinic.db.execute("UPDATE patient SET voided = 1 WHERE patient_id = %s", (loser,))
    run_sync(settings)
    order_uuid = clinic.db.execute("SELECT uuid FROM orders WHERE order_id = %s", (order,))[0][0]
    assert order_uuid not in owners(passport)  # the order moved without a trace

    report = reconcile(settings)
    assert owners(passport)[order_uuid] == pb
    assert report.reconcile is not None and report.reconcile["restored"] >= 1
    assert passport.openmrs_sync_parked.count_documents({}) == 0


def test_api_merge_copying_a_second_national_id_parks_the_winner_instead_of_guessing(
    clinic: Clinic, passport: Any, settings: Settings
) -> None:
    loser, winner = clinic.patient(NID_A), clinic.patient(NID_B)
    register_patient(passport, NID_A), register_patient(passport, NID_B)
    clinic.visit(winner)
    order = drug_order(clinic, loser)
    run_sync(settings)
    assert len(owners(passport)) == 3

    clinic.db.execute("UPDATE orders SET patient_id = %s WHERE order_id = %s", (winner, order))
    clinic.db.execute(
        "INSERT INTO patient_identifier (patient_id, identifier, identifier_type, preferred, location_id, creator,"
        " date_created, voided, uuid) SELECT %s, identifier, identifier_type, 0, location_id, creator, NOW(), 0, UUID()"
        " FROM patient_identifier WHERE patient_id = %s",
        (winner, loser),
    )
    clinic.db.execute("UPDATE patient SET voided = 1 WHERE patient_id = %s", (loser,))
    report = reconcile(settings)

    # Two different national IDs on one chart: nothing stays on either passport, all is parked.
    assert owners(passport) == {}
    reasons = {d["reason"] for d in passport.openmrs_sync_parked.find({"personId": winner})}
    assert reasons == {"conflicting_national_ids"}
    assert report.reconcile is not None and report.reconcile["reparked"] == 3


def test_a_record_parked_again_takes_its_row_of_its_own_with_it(
    clinic: Clinic, passport: Any, settings: Settings
) -> None:
    loser, winner = clinic.patient(NID_A), clinic.patient(NID_B)
    register_patient(passport, NID_A), register_patient(passport, NID_B)
    clinic.b.allergy(winner, clinic.diabetes)  # outside any encounter: on a row of its own
    run_sync(settings)
    assert passport.medicalrecords.count_documents({"openmrsData.source": "own_row"}) == 1

    clinic.db.execute(
        "INSERT INTO patient_identifier (patient_id, identifier, identifier_type, preferred, location_id, creator,"
        " date_created, voided, uuid) SELECT %s, identifier, identifier_type, 0, location_id, creator, NOW(), 0, UUID()"
        " FROM patient_identifier WHERE patient_id = %s",
        (winner, loser),
    )
    report = reconcile(settings)
    assert report.reconcile is not None and report.reconcile["reparked"] == 1
    assert list(passport.medicalrecords.find({}, {"openmrsData.source": 1})) == []


def test_identifier_corrected_in_place_moves_the_history_to_the_right_patient(
    clinic: Clinic, passport: Any, settings: Settings
) -> None:
    person = clinic.patient(NID_A)  # typed wrong: NID_A is someone else's number
    someone_else, right = register_patient(passport, NID_A), register_patient(passport, NID_B)
    clinic.visit(person, weights=2)
    clinic.b.allergy(person, clinic.diabetes)
    run_sync(settings)
    assert set(owners(passport).values()) == {someone_else}

    clinic.db.execute("UPDATE patient_identifier SET identifier = %s WHERE patient_id = %s", (NID_B, person))
    run_sync(settings)
    assert set(owners(passport).values()) == {someone_else}

    report = reconcile(settings)
    assert set(owners(passport).values()) == {right}
    assert report.reconcile is not None
    assert report.reconcile["persons_redecided"] == 1 and report.reconcile["moved"] == 4
    assert passport.patients.find_one({"_id": ObjectId(someone_else)})["allergies"] == []
    assert passport.patients.find_one({"_id": ObjectId(right)})["allergies"]


def test_unvoided_obs_and_unvoided_patient_come_back(clinic: Clinic, passport: Any, settings: Settings) -> None:
    person, other = clinic.patient(NID_A), clinic.patient(NID_B)
    register_patient(passport, NID_A), register_patient(passport, NID_B)
    single = clinic.visit(person)[1]
    clinic.visit(other, weights=2)
    run_sync(settings)
    before = owners(passport)

    clinic.b.void_obs(single, when=datetime.now().replace(microsecond=0))
    # PatientDataVoidHandler: the patient and all their obs, with the patient's date_voided.
    clinic.db.execute("UPDATE patient SET voided = 1, date_voided = NOW() WHERE patient_id = %s", (other,))
    clinic.db.execute("UPDATE obs SET voided = 1, date_voided = NOW() WHERE person_id = %s AND voided = 0", (other,))
    run_sync(settings)
    assert len(owners(passport)) == 1

    # Unvoided in place: no trace an incremental reader could follow.
    clinic.db.execute("UPDATE obs SET voided = 0, date_voided = NULL, void_reason = NULL WHERE obs_id = %s", (single,))
    clinic.db.execute("UPDATE patient SET voided = 0, date_voided = NULL WHERE patient_id = %s", (other,))
    clinic.db.execute("UPDATE obs SET voided = 0, date_voided = NULL WHERE person_id = %s", (other,))
    run_sync(settings)
    assert len(owners(passport)) == 1

    report = reconcile(settings)
    assert owners(passport) == before
    assert report.reconcile is not None and report.reconcile["restored"] == 4


def test_voided_revision_restores_the_previous_order_and_voided_discontinue_reactivates_it(
    clinic: Clinic, passport: Any, settings: Settings
) -> None:
    person = clinic.patient(NID_A)
    register_patient(passport, NID_A)
    revised = drug_order(clinic, person)
    stopped = drug_order(clinic, person)
    encounter = clinic.b.encounter(person, location_id=clinic.location, provider_ids=[clinic.provider])
    revision = clinic.b.drug_order(
        encounter, clinic.provider, concept_id=clinic.diabetes, dose=2, order_action="REVISE", previous_order_id=revised
    )
    discontinue = clinic.b.drug_order(
        encounter, clinic.provider, concept_id=clinic.diabetes, order_action="DISCONTINUE", previous_order_id=stopped
    )
    clinic.db.execute(
        "UPDATE orders SET date_stopped = DATE_SUB(date_activated, INTERVAL -1 DAY) WHERE order_id IN (%s, %s)",
        (revised, stopped),
    )
    run_sync(settings)
    records = {
        d["openmrsData"]["sourceId"]: d for d in passport.medicalrecords.find({"openmrsData.source": "drug_order"})
    }
    assert set(records) == {stopped, revision}
    assert records[stopped]["data"]["medicationStatus"] == "Past"

    # OrderServiceImpl.voidOrder: the new order is voided, its previous order's date_stopped cleared.
    for voided in (revision, discontinue):
        clinic.db.execute("UPDATE orders SET voided = 1, date_voided = NOW() WHERE order_id = %s", (voided,))
    clinic.db.execute("UPDATE orders SET date_stopped = NULL WHERE order_id IN (%s, %s)", (revised, stopped))
    run_sync(settings)
    reconcile(settings)

    records = {
        d["openmrsData"]["sourceId"]: d for d in passport.medicalrecords.find({"openmrsData.source": "drug_order"})
    }
    assert set(records) == {revised, stopped}
    assert {r["data"]["medicationStatus"] for r in records.values()} == {"Active"}
    assert not any("endDate" in r["data"] for r in records.values())  # the sync's old end is gone


def test_an_order_past_its_auto_expire_date_becomes_past(clinic: Clinic, passport: Any, settings: Settings) -> None:
    person = clinic.patient(NID_A)
    register_patient(passport, NID_A)
    # The order must still be active through one sync and one reconcile: measure how long those take
    # on this machine (a shared one can be slow) and let it expire well after.
    started = time.monotonic()
    run_sync(settings)
    reconcile(settings)
    window = max(8.0, 3 * (time.monotonic() - started))
    # OpenMRS stores the hospital's wall-clock time; this hospital's time zone is UTC.
    soon = datetime.now(UTC).replace(tzinfo=None, microsecond=0) + timedelta(seconds=window)
    drug_order(clinic, person, auto_expire_date=soon)
    run_sync(settings)
    record = passport.medicalrecords.find_one({"openmrsData.source": "drug_order"})
    assert record["data"]["medicationStatus"] == "Active"
    reconcile(settings)  # checksums kept while it is still active

    # Expiry writes nothing: only time passes.
    time.sleep(max(0.0, (soon - datetime.now(UTC).replace(tzinfo=None)).total_seconds()) + 1)
    run_sync(settings)
    assert passport.medicalrecords.find_one({"_id": record["_id"]})["data"]["medicationStatus"] == "Active"
    report = reconcile(settings)
    assert passport.medicalrecords.find_one({"_id": record["_id"]})["data"]["medicationStatus"] == "Past"
    assert report.reconcile is not None and report.reconcile["updated"] == 1


def test_dry_run_reports_drift_and_writes_nothing(clinic: Clinic, passport: Any, settings: Settings) -> None:
    person, other = clinic.patient(NID_A), clinic.patient(NID_B)
    register_patient(passport, NID_A), register_patient(passport, NID_B)
    clinic.visit(person, weights=2)
    run_sync(settings)
    reconcile(settings)
    clinic.db.execute("UPDATE obs SET person_id = %s WHERE person_id = %s", (other, person))
    records_before = list(passport.medicalrecords.find().sort("_id"))
    checksums_before = list(passport.openmrs_sync_checksums.find().sort("_id"))

    audit = reconcile(settings, dry_run=True)
    assert audit.reconcile is not None and audit.reconcile["moved"] == 3
    assert list(passport.medicalrecords.find().sort("_id")) == records_before
    assert list(passport.openmrs_sync_checksums.find().sort("_id")) == checksums_before

    assert reconcile(settings).reconcile["moved"] == 3  # type: ignore[index]
    assert reconcile(settings, dry_run=True, compare_all=True).reconcile["drifted"] == 0  # type: ignore[index]


def test_full_compare_repairs_a_passport_record_changed_behind_the_sync(
    clinic: Clinic, passport: Any, settings: Settings
) -> None:
    person = clinic.patient(NID_A)
    register_patient(passport, NID_A)
    clinic.visit(person)
    run_sync(settings)
    reconcile(settings)
    passport.medicalrecords.delete_one({"openmrsData.source": "obs"})
    assert reconcile(settings).reconcile["drifted"] == 0  # type: ignore[index]  # OpenMRS did not change
    assert reconcile(settings, compare_all=True).reconcile["restored"] == 1  # type: ignore[index]


def test_sync_all_reconciles_a_slice_and_status_shows_the_last_full_pass(
    clinic: Clinic, passport: Any, openmrs: Any, mongo_uri: str, mongo_db_name: str
) -> None:
    settings = make_settings(mongo_uri, mongo_db_name, [hospital_entry(openmrs.name)], batch_size=50)
    settings = settings.model_copy(
        update={"reconcile": settings.reconcile.model_copy(update={"full_pass_hours": 0.0005})}
    )
    loser, winner = clinic.patient(NID_A), clinic.patient(NID_B)
    register_patient(passport, NID_A)
    pb = register_patient(passport, NID_B)
    clinic.visit(loser)
    run_sync(settings)  # the first run starts a pass
    clinic.db.execute("UPDATE obs SET person_id = %s WHERE person_id = %s", (winner, loser))
    deadline = time.monotonic() + 30
    store = PassportStore.connect(settings)
    try:
        while True:
            status = service.hospital_status(settings, store, settings.hospitals[0])
            if set(owners(passport).values()) == {pb} and status["reconcile"]["last_full_pass"]:
                break
            assert time.monotonic() < deadline, "sync-all never converged"
            time.sleep(0.5)
            run_sync(settings)
    finally:
        store.close()
    last = status["reconcile"]["last_full_pass"]
    assert last["by"] == "sync-all" and last["ended_at"] and last["findings"]["moved"] == 2


def test_reconcile_command_prints_the_repairs_as_json_and_takes_the_lock(
    clinic: Clinic, passport: Any, settings: Settings, openmrs: Any, mongo_uri: str, mongo_db_name: str, tmp_path: Any
) -> None:
    person, other = clinic.patient(NID_A), clinic.patient(NID_B)
    register_patient(passport, NID_A), register_patient(passport, NID_B)
    clinic.visit(person)
    run_sync(settings)
    clinic.db.execute("UPDATE obs SET person_id = %s WHERE person_id = %s", (other, person))
    config = write_config(tmp_path / "h.yaml", mongo_uri, mongo_db_name, [hospital_entry(openmrs.name)])
    runner = CliRunner()

    passport.openmrs_sync_locks.insert_one(
        {"_id": HOSPITAL, "owner": "elsewhere:1:2:3", "expiresAt": datetime.now(UTC) + timedelta(minutes=5)}
    )
    locked = runner.invoke(app, ["reconcile", "--config", str(config), "--json"], env={})
    assert locked.exit_code == 3, locked.output
    passport.openmrs_sync_locks.delete_many({})

    audit = runner.invoke(app, ["reconcile", "--config", str(config), "--dry-run", "--json"], env={})
    assert audit.exit_code == 0, audit.output
    assert json.loads(audit.stdout)["hospitals"][0]["reconcile"]["moved"] == 2
    done = runner.invoke(app, ["reconcile", "--config", str(config)], env={})
    assert done.exit_code == 0 and "Moved" in done.stdout
    assert set(owners(passport).values()) == {str(passport.patients.find_one({"nationalId": NID_B})["_id"])}
