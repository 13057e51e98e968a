"""Several sync-all processes at once (overlapping cron runs, or several hosts): each hospital is
synced by one of them at a time, and every observation lands exactly once."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.conftest import hospital_entry, register_patient
from tests.helpers import Clinic, obs_uuids, write_config


def test_parallel_sync_all_processes_write_every_observation_exactly_once(
    make_openmrs: Any, passport: Any, mongo_uri: str, mongo_db_name: str, tmp_path: Path
) -> None:
    hospitals = []
    expected = 0
    for index in range(2):
        db = make_openmrs()
        clinic = Clinic(db)
        persons = [clinic.patient(f"55555555{index}{i:07d}") for i in range(10)]
        for i in range(10):
            register_patient(passport, f"55555555{index}{i:07d}")
        clinic.many(persons, 1500)
        expected += 1500
        hospitals.append(hospital_entry(db.name, hospital_id=f"hospital-{index}", name=f"Hospital {index}"))
    config = write_config(tmp_path / "hospitals.yaml", mongo_uri, mongo_db_name, hospitals, batch_size=50)
    command = [sys.executable, "-m", "passport_sync", "sync-all", "--config", str(config), "--json"]

    processes = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(4)]
    outcomes = []
    for process in processes:
        stdout, stderr = process.communicate(timeout=180)
        assert process.returncode in (0, 3), stderr.decode()[-2000:]
        outcomes.append(stdout.decode())

    counts = obs_uuids(passport)
    assert len(counts) == expected
    assert set(counts.values()) == {1}
    # No two processes read the same rows: runs of one hospital never overlapped (an overlap
    # would show as records already present), and between them they wrote each record once.
    written: dict[str, int] = {}
    for output in outcomes:
        for report in json.loads(output)["hospitals"]:
            assert report["outcome"] in ("ok", "locked")
            assert report["already_present"] == 0
            written[report["hospital_id"]] = written.get(report["hospital_id"], 0) + report["written"]
    assert written == {"hospital-0": 1500, "hospital-1": 1500}
    assert passport.openmrs_sync_locks.count_documents({}) == 0
