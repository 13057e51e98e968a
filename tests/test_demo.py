"""``passport-sync demo`` end to end: the test MariaDB, and MongoDB either given or embedded."""

from __future__ import annotations

import json
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pymongo
import pytest
from typer.testing import CliRunner

from passport_sync.cli import app
from passport_sync.demo.run import HOSPITALS, demo_patients
from passport_sync.parking import NOT_IN_PASSPORT
from passport_sync.synthetic.mysql import parse_mysql_url
from tests.conftest import MYSQL, mysql_connect
from tests.helpers import synced as single_rows

runner = CliRunner()
CATEGORIES = {"condition", "test", "medication", "visit", "image"}
HOSPITAL_NAMES = [h.name for h in HOSPITALS]


def mysql_url() -> str:
    password = f":{quote(MYSQL['password'], safe='')}" if MYSQL["password"] else ""
    return f"mysql://{quote(MYSQL['user'], safe='')}{password}@{MYSQL['host']}:{MYSQL['port']}"


def databases(prefix: str) -> list[str]:
    return [f"{prefix}_{h.key}" for h in HOSPITALS]


def existing_databases(prefix: str) -> set[str]:
    conn = mysql_connect()
    with conn.cursor() as cursor:
        cursor.execute("SHOW DATABASES")
        names = {row[0] for row in cursor.fetchall()}
    conn.close()
    return names & set(databases(prefix))


