"""``passport-sync demo``: three small OpenMRS hospitals, a Patient Passport, and the real sync-all.

What a run does, in order:

1. checks every database it would touch and refuses (``UsageError``, nothing touched) when one
   exists that the demo did not create: the three MySQL databases ``<prefix>_central``,
   ``<prefix>_district``, ``<prefix>_regional`` (marked by a ``global_property`` row
   ``passport_sync.demo`` = prefix), the MongoDB database (marked by a collection
   ``passport_sync_demo``) and the demo folder (marked by ``demo.json``);
2. creates the missing OpenMRS databases with :func:`load_openmrs_schema` and fills them with
   :class:`OpenMRSBuilder` from a fixed seed, so every run builds the same rows (uuids included);
3. registers the demo patients in Patient Passport (deterministic ``_id``; upserts), all but one;
4. writes ``<demo-dir>/hospitals.yaml`` and runs the real ``service.sync_all`` with it;
5. returns the reports, each hospital's status and one patient's synced history.

A second run creates nothing and finds nothing new: the checkpoints are in MongoDB (on disk under
the demo folder for the embedded server). ``reset_demo`` drops what the demo created, and only that.

This module is tooling, not part of a sync: it talks to pymysql and pymongo itself, prints nothing
(``render_demo`` / ``render_reset`` do, through ``passport_sync.reporting``) and imports the
embedded MongoDB server (``secantus``, the ``demo`` extra) only when it is needed.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import shutil
import uuid as uuid_module
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

import pymongo
import pymysql
import yaml
from pymongo.errors import PyMongoError

from passport_sync import service
from passport_sync.config import DEFAULT_DATABASE, Settings, load_settings, mongo_database_in_path, redact_uri
from passport_sync.demo.embedded import using_uri
from passport_sync.errors import PassportSyncError, SourceError, UsageError
from passport_sync.mapping.transform import placeholder_id
from passport_sync.models import HospitalReport
from passport_sync.parking import NOT_IN_PASSPORT
from passport_sync.reporting import LoggingObserver, render_status, render_sync_summary, render_table
from passport_sync.sink.gateway import PARKED, RECORDS, translate_mongo_error
from passport_sync.sink.passport import PassportStore
from passport_sync.sink.placeholders import app_user, unusable_password
from passport_sync.synthetic.builder import OpenMRSBuilder, load_openmrs_schema
from passport_sync.synthetic.mongodb import embedded_server
from passport_sync.synthetic.mysql import MySQLTarget

log = logging.getLogger("passport_sync")

DEMO_PROPERTY = "passport_sync.demo"
FILLED_PROPERTY = "passport_sync.demo.filled"
MONGO_MARKER = "passport_sync_demo"
MONGO_DATABASE = "patientpassport_demo"
DIR_MARKER = "demo.json"
CONFIG_NAME = "hospitals.yaml"
MONGO_FOLDER = "mongodb"

_PREFIX = re.compile(r"^[A-Za-z0-9_]{1,48}$")
_SEED = "passport-sync-demo"
_UUIDS = uuid_module.UUID("6f1c1d3e-5b0a-4d8e-9a43-3e1f2b7c9d10")  # namespace of the demo's uuid5s
_EPOCH = datetime(2025, 1, 6, 8, 0)


# -- what the demo is made of ------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class DemoHospital:
    key: str  # the hospital id and the database suffix
    name: str
    doctors: tuple[tuple[str, str], ...]


HOSPITALS: tuple[DemoHospital, ...] = (
    DemoHospital("central", "Central Hospital", (("Jean", "Mugisha"), ("Alice", "Uwimana"))),
    DemoHospital("district", "District Hospital", (("Eric", "Ndayisaba"), ("Claudine", "Mukeshimana"))),
    DemoHospital("regional", "Regional Hospital", (("Patrick", "Habimana"), ("Grace", "Ingabire"))),
)

PATIENT_COUNT = 30
SHOWN_PATIENT = 1  # visits all three hospitals; their history is printed
UNREGISTERED_PATIENT = PATIENT_COUNT  # never registered in Patient Passport: parked

_GIVEN = {
    "F": ("Aline", "Diane", "Esther", "Josiane", "Solange", "Ange", "Chantal", "Vestine", "Olive", "Sandrine"),
    "M": ("Eric", "Emmanuel", "Olivier", "Innocent", "Thierry", "Didier", "Samuel", "Fabrice", "Yves", "Gilbert"),
}
_FAMILY = (
    "Uwase",
    "Mukamana",
    "Niyonzima",
    "Nshimiyimana",
    "Hakizimana",
    "Iradukunda",
    "Niyonsaba",
    "Bizimana",
    "Mutoni",
    "Kayitesi",
    "Nkurunziza",
    "Umutoni",
)


@dataclass(frozen=True, slots=True)
class DemoPatient:
    number: int
    national_id: str  # 16 digits
    given: str
    family: str
    gender: str  # OpenMRS: "F" / "M"
    birthdate: date
    hospitals: tuple[str, ...]  # hospital keys

    @property
    def label(self) -> str:
        """How output names the patient: never by name nor national ID."""
        return f"demo patient {self.number}"

    @property
    def registered(self) -> bool:
        return self.number != UNREGISTERED_PATIENT


def demo_patients() -> list[DemoPatient]:
    """The demo's patients, the same on every run."""
    rng = random.Random(f"{_SEED}:patients")
    keys = [h.key for h in HOSPITALS]
    patients: list[DemoPatient] = []
    seen: set[str] = set()
    for number in range(1, PATIENT_COUNT + 1):
        gender = rng.choice("FM")
        birthdate = date(rng.randrange(1950, 2008), rng.randrange(1, 13), rng.randrange(1, 29))
        national_id = ""
        while not national_id or national_id in seen:
            # The Rwandan layout: 1, birth year, 7 (female) / 8 (male), sequence, check digits.
            sequence = rng.randrange(10**7)
            national_id = f"1{birthdate.year}{'7' if gender == 'F' else '8'}{sequence:07d}0{rng.randrange(100):02d}"
        seen.add(national_id)
        if number == SHOWN_PATIENT:
            hospitals = tuple(keys)
        elif number == UNREGISTERED_PATIENT:
            hospitals = ("district",)
        else:
            home = keys[(number - 2) % len(keys)]
            others = [k for k in keys if k != home]
            hospitals = (home, rng.choice(others)) if rng.random() < 0.35 else (home,)
        patients.append(
            DemoPatient(
                number=number,
                national_id=national_id,
                given=rng.choice(_GIVEN[gender]),
                family=rng.choice(_FAMILY),
                gender=gender,
                birthdate=birthdate,
                hospitals=hospitals,
            )
        )
    return patients


