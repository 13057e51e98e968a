"""A known password, given every way the tool accepts one, never appears in what the tool prints
(stdout, stderr, with and without --verbose and --json), in any exception it raises (the whole
chain, suppressed context included), nor in what it writes to MongoDB."""

from __future__ import annotations

import json
import subprocess
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pymongo
import pytest
import yaml

from passport_sync import service
from passport_sync.config import load_settings
from passport_sync.errors import ConfigError, PassportSyncError
from passport_sync.sink.passport import PassportStore
from passport_sync.source.openmrs import OpenMRSSource
from tests.conftest import MYSQL, OpenMRSDatabase, hospital_entry, register_patient
from tests.helpers import Clinic, synced
from tests.reliability.support import cli, cli_env, free_port

pytestmark = pytest.mark.reliability

SECRET = "Pw-4f9c1e-Secret"
NID = "4400000000001"
COMMANDS = [
    ["sync-all"],
    ["sync-patient", NID],
    ["status"],
    ["test-connection"],
    ["reset-checkpoint", "good", "--yes"],
]


def _hospitals(openmrs: OpenMRSDatabase, secret_file: Path) -> list[dict[str, Any]]:
    """One hospital that works, and one per way of giving a password, each failing to connect."""
    good = hospital_entry(openmrs.name, hospital_id="good", name="Good Hospital")
    inline = hospital_entry(openmrs.name, hospital_id="inline", name="Inline Password Hospital")
    inline["db"].update(user="ps_nobody", password=SECRET)  # wrong user/password: error 1045
    unknown = hospital_entry(openmrs.name, hospital_id="nohost", name="Unknown Host Hospital")
    unknown["db"].update(host="no-such-host.invalid", password=SECRET)
    from_env = hospital_entry(openmrs.name, hospital_id="envpw", name="Env Password Hospital")
    from_env["db"].update(user="ps_nobody", password=None, password_env="PS_RELIABILITY_DB_PASSWORD")
    from_file = hospital_entry(openmrs.name, hospital_id="filepw", name="File Password Hospital")
    from_file["db"].update(user="ps_nobody", password=None, password_file=str(secret_file))
    for entry in (from_env, from_file):
        del entry["db"]["password"]
    # One OpenMRS database is one hospital: the failing entries name databases of their own.
    for entry in (inline, from_env, from_file):
        entry["db"]["name"] = f"{openmrs.name}_{entry['id']}"
    return [good, inline, unknown, from_env, from_file]


def _config(path: Path, hospitals: list[dict[str, Any]], uri: str) -> Path:
    document = {
        "mongodb": {"uri": uri, "server_selection_timeout_ms": 300},
        "sync": {"retry": {"attempts": 2, "initial_wait_seconds": 0.01, "max_wait_seconds": 0.02}},
        "hospitals": hospitals,
    }
    path.write_text(yaml.safe_dump(document))
    path.chmod(0o600)
    return path


def _exception_texts(exc: BaseException, *, hidden: bool = True) -> list[str]:
    """Every text of an exception and of its chain: the causes and contexts a traceback shows, and
    with ``hidden`` also a context suppressed by ``raise … from None`` (kept on the object)."""
    texts = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        texts += [str(current), repr(current), *map(repr, current.args), getattr(current, "hint", "") or ""]
        texts += [str(p) for p in getattr(current, "problems", [])]
        texts.append("".join(traceback.format_exception(current)))
        shown_context = None if current.__suppress_context__ else current.__context__
        current = current.__cause__ or (current.__context__ if hidden else shown_context)
    return texts


def _config_errors(tmp_path: Path, bad_port_config: Path, reachable_config: Path) -> list[ConfigError]:
    """Configuration errors next to the password (the CLI prints exactly ConfigError.problems)."""
    broken = tmp_path / "broken.yaml"
    broken.write_text(f"hospitals:\n  - id: x\n    db: {{user: u, password: {SECRET}: oops}}\n")
    errors = []
    for path, environ in (
        (bad_port_config, {}),
        (broken, {}),
        (reachable_config, {"HOSPITAL_7_ID": "h7", "HOSPITAL_7_DB_PORT": "x", "HOSPITAL_7_DB_PASSWORD": SECRET}),
        (reachable_config, {"HOSPITAL_7_ID": "h7", "HOSPITAL_7_DB_PASSWORD": SECRET}),  # host, user missing
    ):
        with pytest.raises(ConfigError) as raised:
            load_settings(path, environ=environ)
        errors.append(raised.value)
    return errors


