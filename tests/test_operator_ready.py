"""What an operator meets on day one: the shipped examples load, cron stays quiet, nothing hangs,
failures name their cause, Ctrl-C and SIGTERM let go of the locks, status exits as it reads."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from pymongo.errors import OperationFailure
from typer.testing import CliRunner

from passport_sync import cli
from passport_sync.cli import app
from passport_sync.config import check_passwords, load_settings
from passport_sync.errors import SinkError
from passport_sync.sink.gateway import translate_mongo_error
from tests.conftest import hospital_entry
from tests.helpers import Clinic, write_config

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "hospitals.example.yaml"
README = REPO / "README.md"
NID = "1199780012345678"
runner = CliRunner()


def invoke(*args: str, env: dict[str, str] | None = None, **kwargs: Any) -> Any:
    return runner.invoke(app, list(args), env=env or {}, **kwargs)


class SilentServer:
    """A TCP server that accepts every connection and never sends a byte: a hung MySQL server
    or a firewall that lets the SYN through and drops the rest."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.accepted: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.accepted.append(conn)
            self.serve(conn)

    def serve(self, conn: socket.socket) -> None:
        """Says nothing."""

    def close(self) -> None:
        self.listener.close()
        for conn in self.accepted:
            conn.close()


@pytest.fixture
def silent_server() -> Iterator[SilentServer]:
    server = SilentServer()
    yield server
    server.close()


# -- the shipped examples ---------------------------------------------------------------------------------
def test_the_example_configuration_validates_as_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """As scripts/install-systemd.sh installs it (0640) and the service reads it: credentials
    from $CREDENTIALS_DIRECTORY, no warning."""
    installed = tmp_path / "hospitals.yaml"
    installed.write_text(EXAMPLE.read_text())
    installed.chmod(0o640)
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "central-db-password").write_text("s3cret\n")
    (credentials / "central-db-password").chmod(0o600)
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(credentials))
    warnings: list[str] = []
    settings = load_settings(installed, environ={}, warnings=warnings)
    assert warnings == []
    check_passwords(settings.enabled_hospitals())
    central = settings.enabled_hospitals()[0]
    assert central.db.resolved_password().get_secret_value() == "s3cret"
    assert central.db.tls_mode == "required" and central.db.tls_options.ca is not None
    assert settings.sync.categories.concepts == {} and settings.sync.categories.classes == {}


def test_example_hospital_ids_match_the_units_installer_and_readme() -> None:
    example = yaml.safe_load(EXAMPLE.read_text())
    ids = [h["id"] for h in example["hospitals"]]
    assert ids == ["central", "district"]
    for hospital in example["hospitals"]:
        # The per-hospital unit loads exactly <id>-db-password.
        assert hospital["db"]["password_file"] == f"${{CREDENTIALS_DIRECTORY}}/{hospital['id']}-db-password"
    readme = README.read_text()
    installer = (REPO / "scripts" / "install-systemd.sh").read_text()
    unit = (REPO / "systemd" / "passport-sync.service").read_text()
    for text in (readme, installer):
        assert "passport-sync@central.timer" in text
    for hospital_id in ids:
        assert f"LoadCredential={hospital_id}-db-password:/etc/passport-sync/credentials/{hospital_id}-db-password" in (
            unit
        )
    for instance in set(re.findall(r"passport-sync@([\w.-]+)\.(?:timer|service)", readme + installer)):
        assert instance in ids + ["ID"], instance


def test_the_units_environment_is_what_the_tool_reads() -> None:
    for name in ("passport-sync.service", "passport-sync@.service"):
        text = (REPO / "systemd" / name).read_text()
        assert "EnvironmentFile=-/etc/passport-sync/env" in text
        for line in text.splitlines():
            if line.startswith("Environment="):
                key = line.removeprefix("Environment=").split("=", 1)[0]
                assert key in {"PYTHONDONTWRITEBYTECODE"}, line
    installer = (REPO / "scripts" / "install-systemd.sh").read_text()
    env_template = installer.split("<<'ENV'\n", 1)[1].split("\nENV\n", 1)[0]
    variables = {line.lstrip("# ").split("=", 1)[0] for line in env_template.splitlines() if "=" in line}
    assert variables == {"MONGODB_URI", "OPENMRS_MAX_RECORDS", "OPENMRS_DETAILED_LOGS"}
    example_uri = next(line for line in env_template.splitlines() if "MONGODB_URI=" in line).split("=", 1)[1]
    assert load_settings(None, environ={"MONGODB_URI": example_uri}).mongodb.hosts == "mongo.example.org:27017"


