"""The OpenMRS schema fixture and OpenMRSBuilder, against a real MariaDB/MySQL server.

Each test gets its own throwaway database ``pstest_builder_<hex>``, dropped afterwards.
Server: 127.0.0.1:3306, root, empty password, unless PASSPORT_SYNC_TEST_MYSQL_HOST/PORT/
USER/PASSWORD say otherwise.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from typing import Any

import pymysql
import pytest

from passport_sync.synthetic.builder import (
    SUPPORTED_VERSIONS,
    UNKNOWN_ENCOUNTER_ROLE_UUID,
    OpenMRSBuilder,
    load_openmrs_schema,
    split_sql_statements,
)

MYSQL: dict[str, Any] = {
    "host": os.environ.get("PASSPORT_SYNC_TEST_MYSQL_HOST", "127.0.0.1"),
    "port": int(os.environ.get("PASSPORT_SYNC_TEST_MYSQL_PORT", "3306")),
    "user": os.environ.get("PASSPORT_SYNC_TEST_MYSQL_USER", "root"),
    "password": os.environ.get("PASSPORT_SYNC_TEST_MYSQL_PASSWORD", ""),
}

NOW = datetime(2025, 3, 14, 9, 30, 0)

FIXTURE_TABLES = {
    "allergy",
    "allergy_reaction",
    "order_frequency",
    "concept",
    "concept_class",
    "concept_datatype",
    "concept_name",
    "concept_numeric",
    "conditions",
    "drug",
    "drug_order",
    "encounter",
    "encounter_diagnosis",
    "encounter_provider",
    "encounter_role",
    "encounter_type",
    "global_property",
    "location",
    "obs",
    "orders",
    "patient",
    "patient_identifier",
    "patient_identifier_type",
    "person",
    "person_name",
    "provider",
    "users",
    "visit",
}

# (table, column) -> versions in which the column exists.
VERSIONED_COLUMNS: dict[tuple[str, str], set[str]] = {
    ("encounter_diagnosis", "rank"): {"2.2", "2.4"},
    ("encounter_diagnosis", "dx_rank"): {"2.6"},
    ("encounter_diagnosis", "form_namespace_and_path"): {"2.6"},
    ("allergy", "comment"): {"2.2"},
    ("allergy", "comments"): {"2.4", "2.6"},
    ("allergy", "encounter_id"): {"2.6"},
    ("allergy", "form_namespace_and_path"): {"2.6"},
    ("conditions", "date_changed"): {"2.4", "2.6"},
    ("conditions", "encounter_id"): {"2.4", "2.6"},
    ("conditions", "form_namespace_and_path"): {"2.4", "2.6"},
    ("concept_numeric", "allow_decimal"): {"2.2", "2.4", "2.6"},
    ("concept_numeric", "precise"): set(),
    ("patient_identifier", "patient_program_id"): {"2.6"},
    ("location", "location_type_concept_id"): {"2.6"},
    ("drug", "dose_limit_units"): {"2.4", "2.6"},
    ("orders", "form_namespace_and_path"): {"2.6"},
    ("orders", "fulfiller_status"): {"2.2", "2.4", "2.6"},
    ("obs", "status"): {"2.2", "2.4", "2.6"},
}


class OpenMRSTestDB:
    """A loaded throwaway database, a connection using it and a builder on that connection."""

    def __init__(self, conn: Any, name: str, version: str) -> None:
        self.conn = conn
        self.name = name
        self.version = version
        self.build = OpenMRSBuilder(conn, now=NOW)

    def rows(self, sql: str, params: Any = None) -> list[dict[str, Any]]:
        with self.conn.cursor(pymysql.cursors.DictCursor) as cursor:
            cursor.execute(sql, params)
            return list(cursor.fetchall())

    def row(self, sql: str, params: Any = None) -> dict[str, Any]:
        found = self.rows(sql, params)
        assert len(found) == 1, found
        return found[0]

    def scalar(self, sql: str, params: Any = None) -> Any:
        with self.conn.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchone()[0]

    def columns(self, table: str) -> set[str]:
        found = self.rows(
            "SELECT column_name AS name FROM information_schema.columns WHERE table_schema = %s AND table_name = %s",
            (self.name, table),
        )
        return {str(row["name"]) for row in found}


def _connect(database: str | None = None) -> Any:
    return pymysql.connect(**MYSQL, database=database, autocommit=True, charset="utf8mb4")


@pytest.fixture
def make_db() -> Iterator[Callable[[str], OpenMRSTestDB]]:
    """Factory: load a fresh OpenMRS database of a given version; all are dropped at the end."""
    try:
        admin = _connect()
    except pymysql.err.OperationalError as exc:
        pytest.skip(f"MariaDB/MySQL not reachable at {MYSQL['host']}:{MYSQL['port']}: {exc}")
    created: list[OpenMRSTestDB] = []

    def make(version: str = "2.6") -> OpenMRSTestDB:
        name = f"pstest_builder_{secrets.token_hex(6)}"
        load_openmrs_schema(admin, name, version=version)
        db = OpenMRSTestDB(_connect(name), name, version)
        created.append(db)
        return db

    try:
        yield make
    finally:
        with admin.cursor() as cursor:
            for db in created:
                db.conn.close()
                cursor.execute(f"DROP DATABASE IF EXISTS `{db.name}`")
        admin.close()


@pytest.fixture(params=SUPPORTED_VERSIONS)
def db(request: pytest.FixtureRequest, make_db: Callable[[str], OpenMRSTestDB]) -> OpenMRSTestDB:
    """A fresh OpenMRS database, once per supported platform version."""
    return make_db(request.param)


# --------------------------------------------------------------------------- pure


def test_split_sql_statements_drops_comments_and_keeps_multiline_statements() -> None:
    script = "-- header\nSET NAMES utf8mb4;\n\nCREATE TABLE t (\n  a INT\n);\n  -- trailing note\nSELECT 1"
    assert split_sql_statements(script) == ["SET NAMES utf8mb4", "CREATE TABLE t (\n  a INT\n)", "SELECT 1"]


def test_load_rejects_unknown_version_and_unsafe_names(make_db: Callable[[str], OpenMRSTestDB]) -> None:
    conn = make_db("2.6").conn
    with pytest.raises(ValueError, match="unsupported OpenMRS version"):
        load_openmrs_schema(conn, "pstest_builder_never", version="2.7")
    with pytest.raises(ValueError, match="invalid database name"):
        load_openmrs_schema(conn, "x`; DROP DATABASE mysql")


# ------------------------------------------------------------------------- schema


def test_schema_has_all_tables_innodb_utf8mb4(db: OpenMRSTestDB) -> None:
    tables = db.rows(
        "SELECT table_name AS name, engine, table_collation FROM information_schema.tables WHERE table_schema = %s",
        (db.name,),
    )
    assert {row["name"] for row in tables} == FIXTURE_TABLES
    assert {row["engine"] for row in tables} == {"InnoDB"}
    assert {row["table_collation"].split("_")[0] for row in tables} == {"utf8mb4"}


def test_schema_columns_follow_the_platform_version(db: OpenMRSTestDB) -> None:
    for (table, column), versions in VERSIONED_COLUMNS.items():
        assert (column in db.columns(table)) == (db.version in versions), (db.version, table, column)


def test_schema_types_nullability_and_defaults(make_db: Callable[[str], OpenMRSTestDB]) -> None:
    db = make_db("2.6")
    cols = {
        (row["table_name"], row["column_name"]): row
        for row in db.rows(
            "SELECT table_name, column_name, column_type, is_nullable, column_default "
            "FROM information_schema.columns WHERE table_schema = %s",
            (db.name,),
        )
    }
    assert cols[("obs", "voided")]["column_type"] == "tinyint(1)"
    assert cols[("obs", "obs_datetime")]["column_type"] == "datetime"
    assert cols[("obs", "obs_datetime")]["is_nullable"] == "NO"
    assert cols[("obs", "encounter_id")]["is_nullable"] == "YES"
    assert cols[("obs", "value_complex")]["column_type"] == "varchar(1000)"
    assert cols[("obs", "uuid")]["column_type"] == "char(38)"
    # MariaDB quotes string defaults in information_schema, MySQL does not.
    assert cols[("obs", "status")]["column_default"].strip("'") == "FINAL"
    assert cols[("allergy", "voided")]["column_default"] == "1"
    assert cols[("allergy", "uuid")]["is_nullable"] == "YES"
    assert cols[("conditions", "uuid")]["column_type"] == "varchar(38)"
    assert cols[("patient", "allergy_status")]["column_default"].strip("'") == "Unknown"
    assert ("obs", "date_changed") not in cols
    assert ("patient", "uuid") not in cols


def test_schema_keeps_unique_keys_and_foreign_keys(make_db: Callable[[str], OpenMRSTestDB]) -> None:
    db = make_db("2.6")
    unique = {
        (row["table_name"], row["column_name"])
        for row in db.rows(
            "SELECT table_name, column_name FROM information_schema.statistics "
            "WHERE table_schema = %s AND non_unique = 0 AND index_name <> 'PRIMARY'",
            (db.name,),
        )
    }
    assert ("obs", "uuid") in unique
    assert ("encounter_type", "name") in unique
    assert ("users", "email") in unique
    assert ("users", "uuid") not in unique
    assert ("allergy", "uuid") not in unique
    assert ("patient_identifier", "identifier") not in unique

    obs_fks = {
        row["column_name"]: row["referenced_table_name"]
        for row in db.rows(
            "SELECT column_name, referenced_table_name FROM information_schema.key_column_usage "
            "WHERE table_schema = %s AND table_name = 'obs' AND referenced_table_name IS NOT NULL",
            (db.name,),
        )
    }
    assert obs_fks == {
        "value_coded": "concept",
        "value_drug": "drug",
        "encounter_id": "encounter",
        "concept_id": "concept",
        "creator": "users",
        "obs_group_id": "obs",
        "location_id": "location",
        "value_coded_name_id": "concept_name",
        "order_id": "orders",
        "person_id": "person",
        "previous_version": "obs",
        "voided_by": "users",
    }
    with pytest.raises(pymysql.err.IntegrityError):
        db.build.obs(1, 999_999, value_text="no such concept")


def test_load_is_repeatable(make_db: Callable[[str], OpenMRSTestDB]) -> None:
    db = make_db("2.6")
    db.build.patient(national_id="1")
    load_openmrs_schema(db.conn, db.name, version="2.6")
    assert db.scalar("SELECT COUNT(*) FROM patient") == 0
    assert db.scalar("SELECT COUNT(*) FROM concept") == 2


# ---------------------------------------------------------------------- core data


def test_core_data_rows(db: OpenMRSTestDB) -> None:
    classes = {row["concept_class_id"]: row for row in db.rows("SELECT * FROM concept_class")}
    assert len(classes) == 16
    assert classes[11]["name"] == "Misc"
    assert classes[11]["uuid"] == "8d492774-c2cc-11de-8d13-0010c6dffd0f"
    assert classes[16]["uuid"] == "8e071bfe-520c-44c0-a89b-538e9129b42a"

    datatypes = {row["concept_datatype_id"]: row for row in db.rows("SELECT * FROM concept_datatype")}
    assert sorted(datatypes) == [1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13]
    assert (datatypes[10]["name"], datatypes[10]["hl7_abbreviation"]) == ("Boolean", "BIT")
    assert datatypes[1]["uuid"] == "8d4a4488-c2cc-11de-8d13-0010c6dffd0f"

    preferred = db.rows(
        "SELECT concept_id, name FROM concept_name WHERE locale = 'en' AND locale_preferred = 1 "
        "AND concept_name_type = 'FULLY_SPECIFIED' ORDER BY concept_id"
    )
    assert [(row["concept_id"], row["name"]) for row in preferred] == [(1, "True"), (2, "False")]
    assert db.scalar("SELECT datatype_id FROM concept WHERE concept_id = 1") == 4

    role = db.row("SELECT * FROM encounter_role")
    assert (role["encounter_role_id"], role["name"], role["uuid"]) == (1, "Unknown", UNKNOWN_ENCOUNTER_ROLE_UUID)

    users = {row["system_id"]: row for row in db.rows("SELECT * FROM users")}
    assert users["admin"]["user_id"] == 1
    assert users["daemon"]["uuid"] == "A4F30A1B-5EB9-11DF-A648-37A07F9C90FB"
    assert db.row("SELECT given_name, family_name FROM person_name WHERE person_id = 1") == {
        "given_name": "Super",
        "family_name": "User",
    }
    assert db.row("SELECT name FROM location WHERE location_id = 1")["name"] == "Unknown Location"
    assert db.scalar("SELECT COUNT(*) FROM patient_identifier_type") == 2

    properties = {row["property"]: row["property_value"] for row in db.rows("SELECT * FROM global_property")}
    assert properties == {"concept.true": "1", "concept.false": "2", "default_locale": "en"}
    assert (db.build.true_concept_id, db.build.false_concept_id) == (1, 2)


# ------------------------------------------------------------------------ builder


def test_patient_with_obs_edited_obs_and_voided_obs(db: OpenMRSTestDB) -> None:
    b = db.build
    site = b.location("Kigali Health Centre")
    clinician = b.provider("Aline", "Uwase")
    patient = b.patient(national_id="1198070012345678", given="Marie", family="Reine", gender="F")
    weight = b.concept(
        "Weight (kg)", datatype="Numeric", concept_class="Test", units="kg", low_normal=40, hi_normal=100
    )
    note = b.concept("Clinical note")
    seen_at = datetime(2025, 3, 10, 8, 15)
    visit = b.encounter(patient, location_id=site, provider_ids=[clinician], when=seen_at)

    kept = b.obs(patient, weight, encounter_id=visit, location_id=site, value_numeric=70.5)
    edited = b.obs(patient, weight, encounter_id=visit, location_id=site, value_numeric=17.0)
    removed = b.obs(patient, note, encounter_id=visit, value_text="Wrong patient")

    edit_time = NOW + timedelta(hours=2)
    replacement = b.edit_obs(edited, reason="typo", when=edit_time, value_numeric=71.0)
    b.void_obs(removed, reason="entered in error", when=edit_time)

    assert db.row("SELECT person_id, gender, voided FROM person WHERE person_id = %s", (patient,)) == {
        "person_id": patient,
        "gender": "F",
        "voided": 0,
    }
    assert db.row("SELECT given_name, family_name, preferred FROM person_name WHERE person_id = %s", (patient,)) == {
        "given_name": "Marie",
        "family_name": "Reine",
        "preferred": 1,
    }
    assert db.scalar("SELECT allergy_status FROM patient WHERE patient_id = %s", (patient,)) == "Unknown"
    identifier = db.row(
        "SELECT pi.identifier, pi.preferred, pit.name FROM patient_identifier pi "
        "JOIN patient_identifier_type pit ON pit.patient_identifier_type_id = pi.identifier_type "
        "WHERE pi.patient_id = %s",
        (patient,),
    )
    assert identifier == {"identifier": "1198070012345678", "preferred": 1, "name": "National ID"}
    assert db.row(
        "SELECT encounter_role_id, provider_id FROM encounter_provider WHERE encounter_id = %s", (visit,)
    ) == {
        "encounter_role_id": 1,
        "provider_id": clinician,
    }

    rows = {row["obs_id"]: row for row in db.rows("SELECT * FROM obs ORDER BY obs_id")}
    assert sorted(rows) == [kept, edited, removed, replacement]

    first = rows[kept]
    assert first["person_id"] == patient
    assert first["encounter_id"] == visit
    assert first["obs_datetime"] == seen_at  # defaults to the encounter's datetime
    assert first["date_created"] == NOW
    assert first["creator"] == 1
    assert first["status"] == "FINAL"
    assert first["voided"] == 0
    assert first["value_numeric"] == 70.5
    assert len(first["uuid"]) == 36

    old, new = rows[edited], rows[replacement]
    assert (old["voided"], old["voided_by"], old["date_voided"], old["void_reason"]) == (1, 1, edit_time, "typo")
    assert old["value_numeric"] == 17.0
    assert new["previous_version"] == edited
    assert new["status"] == "AMENDED"
    assert new["value_numeric"] == 71.0
    assert new["date_created"] == edit_time
    assert new["voided"] == 0
    assert new["uuid"] != old["uuid"]
    for column in ("person_id", "concept_id", "encounter_id", "location_id", "obs_datetime"):
        assert new[column] == old[column], column

    gone = rows[removed]
    assert (gone["voided"], gone["voided_by"], gone["date_voided"], gone["void_reason"]) == (
        1,
        1,
        edit_time,
        "entered in error",
    )
    assert gone["value_text"] == "Wrong patient"


def test_obs_groups_void_and_edit_like_openmrs(make_db: Callable[[str], OpenMRSTestDB]) -> None:
    db = make_db("2.6")
    b = db.build
    patient = b.patient()
    group = b.concept("Vitals", datatype="N/A", concept_class="ConvSet", is_set=True)
    pulse = b.concept("Pulse", datatype="Numeric", units="bpm", allow_decimal=False)
    temp = b.concept("Temperature", datatype="Numeric", units="°C")

    parent = b.obs(patient, group)
    members = [
        b.obs(patient, pulse, obs_group_id=parent, value_numeric=80),
        b.obs(patient, temp, obs_group_id=parent, value_numeric=36.8),
    ]
    new_parent = b.edit_obs(parent, reason="moved", obs_datetime=datetime(2025, 3, 1, 12, 0))
    copies = db.rows("SELECT * FROM obs WHERE obs_group_id = %s ORDER BY obs_id", (new_parent,))
    assert [row["previous_version"] for row in copies] == members
    assert {row["obs_datetime"] for row in copies} == {NOW}  # members keep their own values
    assert db.scalar("SELECT COUNT(*) FROM obs WHERE voided = 1") == 3  # old parent and both old members

    b.void_obs(new_parent, reason="deleted")
    assert db.scalar("SELECT COUNT(*) FROM obs WHERE voided = 0") == 0


def test_concepts_names_numeric_and_validation(make_db: Callable[[str], OpenMRSTestDB]) -> None:
    db = make_db("2.6")
    b = db.build
    weight = b.concept("Weight", datatype="Numeric", units="kg", names={"fr": "Poids", "en_GB": "Weight"})
    names = db.rows(
        "SELECT locale, name, locale_preferred, concept_name_type FROM concept_name WHERE concept_id = %s "
        "ORDER BY locale",
        (weight,),
    )
    assert names == [
        {"locale": "en_GB", "name": "Weight", "locale_preferred": 1, "concept_name_type": "FULLY_SPECIFIED"},
        {"locale": "fr", "name": "Poids", "locale_preferred": 1, "concept_name_type": "FULLY_SPECIFIED"},
    ]
    assert db.row("SELECT units, allow_decimal FROM concept_numeric WHERE concept_id = %s", (weight,)) == {
        "units": "kg",
        "allow_decimal": 1,
    }

    nameless = b.concept("ignored", names={})
    assert db.scalar("SELECT COUNT(*) FROM concept_name WHERE concept_id = %s", (nameless,)) == 0
    assert db.scalar("SELECT COUNT(*) FROM concept_numeric WHERE concept_id = %s", (nameless,)) == 0

    ciel = b.concept("Malaria", datatype="N/A", concept_class="Diagnosis", uuid="116128AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
    assert db.row(
        "SELECT c.uuid, cc.name FROM concept c JOIN concept_class cc ON cc.concept_class_id = c.class_id "
        "WHERE c.concept_id = %s",
        (ciel,),
    ) == {"uuid": "116128AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "name": "Diagnosis"}

    with pytest.raises(ValueError, match="numeric datatype"):
        b.concept("Note", datatype="Text", units="kg")
    with pytest.raises(LookupError):
        b.concept("Odd", datatype="Nonsense")


def test_boolean_coded_drug_and_provider_variants(make_db: Callable[[str], OpenMRSTestDB]) -> None:
    db = make_db("2.6")
    b = db.build
    patient = b.patient(national_id="1", extra_identifiers=[(1, "100-8")])
    assert db.rows(
        "SELECT identifier_type, identifier, preferred FROM patient_identifier WHERE patient_id = %s "
        "ORDER BY preferred DESC",
        (patient,),
    ) == [
        {"identifier_type": b.national_id_type_id, "identifier": "1", "preferred": 1},
        {"identifier_type": 1, "identifier": "100-8", "preferred": 0},
    ]

    pregnant = b.concept("Pregnant", datatype="Boolean")
    yes = b.obs(patient, pregnant, value_coded=b.true_concept_id)
    assert db.scalar("SELECT value_coded FROM obs WHERE obs_id = %s", (yes,)) == 1

    drug_concept = b.concept("Paracetamol", datatype="N/A", concept_class="Drug")
    tablet = b.drug("Paracetamol 500 mg tablet", drug_concept, strength="500 mg")
    question = b.concept("Medication taken", datatype="Coded")
    taken = b.obs(patient, question, value_coded=drug_concept, value_drug=tablet)
    assert db.row("SELECT value_coded, value_drug FROM obs WHERE obs_id = %s", (taken,)) == {
        "value_coded": drug_concept,
        "value_drug": tablet,
    }

    nameless = b.provider("Night", "Nurse", with_person=False)
    assert db.row("SELECT person_id, name FROM provider WHERE provider_id = %s", (nameless,)) == {
        "person_id": None,
        "name": "Night Nurse",
    }
    named = b.provider("Jean", "Bosco", identifier="PRV-1")
    person = db.row("SELECT person_id, name FROM provider WHERE provider_id = %s", (named,))
    assert person["name"] is None
    assert db.scalar("SELECT given_name FROM person_name WHERE person_id = %s", (person["person_id"],)) == "Jean"

    # The "National ID" type and encounter types are created once and reused.
    b.patient(national_id="2")
    b.encounter(patient)
    b.encounter(patient)
    assert db.scalar("SELECT COUNT(*) FROM patient_identifier_type WHERE name = 'National ID'") == 1
    assert db.scalar("SELECT COUNT(*) FROM encounter_type") == 1


def test_obs_many_bulk_insert(make_db: Callable[[str], OpenMRSTestDB]) -> None:
    db = make_db("2.6")
    b = db.build
    patient = b.patient()
    height = b.concept("Height", datatype="Numeric", units="cm")
    when = datetime(2025, 1, 2, 3, 4, 5)
    visit = b.encounter(patient, when=when)
    rows: list[dict[str, Any]] = [
        {"patient_id": patient, "concept_id": height, "encounter_id": visit, "value_numeric": float(i)}
        for i in range(2_500)
    ]
    rows.append({"patient_id": patient, "concept_id": height, "value_numeric": 1.0, "comments": "loose"})
    b.obs_many(rows, batch_size=1_000)

    summary = db.row(
        "SELECT COUNT(*) AS n, COUNT(DISTINCT uuid) AS uuids, SUM(obs_datetime = %s) AS at_encounter, "
        "SUM(status = 'FINAL' AND voided = 0 AND creator = 1 AND date_created = %s) AS complete FROM obs",
        (when, NOW),
    )
    assert summary == {"n": 2_501, "uuids": 2_501, "at_encounter": 2_500, "complete": 2_501}
    assert db.scalar("SELECT obs_datetime FROM obs WHERE comments = 'loose'") == NOW

    with pytest.raises(TypeError, match="unknown obs field"):
        b.obs_many([{"patient_id": patient, "concept_id": height, "value_bool": True}])


def test_clinical_inserters_on_every_version(db: OpenMRSTestDB) -> None:
    b = db.build
    patient = b.patient()
    clinician = b.provider()
    visit = b.encounter(patient, provider_ids=[clinician])
    malaria = b.concept("Malaria", datatype="N/A", concept_class="Diagnosis")
    penicillin = b.concept("Penicillin", datatype="N/A", concept_class="Drug")

    condition = b.condition(patient, condition_coded=malaria, onset_date=datetime(2025, 3, 1))
    diagnosis = b.encounter_diagnosis(visit, diagnosis_coded=malaria, rank=2, condition_id=condition)
    allergy = b.allergy(patient, penicillin, comments="rash")
    tablet = b.drug("Penicillin V 250 mg", penicillin)
    order = b.drug_order(visit, clinician, drug_id=tablet, dose=250, duration=7)

    rank_column = "rank" if db.version in {"2.2", "2.4"} else "dx_rank"
    assert db.row(
        f"SELECT patient_id, `{rank_column}` AS dx_rank, certainty FROM encounter_diagnosis WHERE diagnosis_id = %s",
        (diagnosis,),
    ) == {"patient_id": patient, "dx_rank": 2, "certainty": "CONFIRMED"}
    assert db.row("SELECT clinical_status, voided FROM conditions WHERE condition_id = %s", (condition,)) == {
        "clinical_status": "ACTIVE",
        "voided": 0,
    }
    comment_column = "comment" if db.version == "2.2" else "comments"
    assert db.row(
        f"SELECT voided, `{comment_column}` AS note FROM allergy WHERE allergy_id = %s",
        (allergy,),
    ) == {"voided": 0, "note": "rash"}
    assert db.row(
        "SELECT o.order_number, o.concept_id, o.patient_id, o.order_action, d.drug_inventory_id, d.dose "
        "FROM orders o JOIN drug_order d ON d.order_id = o.order_id WHERE o.order_id = %s",
        (order,),
    ) == {
        "order_number": f"ORD-{order}",
        "concept_id": penicillin,
        "patient_id": patient,
        "order_action": "NEW",
        "drug_inventory_id": tablet,
        "dose": 250.0,
    }

    if db.version == "2.2":
        with pytest.raises(ValueError, match="before Platform 2.4"):
            b.condition(patient, condition_non_coded="Cough", encounter_id=visit)
    else:
        linked = b.condition(patient, condition_non_coded="Cough", encounter_id=visit)
        assert db.scalar("SELECT encounter_id FROM conditions WHERE condition_id = %s", (linked,)) == visit
    if db.version == "2.6":
        linked = b.allergy(patient, penicillin, encounter_id=visit)
        assert db.scalar("SELECT encounter_id FROM allergy WHERE allergy_id = %s", (linked,)) == visit
    else:
        with pytest.raises(ValueError, match="before Platform 2.5"):
            b.allergy(patient, penicillin, encounter_id=visit)


def test_builder_without_fixed_now_uses_whole_seconds(make_db: Callable[[str], OpenMRSTestDB]) -> None:
    db = make_db("2.6")
    builder = OpenMRSBuilder(db.conn)
    before = datetime.now().replace(microsecond=0)
    patient = builder.patient(birthdate=date(2001, 2, 3))
    created = db.scalar("SELECT date_created FROM person WHERE person_id = %s", (patient,))
    assert created >= before
    assert created.microsecond == 0
    assert db.scalar("SELECT birthdate FROM person WHERE person_id = %s", (patient,)) == date(2001, 2, 3)
