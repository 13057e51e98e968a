"""The operations files: systemd units, scripts/install-systemd.sh and scripts/create-readonly-user.sql.

The units are read line by line (systemd allows repeated keys, which configparser would merge),
checked with ``systemd-analyze verify`` when this machine has it, and installed by the script into
temporary directories. The SQL runs against the test MariaDB in a throwaway database
``pstest_ops_<hex>`` with a throwaway user ``pstest_ro_<hex>``, both dropped afterwards.
"""

from __future__ import annotations

import configparser
import json
import re
import secrets
import shutil
import stat
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pymysql
import pytest
from typer.testing import CliRunner

from passport_sync import service
from passport_sync.cli import app
from passport_sync.config import load_settings
from passport_sync.source.queries import PROBED_PROPERTIES, SCHEMA_QUERY
from passport_sync.synthetic.builder import OpenMRSBuilder, load_openmrs_schema
from tests.conftest import MYSQL, hospital_entry, mysql_connect
from tests.helpers import write_config

REPO = Path(__file__).resolve().parent.parent
SYSTEMD = REPO / "systemd"
INSTALL_SCRIPT = REPO / "scripts" / "install-systemd.sh"
READONLY_SQL = REPO / "scripts" / "create-readonly-user.sql"
UNIT_FILES = ("passport-sync.service", "passport-sync.timer", "passport-sync@.service", "passport-sync@.timer")
SERVICES = ("passport-sync.service", "passport-sync@.service")
TIMERS = ("passport-sync.timer", "passport-sync@.timer")
BINARY = "/usr/local/bin/passport-sync"
CONFIG = "/etc/passport-sync/hospitals.yaml"

Unit = dict[str, dict[str, list[str]]]
runner = CliRunner()


def parse_unit(path: Path) -> Unit:
    """Section -> key -> every value given, in order (systemd keys may repeat; "" resets a list)."""
    unit: Unit = {}
    section: dict[str, list[str]] | None = None
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        assert not line.endswith("\\"), f"{path.name}:{number}: keep directives on one line"
        if line.startswith("["):
            assert line.endswith("]"), f"{path.name}:{number}: bad section header {line!r}"
            section = unit.setdefault(line[1:-1], {})
            continue
        assert section is not None, f"{path.name}:{number}: directive before the first section"
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}:{number}: not KEY=value: {line!r}"
        section.setdefault(key.strip(), []).append(value.strip())
    return unit


def one(unit: Unit, section: str, key: str) -> str:
    values = unit.get(section, {}).get(key, [])
    assert len(values) == 1, f"[{section}] {key}: expected one value, got {values}"
    return values[0]


def seconds(span: str) -> float:
    """A systemd time span such as "6h", "1h 30min", "90s" or "300" in seconds."""
    units = {"": 1, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hr": 3600, "d": 86400}
    total = 0.0
    for amount, unit in re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]*)", span):
        total += float(amount) * units[unit]
    return total


@pytest.fixture(scope="module")
def units() -> dict[str, Unit]:
    return {name: parse_unit(SYSTEMD / name) for name in UNIT_FILES}


# --- (a) the unit files -----------------------------------------------------------------------


@pytest.mark.parametrize("name", UNIT_FILES)
def test_configparser_reads_the_unit(name: str) -> None:
    parser = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # systemd keys are case-sensitive
    parser.read(SYSTEMD / name, encoding="utf-8")
    kind = "Service" if name.endswith(".service") else "Timer"
    assert parser.sections() == ["Unit", kind] + (["Install"] if kind == "Timer" else [])
    assert parser["Unit"]["Description"]


HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectKernelLogs": "yes",
    "ProtectControlGroups": "yes",
    "RestrictNamespaces": "yes",
    "LockPersonality": "yes",
    "MemoryDenyWriteExecute": "yes",
    "SystemCallArchitectures": "native",
    "CapabilityBoundingSet": "",
}