def _readme_commands() -> list[list[str]]:
    """Every ``passport-sync ...`` command line in the README's code blocks."""
    commands = []
    fenced = False
    for raw in README.read_text().splitlines():
        if raw.startswith("```"):
            fenced = not fenced
            continue
        line = raw.split(" #", 1)[0].strip().removeprefix("$ ")
        if fenced and line.startswith(("passport-sync ", "*/5 ")) and "passport-sync " in line:
            commands.append(line[line.index("passport-sync ") :].split()[1:])
    return commands


def test_every_command_line_in_the_readme_parses() -> None:
    """The README's examples name commands and options that exist (no typo sends an operator
    to --help at 3 a.m.)."""
    commands = _readme_commands()
    assert len(commands) > 10
    group: Any = typer.main.get_command(app)
    for words in commands:
        name, args = words[0], [w for w in words[1:] if not w.startswith("[")]
        command = group.commands.get(name)
        assert command is not None, words
        options = {opt for param in command.params for opt in param.opts + param.secondary_opts}
        for word in args:
            if word.startswith("-"):
                assert word.split("=", 1)[0] in options, (words, word)


def test_help_shows_no_type_placeholders_and_completion_is_offered() -> None:
    main_help = invoke("--help").stdout
    assert "--install-completion" in main_help
    for command in ("sync-all", "sync-patient", "status", "check", "test-connection", "reset-checkpoint", "demo"):
        text = invoke(command, "--help", terminal_width=100).stdout
        # (Arguments keep typer's "<str>": the name beside it already says what to type.)
        assert not re.search(r"<(bool|int|int range|float|path|list\[str\])>", text), (command, text)
        assert "--hospital ID" in text or command in ("reset-checkpoint", "demo"), command
    # Paragraphs are re-wrapped to the terminal, not broken where the docstring was.
    wide = invoke("sync-patient", "--help", terminal_width=200).stdout
    assert "Also lands the patient's parked observations." in wide


# -- cron: --quiet ------------------------------------------------------------------------------------------
def test_quiet_prints_nothing_on_a_healthy_run_and_the_summary_when_a_hospital_fails(
    synced_patient: int, config: Path, tmp_path: Path, mongo_uri: str, mongo_db_name: str, openmrs: Any
) -> None:
    healthy = invoke("sync-all", "--config", str(config), "--quiet")
    assert healthy.exit_code == 0
    assert (healthy.stdout, healthy.stderr) == ("", "")

    broken = hospital_entry(openmrs.name, hospital_id="district", name="District Hospital")
    broken["db"]["name"] = "pstest_no_such_database"
    both = write_config(tmp_path / "both.yaml", mongo_uri, mongo_db_name, [hospital_entry(openmrs.name), broken])
    failing = invoke("sync-all", "--config", str(both), "--quiet")
    assert failing.exit_code == 1
    assert "District Hospital: sync failed" in failing.stderr and " INFO " not in failing.stderr
    assert "passport-sync: sync summary" in failing.stdout


def test_verbose_adds_connection_and_statement_detail(synced_patient: int, config: Path) -> None:
    result = invoke("sync-all", "--config", str(config), "--verbose")
    assert result.exit_code == 0
    assert re.search(
        r"DEBUG Central Hospital: connected to 127\.0\.0\.1:\d+/pstest_\w+ as root, plaintext", result.stderr
    )
    assert re.search(r"DEBUG Central Hospital: \d+ rows in \d+\.\d+s from obs", result.stderr)
    assert NID not in result.stderr


