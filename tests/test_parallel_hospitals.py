"""sync-all --workers: hospitals synced at once, each on its own connections and lock; a hung
hospital never holds the others; reports, JSON and exit codes as with one worker."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from passport_sync import service
from passport_sync.cli import app
from passport_sync.models import HospitalReport
from passport_sync.sink.passport import PassportStore
from tests.conftest import hospital_entry, make_settings, register_patient
from tests.helpers import Clinic, live_obs_uuids, obs_uuids, synced, write_config

runner = CliRunner()


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP port that accepts connections and never says a word (a hung MySQL server)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    listener.close()


def clinics(make_openmrs: Any, passport: Any, count: int) -> list[Clinic]:
    made = []
    for index in range(count):
        clinic = Clinic(make_openmrs())
        national_id = f"11997800{index:08d}"
        person = clinic.patient(national_id)
        register_patient(passport, national_id)
        clinic.visit(person, weights=2 + index)
        made.append(clinic)
    return made


def test_a_hung_hospital_never_holds_the_others(
    make_openmrs: Any, passport: Any, silent_server: int, tmp_path: Path, mongo_uri: str, mongo_db_name: str
) -> None:
    good = clinics(make_openmrs, passport, 3)
    hung = hospital_entry("openmrs", hospital_id="hung", name="Hung Hospital")
    hung["db"].update(port=silent_server, connect_timeout_seconds=1, read_timeout_seconds=1)
    entries = [hung] + [
        hospital_entry(c.db.name, hospital_id=f"h{i}", name=f"Hospital {i}") for i, c in enumerate(good)
    ]
    config = write_config(tmp_path / "hospitals.yaml", mongo_uri, mongo_db_name, entries)

    result = runner.invoke(app, ["sync-all", "--config", str(config), "--workers", "4", "--json"], env={})

    assert result.exit_code == 1, result.stderr
    document = json.loads(result.stdout)
    reports = document["hospitals"]
    assert [r["hospital_id"] for r in reports] == ["hung", "h0", "h1", "h2"]  # config order
    assert reports[0]["outcome"] == "failed" and "timed out" in reports[0]["errors"][0]
    assert set(reports[0]) == set(reports[1])  # the same keys as ever
    for index, clinic in enumerate(good):
        assert reports[index + 1]["outcome"] == "ok"
        assert reports[index + 1]["written"] == 3 + index
        synced = obs_uuids(passport, f"h{index}")
        assert set(synced) == live_obs_uuids(clinic.db) and set(synced.values()) == {1}
    # Each hospital took and released its own lock.
    assert passport.openmrs_sync_locks.count_documents({}) == 0

    # The others finished while the hung hospital was still waiting for its server's greeting.
    finished = {
        d["changes"]["hospital_id"]: d["createdAt"] for d in passport.auditlogs.find({"action": "openmrs_auto_sync"})
    }
    assert all(finished[f"h{i}"] < finished["hung"] for i in range(3)), finished


class Overlap:
    """Counts hospitals in flight; each start waits (briefly) for a partner, so running one at a
    time shows up as a broken barrier instead of a lucky timing."""

    def __init__(self, parties: int) -> None:
        self._lock = threading.Lock()
        self._barrier = threading.Barrier(parties)
        self.active = 0
        self.most = 0
        self.broken = False

    def hospital_started(self, hospital_id: str, hospital_name: str) -> None:
        with self._lock:
            self.active += 1
            self.most = max(self.most, self.active)
        try:
            self._barrier.wait(timeout=10)
        except threading.BrokenBarrierError:
            self.broken = True

    def batch_done(self, report: HospitalReport, phase: str) -> None: ...

    def hospital_done(self, report: HospitalReport) -> None:
        with self._lock:
            self.active -= 1


def test_workers_bound_how_many_hospitals_run_at_once(
    make_openmrs: Any, passport: Any, mongo_uri: str, mongo_db_name: str
) -> None:
    good = clinics(make_openmrs, passport, 4)
    entries = [hospital_entry(c.db.name, hospital_id=f"h{i}", name=f"Hospital {i}") for i, c in enumerate(good)]
    settings = make_settings(mongo_uri, mongo_db_name, entries, workers=2)
    overlap = Overlap(parties=2)
    store = PassportStore.connect(settings)
    try:
        reports = service.sync_all(settings, store, settings.hospitals, observer=overlap)
    finally:
        store.close()
    assert [r.outcome for r in reports] == ["ok"] * 4
    assert [r.hospital_id for r in reports] == ["h0", "h1", "h2", "h3"]
    assert not overlap.broken  # two at a time, as configured
    assert overlap.most == 2  # and never more
    assert passport.medicalrecords.count_documents(synced({})) == sum(3 + i for i in range(4))
