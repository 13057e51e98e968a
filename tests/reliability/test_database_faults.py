"""Database faults in the middle of a run: the MySQL connection killed, the MySQL server going away
and coming back, a lock wait timeout, MongoDB unreachable mid-batch.

Transient faults are retried and the run ends complete; a fault that outlasts the retry policy fails
the hospital's run with a message, and the checkpoint stays at the last batch MongoDB acknowledged,
so the next run completes without a gap or a duplicate. The shared MariaDB server is never
stopped: connections are killed with KILL CONNECTION, and "server down" is played by a TCP relay.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import re
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pymongo
import pymysql
import pytest
from secantus import SecantusDBServer

from passport_sync.models import HospitalReport
from passport_sync.source.openmrs import OpenMRSSource
from tests.conftest import MYSQL, hospital_entry, make_settings, mysql_connect, register_patient
from tests.helpers import Clinic, run_sync, synced
from tests.reliability.support import (
    TcpProxy,
    assert_medical_history_consistent,
    checkpoint,
    cli,
    cli_env,
    config_file,
    free_port,
    obs_ids_and_uuids,
    tally,
    wait_until,
)

pytestmark = pytest.mark.reliability

BATCH = 25


class AtBatch:
    """A sync observer that calls ``action`` after the given batch numbers were acknowledged."""

    def __init__(self, actions: dict[int, Any]) -> None:
        self.actions = actions

    def hospital_started(self, hospital_id: str, hospital_name: str) -> None:
        return None

    def batch_done(self, report: HospitalReport, phase: str) -> None:
        action = self.actions.pop(report.batches, None)
        if action is not None:
            action()

    def hospital_done(self, report: HospitalReport) -> None:
        return None


def _patients(clinic: Clinic, passport: Any, prefix: str, count: int) -> list[int]:
    persons = [clinic.patient(f"{prefix}{i:05d}") for i in range(count)]
    for i in range(count):
        register_patient(passport, f"{prefix}{i:05d}")
    return persons


def _retries(caplog: pytest.LogCaptureFixture, needle: str) -> int:
    return sum(1 for r in caplog.records if "retrying" in r.getMessage() and needle in r.getMessage())


def _assert_checkpoint_at_an_acknowledged_batch(passport: Any, ids: list[int], previous: int) -> int:
    """The checkpoint sits on a batch boundary after ``previous``, and every observation up to it
    has its record. Returns the checkpoint."""
    at = checkpoint(passport)
    new = [i for i in ids if i > previous]
    assert at in new, (at, previous)
    assert (new.index(at) + 1) % BATCH == 0, f"checkpoint {at} is not at the end of a batch"
    written = {d["openmrsData"]["obsId"] for d in passport.medicalrecords.find(synced({}), {"openmrsData.obsId": 1})}
    assert {i for i in new if i <= at} <= written, "the checkpoint passed observations MongoDB does not hold"
    return at


def _after_batches(ids: list[int], previous: int, batches: int) -> tuple[int, int, int]:
    """Where the checkpoint may stand when MySQL fails after ``batches`` acknowledged batches: on
    the last of them, or up to two further (the sync reads the page after next while it plans the
    next one and writes the current one, so those pages may have been read before the fault, then
    written and acknowledged)."""
    start = ids.index(previous) if previous else -1
    first = start + batches * BATCH
    return ids[first], ids[first + BATCH], ids[first + 2 * BATCH]


# -- MySQL: the connection killed ----------------------------------------------------------------------------
def test_mysql_connection_killed_mid_run_is_retried_and_nothing_is_lost(
    openmrs: Any, passport: Any, mongo_uri: str, mongo_db_name: str, caplog: pytest.LogCaptureFixture, figures: Any
) -> None:
    clinic = Clinic(openmrs)
    persons = _patients(clinic, passport, "41000000", 10)
    clinic.many(persons, 1500)
    expected = set(obs_ids_and_uuids(openmrs).values())
    settings = make_settings(
        mongo_uri,
        mongo_db_name,
        [hospital_entry(openmrs.name)],
        batch_size=BATCH,
        retry={"attempts": 6, "initial_wait_seconds": 0.02, "max_wait_seconds": 0.1},
    )
    rng = random.Random(41)
    own_id = openmrs.conn.thread_id()
    stop = threading.Event()
    killed: list[int] = []

    def killer() -> None:
        admin = mysql_connect()
        try:
            while not stop.is_set():
                with admin.cursor() as cursor:
                    cursor.execute(
                        "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = %s AND ID NOT IN (%s, %s)",
                        (openmrs.name, own_id, admin.thread_id()),
                    )
                    ids = [int(r[0]) for r in cursor.fetchall()]
                victim = ids[0] if ids else None
                if victim is None or victim in killed:
                    time.sleep(0.01)
                    continue
                # A fresh connection of the sync: let it work a little, then kill it (idle or mid-query).
                time.sleep(rng.uniform(0.05, 0.3))
                if stop.is_set():
                    return
                try:
                    with admin.cursor() as cursor:
                        cursor.execute(f"KILL CONNECTION {victim}")
                    killed.append(victim)
                except pymysql.err.MySQLError:
                    pass  # it closed on its own meanwhile
        finally:
            admin.close()

    thread = threading.Thread(target=killer, daemon=True)
    with caplog.at_level(logging.WARNING, logger="passport_sync"):
        thread.start()
        try:
            report = run_sync(settings)[0]
        finally:
            stop.set()
            thread.join(5)
    retries = _retries(caplog, "OpenMRS")

    result = tally(passport, expected)
    figures.record(
        "test_database_faults",
        "MySQL connection killed (KILL CONNECTION, idle or mid-query)",
        injected=len(killed),
        outcome=report.outcome,
        retries=retries,
        **result.figures(),
    )
    assert report.outcome == "ok", report.errors
    assert len(killed) >= 5, "too few kills landed during the run"
    # Each kill is noticed by the next statement on that connection and retried once; a kill after a
    # connection's last statement is not (the sync has two: pages are read ahead on a second one).
    assert len(killed) - 2 <= retries <= len(killed)
    assert result.exact, result
    assert checkpoint(passport) == max(obs_ids_and_uuids(openmrs))
    assert_medical_history_consistent(passport)


# -- MySQL: the server stops and restarts --------------------------------------------------------------------
def test_mysql_server_going_away_is_retried_or_reported_and_the_checkpoint_stays_at_the_last_batch(
    openmrs: Any, passport: Any, mongo_uri: str, mongo_db_name: str, caplog: pytest.LogCaptureFixture, figures: Any
) -> None:
    clinic = Clinic(openmrs)
    persons = _patients(clinic, passport, "42000000", 10)
    clinic.many(persons, 700)
    proxy = TcpProxy(MYSQL["host"], MYSQL["port"])
    proxy.start()
    entry = hospital_entry(openmrs.name)
    entry["db"]["port"] = proxy.port
    retry = {"attempts": 5, "initial_wait_seconds": 0.1, "max_wait_seconds": 0.4}
    settings = make_settings(mongo_uri, mongo_db_name, [entry], batch_size=BATCH, retry=retry)

    def outage(delay: float, length: float) -> None:
        # Stop after ``delay`` (0: between two statements; a few ms: while the next query runs).
        def run() -> None:
            time.sleep(delay)
            proxy.stop()
            time.sleep(length)
            proxy.start()

        threading.Thread(target=run, daemon=True).start()

    try:
        # 1. Two short outages (0.4 s): retried, the run completes.
        observer = AtBatch({5: lambda: outage(0.0, 0.4), 18: lambda: outage(0.005, 0.4)})
        with caplog.at_level(logging.WARNING, logger="passport_sync"):
            first = run_sync(settings, observer=observer)[0]
        expected = set(obs_ids_and_uuids(openmrs).values())
        short = tally(passport, expected)
        figures.record(
            "test_database_faults",
            "MySQL server stops for 0.4 s and restarts (TCP relay), within the retry policy",
            injected=2,
            outcome=first.outcome,
            retries=_retries(caplog, "OpenMRS"),
            **short.figures(),
        )
        assert first.outcome == "ok", first.errors
        assert _retries(caplog, "OpenMRS") >= 2
        assert short.exact, short

        # 2. An outage longer than the retry policy: the run fails, says why, and keeps its checkpoint.
        previous = checkpoint(passport)
        clinic.many(persons, 500)
        ids = sorted(obs_ids_and_uuids(openmrs))
        caplog.clear()
        long_settings = make_settings(
            mongo_uri,
            mongo_db_name,
            [entry],
            batch_size=BATCH,
            retry={"attempts": 2, "initial_wait_seconds": 0.05, "max_wait_seconds": 0.05},
        )
        observer = AtBatch({12: proxy.stop})
        failed = run_sync(long_settings, observer=observer)[0]
        assert failed.outcome == "failed"
        assert len(failed.errors) == 1
        assert failed.hospital_name == "Central Hospital"
        assert f":{proxy.port}/{openmrs.name}: MySQL error 20" in failed.errors[0]  # 2003 / 2006 / 2013
        at = _assert_checkpoint_at_an_acknowledged_batch(passport, ids, previous)
        assert at in _after_batches(ids, previous, 12)
        summary = passport.auditlogs.find_one({"changes.outcome": "failed"})
        assert summary["changes"]["errorCount"] == 1

        proxy.start()
        rerun = run_sync(settings)[0]
        assert rerun.outcome == "ok", rerun.errors
        expected = set(obs_ids_and_uuids(openmrs).values())
        result = tally(passport, expected)
        figures.record(
            "test_database_faults",
            "MySQL server down longer than the retry policy: run fails, checkpoint kept, rerun",
            injected=1,
            outcome=f"failed then {rerun.outcome}",
            checkpoint_after_failure=at,
            **result.figures(),
        )
        assert result.exact, result
        assert rerun.already_present == 0  # the failed run wrote nothing past its checkpoint
        assert_medical_history_consistent(passport)
    finally:
        proxy.stop()


def test_an_unresolvable_host_is_reported_at_once_not_retried(
    openmrs: Any, mongo_uri: str, mongo_db_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    entry = hospital_entry(openmrs.name)
    entry["db"]["host"] = "no-such-host.invalid"
    settings = make_settings(mongo_uri, mongo_db_name, [entry])
    with caplog.at_level(logging.WARNING, logger="passport_sync"):
        report = run_sync(settings)[0]
    assert report.outcome == "failed"
    assert "Name or service not known" in report.errors[0]
    assert _retries(caplog, "OpenMRS") == 0
    assert "check db.host: the name does not resolve" in report.errors[0]


# -- MySQL: lock wait timeout --------------------------------------------------------------------------------
def _short_lock_wait_source(hospital: Any, settings: Any) -> OpenMRSSource:
    """The sync's own OpenMRS source, whose connections wait at most 1 s for a table lock (the
    server default is a day), so a table lock held elsewhere produces a real error 1205."""

    def connect(**kwargs: Any) -> Any:
        conn = pymysql.connect(**kwargs)
        with conn.cursor() as cursor:
            cursor.execute("SET SESSION lock_wait_timeout = 1")
        return conn

    return OpenMRSSource(hospital, settings.sync.retry, connect=connect)


def test_lock_wait_timeout_is_retried_or_reported_and_the_checkpoint_stays_at_the_last_batch(
    openmrs: Any, passport: Any, mongo_uri: str, mongo_db_name: str, caplog: pytest.LogCaptureFixture, figures: Any
) -> None:
    clinic = Clinic(openmrs)
    persons = _patients(clinic, passport, "43000000", 10)
    clinic.many(persons, 300)
    locker = mysql_connect(openmrs.name)

    def lock() -> None:
        with locker.cursor() as cursor:
            cursor.execute("LOCK TABLES obs WRITE")  # another session: the sync's SELECT on obs waits

    def unlock() -> None:
        with locker.cursor() as cursor:
            cursor.execute("UNLOCK TABLES")

    try:
        # 1. The lock is held 2.3 s: 1205 errors (1 s each), retried, then the run goes on.
        settings = make_settings(
            mongo_uri,
            mongo_db_name,
            [hospital_entry(openmrs.name)],
            batch_size=BATCH,
            retry={"attempts": 5, "initial_wait_seconds": 0.1, "max_wait_seconds": 0.4},
        )

        def hold_briefly() -> None:
            lock()
            threading.Timer(2.3, unlock).start()

        with caplog.at_level(logging.WARNING, logger="passport_sync"):
            first = run_sync(settings, observer=AtBatch({6: hold_briefly}), source_factory=_short_lock_wait_source)[0]
        lock_waits = _retries(caplog, "MySQL error 1205")
        short = tally(passport, set(obs_ids_and_uuids(openmrs).values()))
        figures.record(
            "test_database_faults",
            "lock wait timeout (error 1205: LOCK TABLES obs WRITE held 2.3 s elsewhere), retried",
            injected=lock_waits,
            outcome=first.outcome,
            **short.figures(),
        )
        assert first.outcome == "ok", first.errors
        assert lock_waits >= 1  # two when the next read starts at once (1 s + 0.1 s + 1 s < 2.3 s)
        assert short.exact, short

        # 2. The lock outlives the retry policy: reported, checkpoint kept; the rerun completes.
        previous = checkpoint(passport)
        clinic.many(persons, 300)
        ids = sorted(obs_ids_and_uuids(openmrs))
        strict = make_settings(mongo_uri, mongo_db_name, [hospital_entry(openmrs.name)], batch_size=BATCH)
        failed = run_sync(strict, observer=AtBatch({4: lock}), source_factory=_short_lock_wait_source)[0]
        unlock()
        assert failed.outcome == "failed"
        assert "MySQL error 1205: Lock wait timeout exceeded" in failed.errors[0]
        assert "hint: a lock wait timed out on the OpenMRS server" in failed.errors[0]
        at = _assert_checkpoint_at_an_acknowledged_batch(passport, ids, previous)
        assert at in _after_batches(ids, previous, 4)

        rerun = run_sync(strict, source_factory=_short_lock_wait_source)[0]
        assert rerun.outcome == "ok", rerun.errors
        result = tally(passport, set(obs_ids_and_uuids(openmrs).values()))
        figures.record(
            "test_database_faults",
            "lock wait timeout outlasting the retry policy: run fails, checkpoint kept, rerun",
            injected=2,  # one 1205 per attempt, two attempts
            outcome=f"failed then {rerun.outcome}",
            checkpoint_after_failure=at,
            **result.figures(),
        )
        assert result.exact, result
        assert rerun.already_present == 0
    finally:
        locker.close()


# -- MongoDB unreachable mid-batch ---------------------------------------------------------------------------
class PrivateMongo:
    """A SecantusDB server of this test alone, on a fixed port, that can be stopped and restarted."""

    def __init__(self, storage: Path) -> None:
        self.storage = str(storage)
        self.port = free_port()
        self.server: SecantusDBServer | None = None
        self.stops = 0

    def start(self) -> None:
        self.server = SecantusDBServer(storage_path=self.storage, port=self.port)
        self.server.start()

    def stop(self) -> None:
        if self.server is not None:
            # Wake the server's blocking accept() first, or stop() waits 2 s for its thread.
            listener = getattr(self.server, "_socket", None)
            if listener is not None:
                with contextlib.suppress(OSError):
                    listener.shutdown(socket.SHUT_RDWR)
            self.server.stop()
            self.server = None
            self.stops += 1

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}"


def _poll_checkpoint(db: Any) -> int:
    try:
        return checkpoint(db)
    except pymongo.errors.PyMongoError:
        return -1


def test_mongodb_unreachable_mid_batch_is_retried_or_reported_and_the_checkpoint_stays_at_the_last_batch(
    openmrs: Any, tmp_path: Path, figures: Any, processes: list[subprocess.Popen[bytes]]
) -> None:
    mongo = PrivateMongo(tmp_path / "mongo")
    mongo.start()
    client: pymongo.MongoClient[Any] = pymongo.MongoClient(mongo.uri, serverSelectionTimeoutMS=200)
    passport = client["patientpassport"]
    clinic = Clinic(openmrs)
    persons = _patients(clinic, passport, "44000000", 10)
    clinic.many(persons, 700)
    env = cli_env()
    hospitals = [hospital_entry(openmrs.name)]
    uri = f"{mongo.uri}/patientpassport"
    patient = config_file(
        tmp_path / "patient.yaml",
        uri,
        hospitals,
        selection_timeout_ms=300,
        retry={"attempts": 8, "initial_wait_seconds": 0.1, "max_wait_seconds": 0.5},
        batch_size=BATCH,
    )
    strict = config_file(tmp_path / "strict.yaml", uri, hospitals, selection_timeout_ms=150, batch_size=BATCH)

    try:
        # 1. Two outages of 0.5 s while batches are written: retried, the run completes.
        proc = subprocess.Popen(
            cli("sync-all", "--config", str(patient), "--json"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=tmp_path,
        )
        processes.append(proc)
        for target in (200, 450):
            assert wait_until(lambda t=target: _poll_checkpoint(passport) >= t, 30), "the sync did not get there"
            mongo.stop()
            time.sleep(0.5)
            mongo.start()
        stdout, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 0, stderr.decode()[-3000:]
        report = json.loads(stdout)["hospitals"][0]
        retries = len(re.findall(r"MongoDB: MongoDB unreachable at \S+ during", stderr.decode()))
        short = tally(passport, set(obs_ids_and_uuids(openmrs).values()))
        figures.record(
            "test_database_faults",
            "MongoDB stopped for 0.5 s mid-batch and restarted, within the retry policy",
            injected=2,
            outcome=report["outcome"],
            retries=retries,
            **short.figures(),
        )
        assert retries >= 2
        assert short.exact, short

        # 2. MongoDB stays down past the retry policy: exit 1 with the reason, checkpoint kept.
        previous = checkpoint(passport)
        clinic.many(persons, 400)
        ids = sorted(obs_ids_and_uuids(openmrs))
        proc = subprocess.Popen(
            cli("sync-all", "--config", str(strict)),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=tmp_path,
        )
        processes.append(proc)
        assert wait_until(lambda: _poll_checkpoint(passport) >= previous + 150, 30)
        mongo.stop()
        stdout, stderr = proc.communicate(timeout=60)
        assert proc.returncode == 1, stderr.decode()[-3000:]
        assert (
            f"Central Hospital: error: MongoDB unreachable at {mongo.uri.split('//', 1)[1]} during" in stdout.decode()
        )
        mongo.start()
        at = _assert_checkpoint_at_an_acknowledged_batch(passport, ids, previous)
        assert at >= previous + 150

        done = subprocess.run(
            cli("sync-all", "--config", str(strict), "--json"), capture_output=True, env=env, cwd=tmp_path, timeout=120
        )
        assert done.returncode == 0, done.stderr.decode()[-3000:]
        result = tally(passport, set(obs_ids_and_uuids(openmrs).values()))
        figures.record(
            "test_database_faults",
            "MongoDB down longer than the retry policy: exit 1, checkpoint kept, rerun",
            injected=1,
            outcome="failed then " + json.loads(done.stdout)["hospitals"][0]["outcome"],
            checkpoint_after_failure=at,
            **result.figures(),
        )
        assert result.exact, result
        assert_medical_history_consistent(passport)
        assert passport.openmrs_sync_locks.count_documents({}) == 0
    finally:
        client.close()
        mongo.stop()
