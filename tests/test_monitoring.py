"""Monitoring without writing code: `check` (monitoring-plugin exit codes) and `sync-all
--metrics-file` (Prometheus textfile), both after real syncs against MariaDB and the MongoDB
wire server."""

from __future__ import annotations

import json
import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from passport_sync import service
from passport_sync.cli import app
from passport_sync.models import HospitalReport
from passport_sync.sink.passport import PassportStore
from tests.conftest import hospital_entry, make_settings, register_patient
from tests.helpers import Clinic, write_config

CENTRAL = "60a7c2f5e4b0c1a2d3e4f5a6"
BROKEN = "broken"
NID = "1199780012345678"
runner = CliRunner()


def invoke(*args: str) -> Any:
    return runner.invoke(app, list(args), env={})


@pytest.fixture
def clinic(openmrs: Any, passport: Any) -> Clinic:
    clinic = Clinic(openmrs)
    person = clinic.patient(NID, given="Marie", family="Uwimana")
    register_patient(passport, NID)
    clinic.visit(person, weights=2)
    return clinic


@pytest.fixture
def config(tmp_path: Path, clinic: Clinic, mongo_uri: str, mongo_db_name: str) -> Path:
    return write_config(tmp_path / "hospitals.yaml", mongo_uri, mongo_db_name, [hospital_entry(clinic.db.name)])


@pytest.fixture
def two_hospitals(tmp_path: Path, clinic: Clinic, mongo_uri: str, mongo_db_name: str) -> Path:
    """Central works; Broken Hospital names a database that does not exist, so its runs fail."""
    broken = hospital_entry("pstest_no_such_database", hospital_id=BROKEN, name="Broken Hospital")
    return write_config(tmp_path / "two.yaml", mongo_uri, mongo_db_name, [hospital_entry(clinic.db.name), broken])