@pytest.mark.parametrize("name", SERVICES)
def test_service_runs_once_as_the_dedicated_user_hardened(units: dict[str, Unit], name: str) -> None:
    service = units[name]["Service"]
    unit = units[name]
    assert one(unit, "Service", "Type") == "oneshot"
    assert one(unit, "Service", "User") == "passport-sync"
    assert one(unit, "Service", "Group") == "passport-sync"
    assert "DynamicUser" not in service
    for key, value in HARDENING.items():
        assert one(unit, "Service", key) == value, key
    families = one(unit, "Service", "RestrictAddressFamilies").split()
    assert sorted(families) == ["AF_INET", "AF_INET6", "AF_UNIX"]
    # No Install section: the timer starts the service, it is never enabled by itself.
    assert "Install" not in unit


@pytest.mark.parametrize("name", SERVICES)
def test_service_lock_exit_code_timeout_and_environment(units: dict[str, Unit], name: str) -> None:
    unit = units[name]
    assert "3" in one(unit, "Service", "SuccessExitStatus").split()
    # 1 (a hospital failed) and 2 (configuration error) must stay failures.
    assert not {"1", "2"} & set(one(unit, "Service", "SuccessExitStatus").split())
    assert seconds(one(unit, "Service", "TimeoutStartSec")) >= 3 * 3600, "the first backfill takes hours"
    assert one(unit, "Service", "EnvironmentFile") == "-/etc/passport-sync/env"
    assert "network-online.target" in one(unit, "Unit", "After").split()


def test_all_hospitals_service_command_and_credential_examples(units: dict[str, Unit]) -> None:
    unit = units["passport-sync.service"]
    assert one(unit, "Service", "ExecStart") == f"{BINARY} sync-all --config {CONFIG}"
    text = (SYSTEMD / "passport-sync.service").read_text(encoding="utf-8")
    examples = re.findall(r"^#\s*LoadCredential=([\w.-]+):(\S+)$", text, flags=re.MULTILINE)
    assert examples, "commented LoadCredential= examples, one per hospital"
    for name, path in examples:
        assert name.endswith("-db-password")
        assert path == f"/etc/passport-sync/credentials/{name}"
    assert "${CREDENTIALS_DIRECTORY}/" in text, "the comment shows the matching password_file"


def test_template_service_syncs_its_instance_hospital(units: dict[str, Unit]) -> None:
    unit = units["passport-sync@.service"]
    command = one(unit, "Service", "ExecStart").split()
    assert command[:2] == [BINARY, "sync-all"]
    assert command[command.index("--hospital") + 1] == "%i"
    assert command[command.index("--config") + 1] == CONFIG
    assert one(unit, "Service", "LoadCredential") == ("%i-db-password:/etc/passport-sync/credentials/%i-db-password")


def test_template_is_as_hardened_as_the_all_hospitals_service(units: dict[str, Unit]) -> None:
    per_instance = {"ExecStart", "LoadCredential", "SyslogIdentifier"}
    single = {k: v for k, v in units["passport-sync.service"]["Service"].items() if k not in per_instance}
    template = {k: v for k, v in units["passport-sync@.service"]["Service"].items() if k not in per_instance}
    assert template == single


@pytest.mark.parametrize(("name", "service"), list(zip(TIMERS, SERVICES, strict=True)))
def test_timer_every_five_minutes(units: dict[str, Unit], name: str, service: str) -> None:
    unit = units[name]
    assert one(unit, "Timer", "OnCalendar") == "*:0/5"
    assert one(unit, "Timer", "Persistent") == "true"
    assert one(unit, "Timer", "RandomizedDelaySec") == "30"
    assert one(unit, "Timer", "AccuracySec") == "1s"
    assert one(unit, "Timer", "Unit") == service.replace("@.", "@%i.")
    assert one(unit, "Install", "WantedBy") == "timers.target"


# --- (b) systemd-analyze ----------------------------------------------------------------------


@pytest.fixture
def unit_copies(tmp_path: Path) -> Path:
    """The units in a temp directory, ExecStart pointing at a stub (verify wants an executable)."""
    stub = tmp_path / "passport-sync"
    stub.write_text("#!/bin/sh\nexit 0\n", encoding="utf-8")
    stub.chmod(0o755)
    target = tmp_path / "units"
    target.mkdir()
    for name in UNIT_FILES:
        text = (SYSTEMD / name).read_text(encoding="utf-8")
        (target / name).write_text(text.replace(BINARY, str(stub)), encoding="utf-8")
    return target


def systemd_analyze(*args: str) -> subprocess.CompletedProcess[str]:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    return subprocess.run(["systemd-analyze", *args], capture_output=True, text=True, timeout=60, check=False)