def test_the_password_appears_in_no_output_exception_or_document(
    openmrs: OpenMRSDatabase,
    passport: Any,
    mongo_uri: str,
    mongo_db_name: str,
    tmp_path: Path,
    figures: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clinic = Clinic(openmrs)
    person = clinic.patient(NID)
    register_patient(passport, NID)
    clinic.visit(person)
    secret_file = tmp_path / "db-password"
    secret_file.write_text(SECRET + "\n")
    secret_file.chmod(0o600)
    hospitals = _hospitals(openmrs, secret_file)
    host_port = mongo_uri.split("://", 1)[1]
    plain_uri = f"{mongo_uri}/{mongo_db_name}"
    env = cli_env(
        PS_RELIABILITY_DB_PASSWORD=SECRET,
        # A hospital from the seed's environment variables, with the password among them.
        HOSPITAL_7_ID="envhospital",
        HOSPITAL_7_NAME="Env Variables Hospital",
        HOSPITAL_7_DB_HOST=MYSQL["host"],
        HOSPITAL_7_DB_PORT=str(MYSQL["port"]),
        HOSPITAL_7_DB_NAME=f"{openmrs.name}_env",  # one OpenMRS database is one hospital
        HOSPITAL_7_DB_USER="ps_nobody",
        HOSPITAL_7_DB_PASSWORD=SECRET,
    )
    # MongoDB: reachable without credentials (the sync runs and logs), reachable with a wrong
    # user:password (authentication fails), unreachable with credentials, and a URI pymongo
    # rejects (unescaped "@" in the password).
    mongo = {
        "reachable": (_config(tmp_path / "reachable.yaml", hospitals, plain_uri), {}),
        "wrong credentials": (
            _config(tmp_path / "auth.yaml", hospitals, plain_uri),
            {"MONGODB_URI": f"mongodb://psuser:{SECRET}@{host_port}/{mongo_db_name}"},
        ),
        "unreachable": (
            _config(tmp_path / "down.yaml", hospitals, f"mongodb://psuser:{SECRET}@127.0.0.1:{free_port()}/x"),
            {},
        ),
        "invalid URI": (
            _config(tmp_path / "invalid.yaml", hospitals, f"mongodb://psuser:{SECRET}@x@{host_port}/x"),
            {},
        ),
    }
    runs: list[tuple[str, list[str], dict[str, str]]] = []
    for variant, (config, extra) in mongo.items():
        # Plain output, and DEBUG logs on stderr with the JSON document on stdout.
        flag_sets = [[], ["--verbose", "--json"]] if variant == "reachable" else [["--verbose", "--json"]]
        # Every command with each MySQL password; with MongoDB credentials, a sync (which fails at its
        # first write) and test-connection (which pings); a URI pymongo rejects fails before any command.
        commands = {"reachable": COMMANDS, "invalid URI": COMMANDS[:1]}.get(variant, [COMMANDS[0], COMMANDS[3]])
        for command in commands:
            for flags in flag_sets:
                runs.append((variant, [*command, "--config", str(config), *flags], extra))
    # A configuration error next to the password (broken YAML and bad env values: in-process below).
    bad_port = [dict(h, db=dict(h["db"])) for h in hospitals]
    bad_port[1]["db"]["port"] = 99999
    bad_port_config = _config(tmp_path / "p.yaml", bad_port, plain_uri)
    runs.append(("config: port 99999", ["sync-all", "--config", str(bad_port_config), "--verbose"], {}))

    def run(args: list[str], extra: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(cli(*args), capture_output=True, env={**env, **extra}, cwd=tmp_path, timeout=120)

    with ThreadPoolExecutor(max_workers=6) as pool:
        done = list(pool.map(lambda r: run(r[1], r[2]), runs))
    leaks: list[str] = []
    exit_codes: dict[str, set[int]] = {}
    for (variant, args, _), proc in zip(runs, done, strict=True):
        exit_codes.setdefault(f"{variant}: {args[0]}", set()).add(proc.returncode)
        for stream, text in (("stdout", proc.stdout), ("stderr", proc.stderr)):
            if SECRET.encode() in text:
                leaks.append(f"{variant} {' '.join(args)} {stream}: {text.decode(errors='replace')[-600:]}")
        assert b"Traceback" not in proc.stderr, (variant, args, proc.stderr.decode()[-2000:])
    assert leaks == []
    # The runs did fail where they should, so the error paths were really taken.
    assert exit_codes["reachable: sync-all"] == {1}  # the good hospital synced, the four others failed
    assert exit_codes["reachable: test-connection"] == {1}
    assert exit_codes["wrong credentials: test-connection"] == {1}
    assert exit_codes["unreachable: sync-all"] == {1}
    assert exit_codes["invalid URI: sync-all"] == {1}
    assert exit_codes["config: port 99999: sync-all"] == {2}
    assert passport.medicalrecords.count_documents(synced({"openmrsData.hospitalId": "good"})) == 2

    # Exceptions raised by the library API, with their whole chain.
    monkeypatch.setenv("PS_RELIABILITY_DB_PASSWORD", SECRET)  # password_env is read when connecting
    texts: list[str] = []
    reachable = load_settings(mongo["reachable"][0], environ={"PS_RELIABILITY_DB_PASSWORD": SECRET})
    for hospital in reachable.hospitals[1:]:
        with OpenMRSSource(hospital, reachable.sync.retry) as source:
            with pytest.raises(PassportSyncError) as raised:
                source.connect()
            texts += _exception_texts(raised.value)
    for variant in ("unreachable", "invalid URI"):
        settings = load_settings(mongo[variant][0], environ={"PS_RELIABILITY_DB_PASSWORD": SECRET})
        with pytest.raises(PassportSyncError) as raised:
            PassportStore.connect(settings).ping()
        texts += _exception_texts(raised.value)
    wrong = load_settings(
        mongo["reachable"][0],
        environ={
            "PS_RELIABILITY_DB_PASSWORD": SECRET,
            "MONGODB_URI": f"mongodb://psuser:{SECRET}@{host_port}/{mongo_db_name}",
        },
    )
    with pytest.raises(PassportSyncError) as raised:
        PassportStore.connect(wrong).indexes.ensure()
    texts += _exception_texts(raised.value)
    # Configuration errors: what a traceback or the CLI would show (the hidden context: see below).
    for error in _config_errors(tmp_path, bad_port_config, mongo["reachable"][0]):
        texts += _exception_texts(error, hidden=False)
    texts += [repr(reachable), str(reachable), repr(reachable.hospitals[1]), repr(wrong.mongodb)]
    store = PassportStore.connect(reachable)
    try:
        reports = service.sync_all(reachable, store, service.select_hospitals(reachable, None))
        texts += [json.dumps(r.as_dict(), default=str) for r in reports]
    finally:
        store.close()
    leaked = [t for t in texts if SECRET in t]
    assert leaked == []

    # Nothing the tool wrote to MongoDB holds it (run summaries carry the error messages).
    client: pymongo.MongoClient[Any] = pymongo.MongoClient(mongo_uri)
    try:
        db = client[mongo_db_name]
        dump = json.dumps({c: list(db[c].find()) for c in db.list_collection_names()}, default=str)
    finally:
        client.close()
    assert SECRET not in dump
    assert passport.auditlogs.count_documents({"changes.errorCount": {"$gt": 0}}) >= 4  # errors were written

    figures.record(
        "test_secrets",
        "known password in YAML, env, file, MONGODB_URI; every command",
        injected=len(runs),
        expected=2,  # the good hospital's records
        found=passport.medicalrecords.count_documents(synced({"openmrsData.hospitalId": "good"})),
        duplicated=0,
        missing=0,
        outcome=f"password shown 0 times ({len(runs)} command runs, {len(texts)} exception texts)",
        leaks=len(leaks) + len(leaked) + int(SECRET in dump),
    )


def test_configuration_errors_carry_no_password_even_in_their_hidden_context(tmp_path: Path) -> None:
    entry = {"id": "x", "name": "Hospital X", "db": {"host": "h", "user": "u", "password": SECRET, "port": 99999}}
    config = _config(tmp_path / "p.yaml", [entry], "mongodb://127.0.0.1:1/x")
    texts = [t for e in _config_errors(tmp_path, config, config) for t in _exception_texts(e, hidden=True)]
    assert [t for t in texts if SECRET in t] == []