def metrics(path: Path) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a textfile, by name and sorted labels."""
    samples = {}
    for family in text_string_to_metric_families(path.read_text()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


# -- check ---------------------------------------------------------------------------------------------
def test_check_is_ok_after_a_successful_sync(config: Path) -> None:
    assert invoke("sync-all", "--config", str(config)).exit_code == 0
    result = invoke("check", "--config", str(config))
    assert result.exit_code == 0, result.stdout
    first, *details = result.stdout.splitlines()
    assert first.startswith("PASSPORT-SYNC OK - 1 hospital(s) synced within 30 min |")
    assert f"'{CENTRAL} behind'=0;1000;;0;" in first
    (detail,) = details
    assert detail.startswith(f"OK: Central Hospital ({CENTRAL}): last successful run ")
    assert detail.endswith(" ago, 0 rows behind")


def test_check_is_critical_when_a_hospital_failed_or_never_synced(two_hospitals: Path) -> None:
    before = invoke("check", "--config", str(two_hospitals))
    assert before.exit_code == 2
    assert "no successful run recorded" in before.stdout

    assert invoke("sync-all", "--config", str(two_hospitals)).exit_code == 1
    result = invoke("check", "--config", str(two_hospitals))
    assert result.exit_code == 2, result.stdout
    first, *details = result.stdout.splitlines()
    assert first.startswith("PASSPORT-SYNC CRITICAL - 1 of 2 critical (Broken Hospital)")
    assert details[0].startswith(f"CRITICAL: Broken Hospital ({BROKEN}): last run failed at ")
    assert "pstest_no_such_database" in details[0]
    assert details[1].startswith("OK: Central Hospital")
    # Only the named hospital: Central alone is OK.
    assert invoke("check", "--config", str(two_hospitals), "--hospital", "central hospital").exit_code == 0


def test_check_is_critical_when_the_last_success_is_older_than_max_age(config: Path, passport: Any) -> None:
    assert invoke("sync-all", "--config", str(config)).exit_code == 0
    an_hour_ago = datetime.now(UTC) - timedelta(minutes=61)
    passport.auditlogs.update_many({"action": "openmrs_auto_sync"}, {"$set": {"createdAt": an_hour_ago}})
    assert invoke("check", "--config", str(config), "--max-age", "90").exit_code == 0
    result = invoke("check", "--config", str(config), "--max-age", "60")
    assert result.exit_code == 2
    assert "last successful run 61 min ago" in result.stdout and "(limit 60 min)" in result.stdout


def test_check_warns_when_rows_wait_beyond_max_behind(config: Path, clinic: Clinic) -> None:
    assert invoke("sync-all", "--config", str(config)).exit_code == 0
    person = clinic.patient("1199780012340000")
    clinic.visit(person, weights=4)  # five new observations in OpenMRS
    # Counted in OpenMRS now with --openmrs (without it, the count the last run stored: 0).
    assert invoke("check", "--config", str(config), "--max-behind", "4").exit_code == 0
    assert invoke("check", "--config", str(config), "--max-behind", "5", "--openmrs").exit_code == 0
    result = invoke("check", "--config", str(config), "--max-behind", "4", "--openmrs")
    assert result.exit_code == 1
    assert result.stdout.startswith("PASSPORT-SYNC WARNING - 1 of 1 warning (Central Hospital)")
    assert "5 rows behind in OpenMRS (limit 4)" in result.stdout


def test_check_warns_about_rows_parked_for_data_problems_without_naming_the_patient(
    config: Path, clinic: Clinic
) -> None:
    bad = clinic.patient("11997800AB345678", given="Jeanne", family="Mukamana")  # letters: invalid
    clinic.visit(bad)
    unregistered = clinic.patient("1199780099999999")
    clinic.visit(unregistered)  # waits for registration: not a data problem
    assert invoke("sync-all", "--config", str(config)).exit_code == 0
    result = invoke("check", "--config", str(config))
    assert result.exit_code == 1, result.stdout
    assert "rows parked for data problems to fix in OpenMRS: invalid_national_id 2" in result.stdout
    assert "patient_not_in_passport" not in result.stdout
    for identity in ("11997800AB345678", "1199780099999999", NID, "Jeanne", "Mukamana", "Marie", "Uwimana"):
        assert identity not in result.stdout + result.stderr
    document = json.loads(invoke("check", "--config", str(config), "--json").stdout)
    assert document["state"] == "WARNING" and document["exit_code"] == 1


def test_check_is_unknown_when_it_cannot_tell(tmp_path: Path, openmrs: Any, mongo_uri: str) -> None:
    unreachable = write_config(tmp_path / "down.yaml", "mongodb://127.0.0.1:1", "pp", [hospital_entry(openmrs.name)])
    text = unreachable.read_text().replace("server_selection_timeout_ms: 3000", "server_selection_timeout_ms: 300")
    unreachable.write_text(text)
    result = invoke("check", "--config", str(unreachable))
    assert result.exit_code == 3
    assert result.stdout.startswith("PASSPORT-SYNC UNKNOWN - ")

    nothing = write_config(tmp_path / "none.yaml", mongo_uri, "pp", [])
    result = invoke("check", "--config", str(nothing))
    assert result.exit_code == 3
    assert result.stdout.startswith("PASSPORT-SYNC UNKNOWN - no enabled hospital is configured")

    broken = tmp_path / "broken.yaml"
    broken.write_text("hospitals: [{id: x}]\n")
    result = invoke("check", "--config", str(broken))
    assert result.exit_code == 3  # never 2: a plugin's 2 means CRITICAL
    assert result.stdout.startswith("PASSPORT-SYNC UNKNOWN - invalid configuration: ")


# -- metrics file ----------------------------------------------------------------------------------------
def test_metrics_file_holds_each_hospitals_run(two_hospitals: Path, tmp_path: Path) -> None:
    path = tmp_path / "textfile" / "passport-sync.prom"
    path.parent.mkdir()
    started = datetime.now(UTC).timestamp()
    result = invoke("sync-all", "--config", str(two_hospitals), "--metrics-file", str(path), "--json")
    assert result.exit_code == 1
    reports = {h["hospital_id"]: h for h in json.loads(result.stdout)["hospitals"]}
    samples = metrics(path)

    def value(metric: str, **labels: str) -> float:
        return samples[(metric, tuple(sorted(labels.items())))]

    central = reports[CENTRAL]
    assert central["written"] == 3
    for kind in ("read", "written", "removed", "parked", "already_present"):
        assert value("passport_sync_last_run_rows", hospital=CENTRAL, kind=kind) == central[kind]
    # Never counted, still published: the JSON key and the series that scripts and dashboards read.
    assert central["rejected"] == 0 == value("passport_sync_last_run_rows", hospital=CENTRAL, kind="rejected")
    assert value("passport_sync_last_run_outcome", hospital=CENTRAL, outcome="ok") == 1
    assert value("passport_sync_last_run_outcome", hospital=BROKEN, outcome="failed") == 1
    assert value("passport_sync_last_run_outcome", hospital=BROKEN, outcome="ok") == 0
    assert value("passport_sync_last_run_errors", hospital=BROKEN) == 1
    assert value("passport_sync_behind_rows", hospital=CENTRAL) == 0
    assert ("passport_sync_behind_rows", (("hospital", BROKEN),)) not in samples
    assert value("passport_sync_last_success_timestamp_seconds", hospital=CENTRAL) >= started - 1
    assert ("passport_sync_last_success_timestamp_seconds", (("hospital", BROKEN),)) not in samples
    assert value("passport_sync_last_run_duration_seconds", hospital=CENTRAL) == pytest.approx(
        central["duration_seconds"], abs=0.01
    )
    assert value("passport_sync_hospital_info", hospital=BROKEN, name="Broken Hospital") == 1
    assert value("passport_sync_cycle_hospitals") == 2
    assert list(path.parent.iterdir()) == [path]  # no temporary file left behind


def test_a_failed_hospital_keeps_its_last_success_timestamp_and_the_file_is_replaced_atomically(
    config: Path, clinic: Clinic, tmp_path: Path, mongo_uri: str, mongo_db_name: str
) -> None:
    path = tmp_path / "passport-sync.prom"
    service_umask = os.umask(0o077)  # as the systemd unit's UMask=0077
    try:
        assert invoke("sync-all", "--config", str(config), "--metrics-file", str(path)).exit_code == 0
    finally:
        os.umask(service_umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # node_exporter runs as another user
    first_success = metrics(path)[("passport_sync_last_success_timestamp_seconds", (("hospital", CENTRAL),))]
    old_text = path.read_text()
    reader = path.open()  # a collector reading the old file while the next run writes

    # Same hospital, now unreachable: its OpenMRS database name is wrong.
    broken = write_config(
        tmp_path / "broken.yaml", mongo_uri, mongo_db_name, [hospital_entry("pstest_no_such_database")]
    )
    assert invoke("sync-all", "--config", str(broken), "--metrics-file", str(path)).exit_code == 1
    samples = metrics(path)
    assert samples[("passport_sync_last_run_outcome", (("hospital", CENTRAL), ("outcome", "failed")))] == 1
    assert samples[("passport_sync_last_success_timestamp_seconds", (("hospital", CENTRAL),))] == pytest.approx(
        first_success, abs=0.01
    )
    # Replaced by a rename, not rewritten in place: the open handle still reads the whole old file.
    assert reader.read() == old_text
    reader.close()


def test_metrics_count_rows_that_arrived_during_the_run(clinic: Clinic, mongo_uri: str, mongo_db_name: str) -> None:
    settings = make_settings(mongo_uri, mongo_db_name, [hospital_entry(clinic.db.name)])
    person = clinic.patient("1199780012340000")

    class LateArrivals:
        """Three observations recorded as the hospital's run ends."""

        def hospital_started(self, hospital_id: str, hospital_name: str) -> None: ...

        def batch_done(self, report: HospitalReport, phase: str) -> None: ...

        def hospital_done(self, report: HospitalReport) -> None:
            clinic.visit(person, weights=2)

    store = PassportStore.connect(settings)
    try:
        (report,) = service.sync_all(settings, store, settings.hospitals, observer=LateArrivals(), count_behind=True)
    finally:
        store.close()
    assert report.outcome == "ok" and report.written == 3
    assert report.behind == 3
    assert "behind" not in report.as_dict()  # the JSON keys stay as they were


def test_metrics_file_refuses_a_path_the_collector_would_ignore(config: Path, tmp_path: Path, passport: Any) -> None:
    result = invoke("sync-all", "--config", str(config), "--metrics-file", str(tmp_path / "metrics.txt"))
    assert result.exit_code == 2
    assert "must end in .prom" in result.stderr
    result = invoke("sync-all", "--config", str(config), "--metrics-file", str(tmp_path / "nowhere" / "m.prom"))
    assert result.exit_code == 2
    assert passport.medicalrecords.count_documents({}) == 0


def test_check_and_the_new_sync_all_options_have_help() -> None:
    check = " ".join(invoke("check", "--help").stdout.split())
    assert "Example: passport-sync check" in check
    for option in ("--max-age", "--max-behind", "--hospital", "--config", "--json"):
        assert option in check
    sync_all = invoke("sync-all", "--help").stdout
    assert "--workers" in sync_all and "--metrics-file" in sync_all