def _uuid(*parts: object) -> str:
    return str(uuid_module.uuid5(_UUIDS, ":".join(str(p) for p in parts)))


# -- where things are ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class DemoOptions:
    mysql: MySQLTarget
    mongodb_uri: str | None = None
    demo_dir: Path = Path(".passport-sync-demo")
    prefix: str = "passport_demo"

    def database(self, hospital: DemoHospital) -> str:
        return f"{self.prefix}_{hospital.key}"

    @property
    def config_path(self) -> Path:
        return self.demo_dir / CONFIG_NAME

    @property
    def mongo_folder(self) -> Path:
        return self.demo_dir / MONGO_FOLDER


def _check_prefix(prefix: str) -> None:
    if not _PREFIX.match(prefix):
        raise UsageError(
            f"--prefix {prefix!r} is not usable in a database name",
            hint="use 1 to 48 letters, digits and underscores, e.g. passport_demo",
        )


def with_database(uri: str, database: str) -> str:
    """``uri`` naming ``database`` (unchanged if the URI already names one)."""
    if mongo_database_in_path(uri):
        return uri
    scheme, sep, rest = uri.partition("://")
    credentials, at, hosts = rest.rpartition("@")
    host_list, _, tail = hosts.partition("/")
    if "?" in host_list:  # mongodb://host:port?options
        host_list, _, options = host_list.partition("?")
    else:
        options = tail.partition("?")[2]
    return f"{scheme}{sep}{credentials}{at}{host_list}/{database}" + (f"?{options}" if options else "")


# -- results ----------------------------------------------------------------------------------------------
@dataclass(slots=True)
class DatabaseInfo:
    hospital_id: str
    hospital_name: str
    database: str
    created: bool
    patients: int = 0
    observations: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "hospital_id": self.hospital_id,
            "hospital_name": self.hospital_name,
            "database": self.database,
            "created": self.created,
            "patients": self.patients,
            "observations": self.observations,
        }


@dataclass(slots=True)
class DemoResult:
    prefix: str
    mysql: str
    databases: list[DatabaseInfo]
    mongodb_embedded: bool
    mongodb_database: str
    mongodb_uri: str  # redacted
    mongo_folder: Path | None
    config_path: Path
    registered: int
    reports: list[HospitalReport]
    statuses: list[dict[str, Any]]
    parked: dict[str, int]  # hospital name -> parked observations
    unregistered_label: str
    patient_label: str
    patient_hospitals: list[str]
    history: list[dict[str, str]]
    # How to run this program again from the shell that ran the demo: its name when PATH finds
    # it, else its path (the demo script installs it in .venv/bin only).
    program: str = "passport-sync"

    @property
    def first_run(self) -> bool:
        return any(d.created for d in self.databases)

    def next_steps(self) -> list[str]:
        config = f"--config {self.config_path}"
        where = (
            f"each starts the embedded MongoDB on {self.mongo_folder} while it runs"
            if self.mongodb_embedded
            else "on the same MongoDB"
        )
        program = self.program
        return [
            f"Next, the commands a hospital runs, on the demo's data ({where}):",
            f"  {program} status {config}",
            f"  {program} check {config}",
            f"  {program} sync-patient NATIONAL_ID {config}   (the README gives demo patient 1's)",
            f"  {program} sync-all {config}",
            f"`{program} demo` again finds nothing new; `{program} demo --reset` drops what the demo created.",
        ]

    def as_dict(self) -> dict[str, Any]:
        return {
            "prefix": self.prefix,
            "mysql": self.mysql,
            "databases": [d.as_dict() for d in self.databases],
            "mongodb": {
                "embedded": self.mongodb_embedded,
                "database": self.mongodb_database,
                "uri": self.mongodb_uri,
                "storage_path": str(self.mongo_folder) if self.mongo_folder else None,
            },
            "config_path": str(self.config_path),
            "patients_registered": self.registered,
            "hospitals": [r.as_dict() for r in self.reports],
            "status": self.statuses,
            "parked": {"patient": self.unregistered_label, "by_hospital": self.parked},
            "patient": {
                "label": self.patient_label,
                "hospitals": self.patient_hospitals,
                "history": self.history,
            },
            "next_steps": self.next_steps(),
        }


@dataclass(slots=True)
class ResetResult:
    prefix: str
    dropped: list[str] = field(default_factory=list)
    absent: list[str] = field(default_factory=list)
    mongodb_dropped: str | None = None
    removed: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "prefix": self.prefix,
            "dropped_databases": self.dropped,
            "absent_databases": self.absent,
            "mongodb_dropped": self.mongodb_dropped,
            "removed_paths": self.removed,
            "notes": self.notes,
        }


# -- MySQL: inspect, create, fill, drop --------------------------------------------------------------------
ABSENT, READY, UNFILLED, FOREIGN = "absent", "ready", "unfilled", "foreign"


