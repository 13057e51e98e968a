"""Shared fixtures: a real MariaDB (throwaway databases) and a real MongoDB wire server.

MariaDB: 127.0.0.1:3306, root, empty password, unless PASSPORT_SYNC_TEST_MYSQL_HOST/PORT/USER/
PASSWORD say otherwise. MongoDB: the embedded SecantusDB server started once per session, unless
PASSPORT_SYNC_TEST_MONGODB_URI points at a real mongod.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pymongo
import pymysql
import pytest

from passport_sync.config import Settings, load_settings
from passport_sync.synthetic.builder import OpenMRSBuilder, load_openmrs_schema
from passport_sync.synthetic.mongodb import embedded_server
from passport_sync.synthetic.registration import register_patient

MYSQL = {
    "host": os.environ.get("PASSPORT_SYNC_TEST_MYSQL_HOST", "127.0.0.1"),
    "port": int(os.environ.get("PASSPORT_SYNC_TEST_MYSQL_PORT", "3306")),
    "user": os.environ.get("PASSPORT_SYNC_TEST_MYSQL_USER", "root"),
    "password": os.environ.get("PASSPORT_SYNC_TEST_MYSQL_PASSWORD", ""),
}


@pytest.fixture(scope="session")
def mongo_uri() -> Iterator[str]:
    """The base URI of a MongoDB wire server (no database in the path)."""
    external = os.environ.get("PASSPORT_SYNC_TEST_MONGODB_URI")
    if external:
        yield external.rstrip("/")
        return
    with (
        tempfile.TemporaryDirectory(prefix="passport-sync-mongo-") as storage,
        embedded_server(Path(storage)) as uri,
    ):
        yield uri


@pytest.fixture
def mongo_db_name(mongo_uri: str) -> Iterator[str]:
    """A new Patient Passport database: the collections its backend creates when it first starts
    (the sync refuses a database without them), nothing in them."""
    name = f"pstest_{secrets.token_hex(4)}"
    client: pymongo.MongoClient[Any] = pymongo.MongoClient(mongo_uri)
    start_passport_backend(client[name])
    yield name
    client.drop_database(name)
    client.close()


# The collections the Patient Passport backend creates in a new database when it starts.
BACKEND_COLLECTIONS = ("doctors", "hospitals", "medicalrecords", "patients", "users")


def start_passport_backend(db: Any) -> None:
    """What the Patient Passport backend leaves in a new database when it starts: its collections
    (Mongoose creates them with their indexes), no documents."""
    for collection in BACKEND_COLLECTIONS:
        if collection not in db.list_collection_names():
            db.create_collection(collection)


def untouched(db: Any) -> bool:
    """Whether the sync left this Passport as the backend made it: its collections, all empty."""
    names = sorted(db.list_collection_names())
    return names == list(BACKEND_COLLECTIONS) and not any(db[name].estimated_document_count() for name in names)


@pytest.fixture
def passport(mongo_uri: str, mongo_db_name: str) -> Iterator[Any]:
    """A fresh, empty Patient Passport database (pymongo Database)."""
    client: pymongo.MongoClient[Any] = pymongo.MongoClient(mongo_uri)
    yield client[mongo_db_name]
    client.close()


def mysql_connect(database: str | None = None) -> pymysql.connections.Connection[Any]:
    return pymysql.connect(**MYSQL, database=database, autocommit=True, charset="utf8mb4")


class OpenMRSDatabase:
    """A throwaway OpenMRS database with a builder to fill it."""

    def __init__(self, name: str, version: str = "2.6") -> None:
        self.name = name
        admin = mysql_connect()
        load_openmrs_schema(admin, name, version=version)
        admin.close()
        self.conn = mysql_connect(name)
        self.build = OpenMRSBuilder(self.conn, now=datetime(2025, 11, 6, 10, 30))

    def execute(self, sql: str, params: Any = None) -> list[Any]:
        with self.conn.cursor() as cursor:
            cursor.execute(sql, params)
            return list(cursor.fetchall())

    def drop(self) -> None:
        self.conn.close()
        admin = mysql_connect()
        with admin.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{self.name}`")
        admin.close()


@pytest.fixture
def make_openmrs() -> Iterator[Any]:
    created: list[OpenMRSDatabase] = []

    def make(version: str = "2.6") -> OpenMRSDatabase:
        db = OpenMRSDatabase(f"pstest_{secrets.token_hex(4)}", version)
        created.append(db)
        return db

    yield make
    for db in created:
        db.drop()


@pytest.fixture
def openmrs(make_openmrs: Any) -> OpenMRSDatabase:
    return make_openmrs()


@pytest.fixture
def clinic(openmrs: OpenMRSDatabase) -> Any:
    """A small OpenMRS clinic (tests.helpers.Clinic) in a fresh database."""
    from tests.helpers import Clinic  # helpers import this module

    return Clinic(openmrs)


@pytest.fixture
def config(tmp_path: Any, openmrs: OpenMRSDatabase, mongo_uri: str, mongo_db_name: str) -> Any:
    """A hospitals.yaml (0600) with one hospital on ``openmrs`` and a fresh Patient Passport."""
    from tests.helpers import write_config

    return write_config(tmp_path / "hospitals.yaml", mongo_uri, mongo_db_name, [hospital_entry(openmrs.name)])


@pytest.fixture
def synced_patient(clinic: Any, passport: Any) -> int:
    """A patient registered in Patient Passport (national ID 1199780012345678) with one visit:
    three observations, not synced yet."""
    person: int = clinic.patient("1199780012345678")
    register_patient(passport, "1199780012345678")
    clinic.visit(person, weights=2)
    return person


def hospital_entry(
    db_name: str, hospital_id: str = "60a7c2f5e4b0c1a2d3e4f5a6", name: str = "Central Hospital", **extra: Any
) -> dict[str, Any]:
    entry = {
        "id": hospital_id,
        "name": name,
        "db": {
            "host": MYSQL["host"],
            "port": MYSQL["port"],
            "name": db_name,
            "user": MYSQL["user"],
            "password": MYSQL["password"],
        },
    }
    entry.update(extra)
    return entry


def make_settings(mongo_uri: str, mongo_db: str, hospitals: list[dict[str, Any]], **sync: Any) -> Settings:
    overrides: dict[str, Any] = {
        "mongodb": {"uri": f"{mongo_uri}/{mongo_db}", "server_selection_timeout_ms": 3000},
        "hospitals": hospitals,
        "sync": {"retry": {"attempts": 2, "initial_wait_seconds": 0.01, "max_wait_seconds": 0.05}, **sync},
    }
    return load_settings(None, environ={}, overrides=overrides)


BIRTHDATE = date(1980, 1, 1)