def query(database: str, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
    conn = mysql_connect(database)
    with conn.cursor() as cursor:
        cursor.execute(sql, params or None)
        rows = list(cursor.fetchall())
    conn.close()
    return rows


@pytest.fixture
def prefix() -> Iterator[str]:
    name = f"pstest_demo_{secrets.token_hex(3)}"
    yield name
    conn = mysql_connect()
    with conn.cursor() as cursor:
        for database in databases(name):
            cursor.execute(f"DROP DATABASE IF EXISTS `{database}`")
    conn.close()


@pytest.fixture
def mongo(mongo_uri: str) -> Iterator[Any]:
    """A new, empty MongoDB database: the demo makes its own Patient Passport there."""
    client: pymongo.MongoClient[Any] = pymongo.MongoClient(mongo_uri)
    name = f"pstest_{secrets.token_hex(4)}"
    yield client[name]
    client.drop_database(name)
    client.close()


def demo(prefix: str, demo_dir: Path, *args: str) -> Any:
    return runner.invoke(
        app, ["demo", "--mysql-url", mysql_url(), "--prefix", prefix, "--demo-dir", str(demo_dir), *args]
    )


def summary_rows(stdout: str) -> dict[str, list[str]]:
    """Hospital name -> the cells of its row in the plain-text sync summary."""
    lines = stdout.split("passport-sync: sync summary\n", 1)[1].splitlines()[1:4]
    rows = {}
    for line in lines:
        for name in HOSPITAL_NAMES:
            if line.startswith(name):
                rows[name] = line[len(name) :].split()
    return rows


def assert_no_identity(output: str) -> None:
    for patient in demo_patients():
        assert patient.national_id not in output
        assert f"{patient.given} {patient.family}" not in output


def test_demo_end_to_end_with_a_given_mongodb(prefix: str, mongo: Any, mongo_uri: str, tmp_path: Path) -> None:
    demo_dir = tmp_path / "demo"
    uri = f"{mongo_uri}/{mongo.name}"

    first = demo(prefix, demo_dir, "--mongodb-uri", uri)
    assert first.exit_code == 0, first.output
    rows = summary_rows(first.stdout)
    assert sorted(rows) == sorted(HOSPITAL_NAMES)
    assert all(cells[0] == "ok" and int(cells[2]) > 0 for cells in rows.values())  # Outcome, Written
    assert int(rows["District Hospital"][6]) > 0  # Parked
    assert "demo patient 30 is not registered in Patient Passport" in first.stdout
    assert "demo patient 1: synced history" in first.stdout
    assert f"passport-sync status --config {demo_dir / 'hospitals.yaml'}" in first.stdout
    assert_no_identity(first.output)

    # What it wrote: every category, one record per live observation of a registered patient.
    records = list(mongo.medicalrecords.find(single_rows({}), {"type": 1, "openmrsData": 1, "data": 1}))
    assert {r["type"] for r in records} == CATEGORIES
    units = {r["openmrsData"].get("units") for r in records}
    assert {"kg", "°C", "mmHg"} <= units
    assert any(r["openmrsData"].get("groupUuid") for r in records)
    assert any(r["openmrsData"].get("previousVersionUuid") for r in records)  # the edited obs
    assert any(r["data"].get("testStatus") == "Abnormal" for r in records)
    assert any(r["openmrsData"].get("valueKind") == "drug" for r in records)
    unregistered = next(p for p in demo_patients() if not p.registered)
    expected: set[str] = set()
    voided: set[str] = set()
    for hospital in HOSPITALS:
        database = f"{prefix}_{hospital.key}"
        expected |= {
            f"{hospital.key}:{row[0]}"
            for row in query(
                database,
                "SELECT o.uuid FROM obs o JOIN patient_identifier pi ON pi.patient_id = o.person_id"
                " WHERE o.voided = 0 AND pi.identifier <> %s AND (o.value_coded IS NOT NULL"
                " OR o.value_numeric IS NOT NULL OR o.value_text IS NOT NULL OR o.value_drug IS NOT NULL"
                " OR o.value_complex IS NOT NULL OR o.value_datetime IS NOT NULL)",
                (unregistered.national_id,),
            )
        }
        voided |= {f"{hospital.key}:{row[0]}" for row in query(database, "SELECT uuid FROM obs WHERE voided = 1")}
    synced = {f"{r['openmrsData']['hospitalId']}:{r['openmrsData']['uuid']}" for r in records}
    assert synced == expected
    assert len(voided) == 2  # the duplicate weight and the mistyped temperature
    assert not voided & synced
    parked = list(mongo.openmrs_sync_parked.find())
    assert parked and all(p["reason"] == NOT_IN_PASSPORT and p["hospitalId"] == "district" for p in parked)
    assert mongo.patients.count_documents({}) == 29

    config = demo_dir / "hospitals.yaml"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    status = runner.invoke(app, ["status", "--config", str(config), "--json"])
    assert status.exit_code == 0, status.output
    checkpoints = {s["hospital_id"]: s["checkpoint"]["last_obs_id"] for s in json.loads(status.stdout)["hospitals"]}
    assert set(checkpoints) == {"central", "district", "regional"} and all(checkpoints.values())

    # A second run creates nothing and writes nothing; it still shows the history.
    second = demo(prefix, demo_dir, "--mongodb-uri", uri, "--json")
    assert second.exit_code == 0, second.output
    document = json.loads(second.stdout)
    assert [d["created"] for d in document["databases"]] == [False, False, False]
    assert [h["written"] for h in document["hospitals"]] == [0, 0, 0]
    assert [h["outcome"] for h in document["hospitals"]] == ["ok", "ok", "ok"]
    history = document["patient"]["history"]
    assert document["patient"]["label"] == "demo patient 1"
    assert {row["hospital"] for row in history} == set(HOSPITAL_NAMES)
    assert {row["category"] for row in history} == CATEGORIES
    assert [row["date"] for row in history] == sorted(row["date"] for row in history)
    assert mongo.medicalrecords.count_documents(single_rows({})) == len(records)
    assert mongo.patients.count_documents({}) == 29
    assert_no_identity(second.output)

    reset = demo(prefix, demo_dir, "--mongodb-uri", uri, "--reset")
    assert reset.exit_code == 0, reset.output
    assert existing_databases(prefix) == set()
    assert mongo.name not in mongo.client.list_database_names()
    assert not demo_dir.exists()


def test_demo_with_the_embedded_mongodb_keeps_its_data_on_disk(prefix: str, tmp_path: Path) -> None:
    demo_dir = tmp_path / "demo"
    first = demo(prefix, demo_dir)
    assert first.exit_code == 0, first.output
    assert "embedded MongoDB" in first.stdout
    assert all(cells[0] == "ok" for cells in summary_rows(first.stdout).values())
    assert (demo_dir / "mongodb").is_dir()
    assert existing_databases(prefix) == set(databases(prefix))

    # After the demo, a hospital's commands work on its data with the file it wrote: each starts
    # the embedded MongoDB on the demo's folder for as long as it runs.
    config = str(demo_dir / "hospitals.yaml")
    for command in ("status", "check", "sync-patient", "sync-all"):
        assert f"passport-sync {command} " in first.stdout and config in first.stdout
    status = runner.invoke(app, ["status", "--config", config, "--json"])
    assert status.exit_code == 0, status.output
    assert all(s["last_run"]["outcome"] == "ok" for s in json.loads(status.stdout)["hospitals"])
    check = runner.invoke(app, ["check", "--config", config])
    assert check.exit_code == 0, check.output
    assert check.stdout.startswith("PASSPORT-SYNC OK - 3 hospital(s) synced")
    shown = next(p for p in demo_patients() if p.number == 1)
    patient = runner.invoke(app, ["sync-patient", shown.national_id, "--config", config, "--json"])
    assert patient.exit_code == 0, patient.output
    assert [h["written"] for h in json.loads(patient.stdout)["hospitals"]] == [0, 0, 0]
    again = runner.invoke(app, ["sync-all", "--config", config, "--json"])
    assert again.exit_code == 0, again.output
    assert [h["written"] for h in json.loads(again.stdout)["hospitals"]] == [0, 0, 0]

    second = demo(prefix, demo_dir, "--json")
    assert second.exit_code == 0, second.output
    document = json.loads(second.stdout)
    assert document["mongodb"]["embedded"] is True
    assert [h["written"] for h in document["hospitals"]] == [0, 0, 0]
    assert {row["category"] for row in document["patient"]["history"]} == CATEGORIES
    assert document["parked"]["by_hospital"]["District Hospital"] > 0

    reset = demo(prefix, demo_dir, "--reset")
    assert reset.exit_code == 0, reset.output
    assert existing_databases(prefix) == set()
    assert not demo_dir.exists()


def test_demo_refuses_a_mysql_database_it_did_not_create(
    prefix: str, mongo: Any, mongo_uri: str, tmp_path: Path
) -> None:
    conn = mysql_connect()
    with conn.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE `{prefix}_district`")
        cursor.execute(f"CREATE TABLE `{prefix}_district`.precious (a INT)")
        cursor.execute(f"INSERT INTO `{prefix}_district`.precious VALUES (42)")
    conn.close()
    uri = f"{mongo_uri}/{mongo.name}"

    for args in ((), ("--reset",)):
        result = demo(prefix, tmp_path / "demo", "--mongodb-uri", uri, *args)
        assert result.exit_code == 2, result.output
        assert f"refusing to touch {prefix}_district" in result.stderr
        assert existing_databases(prefix) == {f"{prefix}_district"}
        assert query(f"{prefix}_district", "SELECT a FROM precious") == [(42,)]
        assert mongo.list_collection_names() == []
        assert not (tmp_path / "demo").exists()


def test_demo_refuses_a_mongodb_database_it_did_not_create(
    prefix: str, mongo: Any, mongo_uri: str, tmp_path: Path
) -> None:
    mongo.patients.insert_one({"nationalId": "1199080012345678"})
    result = demo(prefix, tmp_path / "demo", "--mongodb-uri", f"{mongo_uri}/{mongo.name}")
    assert result.exit_code == 2, result.output
    assert "refusing to touch the MongoDB database" in result.stderr
    assert existing_databases(prefix) == set()
    assert mongo.list_collection_names() == ["patients"] and mongo.patients.count_documents({}) == 1


def test_the_mysql_password_is_never_printed(prefix: str, tmp_path: Path) -> None:
    target = parse_mysql_url("mysql://admin:p%40ss-s3cret@db.example:3307")
    assert (target.user, target.password, target.host, target.port) == ("admin", "p@ss-s3cret", "db.example", 3307)
    assert "s3cret" not in repr(target) and "s3cret" not in target.describe()

    result = runner.invoke(
        app, ["demo", "--mysql-url", "mysql://root:s3cret@127.0.0.1:1", "--prefix", prefix, "--demo-dir", str(tmp_path)]
    )
    assert result.exit_code == 1, result.output
    assert "127.0.0.1:1" in result.stderr
    assert "s3cret" not in result.output