def _mysql_error(exc: BaseException, target: MySQLTarget) -> PassportSyncError:
    code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
    detail = str(exc.args[1]) if len(exc.args) > 1 else exc.__class__.__name__
    hints = {
        1045: "check the user and password in --mysql-url",
        1044: "the demo needs a MySQL user that may CREATE and DROP databases (e.g. root)",
        1227: "the demo needs a MySQL user that may CREATE and DROP databases (e.g. root)",
        2003: f"is MariaDB/MySQL running on {target.host}:{target.port}? check --mysql-url",
        2005: "check the host in --mysql-url: the name does not resolve",
    }
    return SourceError(
        f"MySQL at {target.describe()}: error {code}: {detail}" if code else f"MySQL at {target.describe()}: {detail}",
        hint=hints.get(code or 0, ""),
    )


def _connect(target: MySQLTarget) -> Any:
    try:
        return target.connect()
    except pymysql.MySQLError as exc:
        raise _mysql_error(exc, target) from None


def _database_states(conn: Any, names: Sequence[str], prefix: str) -> dict[str, str]:
    """absent / ready (ours, filled) / unfilled (ours, creation interrupted) / foreign."""
    with conn.cursor() as cursor:
        cursor.execute(
            "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA"
            f" WHERE SCHEMA_NAME IN ({', '.join(['%s'] * len(names))})",
            tuple(names),
        )
        existing = {str(row[0]) for row in cursor.fetchall()}
    states: dict[str, str] = {}
    for name in names:
        if name not in existing:
            states[name] = ABSENT
            continue
        try:
            with conn.cursor() as cursor:
                cursor.execute(
                    f"SELECT property, property_value FROM `{name}`.global_property WHERE property IN (%s, %s)",
                    (DEMO_PROPERTY, FILLED_PROPERTY),
                )
                found = {str(k): str(v) for k, v in cursor.fetchall()}
        except pymysql.MySQLError:
            found = {}  # no global_property table: not an OpenMRS database the demo made
        if found.get(DEMO_PROPERTY) != prefix:
            states[name] = FOREIGN
        else:
            states[name] = READY if found.get(FILLED_PROPERTY) == "true" else UNFILLED
    return states


def _refuse_foreign_databases(states: dict[str, str], target: MySQLTarget, prefix: str) -> None:
    foreign = [name for name, state in states.items() if state == FOREIGN]
    if foreign:
        raise UsageError(
            f"refusing to touch {', '.join(foreign)} on {target.describe()}: "
            f"{'it exists' if len(foreign) == 1 else 'they exist'} but the demo did not create "
            f"{'it' if len(foreign) == 1 else 'them'} (no global_property {DEMO_PROPERTY} = {prefix}); "
            "nothing was changed",
            hint="pass another --prefix, or drop the database yourself if it is a leftover",
        )


def _drop(conn: Any, name: str) -> None:
    with conn.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")


def _set_property(conn: Any, prop: str, value: str, description: str, uuid: str) -> None:
    with conn.cursor() as cursor:
        cursor.execute(
            "INSERT INTO global_property (property, property_value, description, uuid) VALUES (%s, %s, %s, %s)",
            (prop, value, description, uuid),
        )


def _create_hospital_database(target: MySQLTarget, name: str, hospital: DemoHospital, prefix: str) -> None:
    """Create, mark and fill one OpenMRS database; drop it again if filling fails.

    The marker commits first and the rows, with the "filled" property, in one transaction
    after it: a run killed half-way leaves a marked, unfilled database the next run recreates.
    """
    admin = _connect(target)
    try:
        with admin.cursor() as cursor:
            # No IF NOT EXISTS: a database someone created since the check makes this fail.
            cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        try:
            load_openmrs_schema(admin, name)
            _set_property(
                admin,
                DEMO_PROPERTY,
                prefix,
                "Created by passport-sync demo; dropped by passport-sync demo --reset",
                _uuid(prefix, hospital.key, "marker"),
            )
            admin.autocommit(False)
            _fill_hospital(admin, hospital)
            _set_property(
                admin, FILLED_PROPERTY, "true", "passport-sync demo: every demo row is in", _uuid(prefix, hospital.key)
            )
            admin.commit()
        except BaseException:
            with suppress(pymysql.MySQLError):
                admin.rollback()
                admin.autocommit(True)
                _drop(admin, name)
            raise
    except pymysql.MySQLError as exc:
        raise _mysql_error(exc, target) from None
    finally:
        admin.close()


@dataclass(frozen=True, slots=True)
class _Concepts:
    visit_reason: int
    weight: int
    temperature: int
    blood_pressure: int
    systolic: int
    diastolic: int
    diagnosis: int
    diagnoses: dict[str, int]
    medication: int
    drugs: dict[str, tuple[int, int]]  # name -> (concept_id, drug_id)
    note: int
    chest_xray: int


_DIAGNOSES = ("Malaria", "Hypertension", "Diabetes mellitus type 2", "Pneumonia", "Asthma", "Gastritis")
_DRUG_FOR = {
    "Malaria": "Artemether/Lumefantrine 20/120 mg tablet",
    "Hypertension": "Amlodipine 5 mg tablet",
    "Diabetes mellitus type 2": "Metformin 500 mg tablet",
    "Pneumonia": "Amoxicillin 500 mg capsule",
    "Asthma": "Salbutamol 100 mcg inhaler",
    "Gastritis": "Omeprazole 20 mg capsule",
}
_REASONS = ("Routine check-up", "Follow-up visit", "Fever and headache", "Cough for two weeks", "Abdominal pain")
_NOTES = (
    "Advised to return if symptoms persist.",
    "Patient counselled on diet and exercise.",
    "Review in two weeks with results.",
    "Tolerating treatment well.",
)


