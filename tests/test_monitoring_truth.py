"""Monitoring tells the truth: a wrong MongoDB database is an error, the backlog counts rows (not
ids), `check` runs without OpenMRS credentials and answers usage errors with UNKNOWN, disabled
hospitals are not probed, and a benign lock is silent under --quiet. Real MariaDB and the MongoDB
wire server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pymongo
import pytest
from typer.testing import CliRunner

from passport_sync import service
from passport_sync.cli import app
from passport_sync.models import HospitalReport
from passport_sync.sink.passport import PassportStore
from tests.conftest import hospital_entry, make_settings, register_patient
from tests.helpers import Clinic, write_config

CENTRAL = "60a7c2f5e4b0c1a2d3e4f5a6"
NID = "1199780012345678"
runner = CliRunner()


def invoke(*args: str, env: dict[str, str] | None = None) -> Any:
    return runner.invoke(app, list(args), env=env or {})


@pytest.fixture
def clinic(openmrs: Any, passport: Any) -> Clinic:
    clinic = Clinic(openmrs)
    person = clinic.patient(NID)
    register_patient(passport, NID)
    clinic.visit(person, weights=2)
    return clinic


@pytest.fixture
def config(tmp_path: Path, clinic: Clinic, mongo_uri: str, mongo_db_name: str) -> Path:
    return write_config(tmp_path / "hospitals.yaml", mongo_uri, mongo_db_name, [hospital_entry(clinic.db.name)])


# -- a Passport that is not one ---------------------------------------------------------------------
def test_a_mistyped_mongodb_database_is_refused_and_check_is_critical(
    tmp_path: Path, clinic: Clinic, mongo_uri: str, mongo_db_name: str
) -> None:
    typo = f"{mongo_db_name}x"
    config = write_config(tmp_path / "typo.yaml", mongo_uri, typo, [hospital_entry(clinic.db.name)])
    client: pymongo.MongoClient[Any] = pymongo.MongoClient(mongo_uri)
    try:
        for command in ("sync-all", "sync-patient", "reconcile"):
            args = [command, "--config", str(config)] + ([NID] if command == "sync-patient" else [])
            result = invoke(*args)
            assert result.exit_code == 2, (command, result.stdout, result.stderr)
            assert f"MongoDB database '{typo}' is not a Patient Passport database" in result.stderr
            # The hint names the fix and the Passport next door.
            assert "check the database name at the end of MONGODB_URI" in result.stderr
            assert mongo_db_name in result.stderr.split("hint:", 1)[1]
            assert typo not in client.list_database_names()  # nothing written, not even an index

        checked = invoke("check", "--config", str(config))
        assert checked.exit_code == 2, checked.stdout
        assert checked.stdout.startswith(
            f"PASSPORT-SYNC CRITICAL - MongoDB database '{typo}' is not a Patient Passport"
        )
        assert typo not in client.list_database_names()

        tested = json.loads(invoke("test-connection", "--config", str(config), "--json").stdout)
        mongo_checks = {c["check"]: c for c in tested["results"][-1]["checks"]}
        assert not tested["ok"] and mongo_checks["collection patients"]["level"] == "error"
    finally:
        client.drop_database(typo)
        client.close()


def test_check_is_critical_when_no_row_of_a_hospital_reached_a_patient(
    tmp_path: Path, openmrs: Any, mongo_uri: str, mongo_db_name: str
) -> None:
    clinic = Clinic(openmrs)
    for number in ("1199780012340001", "1199780012340002"):
        clinic.visit(clinic.patient(number))  # nobody registered in this Passport
    config = write_config(tmp_path / "h.yaml", mongo_uri, mongo_db_name, [hospital_entry(openmrs.name)])
    assert invoke("sync-all", "--config", str(config)).exit_code == 0
    result = invoke("check", "--config", str(config))
    assert result.exit_code == 2, result.stdout
    assert "no row reached a patient: all 4 rows synced wait for a patient registered in Patient Passport" in (
        result.stdout
    )


# -- rows, not ids -----------------------------------------------------------------------------------
def test_an_id_gap_is_not_counted_as_rows_behind_but_a_late_commit_inside_it_is(
    config: Path, clinic: Clinic, passport: Any
) -> None:
    assert invoke("sync-all", "--config", str(config)).exit_code == 0
    # A bulk insert (or another Galera node) used 20,535 ids that never became rows.
    (top,) = clinic.db.execute("SELECT MAX(obs_id) FROM obs")[0]
    clinic.db.execute(f"ALTER TABLE obs AUTO_INCREMENT = {top + 20_536}")
    person = clinic.patient("1199780012340000")
    register_patient(passport, "1199780012340000")
    clinic.visit(person)
    assert invoke("sync-all", "--config", str(config)).exit_code == 0
    syncstatus = passport.syncstatus.find_one({"hospitalId": CENTRAL})
    assert [gap[:2] for gap in syncstatus["gaps"]] == [[top + 1, top + 20_535]]  # the gap is watched

    status = json.loads(invoke("status", "--config", str(config), "--json").stdout)["hospitals"][0]
    assert status["behind"] == 0
    assert status["checkpoint"]["pending_late_commit_ids"] == 20_535
    checked = invoke("check", "--config", str(config), "--max-behind", "0")
    assert checked.exit_code == 0, checked.stdout
    assert invoke("check", "--config", str(config), "--max-behind", "0", "--openmrs").exit_code == 0

    # A row that commits late inside the gap does wait: it is counted.
    (newest,) = clinic.visit(person, weights=0)
    clinic.db.execute("UPDATE obs SET obs_id = %s WHERE obs_id = %s", (top + 7, newest))
    clinic.db.execute(f"ALTER TABLE obs AUTO_INCREMENT = {newest}")
    status = json.loads(invoke("status", "--config", str(config), "--json").stdout)["hospitals"][0]
    assert status["behind"] == 1
    late = invoke("check", "--config", str(config), "--max-behind", "0", "--openmrs")
    assert late.exit_code == 1 and "1 rows behind in OpenMRS (limit 0)" in late.stdout


def test_check_reads_the_backlog_the_last_run_stored(clinic: Clinic, mongo_uri: str, mongo_db_name: str) -> None:
    """Without --openmrs, check judges the rows the last run counted at its end, from MongoDB."""
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
        (report,) = service.sync_all(settings, store, settings.hospitals, observer=LateArrivals())
    finally:
        store.close()
    assert report.outcome == "ok" and report.behind == 3
    # OpenMRS is out of reach for the check (a wrong password): it does not need it.
    entry = hospital_entry(clinic.db.name)
    entry["db"]["password"] = "not-the-password"
    config = write_config(Path(clinic.db.name + ".yaml").absolute(), mongo_uri, mongo_db_name, [entry])
    try:
        result = invoke("check", "--config", str(config), "--max-behind", "2")
        assert result.exit_code == 1, result.stdout
        assert "3 rows behind in OpenMRS (limit 2)" in result.stdout
        assert invoke("check", "--config", str(config), "--max-behind", "3").exit_code == 0
        unreachable = invoke("check", "--config", str(config), "--max-behind", "3", "--openmrs")
        assert unreachable.exit_code == 3 and "cannot count the rows behind" in unreachable.stdout
    finally:
        config.unlink()


# -- check as monitoring runs it --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("arguments", "said"),
    [
        (["--max-age", "0"], "Invalid value for '--max-age'"),
        (["--max-age", "abc"], "Invalid value for '--max-age'"),
        (["--max-behind", "-1"], "Invalid value for '--max-behind'"),
        (["--no-such-option"], "No such option: --no-such-option"),
    ],
)
def test_check_usage_errors_are_unknown_not_critical(arguments: list[str], said: str) -> None:
    result = invoke("check", *arguments)
    assert result.exit_code == 3, result.output
    assert result.stdout.startswith("PASSPORT-SYNC UNKNOWN - usage: ")
    assert said in result.stdout
    document = json.loads(invoke("check", "--json", *arguments).stdout)
    assert document["state"] == "UNKNOWN" and document["exit_code"] == 3


def test_check_runs_without_the_openmrs_credentials_the_sync_reads_from_credentials_directory(
    tmp_path: Path, clinic: Clinic, mongo_uri: str, mongo_db_name: str
) -> None:
    """The check unit and NRPE have no ${CREDENTIALS_DIRECTORY}: check reads MongoDB only."""
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "central-db-password").write_text(str(hospital_entry("x")["db"]["password"]) + "\n")
    entry = hospital_entry(clinic.db.name)
    del entry["db"]["password"]
    entry["db"]["password_file"] = "${CREDENTIALS_DIRECTORY}/central-db-password"
    config = write_config(tmp_path / "hospitals.yaml", mongo_uri, mongo_db_name, [entry])
    synced = invoke("sync-all", "--config", str(config), env={"CREDENTIALS_DIRECTORY": str(credentials)})
    assert synced.exit_code == 0, synced.stderr

    result = invoke("check", "--config", str(config))
    assert result.exit_code == 0, result.stdout
    assert result.stdout.startswith("PASSPORT-SYNC OK - 1 hospital(s) synced within 30 min")
    # Reading OpenMRS is opt-in, and then its credential is needed: a configuration problem, UNKNOWN.
    opted = invoke("check", "--config", str(config), "--openmrs")
    assert opted.exit_code == 3 and "password_file: cannot read" in opted.stdout


# -- disabled hospitals ------------------------------------------------------------------------------
def test_status_and_check_skip_disabled_hospitals(
    tmp_path: Path, clinic: Clinic, mongo_uri: str, mongo_db_name: str
) -> None:
    disabled = hospital_entry("pstest_no_such_database", hospital_id="old", name="Closed Clinic", enabled=False)
    disabled["db"].update(host="127.0.0.1", port=1)  # nothing listens: probing it would fail
    config = write_config(tmp_path / "h.yaml", mongo_uri, mongo_db_name, [hospital_entry(clinic.db.name), disabled])
    assert invoke("sync-all", "--config", str(config)).exit_code == 0
    status = invoke("status", "--config", str(config), "--json")
    assert status.exit_code == 0, status.stdout
    assert [h["hospital_id"] for h in json.loads(status.stdout)["hospitals"]] == [CENTRAL]
    assert invoke("status", "--config", str(config), "--quiet").exit_code == 0
    checked = invoke("check", "--config", str(config))
    assert checked.exit_code == 0 and "Closed Clinic" not in checked.stdout
    # Named, it is shown (and its database is tried).
    named = invoke("status", "--config", str(config), "--hospital", "old", "--json")
    assert [h["hospital_id"] for h in json.loads(named.stdout)["hospitals"]] == ["old"]


# -- a benign lock under --quiet ---------------------------------------------------------------------
def test_quiet_sync_prints_nothing_when_another_run_holds_the_lock(config: Path, passport: Any) -> None:
    from datetime import UTC, datetime, timedelta

    passport.openmrs_sync_locks.insert_one(
        {"_id": CENTRAL, "owner": "otherhost:1:42:abcd", "expiresAt": datetime.now(UTC) + timedelta(minutes=5)}
    )
    result = invoke("sync-all", "--config", str(config), "--quiet")
    assert result.exit_code == 3
    assert result.stdout == "" and result.stderr == ""
    loud = invoke("sync-all", "--config", str(config))
    assert loud.exit_code == 3 and "ERROR" not in loud.stderr
    assert "otherhost:1:42:abcd" in loud.stdout + loud.stderr


# -- one schema check -------------------------------------------------------------------------------
def test_test_connection_refuses_the_schema_sync_all_refuses_with_the_same_words(config: Path, clinic: Clinic) -> None:
    clinic.db.execute("ALTER TABLE obs DROP COLUMN value_text")
    message = "this OpenMRS database lacks column(s) passport-sync reads: obs.value_text"
    tested = invoke("test-connection", "--config", str(config), "--json")
    assert tested.exit_code == 1
    checks = {c["check"]: c for c in json.loads(tested.stdout)["results"][0]["checks"]}
    assert message in checks["schema"]["detail"] and checks["schema"]["level"] == "error"
    synced = invoke("sync-all", "--config", str(config), "--json")
    assert synced.exit_code == 1
    (error,) = json.loads(synced.stdout)["hospitals"][0]["errors"]
    assert message in error and "test-connection" not in error  # the hint no longer points back


# -- no silent plaintext -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("option", "said"),
    [
        ("tls=yes", "the MongoDB URI option tls=yes is not true or false"),
        ("ssl=1", "the MongoDB URI option ssl=1 is not true or false"),
        ("tlsInsecure=maybe", "the MongoDB URI option tlsInsecure=maybe is not true or false"),
        ("tlss=true", "the MongoDB URI has an unknown TLS option 'tlss'"),
    ],
)
def test_a_malformed_mongodb_tls_option_is_a_configuration_error(
    tmp_path: Path, openmrs: Any, mongo_uri: str, mongo_db_name: str, passport: Any, option: str, said: str
) -> None:
    config = write_config(tmp_path / "h.yaml", mongo_uri, f"{mongo_db_name}?{option}", [hospital_entry(openmrs.name)])
    result = invoke("sync-all", "--config", str(config))
    assert result.exit_code == 2, result.stderr
    assert said in result.stderr and "mongodb.uri" in result.stderr
    assert "syncstatus" not in passport.list_collection_names()  # nothing written
    checked = invoke("check", "--config", str(config))
    assert checked.exit_code == 3 and said in checked.stdout


def test_test_connection_shows_mongodb_tls(config: Path) -> None:
    tested = json.loads(invoke("test-connection", "--config", str(config), "--json").stdout)
    mongo = {c["check"]: c for c in tested["results"][-1]["checks"]}
    assert mongo["TLS"]["detail"] == "NOT encrypted (MongoDB on this machine)"
    assert mongo["TLS"]["level"] == "ok"
    plain = invoke("test-connection", "--config", str(config)).stdout
    assert "NOT encrypted (MongoDB on this machine)" in plain


def non_loopback_address() -> str | None:
    """An address of this machine that is not loopback (the route out), or None."""
    import ipaddress
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # no packet is sent: only the route is chosen
            address = str(probe.getsockname()[0])
        except OSError:
            return None
    return None if ipaddress.ip_address(address).is_loopback else address


def test_plaintext_mysql_over_a_network_is_a_warning_that_quiet_keeps(
    tmp_path: Path, clinic: Clinic, mongo_uri: str, mongo_db_name: str
) -> None:
    """The test MariaDB offers no TLS. Reached at a non-loopback address (a forwarder on this
    machine's own address), tls: preferred falls back to plaintext with a WARNING even under
    --quiet; tls: disabled (said on purpose) and the loopback stay silent."""
    from passport_sync.synthetic.proxy import LatencyProxies
    from tests.conftest import MYSQL

    address = non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback address")
    with LatencyProxies(MYSQL["host"], MYSQL["port"], delay=0) as proxies:
        for tls, warned in (("preferred", True), ("disabled", False)):
            entry = hospital_entry(clinic.db.name)
            entry["db"].update(host=address, port=proxies.open(address), tls=tls)
            config = write_config(tmp_path / f"{tls}.yaml", mongo_uri, mongo_db_name, [entry])
            result = invoke("sync-all", "--config", str(config), "--quiet")
            assert result.exit_code == 0, result.stderr
            assert ("WARNING" in result.stderr and "offers no TLS" in result.stderr) is warned, result.stderr
            if warned:
                assert f"{address}:" in result.stderr and "db.tls: required" in result.stderr
    local = write_config(tmp_path / "local.yaml", mongo_uri, mongo_db_name, [hospital_entry(clinic.db.name)])
    quiet = invoke("sync-all", "--config", str(local), "--quiet")
    assert quiet.exit_code == 0 and quiet.stderr == ""


# -- the README's recipes, run as written -------------------------------------------------------------
README = Path(__file__).resolve().parent.parent / "README.md"
INSTALLED = "/usr/local/bin/passport-sync"
CONFIG = "/etc/passport-sync/hospitals.yaml"


def readme_line(starting: str) -> str:
    (line,) = [raw.strip() for raw in README.read_text().splitlines() if raw.strip().startswith(starting)]
    return line


def test_the_readme_cron_line_check_unit_and_nrpe_command_run_as_written(
    tmp_path: Path, clinic: Clinic, mongo_uri: str, mongo_db_name: str
) -> None:
    """With cron's PATH and the units' environment (MONGODB_URI from the environment file, no
    ${CREDENTIALS_DIRECTORY} for the check): the installed program and the configuration are this
    test's, everything else is the README's text."""
    import shlex
    import subprocess
    import sys

    readme = README.read_text()
    assert f"ln -s /opt/passport-sync/bin/passport-sync {INSTALLED}" in readme
    cron = readme_line("*/5 * * * * ")
    unit = readme.split("# /etc/systemd/system/passport-sync-check.service", 1)[1].split("```", 1)[0]
    assert "LoadCredential" not in unit and "EnvironmentFile=-/etc/passport-sync/env" in unit
    exec_start = next(line for line in unit.splitlines() if line.startswith("ExecStart="))
    sudoers = readme_line("nagios ALL=(root) NOPASSWD: ")
    nrpe = readme_line("command[passport_sync]=/usr/bin/sudo ")
    allowed = sudoers.split("NOPASSWD: ", 1)[1]
    assert nrpe == f"command[passport_sync]=/usr/bin/sudo {allowed}"  # sudo allows exactly what NRPE runs
    assert "-p EnvironmentFile=/etc/passport-sync/env" in allowed and "LoadCredential" not in allowed

    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "central-db-password").write_text(str(hospital_entry("x")["db"]["password"]) + "\n")
    (credentials / "central-db-password").chmod(0o600)
    entry = hospital_entry(clinic.db.name)
    del entry["db"]["password"]
    entry["db"]["password_file"] = "${CREDENTIALS_DIRECTORY}/central-db-password"
    config = write_config(tmp_path / "hospitals.yaml", "mongodb://127.0.0.1:1", "not-this-one", [entry])
    program = str(Path(sys.executable).parent / "passport-sync")
    environment = {"PATH": "/usr/bin:/bin", "MONGODB_URI": f"{mongo_uri}/{mongo_db_name}"}  # the env file

    def run(command: str, **extra: str) -> subprocess.CompletedProcess[str]:
        words = shlex.split(command)
        assert words[0] == INSTALLED and CONFIG in words, command  # absolute: cron's PATH has no /usr/local/bin
        words = [program if w == INSTALLED else str(config) if w == CONFIG else w for w in words]
        return subprocess.run(words, env=environment | extra, capture_output=True, text=True, timeout=300, check=False)

    # cron, a healthy run: nothing printed (the password comes from the file named in the YAML).
    synced = run(cron.split(" ", 5)[5], CREDENTIALS_DIRECTORY=str(credentials))
    assert (synced.returncode, synced.stdout, synced.stderr) == (0, "", "")
    # The check unit and NRPE: no credentials at all.
    for command in (exec_start.removeprefix("ExecStart="), allowed[allowed.index(INSTALLED) :]):
        checked = run(command)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert checked.stdout.startswith("PASSPORT-SYNC OK - 1 hospital(s) synced within ")


# -- smaller items -----------------------------------------------------------------------------------
def test_reconcile_and_demo_print_their_json_document_on_a_configuration_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("hospitals: [{id: x}]\n")
    for args in (
        ["reconcile", "--config", str(broken), "--json"],
        ["demo", "--mysql-url", "http://nowhere", "--demo-dir", str(tmp_path / "demo"), "--json"],
    ):
        result = invoke(*args)
        assert result.exit_code == 2, result.output
        document = json.loads(result.stdout)
        assert document["command"] == args[0] and document["exit_code"] == 2 and document["error"], document


def test_reset_checkpoint_to_a_future_date_is_a_usage_error(config: Path, passport: Any) -> None:
    assert invoke("sync-all", "--config", str(config)).exit_code == 0
    before = passport.syncstatus.find_one({"hospitalId": CENTRAL})
    result = invoke("reset-checkpoint", CENTRAL, "--to", "2999-01-01", "--yes", "--config", str(config))
    assert result.exit_code == 2
    assert "--to 2999-01-01 is in the future" in result.stderr
    assert passport.syncstatus.find_one({"hospitalId": CENTRAL}) == before


class WrongService:
    """A TCP service on a free local port that answers like a web server: an HTTP error as soon as
    a client connects (``greets``) or once it has sent something."""

    def __init__(self, *, greets: bool) -> None:
        import socket
        import threading

        self.greets = greets
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.server.getsockname()[1])
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        answer = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            with client:
                try:
                    if not self.greets:
                        client.recv(4096)
                    client.sendall(answer)
                except OSError:
                    pass

    def close(self) -> None:
        self.server.close()


def test_a_web_server_where_mysql_or_mongodb_should_be_is_named(
    tmp_path: Path, clinic: Clinic, mongo_uri: str, mongo_db_name: str
) -> None:
    http_first, http_after = WrongService(greets=True), WrongService(greets=False)
    try:
        entry = hospital_entry(clinic.db.name)
        entry["db"]["port"] = http_first.port
        config = write_config(tmp_path / "mysql.yaml", mongo_uri, mongo_db_name, [entry])
        tested = json.loads(invoke("test-connection", "--config", str(config), "--json").stdout)
        connect = tested["results"][0]["checks"][0]
        assert connect["check"] == "connect" and not connect["ok"]
        assert "the server on that port does not speak MySQL's protocol" in connect["detail"]
        assert "db.port" in connect["hint"]

        config = write_config(
            tmp_path / "mongo.yaml", f"mongodb://127.0.0.1:{http_after.port}", "pp", [hospital_entry(clinic.db.name)]
        )
        checked = invoke("check", "--config", str(config))
        assert checked.exit_code == 3
        assert "the server on that port does not speak MongoDB's protocol" in checked.stdout
        assert "MongoDB listens on 27017" in checked.stdout
        synced = invoke("sync-all", "--config", str(config))
        assert synced.exit_code == 1 and "does not speak MongoDB's protocol" in synced.stderr
    finally:
        http_first.close()
        http_after.close()


# -- the data manager's worklist -----------------------------------------------------------------------
def test_worklist_names_each_patient_to_fix_by_openmrs_identifier_never_by_name(
    config: Path, clinic: Clinic, passport: Any
) -> None:
    import csv
    import io

    openmrs_id = clinic.b.identifier_type("OpenMRS ID")
    invalid = clinic.patient(
        "11997800AB345678", given="Jeanne", family="Mukamana", extra_identifiers=[(openmrs_id, "100-7")]
    )
    clinic.visit(invalid, weights=2)
    twice = [clinic.patient("1199780055555555", given="Alice", family="Twin") for _ in range(2)]
    clinic.visit(twice[0])
    clinic.visit(clinic.patient("1199780099999999"))  # waits for registration: not on the worklist
    assert invoke("sync-all", "--config", str(config)).exit_code == 0
    (person_uuid,) = clinic.db.execute("SELECT uuid FROM person WHERE person_id = %s", (invalid,))[0]

    document = json.loads(invoke("worklist", "--config", str(config), "--json").stdout)
    rows = {(r["reason"], r["person_id"]): r for r in document["patients"]}
    assert set(rows) == {("invalid_national_id", invalid), ("shared_national_id", twice[0])}
    first = rows["invalid_national_id", invalid]
    assert first["openmrs_identifier"] == "100-7" and first["patient_uuid"] == person_uuid
    assert first["rows"] == 3 and first["since"].endswith("Z")
    assert first["problem"] == "the national ID is not 10-16 digits"
    assert "correct the National ID identifier in OpenMRS" in first["fix"]
    assert rows["shared_national_id", twice[0]]["openmrs_identifier"] is None  # only a national ID

    plain = invoke("worklist", "--config", str(config))
    spread = invoke("worklist", "--config", str(config), "--csv")
    for result in (plain, spread, invoke("worklist", "--config", str(config), "--json")):
        assert result.exit_code == 0, result.output
        for secret in ("Jeanne", "Mukamana", "Alice", "Twin", "11997800AB345678", "1199780055555555"):
            assert secret not in result.stdout + result.stderr, secret
    assert "100-7" in plain.stdout and "correct the National ID identifier" in plain.stdout
    table = list(csv.DictReader(io.StringIO(spread.stdout)))
    assert {(r["reason"], r["openmrs_identifier"]) for r in table} == {
        ("invalid_national_id", "100-7"),
        ("shared_national_id", ""),
    }

    # The national ID only when asked for; the reasons one asks for.
    asked = json.loads(invoke("worklist", "--config", str(config), "--json", "--with-national-id").stdout)
    assert {r["national_id"] for r in asked["patients"]} == {"11997800AB345678", "1199780055555555"}
    waiting = json.loads(
        invoke("worklist", "--config", str(config), "--json", "--reason", "patient_not_in_passport").stdout
    )
    assert [r["rows"] for r in waiting["patients"]] == [2]
    wrong = invoke("worklist", "--config", str(config), "--reason", "typo")
    assert wrong.exit_code == 2 and "unknown reason 'typo'" in wrong.stderr