# -- a hung database --------------------------------------------------------------------------------------
def test_a_server_that_never_answers_fails_within_the_connect_timeout_and_the_others_sync(
    silent_server: SilentServer, synced_patient: int, tmp_path: Path, mongo_uri: str, mongo_db_name: str, openmrs: Any
) -> None:
    hung = hospital_entry(openmrs.name, hospital_id="hung", name="Hung Hospital")
    hung["db"].update(port=silent_server.port, connect_timeout_seconds=1, read_timeout_seconds=600)
    config = write_config(tmp_path / "h.yaml", mongo_uri, mongo_db_name, [hung, hospital_entry(openmrs.name)])
    started = time.monotonic()
    result = invoke("sync-all", "--config", str(config), "--json")
    elapsed = time.monotonic() - started
    assert result.exit_code == 1
    first, second = json.loads(result.stdout)["hospitals"]
    assert first["outcome"] == "failed" and second["outcome"] == "ok" and second["written"] == 3
    assert f"127.0.0.1:{silent_server.port}/{openmrs.name}: no answer within 1s while connecting" in first["errors"][0]
    assert "raise db.connect_timeout_seconds only on slow links" in first["errors"][0]
    assert len(silent_server.accepted) == 2  # two attempts (retry.attempts: 2), each cut at 1 s
    # Bounded by the connect timeout, not read_timeout_seconds (600 s): a generous margin.
    assert elapsed < 60, elapsed


# -- Ctrl-C and SIGTERM -------------------------------------------------------------------------------------
@pytest.mark.parametrize(("signum", "workers"), [(signal.SIGINT, 1), (signal.SIGTERM, 1), (signal.SIGINT, 2)])
def test_an_interrupt_prints_one_line_exits_130_and_releases_the_locks(
    signum: int,
    workers: int,
    silent_server: SilentServer,
    passport: Any,
    tmp_path: Path,
    mongo_uri: str,
    mongo_db_name: str,
) -> None:
    hung = []
    for hospital_id in ("hung1", "hung2"):
        entry = hospital_entry(f"openmrs_{hospital_id}", hospital_id=hospital_id, name=f"Hospital {hospital_id}")
        entry["db"].update(port=silent_server.port, connect_timeout_seconds=60)
        hung.append(entry)
    config = write_config(tmp_path / "h.yaml", mongo_uri, mongo_db_name, hung, workers=workers)
    process = subprocess.Popen(
        [sys.executable, "-m", "passport_sync", "sync-all", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=REPO,
        env={k: v for k, v in os.environ.items() if not k.startswith(("HOSPITAL_", "MONGODB_", "PASSPORT_SYNC"))},
    )
    try:
        # Sequentially one hospital is connecting; with two workers both are.
        deadline = time.monotonic() + 30
        while len(silent_server.accepted) < workers and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(silent_server.accepted) == workers, "the sync never connected"
        assert passport.openmrs_sync_locks.count_documents({}) == workers  # taken before connecting
        process.send_signal(signum)
        stdout, stderr = process.communicate(timeout=30)  # not the 60 s connect timeout
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    text = stderr.decode()
    assert process.returncode == 130, text
    assert "Traceback" not in text
    assert text.splitlines()[-1] == "interrupted: locks released; the next run resumes from the last saved checkpoint"
    assert passport.openmrs_sync_locks.count_documents({}) == 0
    if workers == 1:
        summary = passport.auditlogs.find_one({"action": "openmrs_auto_sync"})
        assert summary["changes"]["outcome"] == "failed" and summary["changes"]["errors"] == ["interrupted"]


# -- MongoDB failures -----------------------------------------------------------------------------------------
def _mongo_config(tmp_path: Path, uri: str, openmrs: Any, timeout_ms: int = 300) -> Path:
    config = write_config(tmp_path / "m.yaml", uri, "pp", [hospital_entry(openmrs.name)])
    config.write_text(
        config.read_text().replace("server_selection_timeout_ms: 3000", f"server_selection_timeout_ms: {timeout_ms}")
    )
    return config


@pytest.mark.parametrize(
    ("uri", "cause", "retried"),
    [
        ("mongodb://127.0.0.1:1", "MongoDB unreachable at 127.0.0.1:1 during ping: connection refused", True),
        (
            "mongodb://no-such-host.invalid:27017",
            "at no-such-host.invalid:27017 during ping: the host name does not resolve",
            False,
        ),
    ],
)
def test_mongodb_failures_name_the_host_and_the_cause_at_once(
    tmp_path: Path, openmrs: Any, uri: str, cause: str, retried: bool
) -> None:
    config = _mongo_config(tmp_path, uri, openmrs)
    checked = invoke("test-connection", "--config", str(config), "--json")
    assert checked.exit_code == 1
    mongo = json.loads(checked.stdout)["results"][-1]
    assert cause in mongo["checks"][0]["detail"]
    assert "retrying" not in checked.stderr  # a check answers in one attempt

    synced = invoke("sync-all", "--config", str(config), "--json")
    assert synced.exit_code == 1
    document = json.loads(synced.stdout)  # --json prints its document even when MongoDB is down
    assert document["command"] == "sync-all" and document["exit_code"] == 1
    # The first MongoDB call of sync-all (an index operation) names the same host and cause.
    assert re.search(re.escape(cause).replace("during\\ ping", r"during [a-z ]+"), document["error"]["message"])
    assert document["error"]["hint"].startswith("check MONGODB_URI")
    assert ("retrying" in synced.stderr) is retried


class UntrustedTLSServer(SilentServer):
    """Accepts TLS with a self-signed certificate that no client trusts."""

    def __init__(self, workdir: Path) -> None:
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
             "-keyout", str(workdir / "key.pem"), "-out", str(workdir / "cert.pem")],
            check=True, capture_output=True,
        )  # fmt: skip
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(workdir / "cert.pem", workdir / "key.pem")
        super().__init__()

    def serve(self, conn: socket.socket) -> None:
        try:
            self.context.wrap_socket(conn, server_side=True)
        except (OSError, ssl.SSLError):
            pass  # the client refused our certificate, as it should