def _concepts(b: OpenMRSBuilder) -> _Concepts:
    """The demo's concept dictionary; uuids are shared by the three hospitals, as with CIEL."""

    def concept(name: str, **kwargs: Any) -> int:
        return b.concept(name, uuid=_uuid("concept", name), **kwargs)

    drugs: dict[str, tuple[int, int]] = {}
    for drug_name in _DRUG_FOR.values():
        generic = drug_name.split(" ", 1)[0]
        concept_id = concept(generic, datatype="N/A", concept_class="Drug")
        strength = " ".join(drug_name.split(" ")[1:3])
        drugs[drug_name] = (concept_id, b.drug(drug_name, concept_id, strength=strength, uuid=_uuid("drug", drug_name)))
    return _Concepts(
        visit_reason=concept("Visit reason", datatype="Text", concept_class="Misc"),
        weight=concept(
            "Weight",
            datatype="Numeric",
            concept_class="Finding",
            units="kg",
            low_normal=30,
            hi_normal=150,
            allow_decimal=True,
        ),
        temperature=concept(
            "Temperature",
            datatype="Numeric",
            concept_class="Finding",
            units="°C",
            low_normal=36.0,
            hi_normal=37.5,
            hi_critical=41.0,
        ),
        blood_pressure=concept("Blood pressure", datatype="N/A", concept_class="ConvSet", is_set=True),
        systolic=concept(
            "Systolic blood pressure",
            datatype="Numeric",
            concept_class="Finding",
            units="mmHg",
            low_normal=90,
            hi_normal=140,
            allow_decimal=False,
        ),
        diastolic=concept(
            "Diastolic blood pressure",
            datatype="Numeric",
            concept_class="Finding",
            units="mmHg",
            low_normal=60,
            hi_normal=90,
            allow_decimal=False,
        ),
        diagnosis=concept("Diagnosis", datatype="Coded", concept_class="Diagnosis"),
        diagnoses={d: concept(d, datatype="N/A", concept_class="Diagnosis") for d in _DIAGNOSES},
        medication=concept("Medication prescribed", datatype="Coded", concept_class="Drug"),
        drugs=drugs,
        note=concept("Clinical note", datatype="Text", concept_class="Misc"),
        chest_xray=concept("Chest X-ray", datatype="Complex", concept_class="Procedure"),
    )


@dataclass(slots=True)
class _Visit:
    """One planned encounter and the observations it carries."""

    when: datetime
    patient: DemoPatient
    reason: str
    weight: float
    temperature: float
    systolic: int
    diastolic: int
    diagnosis: str | None = None
    medication: bool = False
    note: str | None = None
    xray: bool = False
    mistakes: bool = False  # a duplicate weight (voided) and a mistyped temperature (edited)


def _shown_patient_visits(hospital: DemoHospital, patient: DemoPatient) -> list[_Visit]:
    """Demo patient 1: one visit per hospital, with every kind of observation among them."""
    if hospital.key == "central":
        return [
            _Visit(
                datetime(2025, 2, 11, 9, 20),
                patient,
                "Routine check-up",
                78.4,
                36.8,
                152,
                96,
                "Hypertension",
                medication=True,
                note=_NOTES[1],
                mistakes=True,
            )
        ]
    if hospital.key == "district":
        return [
            _Visit(
                datetime(2025, 5, 23, 14, 5),
                patient,
                "Fever and headache",
                76.0,
                38.9,
                128,
                82,
                "Malaria",
                medication=True,
            )
        ]
    return [
        _Visit(
            datetime(2025, 9, 2, 10, 45),
            patient,
            "Cough for two weeks",
            75.2,
            37.9,
            136,
            88,
            "Pneumonia",
            medication=True,
            note=_NOTES[2],
            xray=True,
        )
    ]


def _plan_visits(hospital: DemoHospital, patients: Sequence[DemoPatient]) -> list[_Visit]:
    rng = random.Random(f"{_SEED}:{hospital.key}")
    visits: list[_Visit] = []
    for patient in patients:
        if hospital.key not in patient.hospitals:
            continue
        if patient.number == SHOWN_PATIENT:
            visits.extend(_shown_patient_visits(hospital, patient))
            continue
        weight = round(rng.uniform(48, 95), 1)
        for _ in range(rng.choice((1, 1, 2))):
            fever = rng.random() < 0.2
            hypertensive = rng.random() < 0.2
            diagnosis = rng.choice(_DIAGNOSES) if rng.random() < 0.75 else None
            visits.append(
                _Visit(
                    when=_EPOCH + timedelta(days=rng.randrange(0, 290), minutes=rng.randrange(0, 8 * 60)),
                    patient=patient,
                    reason=rng.choice(_REASONS),
                    weight=round(weight + rng.uniform(-2, 2), 1),
                    temperature=round(rng.uniform(38.2, 39.6) if fever else rng.uniform(36.2, 37.3), 1),
                    systolic=rng.randrange(145, 170) if hypertensive else rng.randrange(102, 135),
                    diastolic=rng.randrange(92, 105) if hypertensive else rng.randrange(64, 86),
                    diagnosis=diagnosis,
                    medication=diagnosis is not None and rng.random() < 0.7,
                    note=rng.choice(_NOTES) if rng.random() < 0.3 else None,
                    xray=rng.random() < 0.08,
                )
            )
    visits.sort(key=lambda v: (v.when, v.patient.number))
    return visits


