"""The sync's indexes coexist with the Patient Passport app's own, in either order of first start."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from passport_sync import service
from passport_sync.cli import app
from passport_sync.sink.passport import PassportStore
from tests.conftest import hospital_entry, make_settings, register_patient
from tests.helpers import Clinic, live_obs_uuids, obs_uuids, run_sync, write_config

NID = "1199780012345670"

# The app's indexes exactly as its Mongoose models build them at startup (reference, section 6):
# collection, key, options. Written out here, independently of the tool's own list.
APP_BUILDS: list[tuple[str, list[tuple[str, int]], dict[str, Any]]] = [
    ("patients", [("user", 1)], {"unique": True}),
    ("patients", [("nationalId", 1)], {"unique": True}),
    ("patients", [("openmrsUuid", 1)], {"sparse": True}),
    ("patients", [("status", 1)], {}),
    ("patients", [("assignedDoctors", 1)], {}),
    ("doctors", [("user", 1)], {"unique": True}),
    ("doctors", [("licenseNumber", 1)], {"unique": True}),
    ("doctors", [("openmrsProviderUuid", 1)], {"sparse": True}),
    ("doctors", [("hospital", 1)], {}),
    ("doctors", [("specialization", 1)], {}),
    ("doctors", [("isActive", 1)], {}),
    ("medicalrecords", [("patientId", 1), ("type", 1)], {}),
    ("medicalrecords", [("patientId", 1), ("createdAt", -1)], {}),
    ("medicalrecords", [("createdBy", 1)], {}),
    ("medicalrecords", [("syncDate", -1)], {}),
    ("medicalrecords", [("openmrsData.obsId", 1)], {"sparse": True}),
    ("users", [("email", 1)], {"unique": True}),
    ("hospitals", [("user", 1)], {}),
    ("hospitals", [("licenseNumber", 1)], {"unique": True}),
    ("hospitals", [("hospitalId", 1)], {"unique": True, "sparse": True}),
]
APP_COLLECTIONS = sorted({c for c, _, _ in APP_BUILDS})


def start_the_app(db: Any) -> None:
    """What the app's backend does to the database at startup (Mongoose autoIndex)."""
    for collection, key, options in APP_BUILDS:
        db[collection].create_index(key, **options)


def index_specs(db: Any, collection: str) -> dict[str, tuple[Any, ...]]:
    return {
        name: (tuple(info["key"]), bool(info.get("unique")), bool(info.get("sparse")))
        for name, info in db[collection].index_information().items()
    }


@pytest.fixture
def clinic(openmrs: Any) -> Clinic:
    return Clinic(openmrs)


@pytest.fixture
def settings(openmrs: Any, mongo_uri: str, mongo_db_name: str) -> Any:
    return make_settings(mongo_uri, mongo_db_name, [hospital_entry(openmrs.name)])


def test_sync_all_succeeds_on_a_database_the_app_started_on_and_leaves_its_indexes_alone(
    clinic: Clinic, passport: Any, settings: Any
) -> None:
    start_the_app(passport)
    before = {c: index_specs(passport, c) for c in APP_COLLECTIONS}
    person = clinic.patient(NID)
    register_patient(passport, NID)
    clinic.visit(person, weights=2)

    report = run_sync(settings)[0]
    assert report.outcome == "ok", report
    assert set(obs_uuids(passport)) == live_obs_uuids(clinic.db)
    assert run_sync(settings)[0].outcome == "ok"  # and again, with every index in place

    after = {c: index_specs(passport, c) for c in APP_COLLECTIONS}
    for collection in APP_COLLECTIONS:
        added = {n: s for n, s in after[collection].items() if n not in before[collection]}
        assert all(n.startswith("passport_sync_") for n in added), added
        assert {n: after[collection][n] for n in before[collection]} == before[collection]
    # The app's unique national ID index is the one the patient lookup uses; nothing beside it.
    assert [n for n, s in after["patients"].items() if s[0][0] == ("nationalId", 1)] == ["nationalId_1"]

    store = PassportStore.connect(settings)
    try:
        findings = store.indexes.findings()
    finally:
        store.close()
    assert [f for f in findings if f.level != "ok"] == []


def test_after_a_sync_on_an_empty_database_the_app_can_still_build_its_indexes(
    clinic: Clinic, passport: Any, settings: Any
) -> None:
    person = clinic.patient(NID)
    register_patient(passport, NID)
    clinic.visit(person)
    assert run_sync(settings)[0].outcome == "ok"

    # Nothing of ours on a key the app indexes: MongoDB would refuse the app's index beside it
    # (code 85/86), and the app would go on without its unique national ID index, silently.
    app_keys = {(c, tuple(k)) for c, k, _ in APP_BUILDS}
    for collection in APP_COLLECTIONS:
        for name, (key, _, _) in index_specs(passport, collection).items():
            if name != "_id_":
                assert name.startswith("passport_sync_") and (collection, key) not in app_keys, (collection, name)

    start_the_app(passport)
    patients = passport.patients.index_information()
    assert patients["nationalId_1"].get("unique") is True
    assert passport.doctors.index_information()["openmrsProviderUuid_1"].get("sparse") is True
    assert run_sync(settings)[0].outcome == "ok"  # and the sync still runs beside them


