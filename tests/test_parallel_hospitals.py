"""sync-all --workers: hospitals synced at once, each on its own connections and lock; a hung
hospital never holds the others; reports, JSON and exit codes as with one worker."""

from __future__ import annotations

import json
import socket
import threading
import time
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


class SilentServer:
    """A TCP port that accepts connections and never says a word (a hung MySQL server), until
    ``release`` (or a minute passed): then it drops them and refuses new ones."""

    def __init__(self) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.listener.settimeout(0.1)
        self.port = self.listener.getsockname()[1]
        self.released = threading.Event()
        self._accepted: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        deadline = time.monotonic() + 60
        while not self.released.is_set() and time.monotonic() < deadline:
            try:
                self._accepted.append(self.listener.accept()[0])
            except OSError:
                continue
        self.listener.close()
        for conn in self._accepted:
            conn.close()

    def release(self) -> None:
        self.released.set()
        self._thread.join()


@pytest.fixture
def silent_server() -> Iterator[SilentServer]:
    server = SilentServer()
    yield server
    server.release()


class ReleaseWhenOthersDone:
    """Lets the hung hospital's server go once every other hospital has finished: with hospitals
    run one after the other, the others would wait for the hung one and finish after it."""

    def __init__(self, server: SilentServer, others: int) -> None:
        self.server = server
        self.waiting = others
        self.lock = threading.Lock()

    def hospital_started(self, hospital_id: str, hospital_name: str) -> None: ...

    def batch_done(self, report: HospitalReport, phase: str) -> None: ...

    def hospital_done(self, report: HospitalReport) -> None:
        if report.hospital_id == "hung":
            return
        with self.lock:
            self.waiting -= 1
            if self.waiting == 0:
                self.server.released.set()


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
    make_openmrs: Any, passport: Any, silent_server: SilentServer, mongo_uri: str, mongo_db_name: str
) -> None:
    good = clinics(make_openmrs, passport, 3)
    hung = hospital_entry("openmrs", hospital_id="hung", name="Hung Hospital")
    hung["db"].update(port=silent_server.port, connect_timeout_seconds=5, read_timeout_seconds=120)
    others = [hospital_entry(c.db.name, hospital_id=f"h{i}", name=f"Hospital {i}") for i, c in enumerate(good)]
    settings = make_settings(mongo_uri, mongo_db_name, [hung, *others], workers=4)
    store = PassportStore.connect(settings)
    try:
        reports = service.sync_all(
            settings, store, settings.hospitals, observer=ReleaseWhenOthersDone(silent_server, others=3)
        )
    finally:
        store.close()

    assert [r.hospital_id for r in reports] == ["hung", "h0", "h1", "h2"]  # config order
    assert reports[0].outcome == "failed"
    for index, clinic in enumerate(good):
        assert reports[index + 1].outcome == "ok"
        assert reports[index + 1].written == 3 + index
        synced = obs_uuids(passport, f"h{index}")
        assert set(synced) == live_obs_uuids(clinic.db) and set(synced.values()) == {1}
        # They finished while the hung hospital still waited for its server's greeting.
        assert reports[index + 1].finished_at < reports[0].finished_at
    # Each hospital took and released its own lock.
    assert passport.openmrs_sync_locks.count_documents({}) == 0


class Overlap:
    """Counts hospitals in flight; each start waits for a partner (up to a minute), so running one at a
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
            self._barrier.wait(timeout=60)
        except threading.BrokenBarrierError:
            self.broken = True

    def batch_done(self, report: HospitalReport, phase: str) -> None: ...

    def hospital_done(self, report: HospitalReport) -> None:
        with self._lock:
            self.active -= 1


def test_workers_bound_how_many_hospitals_run_at_once(
    make_openmrs: Any, passport: Any, tmp_path: Path, mongo_uri: str, mongo_db_name: str
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

    # The command line: the same document as with one worker, hospitals in configuration order.
    config = write_config(tmp_path / "hospitals.yaml", mongo_uri, mongo_db_name, entries)
    result = runner.invoke(app, ["sync-all", "--config", str(config), "--workers", "3", "--json"], env={})
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert [h["hospital_id"] for h in document["hospitals"]] == ["h0", "h1", "h2", "h3"]
    assert set(document["hospitals"][0]) == set(reports[0].as_dict())
    assert [h["written"] for h in document["hospitals"]] == [0, 0, 0, 0]