def _fill_hospital(conn: Any, hospital: DemoHospital) -> None:
    """Every row of one demo hospital, in one transaction (the caller commits)."""
    b = OpenMRSBuilder(conn, now=_EPOCH - timedelta(days=30), commit=False)
    key = hospital.key
    concepts = _concepts(b)
    location = b.location(f"{hospital.name} Outpatient Department", uuid=_uuid(key, "location"))
    doctors = [
        b.provider(given, family, identifier=f"{key.upper()}-{i + 1:03d}", uuid=_uuid(key, "provider", i))
        for i, (given, family) in enumerate(hospital.doctors)
    ]
    patients = [p for p in demo_patients() if key in p.hospitals]
    person_ids = {
        p.number: b.patient(
            national_id=p.national_id,
            given=p.given,
            family=p.family,
            gender=p.gender,
            birthdate=p.birthdate,
            uuid=_uuid(key, "person", p.number),
        )
        for p in patients
    }
    rng = random.Random(f"{_SEED}:{key}:obs")
    serial = 0

    def obs(person: int, concept: int, encounter: int, **values: Any) -> int:
        nonlocal serial
        serial += 1
        return b.obs(person, concept, encounter_id=encounter, uuid=_uuid(key, "obs", serial), **values)

    for number, visit in enumerate(_plan_visits(hospital, patients), start=1):
        person = person_ids[visit.patient.number]
        b.now = visit.when + timedelta(minutes=20)
        encounter = b.encounter(
            person,
            location_id=location,
            provider_ids=[doctors[rng.randrange(len(doctors))]],
            when=visit.when,
            encounter_type="Outpatient Consultation",
            uuid=_uuid(key, "encounter", number),
        )
        obs(person, concepts.visit_reason, encounter, value_text=visit.reason)
        obs(person, concepts.weight, encounter, value_numeric=visit.weight)
        if visit.mistakes:
            duplicate = obs(person, concepts.weight, encounter, value_numeric=visit.weight)
            b.void_obs(duplicate, reason="duplicate entry", when=visit.when + timedelta(minutes=40))
        temperature = obs(
            person,
            concepts.temperature,
            encounter,
            value_numeric=visit.temperature * 10 if visit.mistakes else visit.temperature,
        )
        group = obs(person, concepts.blood_pressure, encounter)
        obs(person, concepts.systolic, encounter, obs_group_id=group, value_numeric=visit.systolic)
        obs(person, concepts.diastolic, encounter, obs_group_id=group, value_numeric=visit.diastolic)
        if visit.diagnosis:
            obs(person, concepts.diagnosis, encounter, value_coded=concepts.diagnoses[visit.diagnosis])
        if visit.diagnosis and visit.medication:
            drug_concept, drug_id = concepts.drugs[_DRUG_FOR[visit.diagnosis]]
            obs(person, concepts.medication, encounter, value_coded=drug_concept, value_drug=drug_id)
        if visit.note:
            obs(person, concepts.note, encounter, value_text=visit.note)
        if visit.xray:
            file_uuid = _uuid(key, "complex", serial)
            obs(person, concepts.chest_xray, encounter, value_complex=f"chest-xray.png|{file_uuid}_chest-xray.png")
        if visit.mistakes:
            # Edited the next morning the way OpenMRS edits: a new row pointing at the old one
            # (previous_version), the old row voided. (edit_obs would give the new row a random uuid.)
            edited_at = visit.when + timedelta(days=1)
            b.now = edited_at
            obs(
                person,
                concepts.temperature,
                encounter,
                value_numeric=visit.temperature,
                previous_version=temperature,
                status="AMENDED",
                comments="typing error corrected",
            )
            b.void_obs(temperature, reason="typing error", when=edited_at)


def _database_counts(conn: Any, name: str) -> tuple[int, int]:
    with conn.cursor() as cursor:
        cursor.execute(f"SELECT (SELECT COUNT(*) FROM `{name}`.patient), (SELECT COUNT(*) FROM `{name}`.obs)")
        patients, observations = cursor.fetchone()
    return int(patients), int(observations)


# -- the demo folder -------------------------------------------------------------------------------------
def _read_dir_marker(options: DemoOptions) -> dict[str, Any] | None:
    """The demo folder's marker; UsageError when the folder exists, is not empty and is not ours."""
    folder = options.demo_dir
    marker = folder / DIR_MARKER
    if not folder.exists():
        return None
    if not folder.is_dir():
        raise UsageError(f"--demo-dir {folder} exists and is not a folder; nothing was changed")
    try:
        document = json.loads(marker.read_text(encoding="utf-8"))
    except FileNotFoundError:
        if any(folder.iterdir()):
            raise UsageError(
                f"refusing to use --demo-dir {folder}: it is not empty and the demo did not create it "
                f"(no {DIR_MARKER}); nothing was changed",
                hint="pass another --demo-dir",
            ) from None
        return None
    except (OSError, ValueError):
        raise UsageError(f"cannot read {marker}; nothing was changed", hint="pass another --demo-dir") from None
    if not isinstance(document, dict) or document.get("prefix") != options.prefix:
        other = document.get("prefix") if isinstance(document, dict) else None
        raise UsageError(
            f"--demo-dir {folder} belongs to the demo with --prefix {other}; nothing was changed",
            hint=f"pass --prefix {other}, or another --demo-dir, or run `passport-sync demo --reset --prefix {other}`",
        )
    return document


