"""The commands as admins, support staff and cron use them: output, JSON shape, exit codes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from passport_sync.cli import app
from tests.conftest import hospital_entry, register_patient
from tests.helpers import Clinic, obs_uuids, synced, write_config

HOSPITAL = "60a7c2f5e4b0c1a2d3e4f5a6"
NID = "1199780012345678"
runner = CliRunner()


def invoke(*args: str, env: dict[str, str] | None = None) -> Any:
    return runner.invoke(app, list(args), env=env or {})


def test_every_command_has_help_with_an_example() -> None:
    for command in ("sync-all", "sync-patient", "status", "test-connection", "reset-checkpoint"):
        result = invoke(command, "--help")
        assert result.exit_code == 0, command
        assert "Example: passport-sync " + command in " ".join(result.stdout.split()), command
        for option in ("--config", "--verbose", "--quiet"):
            assert option in result.stdout, (command, option)
    assert "Exit codes" in invoke("--help").stdout


def test_sync_all_json_is_one_document_on_stdout_with_logs_on_stderr(
    synced_patient: int, config: Path, passport: Any
) -> None:
    result = invoke("sync-all", "--config", str(config), "--json")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["command"] == "sync-all"
    assert document["exit_code"] == 0
    assert document["dry_run"] is False
    (hospital,) = document["hospitals"]
    assert set(hospital) >= {
        "hospital_id", "hospital_name", "outcome", "read", "written", "already_present",
        "removed", "parked", "error_count", "errors", "duration_seconds",
    }  # fmt: skip
    assert (hospital["outcome"], hospital["read"], hospital["written"]) == ("ok", 3, 3)
    assert "Central Hospital: sync started" in result.stderr
    assert NID not in result.stderr + result.stdout


def test_sync_all_prints_plain_lines_when_stdout_is_not_a_terminal(synced_patient: int, config: Path) -> None:
    result = invoke("sync-all", "--config", str(config))
    assert result.exit_code == 0
    assert "\x1b[" not in result.stdout
    lines = result.stdout.splitlines()
    assert lines[0] == "passport-sync: sync summary"
    assert lines[1].split()[:4] == ["Hospital", "Outcome", "Read", "Written"]
    assert lines[2].split()[-9:-1] == ["ok", "3", "3", "0", "0", "0", "0", "0"]


def test_quiet_logs_only_warnings(synced_patient: int, config: Path) -> None:
    result = invoke("sync-all", "--config", str(config), "--quiet")
    assert result.exit_code == 0
    assert result.stderr == ""


def test_dry_run_writes_nothing_and_says_what_it_would_write(synced_patient: int, config: Path, passport: Any) -> None:
    result = invoke("sync-all", "--config", str(config), "--dry-run", "--json")
    assert result.exit_code == 0, result.stderr
    (hospital,) = json.loads(result.stdout)["hospitals"]
    assert hospital["written"] == 3 and hospital["dry_run"] is True
    for collection in ("medicalrecords", "syncstatus", "auditlogs", "doctors", "hospitals", "openmrs_sync_locks"):
        assert passport[collection].count_documents({}) == 0, collection
    assert passport.users.count_documents({"role": {"$ne": "patient"}}) == 0


def test_sync_patient_syncs_one_patient_without_moving_the_checkpoint(
    clinic: Clinic, synced_patient: int, config: Path, passport: Any
) -> None:
    other = clinic.patient("1199780012340000")
    register_patient(passport, "1199780012340000")
    clinic.visit(other)
    result = invoke("sync-patient", "1199-7800-1234-5678", "--config", str(config), "--json")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["openmrs_patients_matched"] == 1 and document["registered_in_passport"] is True
    assert document["hospitals"][0]["written"] == 3
    assert passport.medicalrecords.count_documents(synced({})) == 3  # only that patient's
    # The checkpoint did not move (sync-patient only marks the keys it wrote for reconciliation).
    assert passport.syncstatus.count_documents({"lastObsId": {"$exists": True}}) == 0
    again = invoke("sync-patient", NID, "--config", str(config), "--json")
    assert json.loads(again.stdout)["hospitals"][0]["written"] == 0
    assert len(obs_uuids(passport)) == 3


def test_sync_patient_exit_codes_for_nobody_and_for_unregistered(clinic: Clinic, config: Path, passport: Any) -> None:
    clinic.patient("1000000000000003")
    nobody = invoke("sync-patient", "1000000000000001", "--config", str(config))
    assert nobody.exit_code == 4
    assert "matches no patient in OpenMRS nor in Patient Passport" in nobody.stderr
    assert "Traceback" not in nobody.stderr + nobody.stdout

    person = clinic.patient("1000000000000002")
    clinic.visit(person)
    unregistered = invoke("sync-patient", "1000000000000002", "--config", str(config))
    assert unregistered.exit_code == 5
    assert "parked" in unregistered.stdout
    assert passport.openmrs_sync_parked.count_documents({}) == 2

    invalid = invoke("sync-patient", "12ab", "--config", str(config))
    assert invalid.exit_code == 2
    assert "10 to 16 digits" in invalid.stderr


def test_status_json_shows_checkpoint_parked_backlog_and_lock(
    clinic: Clinic, synced_patient: int, config: Path, passport: Any
) -> None:
    stranger = clinic.patient("1000000000000009")
    clinic.visit(stranger)
    assert invoke("sync-all", "--config", str(config)).exit_code == 0
    clinic.visit(synced_patient)  # two new observations not yet synced
    passport.openmrs_sync_locks.insert_one(
        {"_id": HOSPITAL, "owner": "otherhost:1:42:abcd", "expiresAt": datetime.now(UTC) + timedelta(minutes=5)}
    )
    result = invoke("status", "--config", str(config), "--json")
    assert result.exit_code == 0, result.stderr
    (status,) = json.loads(result.stdout)["hospitals"]
    assert status["checkpoint"]["last_obs_id"] == 5
    assert status["records"] == 3
    assert status["parked"] == 2
    assert status["parked_by_reason"] == {"patient_not_in_passport": 2}
    assert status["behind"] == 2
    assert status["last_run"]["outcome"] == "ok" and status["last_run"]["error_count"] == 0
    assert status["locked_by"] == "otherhost:1:42:abcd"

    plain = invoke("status", "--config", str(config))
    assert "otherhost:1:42:abcd" in plain.stdout
    assert "Central Hospital: parked: patient_not_in_passport 2" in plain.stdout


def test_a_held_lock_exits_3(synced_patient: int, config: Path, passport: Any) -> None:
    passport.openmrs_sync_locks.insert_one(
        {"_id": HOSPITAL, "owner": "otherhost:1:42:abcd", "expiresAt": datetime.now(UTC) + timedelta(minutes=5)}
    )
    result = invoke("sync-all", "--config", str(config))
    assert result.exit_code == 3
    assert "being synced by otherhost:1:42:abcd" in result.stderr + result.stdout
    assert passport.medicalrecords.count_documents(synced({})) == 0


def test_an_expired_lock_is_taken_over(synced_patient: int, config: Path, passport: Any) -> None:
    passport.openmrs_sync_locks.insert_one(
        {"_id": HOSPITAL, "owner": "deadhost:1:42:abcd", "expiresAt": datetime.now(UTC) - timedelta(seconds=1)}
    )
    assert invoke("sync-all", "--config", str(config)).exit_code == 0
    assert passport.medicalrecords.count_documents(synced({})) == 3
    assert passport.openmrs_sync_locks.count_documents({}) == 0  # released at the end


def test_test_connection_passes_and_warns_about_a_user_that_can_write(synced_patient: int, config: Path) -> None:
    result = invoke("test-connection", "--config", str(config), "--json")
    assert result.exit_code == 0, result.stdout
    document = json.loads(result.stdout)
    hospital, mongo = document["results"]
    checks = {c["check"]: c for c in hospital["checks"]}
    assert checks["connect"]["ok"] and checks["national ID identifier type"]["ok"]
    assert checks["read-only user"]["level"] == "warning"  # the test user is root
    assert mongo["target"] == "mongodb" and mongo["ok"]
    plain = invoke("test-connection", "--config", str(config))
    assert "WARNING" in plain.stdout and "hint:" in plain.stdout


def _config_with(tmp_path: Path, mongo_uri: str, mongo_db: str, entry: dict[str, Any], **sync: Any) -> Path:
    return write_config(tmp_path / "bad.yaml", mongo_uri, mongo_db, [entry], **sync)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"password": "not-the-password-42", "user": "nobody"}, "Access denied for user 'nobody'"),
        ({"host": "no-such-host.invalid"}, "check db.host"),
    ],
)
def test_test_connection_explains_connection_failures(
    openmrs: Any, tmp_path: Path, mongo_uri: str, mongo_db_name: str, change: dict[str, str], expected: str
) -> None:
    entry = hospital_entry(openmrs.name)
    entry["db"].update(change)
    config = _config_with(tmp_path, mongo_uri, mongo_db_name, entry)
    result = invoke("test-connection", "--config", str(config))
    assert result.exit_code == 1
    assert expected in result.stdout
    assert "hint:" in result.stdout
    assert "not-the-password-42" not in result.stdout + result.stderr


def test_test_connection_reports_a_missing_identifier_type(
    openmrs: Any, tmp_path: Path, mongo_uri: str, mongo_db_name: str
) -> None:
    entry = hospital_entry(openmrs.name, national_id_type={"name": "Passeport%"})
    config = _config_with(tmp_path, mongo_uri, mongo_db_name, entry)
    result = invoke("test-connection", "--config", str(config), "--json")
    assert result.exit_code == 1
    checks = json.loads(result.stdout)["results"][0]["checks"]
    failed = {c["check"]: c["detail"] for c in checks if not c["ok"]}
    assert "no patient_identifier_type with a name like 'Passeport%'" in failed["national ID identifier type"]


def test_mongodb_down_is_exit_1_with_a_hint(openmrs: Any, tmp_path: Path) -> None:
    config = write_config(tmp_path / "h.yaml", "mongodb://127.0.0.1:1", "pp", [hospital_entry(openmrs.name)])
    text = config.read_text().replace("server_selection_timeout_ms: 3000", "server_selection_timeout_ms: 200")
    config.write_text(text)
    result = invoke("sync-all", "--config", str(config))
    assert result.exit_code == 1
    assert "MongoDB unreachable" in result.stderr and "hint: check MONGODB_URI" in result.stderr
    connection = invoke("test-connection", "--config", str(config))
    assert connection.exit_code == 1


def test_reset_checkpoint_needs_confirmation_then_resets(synced_patient: int, config: Path, passport: Any) -> None:
    assert invoke("sync-all", "--config", str(config)).exit_code == 0
    refused = invoke("reset-checkpoint", HOSPITAL, "--config", str(config))
    assert refused.exit_code == 2 and "--yes" in refused.stderr
    assert passport.syncstatus.count_documents({}) == 1

    to = invoke("reset-checkpoint", "Central Hospital", "--to", "2025-11-06T10:30", "--yes", "--config", str(config))
    assert to.exit_code == 0, to.stderr
    assert "re-reads rows created since 2025-11-06 10:30" in to.stdout
    assert passport.syncstatus.find_one()["lastObsId"] == 0

    full = invoke("reset-checkpoint", HOSPITAL, "--yes", "--config", str(config), "--json")
    assert json.loads(full.stdout)["rereads"] == "everything"
    assert passport.syncstatus.count_documents({}) == 0
    again = invoke("sync-all", "--config", str(config), "--json")
    assert json.loads(again.stdout)["hospitals"][0]["already_present"] == 3
    assert len(obs_uuids(passport)) == 3

    bad = invoke("reset-checkpoint", HOSPITAL, "--to", "yesterday", "--yes", "--config", str(config))
    assert bad.exit_code == 2 and "not a date" in bad.stderr
    unknown = invoke("reset-checkpoint", "nowhere", "--yes", "--config", str(config))
    assert unknown.exit_code == 2 and "unknown hospital 'nowhere'" in unknown.stderr


def test_invalid_configuration_exits_2_naming_each_problem(tmp_path: Path) -> None:
    config = tmp_path / "h.yaml"
    config.write_text(
        "hospitals:\n  - id: a\n    name: A\n    db: {host: x, user: u, port: 99999}\n"
        "  - id: a\n    name: Again\n    db: {host: y, user: u}\n    colour: blue\n"
    )
    result = invoke("sync-all", "--config", str(config))
    assert result.exit_code == 2
    assert "hospitals[0].db.port" in result.stderr
    assert "hospitals[1].colour: unknown key" in result.stderr


def test_tls_requested_from_a_server_without_tls_is_a_clear_failure(
    openmrs: Any, tmp_path: Path, mongo_uri: str, mongo_db_name: str
) -> None:
    entry = hospital_entry(openmrs.name)
    entry["db"]["ssl"] = {"verify_identity": False}
    config = _config_with(tmp_path, mongo_uri, mongo_db_name, entry)
    result = invoke("test-connection", "--config", str(config))
    assert result.exit_code == 1
    assert "TLS handshake failed: SSL is required but the server doesn't support it" in result.stdout
    assert "hint: Central Hospital: check the ssl options" in result.stdout


def test_info_logs_hold_no_patient_identity_or_values(clinic: Clinic, config: Path, passport: Any) -> None:
    person = clinic.patient(NID, given="Immaculée", family="Uwase")
    register_patient(passport, NID, name="Immaculée Uwase")
    clinic.b.obs(person, clinic.note, value_text="confidential: HIV positive")
    stranger = clinic.patient("1000000000000077", given="Jean", family="Bosco")
    clinic.visit(stranger)
    result = invoke("sync-all", "--config", str(config))
    assert result.exit_code == 0
    logs = result.stderr
    assert "Central Hospital" in logs and "written 1" in logs
    for secret in (NID, "1000000000000077", "Immaculée", "Uwase", "Jean", "Bosco", "HIV", "Diabetes"):
        assert secret not in logs + result.stdout, secret


def test_sync_patient_waits_for_a_running_sync_instead_of_failing(
    synced_patient: int, config: Path, passport: Any
) -> None:
    passport.openmrs_sync_locks.insert_one(
        {"_id": HOSPITAL, "owner": "otherhost:1:42:abcd", "expiresAt": datetime.now(UTC) + timedelta(seconds=2)}
    )
    result = invoke("sync-patient", NID, "--config", str(config), "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["hospitals"][0]["written"] == 3