def test_mongodb_tls_failure_and_silence_are_named(tmp_path: Path, openmrs: Any, silent_server: SilentServer) -> None:
    if not shutil.which("openssl"):
        pytest.skip("openssl is not installed")
    untrusted = UntrustedTLSServer(tmp_path)
    try:
        config = _mongo_config(tmp_path, f"mongodb://127.0.0.1:{untrusted.port}", openmrs, timeout_ms=3000)
        config.write_text(config.read_text().replace("/pp", "/pp?tls=true"))
        tls = invoke("test-connection", "--config", str(config))
    finally:
        untrusted.close()
    cause = "TLS failed: certificate verify failed: self-signed certificate"
    assert f"MongoDB unreachable at 127.0.0.1:{untrusted.port} during ping: {cause}" in tls.stdout
    silent = _mongo_config(tmp_path, f"mongodb://127.0.0.1:{silent_server.port}", openmrs)
    hung = invoke("test-connection", "--config", str(silent))
    assert f"MongoDB unreachable at 127.0.0.1:{silent_server.port} during ping: no answer (timed out)" in hung.stdout


def test_mongodb_authentication_failure_is_named() -> None:
    error = translate_mongo_error(
        OperationFailure("Authentication failed.", code=18), "ping", "mongo.example.org:27017"
    )
    assert isinstance(error, SinkError)
    assert str(error) == "MongoDB at mongo.example.org:27017 refused ping: authentication failed (code 18)"


@pytest.mark.parametrize("uri", ["mongo.example.org:27017", "http://mongo.example.org/pp", "mongodb:///pp"])
def test_a_mongodb_uri_that_is_not_a_uri_is_a_configuration_error(tmp_path: Path, openmrs: Any, uri: str) -> None:
    config = write_config(tmp_path / "h.yaml", "mongodb://127.0.0.1:1", "pp", [hospital_entry(openmrs.name)])
    document = yaml.safe_load(config.read_text())
    document["mongodb"]["uri"] = uri
    config.write_text(yaml.safe_dump(document))
    result = invoke("sync-all", "--config", str(config))
    assert result.exit_code == 2
    assert "mongodb.uri: " in result.stderr and uri not in result.stderr
    from_env = invoke("status", "--config", str(config), "--json", env={"MONGODB_URI": uri})
    assert from_env.exit_code == 2
    assert json.loads(from_env.stdout)["error"]["problems"][0].startswith("MONGODB_URI: ")


def test_an_invalid_environment_variable_is_named_as_typed(tmp_path: Path) -> None:
    env = {"HOSPITAL_1_ID": "central", "HOSPITAL_1_NAME": "Central", "HOSPITAL_1_DB_HOST": "db",
           "HOSPITAL_1_DB_USER": "u", "HOSPITAL_1_DB_PORT": "not-a-port"}  # fmt: skip
    result = invoke("sync-all", env=env | {"PASSPORT_SYNC_CONFIG": str(tmp_path / "none.yaml")})
    assert result.exit_code == 2
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    result = invoke("sync-all", "--config", str(empty), env=env)
    assert result.exit_code == 2
    assert "HOSPITAL_1_DB_PORT: Input should be a valid integer" in result.stderr
    assert "not-a-port" not in result.stderr