def _write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read (it may hold passwords)."""
    temporary = path.with_name(f".{path.name}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(temporary, 0o600)
    os.replace(temporary, path)


# -- MongoDB --------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Mongo:
    uri: str  # with the database
    database: str
    embedded: bool


@contextmanager
def _mongodb(options: DemoOptions) -> Iterator[_Mongo]:
    """The MongoDB the demo writes to: --mongodb-uri, or an embedded server for this command."""
    if options.mongodb_uri:
        name = mongo_database_in_path(options.mongodb_uri) or MONGO_DATABASE
        yield _Mongo(with_database(options.mongodb_uri, name), name, embedded=False)
        return
    options.mongo_folder.mkdir(parents=True, exist_ok=True)
    with embedded_server(options.mongo_folder) as server_uri:
        yield _Mongo(with_database(server_uri, MONGO_DATABASE), MONGO_DATABASE, embedded=True)


@contextmanager
def _mongo_database(mongo: _Mongo) -> Iterator[Any]:
    client: pymongo.MongoClient[Any] = pymongo.MongoClient(
        mongo.uri, serverSelectionTimeoutMS=5000, appname="passport-sync-demo", tz_aware=False
    )
    try:
        yield client[mongo.database]
    except PyMongoError as exc:
        raise translate_mongo_error(exc, "the demo's MongoDB setup") from None
    finally:
        client.close()


def _check_mongo_database(db: Any, prefix: str, where: str) -> bool:
    """True when the database holds anything; UsageError when it is not the demo's."""
    names = set(db.list_collection_names())
    if not names:
        return False
    marker = db[MONGO_MARKER].find_one({"_id": "demo"}) if MONGO_MARKER in names else None
    if marker is None:
        raise UsageError(
            f"refusing to touch the MongoDB database {db.name} on {where}: it holds collections and the demo "
            f"did not create it (no {MONGO_MARKER} collection); nothing was changed",
            hint="name an empty or new database at the end of --mongodb-uri, e.g. …/patientpassport_demo",
        )
    if marker.get("prefix") != prefix:
        raise UsageError(
            f"the MongoDB database {db.name} belongs to the demo with --prefix {marker.get('prefix')}; "
            "nothing was changed",
            hint="pass that --prefix, or another database in --mongodb-uri",
        )
    return True


def _claim_mongo_database(db: Any, prefix: str) -> None:
    db[MONGO_MARKER].update_one(
        {"_id": "demo"},
        {"$setOnInsert": {"prefix": prefix, "createdBy": "passport-sync demo", "createdAt": datetime.now(UTC)}},
        upsert=True,
    )


# What the app's registration sets beside the patient's own answers (its Patient model's defaults):
# the doctor and admin dashboards count only patients with status "active".
_REGISTRATION_DEFAULTS: dict[str, Any] = {
    "bloodType": None,
    "allergies": [],
    "currentMedications": [],
    "medicalHistory": [],
    "medications": [],
    "testResults": [],
    "hospitalVisits": [],
    "assignedDoctors": [],
    "openmrsUuid": None,
    "status": "active",
}


def _register_patients(db: Any, patients: Sequence[DemoPatient]) -> dict[int, str]:
    """Register the demo patients the way the app stores them; returns number -> patients._id."""
    now = datetime.now(UTC)
    # The demo patients cannot log in.
    password = unusable_password()
    ids: dict[int, str] = {}
    for p in patients:
        if not p.registered:
            continue
        user_id = placeholder_id("demo-patient-user", p.national_id)
        user = app_user(
            user_id, f"{p.given} {p.family}", f"demo.patient{p.number}@example.org", "patient", password, now
        )
        db["users"].update_one({"_id": user_id}, {"$setOnInsert": user}, upsert=True)
        db["patients"].update_one(
            {"nationalId": p.national_id},
            {
                "$setOnInsert": {
                    "_id": placeholder_id("demo-patient", p.national_id),
                    "user": user_id,
                    "dateOfBirth": datetime(p.birthdate.year, p.birthdate.month, p.birthdate.day),
                    "gender": "female" if p.gender == "F" else "male",
                    "contactNumber": f"+25078{p.number:07d}",
                    "address": "Kigali, Rwanda",
                    "emergencyContact": {
                        "name": "Demo Contact",
                        "relationship": "sibling",
                        "phone": f"+25073{p.number:07d}",
                    },
                    **_REGISTRATION_DEFAULTS,
                    "createdAt": now,
                    "updatedAt": now,
                    "__v": 0,
                }
            },
            upsert=True,
        )
    # Demo databases made before patients were registered as the app does.
    db["patients"].update_many(
        {"nationalId": {"$in": [p.national_id for p in patients]}, "status": {"$exists": False}},
        {"$set": {"status": "active"}},
    )
    for doc in db["patients"].find({"nationalId": {"$in": [p.national_id for p in patients]}}, {"nationalId": 1}):
        number = next(p.number for p in patients if p.national_id == doc["nationalId"])
        ids[number] = str(doc["_id"])
    return ids


# -- the configuration the demo syncs with -------------------------------------------------------------------
def _config_document(options: DemoOptions, mongo: _Mongo) -> dict[str, Any]:
    hospitals = []
    for hospital in HOSPITALS:
        db: dict[str, Any] = {
            "host": options.mysql.host,
            "port": options.mysql.port,
            "name": options.database(hospital),
            "user": options.mysql.user,
        }
        if options.mysql.password:
            db["password"] = options.mysql.password
        hospitals.append({"id": hospital.key, "name": hospital.name, "db": db})
    mongodb: dict[str, Any] = {"uri": mongo.uri, "server_selection_timeout_ms": 5000}
    if mongo.embedded:
        # Every command with this file starts the embedded server on the demo's data.
        mongodb = {
            "uri": f"mongodb://127.0.0.1:27017/{mongo.database}",
            "embedded_data_dir": MONGO_FOLDER,
            "server_selection_timeout_ms": 5000,
        }
    return {
        "mongodb": mongodb,
        "sync": {
            "batch_size": 100,
            "retry": {"attempts": 3, "initial_wait_seconds": 0.2, "max_wait_seconds": 2.0},
            # The demo's form asks for the visit reason: shown as the visit.
            "categories": {"concepts": {"Visit reason": "visit"}},
        },
        "hospitals": hospitals,
    }