def test_systemd_analyze_verify(unit_copies: Path) -> None:
    names = [
        "passport-sync.service",
        "passport-sync.timer",
        "passport-sync@central.service",
        "passport-sync@central.timer",
    ]
    result = systemd_analyze("verify", *(str(unit_copies / n) for n in names))
    # verify exits 0 even for unknown keys or bad values; it only prints them.
    complaints = [line for line in (result.stdout + result.stderr).splitlines() if "passport-sync" in line]
    assert result.returncode == 0, result.stderr
    assert complaints == []


def test_systemd_analyze_verify_would_complain(unit_copies: Path) -> None:
    """Guards the test above: a typo in the template is reported through an instance name."""
    template = unit_copies / "passport-sync@.service"
    template.write_text(template.read_text(encoding="utf-8").replace("Type=oneshot", "Type=oneshott"), "utf-8")
    result = systemd_analyze("verify", str(unit_copies / "passport-sync@central.service"))
    assert "oneshott" in result.stdout + result.stderr


@pytest.mark.parametrize("name", ["passport-sync.service", "passport-sync@central.service"])
def test_systemd_analyze_security_exposure_is_low(unit_copies: Path, name: str) -> None:
    result = systemd_analyze("security", "--offline=yes", "--threshold=25", "--no-pager", str(unit_copies / name))
    if "--offline" in result.stderr and "unrecognized" in result.stderr:
        pytest.skip("systemd-analyze security --offline needs systemd 250+")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr


# --- (c) scripts/install-systemd.sh -------------------------------------------------------------