# -- status ---------------------------------------------------------------------------------------------------
def test_status_exit_codes_follow_what_it_shows(
    synced_patient: int, config: Path, tmp_path: Path, mongo_uri: str, mongo_db_name: str, openmrs: Any
) -> None:
    assert invoke("sync-all", "--config", str(config)).exit_code == 0
    healthy = invoke("status", "--config", str(config), "--json")
    assert healthy.exit_code == 0, healthy.stdout
    (status,) = json.loads(healthy.stdout)["hospitals"]
    for when in (status["last_run"]["at"], status["checkpoint"]["saved_at"]):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", when), when

    unreachable = hospital_entry(openmrs.name)
    unreachable["db"]["port"] = 1
    down = write_config(tmp_path / "down.yaml", mongo_uri, mongo_db_name, [unreachable])
    result = invoke("status", "--config", str(down))
    assert result.exit_code == 1
    assert "behind      unknown (OpenMRS unreachable)" in result.stdout

    failed = invoke("sync-all", "--config", str(down))
    assert failed.exit_code == 1
    assert json.loads(invoke("status", "--config", str(config), "--json").stdout)["exit_code"] == 1  # last run failed

    nobody = tmp_path / "nobody.yaml"
    nobody.write_text(f"mongodb: {{uri: '{mongo_uri}/{mongo_db_name}'}}\n")
    none = invoke("status", "--config", str(nobody))
    assert none.exit_code == 2 and "no enabled hospital is configured" in none.stderr


def test_status_fits_80_columns(synced_patient: int, config: Path, passport: Any) -> None:
    invoke("sync-all", "--config", str(config))
    result = invoke("status", "--config", str(config))
    assert result.exit_code == 0
    assert max(len(line) for line in result.stdout.splitlines()) <= 80
    assert "  last run    " in result.stdout and " ok, written 3, errors 0" in result.stdout


def test_status_json_reports_mongodb_down_inside_the_document(tmp_path: Path, openmrs: Any) -> None:
    result = invoke("status", "--config", str(_mongo_config(tmp_path, "mongodb://127.0.0.1:1", openmrs)), "--json")
    assert result.exit_code == 1
    assert "connection refused" in json.loads(result.stdout)["error"]["message"]


# -- reset-checkpoint prompt ----------------------------------------------------------------------------------
def test_declining_the_reset_prompt_says_so(
    synced_patient: int, config: Path, passport: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert invoke("sync-all", "--config", str(config)).exit_code == 0
    monkeypatch.setattr(cli, "stdin_is_terminal", lambda: True)
    declined = invoke("reset-checkpoint", "Central Hospital", "--config", str(config), input="n\n")
    assert declined.exit_code == 2
    assert "Central Hospital: checkpoint not reset (declined)" in declined.stderr
    assert passport.syncstatus.count_documents({}) == 1
    confirmed = invoke("reset-checkpoint", "Central Hospital", "--config", str(config), input="y\n")
    assert confirmed.exit_code == 0, confirmed.stderr
    assert passport.syncstatus.count_documents({}) == 0


# -- --dry-run ------------------------------------------------------------------------------------------------
def test_dry_run_counts_only_the_removals_the_real_run_makes(
    clinic: Clinic, synced_patient: int, config: Path, passport: Any, openmrs: Any
) -> None:
    stranger = clinic.patient("1000000000000009")  # not registered: parked, never written
    parked = clinic.visit(stranger)
    assert invoke("sync-all", "--config", str(config)).exit_code == 0
    written = openmrs.execute("SELECT obs_id FROM obs WHERE person_id = %s ORDER BY obs_id", (synced_patient,))
    voided = [written[0][0], parked[0]]
    openmrs.execute(
        "UPDATE obs SET voided = 1, voided_by = 1, date_voided = NOW(), void_reason = 'entered in error'"
        " WHERE obs_id IN (%s, %s)",
        tuple(voided),
    )
    dry = invoke("sync-all", "--config", str(config), "--dry-run", "--json")
    real = invoke("sync-all", "--config", str(config), "--json")
    assert real.exit_code == 0 and dry.exit_code == 0
    (would,) = json.loads(dry.stdout)["hospitals"]
    (did,) = json.loads(real.stdout)["hospitals"]
    assert did["removed"] == 1
    assert would["removed"] == did["removed"]