def _write_config(options: DemoOptions, mongo: _Mongo) -> Path:
    header = (
        f"# Written by `passport-sync demo --prefix {options.prefix}`: the three demo hospitals.\n"
        "# It may hold the MySQL password of --mysql-url: keep it private (chmod 600).\n"
    )
    if mongo.embedded:
        header += (
            "# mongodb.embedded_data_dir: every passport-sync command run with this file starts the demo's\n"
            "# embedded MongoDB on that folder (next to this file) for as long as it runs; only the database\n"
            "# name of mongodb.uri is used. Remove the key to use the server of mongodb.uri instead.\n"
        )
    text = header + yaml.safe_dump(_config_document(options, mongo), sort_keys=False, allow_unicode=True)
    _write_private(options.config_path, text)
    return options.config_path


# -- what the patient sees -----------------------------------------------------------------------------------
def _value(record: dict[str, Any]) -> str:
    data = record.get("data") or {}
    name, details = str(data.get("name", "")), str(data.get("details", ""))
    # A record whose details already start with its name ("Diagnosis: Hypertension") shows them
    # once, not "Diagnosis: Diagnosis: Hypertension".
    repeated = details.casefold() == name.casefold() or details.casefold().startswith(name.casefold() + ":")
    value = details if name and repeated else f"{name}: {details}"
    if record.get("type") == "test" and data.get("testStatus") not in (None, "Normal"):
        value += f" ({data['testStatus']})"
    return value


def _history(store: PassportStore, patient_id: str) -> list[dict[str, str]]:
    records = store.db[RECORDS].find({"patientId": patient_id}).sort([("data.date", 1), ("openmrsData.obsId", 1)])
    return [
        {
            "category": str(r.get("type", "")),
            "value": _value(r),
            "hospital": str((r.get("data") or {}).get("hospital", "")),
            "doctor": str((r.get("data") or {}).get("doctor", "")),
            "date": str((r.get("data") or {}).get("date", ""))[:10],
        }
        for r in records
    ]


def _sync(
    settings: Settings, patient_id: str | None
) -> tuple[list[HospitalReport], list[dict[str, Any]], dict[str, int], list[dict[str, str]]]:
    store = PassportStore.connect(settings)
    try:
        hospitals = settings.enabled_hospitals()
        reports = service.sync_all(settings, store, hospitals, observer=LoggingObserver())
        statuses = [service.hospital_status(settings, store, h) for h in hospitals]
        try:
            parked = {
                h.name: store.db[PARKED].count_documents({"hospitalId": h.id, "reason": NOT_IN_PASSPORT})
                for h in hospitals
            }
            history = _history(store, patient_id) if patient_id else []
        except PyMongoError as exc:
            raise translate_mongo_error(exc, "reading the demo results") from None
        return reports, statuses, parked, history
    finally:
        store.close()


# -- the two entry points ------------------------------------------------------------------------------------
def run_demo(options: DemoOptions) -> DemoResult:
    """Create what is missing, register the patients, run sync-all; see the module docstring."""
    _check_prefix(options.prefix)
    names = {h.key: options.database(h) for h in HOSPITALS}
    admin = _connect(options.mysql)
    try:
        states = _database_states(admin, list(names.values()), options.prefix)
        _refuse_foreign_databases(states, options.mysql, options.prefix)
        _read_dir_marker(options)
        if options.mongodb_uri:
            _check_mongo_uri(options.mongodb_uri)
        with _mongodb(options) as mongo:
            where = "the embedded server" if mongo.embedded else redact_uri(mongo.uri)
            with _mongo_database(mongo) as db:
                _check_mongo_database(db, options.prefix, where)
                _write_dir_marker(options, mongo)
                _claim_mongo_database(db, options.prefix)
                databases: list[DatabaseInfo] = []
                for hospital in HOSPITALS:
                    name = names[hospital.key]
                    created = states[name] != READY
                    if states[name] == UNFILLED:
                        log.info(
                            "%s: %s was left half-made by an interrupted demo run; recreating it", hospital.name, name
                        )
                        _drop(admin, name)
                    if created:
                        log.info("%s: creating the OpenMRS database %s", hospital.name, name)
                        _create_hospital_database(options.mysql, name, hospital, options.prefix)
                    counts = _database_counts(admin, name)
                    databases.append(DatabaseInfo(hospital.key, hospital.name, name, created, *counts))
                patients = demo_patients()
                passport_ids = _register_patients(db, patients)
            config_path = _write_config(options, mongo)
            settings = load_settings(config_path, environ={})
            if mongo.embedded:
                settings = using_uri(settings, mongo.uri)  # the server this command started
            shown = next(p for p in patients if p.number == SHOWN_PATIENT)
            reports, statuses, parked, history = _sync(settings, passport_ids.get(SHOWN_PATIENT))
    except pymysql.MySQLError as exc:
        raise _mysql_error(exc, options.mysql) from None
    finally:
        admin.close()
    by_key = {h.key: h.name for h in HOSPITALS}
    unregistered = next(p for p in patients if not p.registered)
    return DemoResult(
        prefix=options.prefix,
        mysql=options.mysql.describe(),
        databases=databases,
        mongodb_embedded=mongo.embedded,
        mongodb_database=mongo.database,
        mongodb_uri=redact_uri(mongo.uri),
        mongo_folder=options.mongo_folder if mongo.embedded else None,
        config_path=config_path,
        registered=len(passport_ids),
        reports=reports,
        statuses=statuses,
        parked={name: count for name, count in parked.items() if count},
        unregistered_label=unregistered.label,
        patient_label=shown.label,
        patient_hospitals=[by_key[k] for k in shown.hospitals],
        history=history,
    )


