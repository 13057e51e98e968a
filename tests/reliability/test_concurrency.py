"""Several sync-all processes at once, and sync-patient while a sync-all is in the middle of its run:
every process ends (no deadlock), every observation lands once, and the patient's parked
observations land."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import hospital_entry, mysql_connect, register_patient
from tests.helpers import Clinic, synced, write_config
from tests.reliability.support import (
    assert_every_record_on_the_right_patient,
    assert_medical_history_consistent,
    checkpoint,
    cli,
    cli_env,
    obs_ids_and_uuids,
    tally,
    wait_until,
)

pytestmark = pytest.mark.reliability

SHARED_NID = "5100000000001"  # a patient of both hospitals, registered in Passport mid-run


def test_parallel_sync_all_and_sync_patient_write_each_observation_once_without_deadlock(
    make_openmrs: Any,
    passport: Any,
    mongo_uri: str,
    mongo_db_name: str,
    tmp_path: Path,
    figures: Any,
    processes: list[subprocess.Popen[bytes]],
) -> None:
    hospitals = []
    databases = []
    for index, size in enumerate((300, 800)):
        db = make_openmrs()
        clinic = Clinic(db)
        persons = [clinic.patient(f"5{index + 2}00000000{i:03d}") for i in range(8)]
        for i in range(8):
            register_patient(passport, f"5{index + 2}00000000{i:03d}")
        shared = clinic.patient(SHARED_NID)
        clinic.many([*persons, shared], size)
        databases.append((db, shared))
        hospitals.append(hospital_entry(db.name, hospital_id=f"hospital-{index}", name=f"Hospital {index}"))
    config = write_config(tmp_path / "hospitals.yaml", mongo_uri, mongo_db_name, hospitals, batch_size=25)
    env = cli_env()
    first_done = max(obs_ids_and_uuids(databases[0][0]))

    def start(*args: str) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            cli(*args, "--config", str(config), "--json"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=tmp_path,
        )
        processes.append(process)
        return process

    # Three sync-all at once: one takes hospital 0, one hospital 1, the third finds both taken.
    sync_alls = [start("sync-all") for _ in range(3)]
    # Hospital 1's run is held mid-way: another session locks its obs table, so the run waits inside
    # a batch, holding the hospital's lease (the server waits up to lock_wait_timeout, a day).
    last_h1 = max(obs_ids_and_uuids(databases[1][0]))
    shared_h0 = set(obs_ids_and_uuids(databases[0][0], [databases[0][1]]).values())
    assert wait_until(lambda: checkpoint(passport, "hospital-1") > 0, 30)
    # (From here on hospital 1's obs table is locked: no query of this test may touch it.)
    locker = mysql_connect(databases[1][0].name)
    try:
        with locker.cursor() as cursor:
            cursor.execute("LOCK TABLES obs WRITE")

        def sync_waits() -> bool:
            with locker.cursor() as cursor:
                cursor.execute(
                    "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = %s AND STATE LIKE %s",
                    (databases[1][0].name, "%metadata lock%"),
                )
                return bool(cursor.fetchone()[0])

        assert wait_until(sync_waits, 30, interval=0.02)

        def hospital_1_mid_run() -> bool:
            lease = passport.openmrs_sync_locks.find_one({"_id": "hospital-1"})
            return lease is not None and checkpoint(passport, "hospital-1") < last_h1

        # Hospital 0 done (the shared patient's observations there are parked: not registered yet).
        assert wait_until(
            lambda: (
                checkpoint(passport, "hospital-0") == first_done
                and passport.openmrs_sync_locks.count_documents({"_id": "hospital-0"}) == 0
            ),
            30,
        )
        # The patient registers; sync-patient (twice) and one more sync-all start while hospital 1's
        # sync-all is in the middle of its run. They compete for hospital 0, where the patient's
        # parked observations land; sync-all finds hospital 1 taken and ends, sync-patient waits
        # for the running sync-all (up to two minutes) and then syncs hospital 1 too.
        patient_id = register_patient(passport, SHARED_NID)
        sync_patients = [start("sync-patient", SHARED_NID) for _ in range(2)]
        time.sleep(0.3)
        sync_alls.append(start("sync-all"))

        def landed_in_hospital_0() -> bool:
            query = {"patientId": patient_id, "openmrsData.hospitalId": "hospital-0"}
            return passport.medicalrecords.count_documents(query) == len(shared_h0)

        assert wait_until(lambda: sync_alls[-1].poll() is not None and landed_in_hospital_0(), 60)
        assert [p.poll() for p in sync_patients] == [None, None]  # waiting for hospital 1
        assert hospital_1_mid_run()  # its sync-all is still held in the middle of its run
    finally:
        with locker.cursor() as cursor:
            cursor.execute("UNLOCK TABLES")
        locker.close()

    written: dict[str, int] = {}
    outcomes: dict[str, int] = {}
    patient_written = 0
    for kind, group, allowed in (("sync-all", sync_alls, {0, 3}), ("sync-patient", sync_patients, {0})):
        for process in group:
            stdout, stderr = process.communicate(timeout=90)  # a deadlock would time out here
            assert process.returncode in allowed, (kind, process.returncode, stderr.decode()[-2000:])
            for report in json.loads(stdout)["hospitals"]:
                assert report["outcome"] in ("ok", "locked"), report
                if report["outcome"] == "ok":
                    assert report["error_count"] == 0, report
                else:  # the one "error" of a locked hospital names the run holding it
                    assert "is being synced by" in report["errors"][0], report
                outcomes[f"{kind} {report['outcome']}"] = outcomes.get(f"{kind} {report['outcome']}", 0) + 1
                written[report["hospital_id"]] = written.get(report["hospital_id"], 0) + report["written"]
                if kind == "sync-patient":
                    patient_written += report["written"]
    assert outcomes.get("sync-all locked", 0) >= 3  # the processes really did overlap
    assert outcomes.get("sync-patient ok", 0) == 4  # both waited for the running sync-all, none gave up

    # A last run finds nothing new: the concurrent runs left nothing behind but, at most, what waits
    # in the parked collection for the next run (none here: the patient registered early).
    final = subprocess.run(
        cli("sync-all", "--config", str(config), "--json"), capture_output=True, env=env, cwd=tmp_path, timeout=60
    )
    assert final.returncode == 0, final.stderr.decode()[-2000:]
    final_reports = json.loads(final.stdout)["hospitals"]

    results = []
    for (db, shared), hospital in zip(databases, hospitals, strict=True):
        expected = set(obs_ids_and_uuids(db).values())
        result = tally(passport, expected, hospital_id=hospital["id"])
        results.append(result)
        assert result.exact, (hospital["id"], result)
        # Each record was inserted by exactly one process: no run overwrote or re-inserted another's.
        assert written[hospital["id"]] == len(expected)
        shared_obs = set(obs_ids_and_uuids(db, [shared]).values())
        on_patient = {
            d["openmrsData"]["uuid"]
            for d in passport.medicalrecords.find(
                synced({"patientId": patient_id, "openmrsData.hospitalId": hospital["id"]})
            )
        }
        assert on_patient == shared_obs
        assert_every_record_on_the_right_patient(passport, db, hospital["id"])
    assert [r["written"] for r in final_reports] == [0, 0]
    assert passport.openmrs_sync_parked.count_documents({}) == 0
    assert passport.openmrs_sync_locks.count_documents({}) == 0
    assert_medical_history_consistent(passport)

    figures.record(
        "test_concurrency",
        f"{len(sync_alls)} sync-all + {len(sync_patients)} sync-patient processes overlapping (2 hospitals)",
        injected=len(sync_alls) + len(sync_patients),
        outcome="ok (all processes ended)",
        runs=outcomes,
        written_by_sync_patient=patient_written,
        expected=sum(r.expected for r in results),
        found=sum(r.found for r in results),
        duplicated=sum(r.duplicated for r in results),
        missing=sum(r.missing for r in results),
        unexpected=sum(r.unexpected for r in results),
        parked_expected=0,
        parked_found=sum(r.parked_found for r in results),
    )
