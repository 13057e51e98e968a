"""kill -9 at random points of a backfill, again and again: the reruns end with exactly the records
and parked observations the data calls for."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import hospital_entry, register_patient
from tests.helpers import Clinic, synced, write_config
from tests.reliability.support import (
    HOSPITAL,
    assert_medical_history_consistent,
    checkpoint,
    cli,
    cli_env,
    obs_ids_and_uuids,
    tally,
)

pytestmark = pytest.mark.reliability

OBSERVATIONS = 2000
KILLS = 21
SEED = int(os.environ.get("PASSPORT_SYNC_RELIABILITY_SEED", "20251106"))


def test_kill_9_at_random_points_then_rerun_holds_exactly_the_expected_records(
    openmrs: Any,
    passport: Any,
    mongo_uri: str,
    mongo_db_name: str,
    tmp_path: Path,
    figures: Any,
    processes: list[subprocess.Popen[bytes]],
) -> None:
    rng = random.Random(SEED)
    clinic = Clinic(openmrs)
    registered = [clinic.patient(f"31000000{i:05d}") for i in range(24)]
    unregistered = [clinic.patient(f"32000000{i:05d}") for i in range(4)]  # never register: parked
    late = clinic.patient("3300000000001")  # registers while the crashes go on
    for i in range(24):
        register_patient(passport, f"31000000{i:05d}")
    clinic.many([*registered, *unregistered, late], OBSERVATIONS)
    all_obs = obs_ids_and_uuids(openmrs)
    assert len(all_obs) == OBSERVATIONS
    parked_uuids = set(obs_ids_and_uuids(openmrs, unregistered).values())
    record_uuids = set(all_obs.values()) - parked_uuids
    last_id = max(all_obs)

    config = write_config(
        tmp_path / "hospitals.yaml",
        mongo_uri,
        mongo_db_name,
        [hospital_entry(openmrs.name)],
        batch_size=25,
        # The links' own guarantee under kill -9 (each record linked once), so they are on here.
        medical_history_links=True,
    )
    command = cli("sync-all", "--config", str(config), "--quiet")
    env = cli_env()

    kill_points: list[dict[str, Any]] = []
    finished_early = 0
    while len(kill_points) < KILLS:
        before = checkpoint(passport)
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=tmp_path)
        processes.append(proc)
        if rng.random() < 0.2:
            # Anywhere in the first second: start-up, lock, placeholders, first batches.
            mode = "time"
            deadline = time.monotonic() + rng.uniform(0.05, 1.0)
            while time.monotonic() < deadline and proc.poll() is None:
                time.sleep(0.005)
        else:
            # After the checkpoint moved on by a random number of observations, plus a random
            # few milliseconds: inside reading, mapping, writing or saving the next batch.
            mode = "progress"
            target = min(before + rng.randint(1, 120), last_id)
            while proc.poll() is None and checkpoint(passport) < target:
                time.sleep(0.003)
            time.sleep(rng.uniform(0.0, 0.04))
        if proc.poll() is not None:
            # The run finished before the kill: nothing left to interrupt at this point.
            _, stderr = proc.communicate()
            assert proc.returncode == 0, stderr.decode()[-2000:]
            finished_early += 1
            assert finished_early < 3, "the backfill finished before enough kills; use more observations"
            continue
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate()
        assert proc.returncode == -signal.SIGKILL
        kill_points.append({"mode": mode, "checkpoint_before": before, "checkpoint_after": checkpoint(passport)})
        if len(kill_points) == KILLS // 2:
            register_patient(passport, "3300000000001")  # their parked observations must land

    assert sum(1 for k in kill_points if 0 < k["checkpoint_after"] < last_id) >= KILLS // 2, kill_points

    done = subprocess.run(
        cli("sync-all", "--config", str(config), "--json"), capture_output=True, env=env, cwd=tmp_path, timeout=120
    )
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    report = json.loads(done.stdout)["hospitals"][0]
    assert report["outcome"] == "ok"

    result = tally(passport, record_uuids, parked_uuids)
    figures.record(
        "test_crashes",
        "kill -9 of sync-all (backfill, batch 25)",
        injected=len(kill_points),
        outcome="ok" if result.exact else "MISMATCH",
        observations=OBSERVATIONS,
        seed=SEED,
        kills_by_time=sum(1 for k in kill_points if k["mode"] == "time"),
        kills_by_progress=sum(1 for k in kill_points if k["mode"] == "progress"),
        checkpoints_at_kill=sorted({k["checkpoint_after"] for k in kill_points}),
        **result.figures(),
    )
    assert result.exact, result
    assert checkpoint(passport) == last_id
    assert_medical_history_consistent(passport, links=True)
    assert passport.openmrs_sync_locks.count_documents({"_id": HOSPITAL}) == 0
    late_patient = passport.patients.find_one({"nationalId": "3300000000001"})
    late_obs = set(obs_ids_and_uuids(openmrs, [late]).values())
    landed = {
        d["openmrsData"]["uuid"] for d in passport.medicalrecords.find(synced({"patientId": str(late_patient["_id"])}))
    }
    assert landed == late_obs