def test_test_connection_reports_an_index_that_blocks_the_apps_with_its_fix(
    clinic: Clinic, passport: Any, tmp_path: Path, mongo_uri: str, mongo_db_name: str, caplog: Any
) -> None:
    # What earlier passport-sync versions created: plain indexes under the app's names.
    passport.patients.create_index([("nationalId", 1)])
    passport.doctors.create_index([("openmrsProviderUuid", 1)])
    # The sync itself still works and says what is wrong.
    person = clinic.patient(NID)
    register_patient(passport, NID)
    clinic.visit(person)
    settings = make_settings(mongo_uri, mongo_db_name, [hospital_entry(clinic.db.name)])
    with caplog.at_level(logging.WARNING, logger="passport_sync"):
        assert run_sync(settings)[0].outcome == "ok"
    assert any("nationalId_1" in r.getMessage() and "dropIndex" in r.getMessage() for r in caplog.records)

    config = write_config(tmp_path / "hospitals.yaml", mongo_uri, mongo_db_name, [hospital_entry(clinic.db.name)])
    result = CliRunner().invoke(app, ["test-connection", "--config", str(config), "--json"], env={})
    assert result.exit_code == 1, result.stdout
    mongo = json.loads(result.stdout)["results"][-1]
    failed = {c["check"]: c for c in mongo["checks"] if not c["ok"]}
    assert set(failed) == {"index patients nationalId_1", "index doctors openmrsProviderUuid_1"}
    assert 'db.patients.dropIndex("nationalId_1")' in failed["index patients nationalId_1"]["hint"]
    assert "unique" in failed["index patients nationalId_1"]["detail"]


def test_indexes_from_earlier_versions_are_reused_not_duplicated(passport: Any, settings: Any) -> None:
    # Names earlier versions gave the tool's own indexes.
    passport.openmrs_sync_parked.create_index([("hospitalId", 1), ("personId", 1)])
    passport.syncstatus.create_index([("hospitalId", 1)])
    store = PassportStore.connect(settings)
    try:
        store.indexes.ensure()
        store.indexes.ensure()
        checks = service.check_sink(store)["checks"]
    finally:
        store.close()
    parked = passport.openmrs_sync_parked.index_information()
    assert sorted(parked) == ["_id_", "hospitalId_1_personId_1", "passport_sync_parked_reason"]
    assert sorted(passport.syncstatus.index_information()) == ["_id_", "hospitalId_1"]
    by_name = {c["check"]: c for c in checks}
    assert by_name["index syncstatus hospitalId"]["detail"].endswith("hospitalId_1")
    # No app yet: its keys are reported as scans, never created by us.
    assert by_name["index patients nationalId"]["level"] == "warning"
    assert "Patient Passport backend" in by_name["index patients nationalId"]["hint"]
    assert "nationalId_1" not in passport.patients.index_information()


def test_a_hospitals_last_run_summaries_are_read_through_an_index_of_ours(passport: Any, settings: Any) -> None:
    """Issue #12: status, health and metrics read each hospital's newest run summary from
    ``auditlogs`` (hundreds of hospitals, a run every few minutes, beside the app's own entries)."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    passport.auditlogs.insert_many([{"action": "login", "createdAt": start} for _ in range(30)])  # the app's
    with PassportStore.connect(settings) as store:
        store.indexes.ensure()
        for minute in range(30):
            hospital = f"h-{minute % 3}"
            summary = {"hospital_id": hospital, "hospital_name": hospital, "outcome": "ok" if minute < 24 else "failed"}
            store.audit.write_run_summary(summary, None, start + timedelta(minutes=minute))
        last = store.audit.last_run_summary("h-1")
        assert last is not None and last["createdAt"] == datetime(2026, 1, 1, 0, 28)
        assert store.audit.last_successful_run_at("h-1") == start + timedelta(minutes=22)
        checks = {c["check"]: c for c in service.check_sink(store)["checks"]}

    key = [("changes.hospital_id", 1), ("action", 1), ("createdAt", -1), ("changes.outcome", 1)]
    assert passport.auditlogs.index_information()["passport_sync_run_summary"]["key"] == key
    check = checks["index auditlogs changes.hospital_id, action, createdAt, changes.outcome"]
    assert check["level"] == "ok" and check["detail"].endswith("passport_sync_run_summary")
    # The last run's query is answered from the index. (SecantusDB uses an index only when the
    # query's equality fields are a prefix of its key, so it scans for the last successful run;
    # mongod serves that one from the same index, bounds on changes.outcome included.)
    plan = (
        passport.auditlogs.find({"action": "openmrs_auto_sync", "changes.hospital_id": "h-1"})
        .sort("createdAt", -1)
        .limit(1)
        .explain()
    )
    winning = json.dumps(plan["queryPlanner"]["winningPlan"], default=str)
    assert "passport_sync_run_summary" in winning and "COLLSCAN" not in winning