def test_install_script_syntax() -> None:
    subprocess.run(["bash", "-n", str(INSTALL_SCRIPT)], check=True)
    if shutil.which("shellcheck"):
        result = subprocess.run(["shellcheck", str(INSTALL_SCRIPT)], capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stdout


@pytest.fixture
def install(tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    example = REPO / "hospitals.example.yaml"
    if not example.is_file():  # written elsewhere; a stand-in until then
        example = tmp_path / "hospitals.example.yaml"
        example.write_text("hospitals: []  # stand-in\n", encoding="utf-8")

    def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
        environ = {
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "SYSTEMD_DIR": str(tmp_path / "systemd"),
            "CONFIG_DIR": str(tmp_path / "etc"),
            "EXAMPLE_CONFIG": str(example),
            "SKIP_USER": "1",
            "SKIP_SYSTEMCTL": "1",
            **env,
        }
        return subprocess.run(
            ["bash", str(INSTALL_SCRIPT), *args], env=environ, capture_output=True, text=True, timeout=60, check=False
        )

    run.example = example  # type: ignore[attr-defined]
    return run


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_install_twice_then_uninstall(tmp_path: Path, install: Any) -> None:
    systemd_dir, config_dir = tmp_path / "systemd", tmp_path / "etc"

    first = install()
    assert first.returncode == 0, first.stderr
    for name in UNIT_FILES:
        installed = systemd_dir / name
        assert installed.read_bytes() == (SYSTEMD / name).read_bytes()
        assert mode(installed) == 0o644
    assert mode(config_dir) == 0o750
    assert mode(config_dir / "credentials") == 0o700
    config = config_dir / "hospitals.yaml"
    assert config.read_bytes() == install.example.read_bytes()
    assert mode(config) == 0o640
    assert mode(config_dir / "env") == 0o600
    assert "MONGODB_URI" in (config_dir / "env").read_text(encoding="utf-8")
    assert "systemctl enable --now passport-sync.timer" in first.stdout
    assert "systemctl enable --now passport-sync@central.timer" in first.stdout

    # Idempotent: the operator's edits survive a second run; nothing else changes.
    config.write_text("hospitals: []  # edited\n", encoding="utf-8")
    (config_dir / "env").write_text("MONGODB_URI=mongodb://db/pp\n", encoding="utf-8")
    second = install()
    assert second.returncode == 0, second.stderr
    assert config.read_text(encoding="utf-8") == "hospitals: []  # edited\n"
    assert (config_dir / "env").read_text(encoding="utf-8") == "MONGODB_URI=mongodb://db/pp\n"
    assert mode(config) == 0o640
    assert mode(config_dir) == 0o750
    assert second.stdout.count("unchanged ") == len(UNIT_FILES)
    assert sorted(p.name for p in systemd_dir.iterdir()) == sorted(UNIT_FILES)

    removed = install("--uninstall")
    assert removed.returncode == 0, removed.stderr
    assert list(systemd_dir.iterdir()) == []
    assert config.is_file(), "uninstall keeps the configuration"


def test_install_without_example_config_says_so(tmp_path: Path, install: Any) -> None:
    result = install(EXAMPLE_CONFIG=str(tmp_path / "missing.yaml"))
    assert result.returncode == 0, result.stderr
    assert "no example configuration" in result.stderr
    assert "missing.yaml" in result.stderr
    assert not (tmp_path / "etc" / "hospitals.yaml").exists()
    assert (tmp_path / "systemd" / "passport-sync.service").is_file()


def test_install_says_how_to_install_the_program(install: Any) -> None:
    result = install()
    if Path(BINARY).exists():
        pytest.skip(f"{BINARY} exists on this machine")
    assert "pip install" in result.stderr
    assert f"ln -s /opt/passport-sync/bin/passport-sync {BINARY}" in result.stderr


def test_install_usage(install: Any) -> None:
    assert install("--help").returncode == 0
    wrong = install("--frobnicate")
    assert wrong.returncode == 2
    assert "unknown argument --frobnicate" in wrong.stderr


# --- (d) scripts/create-readonly-user.sql -------------------------------------------------------
# Run the way an operator runs it: through the mysql command-line client (the script uses
# DELIMITER and a compound statement), with the values at its top filled in.

SOURCE = REPO / "passport_sync" / "source"
# The source writes SQL keywords in capitals; clinical sources name their table as table="...".
_TABLE = re.compile(r"\b(?:FROM|JOIN)\s+`?([a-z_]+)`?|\btable=\"([a-z_]+)\"")
OPENMRS_SCHEMA = REPO / "passport_sync" / "synthetic" / "openmrs_schema.sql"


def tables_the_sync_reads() -> set[str]:
    """Every OpenMRS table the SQL of passport_sync/source/ names (after FROM or JOIN, or as a
    clinical source's table): the user the script creates must be able to read each of them."""
    openmrs_tables = set(re.findall(r"CREATE TABLE (?:IF NOT EXISTS )?`?(\w+)`?", OPENMRS_SCHEMA.read_text()))
    named: set[str] = set()
    for path in SOURCE.glob("*.py"):
        for match in _TABLE.finditer(path.read_text(encoding="utf-8")):
            named.add(match.group(1) or match.group(2))
    return named & openmrs_tables


def granted_tables() -> set[str]:
    text = READONLY_SQL.read_text(encoding="utf-8")
    block = text.split("-- readable-tables-begin", 1)[1].split("-- readable-tables-end", 1)[0]
    return set(re.findall(r"'([a-z_]+)'", block))


def granted_properties() -> tuple[str, ...]:
    text = READONLY_SQL.read_text(encoding="utf-8")
    block = text.split("-- global-properties-begin", 1)[1].split("-- global-properties-end", 1)[0]
    return tuple(re.findall(r"''([a-z_.]+)''", block))


def test_the_script_grants_every_table_the_sync_reads_and_no_other() -> None:
    reads = tables_the_sync_reads()
    assert {"obs", "patient_identifier", "conditions", "drug_order"} <= reads  # the scan finds the queries
    assert granted_tables() == reads
    # global_property only through the view of the properties the sync reads, never the whole table.
    assert "global_property" not in granted_tables()
    assert granted_properties() == PROBED_PROPERTIES
    assert "users" not in granted_tables()


class ReadOnlySetup:
    def __init__(self) -> None:
        self.database = f"pstest_ops_{secrets.token_hex(4)}"
        self.user = f"pstest_ro_{secrets.token_hex(4)}"
        self.password = secrets.token_urlsafe(18)
        self.host = "127.0.0.1"

    def script(self, **values: str | None) -> str:
        """The SQL file aimed at the throwaway database and user, with its values filled in."""
        values = {"sync_user": self.user, "sync_host": self.host, "sync_password": self.password} | values
        text = READONLY_SQL.read_text(encoding="utf-8")
        text, count = re.subn(r"^USE openmrs;$", f"USE `{self.database}`;", text, flags=re.MULTILINE)
        assert count == 1
        for name, value in values.items():
            literal = "NULL" if value is None else "'" + value + "'"
            text, count = re.subn(rf"^SET @{name} = [^;]*;", f"SET @{name} = {literal};", text, flags=re.MULTILINE)
            assert count == 1, name
        return text

    def run_script(self, **values: str | None) -> subprocess.CompletedProcess[str]:
        client = shutil.which("mariadb") or shutil.which("mysql")
        assert client
        command = [client, "--no-defaults", "-h", MYSQL["host"], "-P", str(MYSQL["port"]), "-u", MYSQL["user"]]
        if MYSQL["password"]:
            command.append(f"-p{MYSQL['password']}")
        return subprocess.run(
            command, input=self.script(**values), capture_output=True, text=True, timeout=120, check=False
        )

    def connect_as_user(self) -> Any:
        return pymysql.connect(
            host=MYSQL["host"], port=MYSQL["port"], user=self.user, password=self.password, database=self.database
        )

    def indexes(self, admin: Any) -> dict[tuple[str, str], str]:
        """(table, index) -> its first column, for obs and patient_identifier."""
        with admin.cursor() as cursor:
            cursor.execute(
                "SELECT TABLE_NAME, INDEX_NAME, COLUMN_NAME FROM information_schema.STATISTICS"
                " WHERE TABLE_SCHEMA = %s AND TABLE_NAME IN ('obs', 'patient_identifier') AND SEQ_IN_INDEX = 1",
                (self.database,),
            )
            return {(table, index): column for table, index, column in cursor.fetchall()}


@pytest.fixture
def readonly() -> Iterator[tuple[ReadOnlySetup, Any]]:
    if not (shutil.which("mariadb") or shutil.which("mysql")):
        pytest.skip("the mysql command-line client is not installed")
    admin = mysql_connect()
    with admin.cursor() as cursor:
        cursor.execute("SELECT VERSION()")
        (version,) = cursor.fetchone()
    if "mariadb" not in version.lower():
        admin.close()
        pytest.skip(f"the script is written for MariaDB (compound statements); server is {version}")
    setup = ReadOnlySetup()
    try:
        yield setup, admin
    finally:
        with admin.cursor() as cursor:
            for host in ("127.0.0.1", "%"):
                cursor.execute(f"DROP USER IF EXISTS '{setup.user}'@'{host}'")
            cursor.execute(f"DROP DATABASE IF EXISTS `{setup.database}`")
        admin.close()


def test_the_script_refuses_to_run_with_its_placeholders_or_a_wildcard_host(
    readonly: tuple[ReadOnlySetup, Any],
) -> None:
    setup, admin = readonly
    load_openmrs_schema(admin, setup.database)
    for values, message in (
        ({"sync_host": None}, "set @sync_host and @sync_password at the top of the script first"),
        ({"sync_password": None}, "set @sync_host and @sync_password at the top of the script first"),
        ({"sync_host": "%"}, "@sync_host must name the passport-sync host, not anywhere (%)"),
        ({"sync_password": "short"}, "@sync_password is too short"),
    ):
        result = setup.run_script(**values)
        assert result.returncode != 0 and message in result.stderr, (values, result.stderr)
    with admin.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM mysql.user WHERE User = %s", (setup.user,))
        assert cursor.fetchone() == (0,)
    assert "idx_obs_date_voided" not in {index for _, index in setup.indexes(admin)}


def test_readonly_user_reads_what_the_sync_reads_and_nothing_else(
    readonly: tuple[ReadOnlySetup, Any], tmp_path: Path, mongo_uri: str, mongo_db_name: str
) -> None:
    setup, admin = readonly
    load_openmrs_schema(admin, setup.database)
    with admin.cursor() as cursor:
        cursor.execute(f"USE `{setup.database}`")
        cursor.execute("DELETE FROM global_property WHERE property IN ('default_locale', 'mail.password')")
        for name, value in (("default_locale", "fr"), ("mail.password", "a-mail-secret")):
            cursor.execute(
                "INSERT INTO global_property (property, property_value, uuid) VALUES (%s, %s, UUID())", (name, value)
            )
    before = setup.indexes(admin)

    for _ in range(2):  # safe to run again
        result = setup.run_script()
        assert result.returncode == 0, result.stderr

    # Only the void query's index is new: OpenMRS indexes obs.person_id and
    # patient_identifier.identifier already, and no other index is created.
    added = {key: column for key, column in setup.indexes(admin).items() if key not in before}
    assert added == {("obs", "idx_obs_date_voided"): "date_voided"}

    conn = setup.connect_as_user()
    try:
        with conn.cursor() as cursor:
            for table in sorted(granted_tables()):
                cursor.execute(f"SELECT COUNT(*) FROM `{table}`")
            cursor.execute("SELECT property, property_value FROM passport_sync_global_property ORDER BY property")
            properties = dict(cursor.fetchall())
            for statement in (
                "SELECT password, salt, secret_answer FROM users",
                "SELECT property_value FROM global_property WHERE property = 'mail.password'",
                "INSERT INTO obs (person_id, concept_id, obs_datetime, date_created, creator, uuid)"
                " VALUES (1, 1, NOW(), NOW(), 1, UUID())",
                "UPDATE obs SET voided = 1",
                "DELETE FROM patient_identifier",
            ):
                with pytest.raises(pymysql.err.OperationalError) as denied:
                    cursor.execute(statement)
                assert denied.value.args[0] in (1142, 1143), statement
            cursor.execute(*SCHEMA_QUERY)
            columns = set(cursor.fetchall())
    finally:
        conn.close()
    assert {("obs", "date_voided"), ("patient_identifier", "identifier"), ("concept_name", "name")} <= columns
    assert not {table for table, _ in columns} & {"users", "person_attribute", "global_property"}
    # Only the properties the sync reads, never the secrets beside them.
    assert "mail.password" not in properties and set(properties) <= set(PROBED_PROPERTIES)
    assert properties["default_locale"] == "fr"

    # The real thing: test-connection and a sync as that user.
    builder = OpenMRSBuilder(admin)
    weight = builder.concept("Weight (kg)", datatype="Numeric", concept_class="Test", units="kg")
    builder.obs(builder.patient(national_id="1199780012345678"), weight, value_numeric=61)
    entry = hospital_entry(setup.database)
    entry["db"].update(user=setup.user, password=setup.password)
    config = write_config(tmp_path / "hospitals.yaml", mongo_uri, mongo_db_name, [entry])
    checked = runner.invoke(app, ["test-connection", "--config", str(config), "--json"], env={})
    checks = {c["check"]: c for c in json.loads(checked.stdout)["results"][0]["checks"]}
    assert checks["read-only user"]["detail"] == "SELECT only"
    assert all(c["ok"] for c in checks.values()), checks
    synced = runner.invoke(app, ["sync-all", "--config", str(config), "--json"], env={})
    assert synced.exit_code == 0, synced.stdout + synced.stderr
    assert json.loads(synced.stdout)["hospitals"][0]["read"] == 1
    # Reconciliation's checksums read what the records show from other tables, the view included.
    reconciled = runner.invoke(app, ["reconcile", "--config", str(config), "--json"], env={})
    assert reconciled.exit_code == 0, reconciled.stdout + reconciled.stderr
    # The sync reads the properties through the view (the run's probe and the per-connection read).
    settings = load_settings(config, environ={})
    with service.default_source(settings.hospitals[0], settings) as source:
        assert source.default_locale() == "fr"
        assert source.probe([]).now is not None and source.default_locale() == "fr"


# --- (e) the wheel ----------------------------------------------------------------------------------


def test_the_wheel_carries_the_script_units_and_example(tmp_path: Path) -> None:
    """pip install puts what the README and the hints point to under share/passport-sync/, laid
    out as in the repository, so share/passport-sync/scripts/install-systemd.sh finds the units."""
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", str(tmp_path), str(REPO)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("passport_sync-*.whl")
    prefix = re.compile(r"^passport_sync-[^/]+\.data/data/share/passport-sync/")
    shipped = {prefix.sub("", name) for name in zipfile.ZipFile(wheel).namelist() if prefix.match(name)}
    expected = {"hospitals.example.yaml", "scripts/create-readonly-user.sql", "scripts/install-systemd.sh"}
    assert shipped == expected | {f"systemd/{unit}" for unit in UNIT_FILES}