def _check_mongo_uri(uri: str) -> None:
    if not uri.startswith(("mongodb://", "mongodb+srv://")):
        raise UsageError(
            "--mongodb-uri must start with mongodb:// or mongodb+srv://",
            hint="e.g. mongodb://127.0.0.1:27017/patientpassport_demo",
        )
    if mongo_database_in_path(uri) == DEFAULT_DATABASE:
        raise UsageError(
            f"--mongodb-uri names the database {DEFAULT_DATABASE}, the Patient Passport app's own; "
            "the demo will not write there",
            hint=f"name another database, e.g. …/{MONGO_DATABASE}",
        )


def _write_dir_marker(options: DemoOptions, mongo: _Mongo) -> None:
    options.demo_dir.mkdir(parents=True, exist_ok=True)
    document = {
        "prefix": options.prefix,
        "created_by": "passport-sync demo",
        "mongodb": {"embedded": mongo.embedded, "database": mongo.database, "uri": redact_uri(mongo.uri)},
    }
    (options.demo_dir / DIR_MARKER).write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")


def reset_demo(options: DemoOptions) -> ResetResult:
    """Drop what the demo created, after checking that all of it is the demo's."""
    _check_prefix(options.prefix)
    result = ResetResult(options.prefix)
    names = [options.database(h) for h in HOSPITALS]
    admin = _connect(options.mysql)
    try:
        states = _database_states(admin, names, options.prefix)
        _refuse_foreign_databases(states, options.mysql, options.prefix)
        marker = _read_dir_marker(options)
        mongo_db = None
        if options.mongodb_uri:
            _check_mongo_uri(options.mongodb_uri)
            mongo_db = mongo_database_in_path(options.mongodb_uri) or MONGO_DATABASE
            mongo = _Mongo(with_database(options.mongodb_uri, mongo_db), mongo_db, embedded=False)
            with _mongo_database(mongo) as db:
                if _check_mongo_database(db, options.prefix, redact_uri(mongo.uri)):
                    db.client.drop_database(mongo_db)
                    result.mongodb_dropped = mongo_db
        elif marker and not (marker.get("mongodb") or {}).get("embedded", True):
            used = marker["mongodb"]
            result.notes.append(
                f"the demo last wrote to the MongoDB database {used.get('database')} on {used.get('uri')}; "
                "it was left as is: pass the same --mongodb-uri with --reset to drop it"
            )
        for name in names:
            if states[name] == ABSENT:
                result.absent.append(name)
            else:
                _drop(admin, name)
                result.dropped.append(name)
    except pymysql.MySQLError as exc:
        raise _mysql_error(exc, options.mysql) from None
    finally:
        admin.close()
    if marker is not None:
        if options.mongo_folder.exists():
            shutil.rmtree(options.mongo_folder)
            result.removed.append(str(options.mongo_folder))
        for path in (options.config_path, options.demo_dir / DIR_MARKER):
            if path.exists():
                path.unlink()
                result.removed.append(str(path))
        if not any(options.demo_dir.iterdir()):
            options.demo_dir.rmdir()
            result.removed.append(str(options.demo_dir))
    return result


# -- rendering (text; the CLI builds JSON from as_dict) ------------------------------------------------------
DATABASE_COLUMNS = (
    ("database", "Database"),
    ("hospital", "Hospital"),
    ("patients", "Patients"),
    ("observations", "Observations"),
    ("this_run", "This run"),
)
HISTORY_COLUMNS = (
    ("category", "Category"),
    ("value", "Value"),
    ("hospital", "Hospital"),
    ("doctor", "Doctor"),
    ("date", "Date"),
)


def render_demo(result: DemoResult, out: TextIO) -> None:
    render_table(
        f"passport-sync demo: OpenMRS databases on {result.mysql}",
        DATABASE_COLUMNS,
        (
            {
                "database": d.database,
                "hospital": d.hospital_name,
                "patients": d.patients,
                "observations": d.observations,
                "this_run": "created" if d.created else "kept (made by an earlier demo run)",
            }
            for d in result.databases
        ),
        out,
    )
    where = f"embedded MongoDB, data in {result.mongo_folder}" if result.mongodb_embedded else result.mongodb_uri
    print(
        f"Patient Passport: database {result.mongodb_database} ({where}): "
        f"{result.registered} demo patients registered, 1 left out on purpose.",
        file=out,
    )
    print(file=out)
    render_sync_summary(result.reports, out)
    if not result.first_run and all(r.written == 0 and r.outcome == "ok" for r in result.reports):
        reread = (
            " (Read counts the latest voids, which every run checks again)"
            if any(r.read for r in result.reports)
            else ""
        )
        print(f"Nothing new: each hospital resumed from its checkpoint and wrote nothing{reread}.", file=out)
    print(file=out)
    render_status(result.statuses, out)
    print(file=out)
    if result.parked:
        where_parked = ", ".join(f"{name}: {count}" for name, count in result.parked.items())
        print(
            f"{result.unregistered_label} is not registered in Patient Passport: their observations are parked "
            f"({where_parked}) and land on the first run after they register.",
            file=out,
        )
        print(file=out)
    render_table(
        f"{result.patient_label}: synced history as the patient sees it ({', '.join(result.patient_hospitals)})",
        HISTORY_COLUMNS,
        result.history,
        out,
    )
    print(file=out)
    for line in result.next_steps():
        print(line, file=out)


def render_reset(result: ResetResult, out: TextIO) -> None:
    print(f"passport-sync demo --reset --prefix {result.prefix}:", file=out)
    for name in result.dropped:
        print(f"  dropped the MySQL database {name}", file=out)
    for name in result.absent:
        print(f"  {name}: not there", file=out)
    if result.mongodb_dropped:
        print(f"  dropped the MongoDB database {result.mongodb_dropped}", file=out)
    for path in result.removed:
        print(f"  removed {path}", file=out)
    for note in result.notes:
        print(f"note: {note}", file=out)
    if not (result.dropped or result.mongodb_dropped or result.removed):
        print("  nothing to drop", file=out)
