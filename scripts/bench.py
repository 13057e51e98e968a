#!/usr/bin/env python3
"""passport-sync benchmark: backfill N synthetic OpenMRS observations into a MongoDB wire server.

One command on a fresh machine (it creates .venv and installs passport-sync with the ``demo``
extra if needed, and starts the local MariaDB if nothing answers on the default URL)::

    python3 scripts/bench.py                 # N = 200,000
    python3 scripts/bench.py --n 50000 --json bench-results/bench-50000.json

What one run does:

1. generates ``--hospitals`` OpenMRS databases in MariaDB holding N observations together
   (encounters of 5-20 obs of one patient, provider and location; numeric vitals with units and
   ranges, coded diagnoses, text notes, obs groups, drugs, booleans and dates; some voided, some
   edited), and registers ~90% of the ``--patients`` people in Patient Passport;
2. starts the SecantusDB MongoDB wire server as a separate process (unless ``--mongodb-uri``);
3. runs ``sync-all`` (``service.sync_all`` over every hospital) in a child process, counting the
   MySQL statements (``OpenMRSSource.statements``) and the MongoDB commands (pymongo command
   monitoring) and reading the child's peak RSS;
4. measures the limit in the same servers: (a) every page of the sync's own obs query read with
   raw pymysql and nothing else, (b) the documents the sync wrote inserted with a plain
   ``insert_many`` (1000 per call, unordered) into a collection with the same indexes;
5. adds 100 observations to the first hospital and times an incremental ``sync-all``, with the
   EXPLAIN of its obs and void queries;
6. runs ``reconcile`` three times, each in a fresh process: the first pass (no checksums kept:
   every row compared with the Passport), a pass with no drift (what a full pass costs; it must
   read no row), and a pass after one patient of hospital 1 was merged into another by SQL (it
   should read about that patient's rows);
7. prints one table and writes the same as JSON (default ``bench-results/bench-<N>.json``).

The fleet benchmark (``--fleet M``) measures many small hospitals instead: M OpenMRS databases
of ``--fleet-obs`` observations, each reached through its own local TCP proxy (asyncio, in this
process) that delays every chunk by half of ``--rtt-ms`` in each direction; after a backfill, for
each ``--workers`` value, an idle ``sync-all`` cycle and one with 5 new observations per
hospital, each in a fresh child process. It prints cycle seconds, MySQL statements and MongoDB
commands per hospital and peak RSS::

    python3 scripts/bench.py --fleet 40 --fleet-obs 200 --workers 1 4 16 --rtt-ms 50

``--profile PATH`` runs the backfill child under cProfile (its times are then inflated; use it
for "where does the time go", not for the table).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import hashlib
import itertools
import json
import os
import platform
import pstats
import random
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid as uuid_module
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

try:
    import pymongo
    import pymysql
    import pymysql.cursors
    from bson import ObjectId
    from pymongo import monitoring

    from passport_sync import checkpoint as cp_logic
    from passport_sync import service
    from passport_sync.config import HospitalConfig, Settings, load_settings
    from passport_sync.demo.builder import OpenMRSBuilder, load_openmrs_schema
    from passport_sync.sink.gateway import RECORDS
    from passport_sync.sink.passport import PassportStore
    from passport_sync.source import queries
    from passport_sync.source.openmrs import OpenMRSSource
except ModuleNotFoundError:  # a fresh machine: make .venv, install, and start again inside it
    _repo = Path(__file__).resolve().parents[1]
    _venv_python = _repo / ".venv" / "bin" / "python"
    if Path(sys.executable).resolve() == _venv_python.resolve():
        raise
    if not _venv_python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(_repo / ".venv")], check=True)
    subprocess.run(
        [str(_venv_python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-e", f"{_repo}[demo]"],
        check=True,
    )
    os.execv(str(_venv_python), [str(_venv_python), str(Path(__file__).resolve()), *sys.argv[1:]])

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MYSQL_URL = "mysql://root@127.0.0.1:3306"
INCREMENTAL_OBS = 100
SEED = 20251106

# The indexes scripts/create-readonly-user.sql asks every deployment to create.
RECOMMENDED_INDEXES = (
    "CREATE INDEX IF NOT EXISTS idx_obs_date_voided ON obs (date_voided)",
    "CREATE INDEX IF NOT EXISTS idx_obs_date_created ON obs (date_created)",
    "CREATE INDEX IF NOT EXISTS idx_obs_voided ON obs (voided)",
)

# Targets of the issue (measured here, never asserted in timed tests).
TARGET_RATIO = 0.5
TARGET_MYSQL_PER_1000 = 5
TARGET_MONGO_PER_1000 = 10
TARGET_RSS_MB = 300
TARGET_INCREMENTAL_SECONDS = 2.0


# =====================================================================================
# Synthetic data
# =====================================================================================

# (name, units, low_normal, hi_normal, low_critical, hi_critical, mean, sd, allow_decimal, class)
VITALS: tuple[tuple[str, str, float | None, float | None, float | None, float | None, float, float, bool, str], ...] = (
    ("Weight (kg)", "kg", None, None, None, None, 64.0, 14.0, True, "Test"),
    ("Height (cm)", "cm", None, None, None, None, 163.0, 11.0, True, "Test"),
    ("Temperature (C)", "DEG C", 36.0, 37.5, 35.0, 40.0, 36.9, 0.8, True, "Test"),
    ("Systolic blood pressure", "mmHg", 90.0, 140.0, 70.0, 180.0, 124.0, 18.0, False, "Test"),
    ("Diastolic blood pressure", "mmHg", 60.0, 90.0, 40.0, 120.0, 79.0, 11.0, False, "Test"),
    ("Pulse", "beats/min", 60.0, 100.0, 40.0, 140.0, 82.0, 14.0, False, "Test"),
    ("Respiratory rate", "breaths/min", 12.0, 20.0, 8.0, 30.0, 17.0, 3.0, False, "Test"),
    ("Blood oxygen saturation", "%", 95.0, 100.0, 90.0, None, 97.0, 2.0, False, "Test"),
    ("Haemoglobin", "g/dL", 12.0, 17.0, 7.0, 20.0, 13.2, 1.9, True, "Test"),
    ("Serum glucose", "mg/dL", 70.0, 140.0, 40.0, 400.0, 110.0, 35.0, False, "Test"),
    ("CD4 count", "cells/uL", 500.0, 1500.0, 200.0, None, 620.0, 260.0, False, "Test"),
    ("Mid-upper arm circumference", "cm", 23.0, None, 11.5, None, 26.0, 3.5, True, "Finding"),
)
DIAGNOSES = (
    "Malaria",
    "Hypertension",
    "Diabetes Type 2",
    "Pneumonia",
    "Pulmonary tuberculosis",
    "HIV infection",
    "Asthma",
    "Gastroenteritis",
    "Urinary tract infection",
    "Anaemia",
    "Upper respiratory tract infection",
    "Typhoid fever",
    "Peptic ulcer disease",
    "Malnutrition",
    "Sickle cell disease",
    "Chronic kidney disease",
    "Heart failure",
    "Epilepsy",
    "Depression",
    "Skin infection",
    "Otitis media",
    "Conjunctivitis",
    "Dental caries",
    "Low back pain",
    "Schistosomiasis",
)
DRUGS = (
    ("Paracetamol", "Paracetamol 500 mg tablet", "500 mg"),
    ("Amoxicillin", "Amoxicillin 250 mg capsule", "250 mg"),
    ("Artemether/Lumefantrine", "Artemether/Lumefantrine 20/120 mg tablet", "20/120 mg"),
    ("Metformin", "Metformin 500 mg tablet", "500 mg"),
    ("Amlodipine", "Amlodipine 5 mg tablet", "5 mg"),
    ("Cotrimoxazole", "Cotrimoxazole 960 mg tablet", "960 mg"),
    ("Ferrous sulfate", "Ferrous sulfate 200 mg tablet", "200 mg"),
    ("Ibuprofen", "Ibuprofen 400 mg tablet", "400 mg"),
    ("Tenofovir/Lamivudine/Dolutegravir", "TLD 300/300/50 mg tablet", "300/300/50 mg"),
    ("Salbutamol", "Salbutamol 100 mcg inhaler", "100 mcg"),
)
SYMPTOMS = ("fever", "cough", "headache", "abdominal pain", "fatigue", "diarrhoea", "chest pain", "dizziness")
ADVICE = (
    "Advised rest and fluids.",
    "Review in two weeks.",
    "Referred to the laboratory.",
    "Counselled on adherence.",
    "Return if symptoms worsen.",
    "Diet and exercise discussed.",
)
GIVEN = ("Aline", "Jean", "Marie", "Eric", "Grace", "Patrick", "Claudine", "Emmanuel", "Diane", "Olivier")
FAMILY = ("Uwase", "Habimana", "Mukamana", "Niyonzima", "Ingabire", "Nshimiyimana", "Uwimana", "Mugisha")

OBS_COLUMNS = (
    "obs_id",
    "person_id",
    "concept_id",
    "encounter_id",
    "obs_datetime",
    "location_id",
    "obs_group_id",
    "value_coded",
    "value_coded_name_id",
    "value_drug",
    "value_datetime",
    "value_numeric",
    "value_text",
    "comments",
    "creator",
    "date_created",
    "voided",
    "voided_by",
    "date_voided",
    "void_reason",
    "uuid",
    "previous_version",
    "status",
    "interpretation",
)
_COL = {name: i for i, name in enumerate(OBS_COLUMNS)}

# Weights per event, aiming at these shares of obs ROWS: numeric 40%, coded 20%, text 10%, groups
# 15%, drug 5%, boolean and date 5% each. A group event writes a parent and 2-3 members (~3.5
# rows) and does not fit in the last slots of an encounter, hence 19 / 3.5 for 15% of the rows.
KIND_WEIGHTS = {
    "numeric": 40.0,
    "coded": 20.0,
    "text": 10.0,
    "group": 19.0 / 3.5,
    "drug": 5.0,
    "boolean": 5.0,
    "date": 5.0,
}
VOIDED_SHARE = 0.03
# An edit needs room for the new row in its encounter; 1.3% of simple obs gives ~1% of all rows.
EDITED_SHARE = 0.013
UNREGISTERED_SHARE = 0.10
SECOND_HOSPITAL_SHARE = 0.15


@dataclass(frozen=True, slots=True)
class Population:
    """The people of the synthetic country: national IDs, and whether Patient Passport knows them."""

    national_ids: tuple[str, ...]
    registered: tuple[bool, ...]
    seed: int

    def visitors(self, index: int, hospitals: int) -> list[int]:
        """Person numbers with a record at hospital ``index``: their home one, sometimes a second."""
        rng = random.Random(f"{self.seed}:visits")
        found = []
        for person in range(len(self.national_ids)):
            second = rng.random() < SECOND_HOSPITAL_SHARE and hospitals > 1
            if person % hospitals == index or (second and (person + 1) % hospitals == index):
                found.append(person)
        return found


def make_population(patients: int, seed: int = SEED) -> Population:
    """``patients`` people with unique 16-digit national IDs; ~10% unknown to Patient Passport."""
    rng = random.Random(f"{seed}:people")
    ids: list[str] = []
    seen: set[str] = set()
    while len(ids) < patients:
        # 1, birth year, sex (7 or 8), serial, issue count, check digits: 16 digits.
        year, sex, serial = rng.randint(1940, 2020), rng.choice("78"), rng.randrange(10**7)
        nid = f"1{year}{sex}{serial:07d}{rng.randrange(10)}{rng.randrange(100):02d}"
        if nid not in seen:
            seen.add(nid)
            ids.append(nid)
    registered = tuple(rng.random() >= UNREGISTERED_SHARE for _ in ids)
    return Population(tuple(ids), registered, seed)


def _oid(*parts: object) -> ObjectId:
    return ObjectId(hashlib.sha256(":".join(map(str, parts)).encode()).digest()[:12])


def register_population(db: Any, population: Population) -> int:
    """Register the registered people in Patient Passport (users + patients, as the app stores them)."""
    now = datetime(2025, 1, 1, tzinfo=UTC)
    users: list[dict[str, Any]] = []
    patients: list[dict[str, Any]] = []
    for person, (nid, registered) in enumerate(zip(population.national_ids, population.registered, strict=True)):
        if not registered:
            continue
        user_id = _oid("bench-user", nid)
        name = f"{GIVEN[person % len(GIVEN)]} {FAMILY[person % len(FAMILY)]}"
        users.append(
            {
                "_id": user_id,
                "name": name,
                "email": f"p{user_id}@example.org",
                "password": "$2b$12$" + "x" * 53,
                "role": "patient",
                "createdAt": now,
                "updatedAt": now,
            }
        )
        patients.append(
            {
                "_id": _oid("bench-patient", nid),
                "user": user_id,
                "nationalId": nid,
                "dateOfBirth": datetime(int(nid[1:5]), 1, 1),
                "gender": "female" if nid[5] == "7" else "male",
                "contactNumber": "+250788000000",
                "address": "Kigali",
                "emergencyContact": {"name": "A", "relationship": "sibling", "phone": "+250788000001"},
                "allergies": [],
                "medicalHistory": [],
                "createdAt": now,
                "updatedAt": now,
            }
        )
    for start in range(0, len(users), 1000):
        db.users.insert_many(users[start : start + 1000], ordered=False)
        db.patients.insert_many(patients[start : start + 1000], ordered=False)
    return len(patients)


@dataclass(slots=True)
class GenerationStats:
    rows: int = 0
    encounters: int = 0
    voided: int = 0
    edited: int = 0
    groups: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    def add(self, other: GenerationStats) -> None:
        self.rows += other.rows
        self.encounters += other.encounters
        self.voided += other.voided
        self.edited += other.edited
        self.groups += other.groups
        self.kinds.update(other.kinds)
        self.seconds += other.seconds

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "kinds": dict(sorted(self.kinds.items())), "seconds": round(self.seconds, 2)}


def _insert_rows(conn: Any, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Multi-row INSERTs (pymysql's executemany packs the rows into ~1 MB statements)."""
    if not rows:
        return
    sql = f"INSERT INTO `{table}` ({', '.join(f'`{c}`' for c in columns)}) VALUES ({', '.join(['%s'] * len(columns))})"
    with conn.cursor() as cursor:
        cursor.executemany(sql, rows)


class SyntheticHospital:
    """Fills one OpenMRS database (already created with ``load_openmrs_schema``) with realistic rows.

    ``setup()`` creates concepts, drugs, locations, providers and the hospital's patients;
    ``add_obs(n)`` appends exactly ``n`` obs rows in encounters and can be called again later
    (the incremental run): ids, clock and random state continue.
    """

    def __init__(
        self,
        conn: Any,
        population: Population,
        *,
        index: int = 0,
        hospitals: int = 1,
        providers: int = 20,
        locations: int = 5,
        seed: int = SEED,
        start: datetime = datetime(2025, 1, 6, 7, 0),
    ) -> None:
        self.conn = conn
        self.population = population
        self.index = index
        self.hospitals = hospitals
        self.n_providers = providers
        self.n_locations = locations
        self.rng = random.Random(f"{seed}:hospital:{index}")
        self.clock = start
        self.builder = OpenMRSBuilder(conn, now=start, commit=False)
        self.persons: list[int] = []
        self.person_weights: list[float] = []
        self.providers: list[int] = []
        self.locations: list[int] = []
        self.stats = GenerationStats()

    # -- setup -------------------------------------------------------------------------------
    def _uuid(self) -> str:
        return str(uuid_module.UUID(int=self.rng.getrandbits(128), version=4))

    def _max_id(self, table: str, column: str) -> int:
        with self.conn.cursor() as cursor:
            cursor.execute(f"SELECT COALESCE(MAX(`{column}`), 0) FROM `{table}`")
            return int(cursor.fetchone()[0])

    def _name_id(self, concept_id: int) -> int:
        with self.conn.cursor() as cursor:
            cursor.execute(
                "SELECT concept_name_id FROM concept_name WHERE concept_id = %s AND locale = 'en' ORDER BY 1 LIMIT 1",
                (concept_id,),
            )
            return int(cursor.fetchone()[0])

    def setup(self) -> None:
        b = self.builder
        self.true_id, self.false_id = b.true_concept_id, b.false_concept_id
        self.vitals = []
        for name, units, low, hi, low_crit, hi_crit, mean, sd, decimal, klass in VITALS:
            cid = b.concept(
                name,
                datatype="Numeric",
                concept_class=klass,
                units=units,
                low_normal=low,
                hi_normal=hi,
                low_critical=low_crit,
                hi_critical=hi_crit,
                allow_decimal=decimal,
            )
            self.vitals.append((cid, mean, sd, decimal, low, hi))
        self.vital_by_name = {v[0]: self.vitals[i] for i, v in enumerate(VITALS)}
        self.diagnosis_q = b.concept("Visit diagnosis", datatype="Coded", concept_class="Question")
        self.diagnoses = []
        for name in DIAGNOSES:
            cid = b.concept(name, datatype="N/A", concept_class="Diagnosis")
            self.diagnoses.append((cid, self._name_id(cid)))
        self.note_concepts = [
            b.concept("Clinical notes", datatype="Text", concept_class="Misc"),
            b.concept("Chief complaint", datatype="Text", concept_class="Symptom"),
        ]
        self.drug_q = b.concept("Medication dispensed", datatype="Coded", concept_class="Drug")
        self.drugs = []
        for concept_name, drug_name, strength in DRUGS:
            cid = b.concept(concept_name, datatype="N/A", concept_class="Drug")
            self.drugs.append((cid, b.drug(drug_name, cid, strength=strength)))
        self.booleans = [
            b.concept("Currently pregnant", datatype="Boolean", concept_class="Finding"),
            b.concept("Referred to another facility", datatype="Boolean", concept_class="Question"),
            b.concept("HIV test done", datatype="Boolean", concept_class="Test"),
        ]
        self.dates = [
            b.concept("Next appointment date", datatype="Date", concept_class="Question"),
            b.concept("Date of last menstrual period", datatype="Date", concept_class="Question"),
        ]
        malaria_result = b.concept("Malaria smear result", datatype="Coded", concept_class="Test")
        positive = b.concept("Positive", datatype="N/A", concept_class="Misc")
        negative = b.concept("Negative", datatype="N/A", concept_class="Misc")
        density = b.concept("Parasite density", datatype="Numeric", concept_class="Test", units="parasites/uL")
        vit = self.vital_by_name
        self.groups = [
            (
                b.concept("Blood pressure panel", datatype="N/A", concept_class="ConvSet", is_set=True),
                [("vital", vit["Systolic blood pressure"]), ("vital", vit["Diastolic blood pressure"])],
                [("vital", vit["Pulse"])],
            ),
            (
                b.concept("Vital signs", datatype="N/A", concept_class="ConvSet", is_set=True),
                [("vital", vit["Temperature (C)"]), ("vital", vit["Respiratory rate"])],
                [("vital", vit["Blood oxygen saturation"])],
            ),
            (
                b.concept("Malaria test panel", datatype="N/A", concept_class="LabSet", is_set=True),
                [
                    ("coded", (malaria_result, [positive, negative])),
                    ("vital", (density, 2500.0, 2000.0, False, None, None)),
                ],
                [],
            ),
        ]
        self.locations = [
            b.location(f"Hospital {self.index + 1} {ward}") for ward in ("OPD", "IPD", "Lab", "ANC", "ART")
        ]
        self.locations = self.locations[: self.n_locations]
        self.providers = [
            b.provider(GIVEN[i % len(GIVEN)], f"{FAMILY[i % len(FAMILY)]}-{self.index + 1}-{i}")
            for i in range(self.n_providers)
        ]
        self.encounter_type = b.encounter_type("Consultation")
        with self.conn.cursor() as cursor:
            cursor.execute("SELECT encounter_role_id FROM encounter_role WHERE name = 'Unknown' LIMIT 1")
            self.role_id = int(cursor.fetchone()[0])
        self._add_patients(b.national_id_type_id)
        self.cum_weights = list(itertools.accumulate(self.person_weights))
        self.next_obs = self._max_id("obs", "obs_id") + 1
        self.next_encounter = self._max_id("encounter", "encounter_id") + 1
        self.next_enc_provider = self._max_id("encounter_provider", "encounter_provider_id") + 1
        self.conn.commit()

    def _add_patients(self, id_type: int) -> None:
        people = self.population.visitors(self.index, self.hospitals)
        next_person = self._max_id("person", "person_id") + 1
        next_name = self._max_id("person_name", "person_name_id") + 1
        next_ident = self._max_id("patient_identifier", "patient_identifier_id") + 1
        created = self.clock - timedelta(days=30)
        persons, names, patients, idents = [], [], [], []
        for k, person in enumerate(people):
            pid = next_person + k
            nid = self.population.national_ids[person]
            gender = "F" if nid[5] == "7" else "M"
            persons.append(
                (pid, gender, date(int(nid[1:5]), 1 + person % 12, 1 + person % 28), 1, created, self._uuid())
            )
            names.append(
                (
                    next_name + k,
                    1,
                    pid,
                    GIVEN[person % len(GIVEN)],
                    FAMILY[person % len(FAMILY)],
                    1,
                    created,
                    self._uuid(),
                )
            )
            patients.append((pid, 1, created))
            # OpenMRS identifiers are free text: a fifth are typed with spaces between digit groups.
            shown = (
                nid if self.rng.random() >= 0.2 else f"{nid[0]} {nid[1:5]} {nid[5]} {nid[6:13]} {nid[13]} {nid[14:]}"
            )
            idents.append((next_ident + k, pid, shown, id_type, 1, None, 1, created, self._uuid()))
            self.persons.append(pid)
            # A few patients come often, most rarely (chronic care vs. one-off visits).
            self.person_weights.append(min(self.rng.paretovariate(1.3), 40.0))
        _insert_rows(
            self.conn, "person", ("person_id", "gender", "birthdate", "creator", "date_created", "uuid"), persons
        )
        _insert_rows(
            self.conn,
            "person_name",
            (
                "person_name_id",
                "preferred",
                "person_id",
                "given_name",
                "family_name",
                "creator",
                "date_created",
                "uuid",
            ),
            names,
        )
        _insert_rows(self.conn, "patient", ("patient_id", "creator", "date_created"), patients)
        _insert_rows(
            self.conn,
            "patient_identifier",
            (
                "patient_identifier_id",
                "patient_id",
                "identifier",
                "identifier_type",
                "preferred",
                "location_id",
                "creator",
                "date_created",
                "uuid",
            ),
            idents,
        )

    # -- observations --------------------------------------------------------------------------
    def _row(self, person: int, concept: int, encounter: int, when: datetime, location: int) -> list[Any]:
        row: list[Any] = [None] * len(OBS_COLUMNS)
        row[_COL["obs_id"]] = self.next_obs
        self.next_obs += 1
        row[_COL["person_id"]] = person
        row[_COL["concept_id"]] = concept
        row[_COL["encounter_id"]] = encounter
        row[_COL["obs_datetime"]] = when
        row[_COL["location_id"]] = location
        row[_COL["creator"]] = 1
        row[_COL["date_created"]] = when + timedelta(minutes=self.rng.randint(1, 20))
        row[_COL["voided"]] = 0
        row[_COL["uuid"]] = self._uuid()
        row[_COL["status"]] = "FINAL"
        return row

    def _numeric(self, row: list[Any], vital: tuple[int, float, float, bool, Any, Any]) -> None:
        _cid, mean, sd, decimal, low, hi = vital
        value = max(self.rng.gauss(mean, sd), 0.0)
        row[_COL["value_numeric"]] = round(value, 1) if decimal else float(round(value))
        if self.rng.random() < 0.3 and (low is not None or hi is not None):
            out = (low is not None and value < low) or (hi is not None and value > hi)
            row[_COL["interpretation"]] = "ABNORMAL" if out else "NORMAL"

    def _simple(self, kind: str, person: int, encounter: int, when: datetime, location: int) -> list[Any]:
        rng = self.rng
        if kind == "numeric":
            vital = rng.choice(self.vitals)
            row = self._row(person, vital[0], encounter, when, location)
            self._numeric(row, vital)
        elif kind == "coded":
            answer, name_id = rng.choice(self.diagnoses)
            row = self._row(person, self.diagnosis_q, encounter, when, location)
            row[_COL["value_coded"]] = answer
            row[_COL["value_coded_name_id"]] = name_id if rng.random() < 0.7 else None
        elif kind == "text":
            row = self._row(person, rng.choice(self.note_concepts), encounter, when, location)
            row[_COL["value_text"]] = (
                f"Patient reports {rng.choice(SYMPTOMS)} for {rng.randint(1, 14)} days"
                f" and {rng.choice(SYMPTOMS)}. {rng.choice(ADVICE)}"
            )
        elif kind == "drug":
            concept, drug = rng.choice(self.drugs)
            row = self._row(person, self.drug_q, encounter, when, location)
            row[_COL["value_coded"]] = concept
            row[_COL["value_drug"]] = drug
        elif kind == "boolean":
            row = self._row(person, rng.choice(self.booleans), encounter, when, location)
            row[_COL["value_coded"]] = self.true_id if rng.random() < 0.4 else self.false_id
        else:  # date
            row = self._row(person, rng.choice(self.dates), encounter, when, location)
            row[_COL["value_datetime"]] = datetime.combine(
                (when + timedelta(days=rng.randint(-40, 60))).date(), datetime.min.time()
            )
        if rng.random() < 0.05:
            row[_COL["comments"]] = rng.choice(ADVICE)
        return row

    def _group(self, person: int, encounter: int, when: datetime, location: int, room: int) -> list[list[Any]]:
        parent_concept, members, optional = self.rng.choice(self.groups)
        chosen = list(members) + (list(optional) if room > len(members) + 1 and self.rng.random() < 0.5 else [])
        parent = self._row(person, parent_concept, encounter, when, location)
        rows = [parent]
        for kind, spec in chosen:
            member = self._row(person, spec[0], encounter, when, location)
            member[_COL["obs_group_id"]] = parent[_COL["obs_id"]]
            member[_COL["date_created"]] = parent[_COL["date_created"]]
            if kind == "vital":
                self._numeric(member, spec)
            else:
                member[_COL["value_coded"]] = self.rng.choice(spec[1])
            rows.append(member)
        return rows

    def _encounter(self, size: int, stats: GenerationStats) -> tuple[tuple[Any, ...], tuple[Any, ...], list[list[Any]]]:
        rng = self.rng
        self.clock += timedelta(minutes=rng.randint(2, 10))
        when = self.clock
        person = rng.choices(self.persons, cum_weights=self.cum_weights)[0]
        provider = rng.choice(self.providers)
        location = rng.choice(self.locations)
        encounter = self.next_encounter
        self.next_encounter += 1
        enc = (encounter, self.encounter_type, person, location, when, 1, when, 0, self._uuid())
        enc_provider = (self.next_enc_provider, encounter, provider, self.role_id, 1, when, 0, self._uuid())
        self.next_enc_provider += 1
        rows: list[list[Any]] = []
        edits: list[list[Any]] = []
        kinds, weights = list(KIND_WEIGHTS), list(KIND_WEIGHTS.values())
        while len(rows) + len(edits) < size:
            room = size - len(rows) - len(edits)
            kind = rng.choices(kinds, weights=weights)[0]
            if kind == "group" and room >= 3:
                group = self._group(person, encounter, when, location, room)
                rows.extend(group)
                stats.groups += 1
                stats.kinds["group"] += len(group)
                continue
            if kind == "group":
                kind = "numeric"
            row = self._simple(kind, person, encounter, when, location)
            rows.append(row)
            stats.kinds[kind] += 1
            roll = rng.random()
            if roll < EDITED_SHARE and room >= 2:
                edits.append(row)
            elif roll < EDITED_SHARE + VOIDED_SHARE:
                row[_COL["voided"]] = 1
                row[_COL["voided_by"]] = 1
                row[_COL["date_voided"]] = row[_COL["date_created"]] + timedelta(minutes=rng.randint(1, 30))
                row[_COL["void_reason"]] = "entered in error"
                stats.voided += 1
        # An edit is a new row (later id) pointing at the old one, which is voided.
        for old in list(edits):
            new = list(old)
            new[_COL["obs_id"]] = self.next_obs
            self.next_obs += 1
            new[_COL["uuid"]] = self._uuid()
            new[_COL["previous_version"]] = old[_COL["obs_id"]]
            new[_COL["status"]] = "AMENDED"
            new[_COL["date_created"]] = old[_COL["date_created"]] + timedelta(minutes=rng.randint(10, 120))
            if new[_COL["value_numeric"]] is not None:
                new[_COL["value_numeric"]] = round(new[_COL["value_numeric"]] * rng.uniform(0.9, 1.1), 1)
            old[_COL["voided"]] = 1
            old[_COL["voided_by"]] = 1
            old[_COL["date_voided"]] = new[_COL["date_created"]]
            old[_COL["void_reason"]] = "edited"
            rows.append(new)
            stats.edited += 1
            stats.voided += 1
        stats.encounters += 1
        stats.rows += len(rows)
        return enc, enc_provider, rows

    def add_obs(self, n: int, *, gap: timedelta = timedelta(0)) -> GenerationStats:
        """Append exactly ``n`` obs rows, in encounters of 5-20 (the last one may be smaller)."""
        started = time.perf_counter()
        stats = GenerationStats()
        self.clock += gap
        encounters: list[tuple[Any, ...]] = []
        enc_providers: list[tuple[Any, ...]] = []
        rows: list[list[Any]] = []
        written = 0
        while written < n:
            size = min(n - written, self.rng.randint(5, 20))
            enc, enc_provider, obs = self._encounter(size, stats)
            encounters.append(enc)
            enc_providers.append(enc_provider)
            rows.extend(obs)
            written += len(obs)
            if len(rows) >= 20_000 or written >= n:
                self._flush(encounters, enc_providers, rows)
                encounters, enc_providers, rows = [], [], []
        self.conn.commit()
        stats.seconds = time.perf_counter() - started
        self.stats.add(stats)
        return stats

    def _flush(self, encounters: list[Any], enc_providers: list[Any], rows: list[list[Any]]) -> None:
        _insert_rows(
            self.conn,
            "encounter",
            (
                "encounter_id",
                "encounter_type",
                "patient_id",
                "location_id",
                "encounter_datetime",
                "creator",
                "date_created",
                "voided",
                "uuid",
            ),
            encounters,
        )
        _insert_rows(
            self.conn,
            "encounter_provider",
            (
                "encounter_provider_id",
                "encounter_id",
                "provider_id",
                "encounter_role_id",
                "creator",
                "date_created",
                "voided",
                "uuid",
            ),
            enc_providers,
        )
        rows.sort(key=lambda r: r[0])
        _insert_rows(self.conn, "obs", OBS_COLUMNS, rows)


def add_recommended_indexes(conn: Any) -> None:
    with conn.cursor() as cursor:
        for statement in RECOMMENDED_INDEXES:
            cursor.execute(statement)


# =====================================================================================
# The counted sync (used by the benchmark's child process and by tests/test_statement_bound.py)
# =====================================================================================


class CommandCounter(monitoring.CommandListener):
    """Counts MongoDB commands (CommandStartedEvent) by name, and by name and collection."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.by_collection: Counter[str] = Counter()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.counts[event.command_name] += 1
        target = event.command.get(event.command_name)
        where = target if isinstance(target, str) else event.database_name
        self.by_collection[f"{event.command_name} {where}"] += 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass

    def total(self) -> int:
        return sum(self.counts.values())


@dataclass(slots=True)
class CountedSync:
    seconds: float
    mysql_statements: int
    mysql_by_hospital: dict[str, int]
    mysql_by_method: dict[str, int]
    reports: list[dict[str, Any]]
    # Wall seconds spent inside OpenMRSSource.run (per source method) and MongoGateway.call (per
    # operation): driver encode/decode + network + server. The rest of the run is the sync's own
    # CPU (mapping, planning).
    mysql_seconds: dict[str, float] = field(default_factory=dict)
    mongo_seconds: dict[str, float] = field(default_factory=dict)


def counted_sync(settings: Settings, store: PassportStore, mode: str = "sync") -> CountedSync:
    """``service.sync_all`` over every enabled hospital, counting the statements each source ran
    (``OpenMRSSource.statements``), which source method asked for them, and where the time went.

    ``OpenMRSSource.run`` is wrapped at class level for the duration of the call, so a read-ahead
    source the pipeline opens on its own is labelled too; its time (on another thread, overlapping
    the writes) is kept apart as ``read-ahead``.
    """
    sources: list[tuple[str, OpenMRSSource]] = []
    by_method: Counter[str] = Counter()
    mysql_seconds: Counter[str] = Counter()
    mongo_seconds: Counter[str] = Counter()
    lock = threading.Lock()
    call = store.gateway.call
    original_run = OpenMRSSource.run

    def timed_call(what: str, fn: Any) -> Any:
        started = time.perf_counter()
        try:
            return call(what, fn)
        finally:
            mongo_seconds[what] += time.perf_counter() - started

    def labelled_run(source: OpenMRSSource, query: Any) -> Any:
        caller = sys._getframe(1)
        label = caller.f_code.co_name
        if label.startswith("_") and caller.f_back is not None:
            label = f"{caller.f_back.f_code.co_name}/{label}"
        if not threading.current_thread().name.startswith(("MainThread", "hospital")):
            label = f"{label} (read-ahead)"  # the pipeline's reader thread, not a hospital worker
        started = time.perf_counter()
        try:
            return original_run(source, query)
        finally:
            with lock:
                by_method[label] += 1
                mysql_seconds[label] += time.perf_counter() - started

    def factory(hospital: HospitalConfig, settings: Settings) -> OpenMRSSource:
        source = service.default_source(hospital, settings)
        sources.append((hospital.id, source))
        return source

    hospitals = service.select_hospitals(settings, None)
    store.gateway.call = timed_call  # type: ignore[method-assign]
    OpenMRSSource.run = labelled_run  # type: ignore[method-assign]
    try:
        started = time.perf_counter()
        if mode == "reconcile":
            reports = service.reconcile(settings, store, hospitals, source_factory=factory)
        else:
            reports = service.sync_all(settings, store, hospitals, source_factory=factory)
        seconds = time.perf_counter() - started
    finally:
        OpenMRSSource.run = original_run  # type: ignore[method-assign]
        store.gateway.call = call  # type: ignore[method-assign]
    by_hospital: Counter[str] = Counter()
    for hospital_id, source in sources:
        by_hospital[hospital_id] += source.statements
    return CountedSync(
        seconds,
        sum(by_hospital.values()),
        dict(by_hospital),
        dict(by_method.most_common()),
        [r.as_dict() for r in reports],
        {k: round(v, 3) for k, v in mysql_seconds.most_common()},
        {k: round(v, 3) for k, v in mongo_seconds.most_common()},
    )


def sync_settings(mongo_uri: str, hospitals: list[dict[str, Any]], batch_size: int, workers: int = 1) -> Settings:
    """The benchmark's settings; one worker unless told (the backfill table compares with earlier
    runs, which synced the hospitals one after the other)."""
    return load_settings(
        None,
        environ={},
        overrides={
            "mongodb": {"uri": mongo_uri, "server_selection_timeout_ms": 10_000},
            "hospitals": hospitals,
            "sync": {
                "batch_size": batch_size,
                "workers": workers,
                "retry": {"attempts": 3, "initial_wait_seconds": 0.05, "max_wait_seconds": 0.5},
            },
        },
    )


def _split(result: CountedSync) -> dict[str, float]:
    """Wall time of the run: MySQL on the main thread, MongoDB, and the rest (the sync's CPU); reads
    on the read-ahead thread overlap the others and are shown apart."""
    ahead = sum(v for k, v in result.mysql_seconds.items() if k.endswith("(read-ahead)"))
    mysql = sum(result.mysql_seconds.values()) - ahead
    mongo = sum(result.mongo_seconds.values())
    return {
        "mysql": round(mysql, 3),
        "mongodb": round(mongo, 3),
        "sync_cpu_and_rest": round(result.seconds - mysql - mongo, 3),
        "mysql_read_ahead_overlapped": round(ahead, 3),
    }


def _git_commit() -> str:
    """The commit of the code measured, with "+dirty" when passport_sync/ has local changes."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "passport_sync"], cwd=REPO, capture_output=True, text=True
        )
    except OSError:
        return "unknown"
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "") if head.returncode == 0 else "unknown"


def _child(spec_path: str) -> None:
    """The sync in its own process: its RSS and CPU are not mixed with the generator's."""
    spec = json.loads(Path(spec_path).read_text())
    counter = CommandCounter()
    monitoring.register(counter)  # before the client exists: every command is seen
    settings = sync_settings(spec["mongo_uri"], spec["hospitals"], spec["batch_size"], spec.get("workers", 1))
    store = PassportStore.connect(settings)
    profiler = cProfile.Profile() if spec.get("profile") else None
    try:
        if profiler:
            profiler.enable()
        result = counted_sync(settings, store, spec.get("mode", "sync"))
        if profiler:
            profiler.disable()
            profiler.dump_stats(spec["profile"])
    finally:
        store.close()
    out = {
        "seconds": result.seconds,
        "mysql_statements": result.mysql_statements,
        "mysql_by_hospital": result.mysql_by_hospital,
        "mysql_by_method": result.mysql_by_method,
        "mysql_seconds_by_method": result.mysql_seconds,
        "mongo_seconds_by_operation": result.mongo_seconds,
        "seconds_split": _split(result),
        "mongo_commands": counter.total(),
        "mongo_by_command": dict(counter.counts.most_common()),
        "mongo_by_collection": dict(counter.by_collection.most_common()),
        "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "reports": result.reports,
    }
    Path(spec["out"]).write_text(json.dumps(out, default=str))


# =====================================================================================
# The benchmark
# =====================================================================================


@dataclass(frozen=True, slots=True)
class MySQLTarget:
    host: str
    port: int
    user: str
    password: str

    def connect(self, database: str | None = None, **kwargs: Any) -> Any:
        return pymysql.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            database=database,
            charset="utf8mb4",
            **{"autocommit": True, **kwargs},
        )


def parse_mysql_url(url: str) -> MySQLTarget:
    parts = urlsplit(url if "://" in url else f"mysql://{url}")
    if parts.scheme not in ("mysql", "mariadb") or not parts.hostname:
        raise SystemExit(f"--mysql-url must look like mysql://user:password@host:port, not {url!r}")
    return MySQLTarget(
        parts.hostname, parts.port or 3306, unquote(parts.username or "root"), unquote(parts.password or "")
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class MongoServer:
    """SecantusDB as a separate process (its CPU and RSS are not the sync's), or a given URI."""

    def __init__(self, uri: str | None, *, keep: bool = False) -> None:
        self.given = uri
        self.keep = keep
        self.process: subprocess.Popen[bytes] | None = None
        self.storage: str | None = None
        self.uri = (uri or "").rstrip("/")
        self.version = "external"

    def __enter__(self) -> MongoServer:
        if self.given is None:
            self.storage = tempfile.mkdtemp(prefix="passport-bench-mongo-")
            port = _free_port()
            daemon = Path(sys.executable).with_name("secantusd-py")
            self.log = open(Path(self.storage) / "server.log", "wb")  # noqa: SIM115 - closed in __exit__
            self.process = subprocess.Popen(
                [str(daemon), "--host", "127.0.0.1", "--port", str(port), "--storage-path", f"{self.storage}/data"],
                stdout=self.log,
                stderr=subprocess.STDOUT,
            )
            self.uri = f"mongodb://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                client: pymongo.MongoClient[Any] = pymongo.MongoClient(self.uri, serverSelectionTimeoutMS=1000)
                self.version = str(client.server_info().get("version"))
                client.close()
                break
            except pymongo.errors.PyMongoError:
                if time.monotonic() > deadline or (self.process and self.process.poll() is not None):
                    raise SystemExit(f"the MongoDB server at {self.uri} does not answer") from None
                time.sleep(0.3)
        if self.process:
            from importlib.metadata import version

            self.version = f"SecantusDB {version('secantusdb')} (reports MongoDB {self.version})"
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.log.close()
        if self.storage and self.keep:
            _progress(
                f"MongoDB data kept in {self.storage}/data; serve it again with"
                f" {Path(sys.executable).with_name('secantusd-py')} --storage-path {self.storage}/data"
            )
        elif self.storage:
            shutil.rmtree(self.storage, ignore_errors=True)


def _global_questions(mysql: MySQLTarget) -> int:
    conn = mysql.connect()
    try:
        with conn.cursor() as cursor:
            cursor.execute("SHOW GLOBAL STATUS LIKE 'Questions'")
            return int(cursor.fetchone()[1])
    finally:
        conn.close()


def run_child(spec: dict[str, Any], mysql: MySQLTarget) -> dict[str, Any]:
    """Run one sync-all in a fresh process; its own counters, time, peak RSS, and wall time."""
    with tempfile.TemporaryDirectory(prefix="passport-bench-") as tmp:
        spec_path, out_path = Path(tmp) / "spec.json", Path(tmp) / "out.json"
        spec_path.write_text(json.dumps({**spec, "out": str(out_path)}))
        before = _global_questions(mysql)
        started = time.perf_counter()
        subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", str(spec_path)], check=True)
        wall = time.perf_counter() - started
        # Minus the one SHOW GLOBAL STATUS of `before` itself; other clients would add to it.
        questions = _global_questions(mysql) - before - 1
        result: dict[str, Any] = json.loads(out_path.read_text())
    result["process_seconds"] = wall
    result["mysql_questions_global_delta"] = questions
    return result


def _rows_read(run: dict[str, Any]) -> int:
    return sum((r.get("reconcile") or {}).get("rows_read", 0) for r in run["reports"])


def _repaired(run: dict[str, Any], kind: str) -> int:
    return sum((r.get("reconcile") or {}).get(kind, 0) for r in run["reports"])


def measure_reconcile(spec: dict[str, Any], mysql: MySQLTarget, database: str, db: Any) -> dict[str, Any]:
    """Three ``reconcile`` passes, each in a fresh process: the first (nothing kept yet: every row
    compared with the Passport), one with no drift, and one after one patient of hospital 1 was
    merged into another by SQL (the site's merge script: obs, encounters, orders move in place)."""
    runs: dict[str, Any] = {}
    _progress("reconcile: first full pass (no checksums kept yet: every row compared with the Passport)")
    runs["first"] = run_child({**spec, "mode": "reconcile"}, mysql)
    _progress("reconcile: a full pass with no drift")
    runs["idle"] = run_child({**spec, "mode": "reconcile"}, mysql)
    hospital = {"openmrsData.hospitalId": "bench_h1", "openmrsData.source": "obs"}
    loser = db[RECORDS].find_one(hospital, {"openmrsData.personId": 1})["openmrsData"]["personId"]
    winner = db[RECORDS].find_one({**hospital, "openmrsData.personId": {"$ne": loser}}, {"openmrsData.personId": 1})
    winner = winner["openmrsData"]["personId"]
    conn = mysql.connect(database)
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT COUNT(*) FROM obs WHERE person_id = %s", (loser,))
            patient_rows = int(cursor.fetchone()[0])
            for table, column in (("obs", "person_id"), ("encounter", "patient_id"), ("orders", "patient_id")):
                cursor.execute(f"UPDATE {table} SET {column} = %s WHERE {column} = %s", (winner, loser))
        conn.commit()
    finally:
        conn.close()
    _progress(f"reconcile: after one patient ({patient_rows} observations) was merged into another by SQL")
    runs["merge"] = run_child({**spec, "mode": "reconcile"}, mysql)
    runs["merge"]["patient_rows"] = patient_rows
    return runs


def measure_read_limit(mysql: MySQLTarget, databases: Sequence[str], batch_size: int) -> tuple[float, int]:
    """(a): every page of the sync's obs query, raw pymysql, DictCursor, fetchall, nothing else."""
    seconds, rows_read = 0.0, 0
    for database in databases:
        conn = mysql.connect(database, cursorclass=pymysql.cursors.DictCursor)
        try:
            with conn.cursor() as cursor:
                cursor.execute(*queries.SCHEMA_QUERY)
                schema = queries.SchemaInfo(frozenset((r["TABLE_NAME"], r["COLUMN_NAME"]) for r in cursor.fetchall()))
            after = 0
            while True:
                sql, params = queries.obs_after(schema, after, batch_size)
                started = time.perf_counter()
                with conn.cursor() as cursor:
                    cursor.execute(sql, params)
                    rows = cursor.fetchall()
                seconds += time.perf_counter() - started
                if not rows:
                    break
                rows_read += len(rows)
                after = rows[-1]["obs_id"]
        finally:
            conn.close()
    return seconds, rows_read


def measure_write_limit(db: Any, batch_size: int) -> tuple[float, int]:
    """(b): the documents the sync wrote, inserted with plain insert_many into a collection with the
    same indexes. Only the insert_many calls are timed."""
    db.drop_collection("limit_copy")
    target = db["limit_copy"]
    for name, info in db[RECORDS].index_information().items():
        if name == "_id_":
            continue
        options = {
            k: v for k, v in info.items() if k in ("unique", "sparse", "partialFilterExpression", "expireAfterSeconds")
        }
        target.create_index(info["key"], name=name, **options)
    seconds, written = 0.0, 0
    batch: list[dict[str, Any]] = []

    def insert() -> None:
        nonlocal seconds, written
        started = time.perf_counter()
        target.insert_many(batch, ordered=False)
        seconds += time.perf_counter() - started
        written += len(batch)
        batch.clear()

    for doc in db[RECORDS].find({}, batch_size=batch_size):
        batch.append(doc)
        if len(batch) >= batch_size:
            insert()
    if batch:
        insert()
    db.drop_collection("limit_copy")
    return seconds, written


def explain_incremental(
    mysql: MySQLTarget, database: str, checkpoint_doc: dict[str, Any] | None, settings: Settings
) -> dict[str, Any]:
    """EXPLAIN of the incremental run's obs page (after the checkpoint) and void read (from the
    watermark minus the look-back)."""
    state = cp_logic.stored_checkpoint("obs", checkpoint_doc)
    since = cp_logic.void_read_from(state, timedelta(minutes=settings.sync.void_lookback_minutes))
    conn = mysql.connect(database, cursorclass=pymysql.cursors.DictCursor)
    try:
        with conn.cursor() as cursor:
            cursor.execute(*queries.SCHEMA_QUERY)
            schema = queries.SchemaInfo(frozenset((r["TABLE_NAME"], r["COLUMN_NAME"]) for r in cursor.fetchall()))
        plans = {}
        for name, (sql, params) in (
            ("obs_after", queries.obs_after(schema, state.last_obs_id, settings.sync.batch_size)),
            ("voided_since", queries.voided_since(schema, since, 0, settings.sync.batch_size)),
        ):
            with conn.cursor() as cursor:
                cursor.execute("EXPLAIN " + sql, params)
                plans[name] = {
                    "params": [str(p) for p in params],
                    "plan": [dict(row) for row in cursor.fetchall()],
                }
        return plans
    finally:
        conn.close()


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "unknown"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu,
        "memory": mem,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def _fmt_row(values: Sequence[str], widths: Sequence[int]) -> str:
    return "  ".join(v.rjust(w) for v, w in zip(values, widths, strict=True))


TABLE_COLUMNS = (
    ("N", "n"),
    ("sync s", "sync_seconds"),
    ("obs/s", "obs_per_second"),
    ("limit s (a+b)", "limit_seconds"),
    ("limit/sync", "ratio"),
    ("peak RSS MB", "peak_rss_mb"),
    ("MySQL st/1k", "mysql_per_1000"),
    ("Mongo cmd/1k", "mongo_per_1000"),
    ("incr +100 s", "incremental_seconds"),
    ("incr MySQL st", "incremental_mysql"),
    ("incr Mongo cmd", "incremental_mongo"),
    ("next incr s", "next_incremental_seconds"),
    ("recon s (idle)", "reconcile_idle_seconds"),
    ("idle/sync", "reconcile_idle_share"),
    ("recon st", "reconcile_idle_mysql"),
    ("merge rows read/obs", "reconcile_merge_rows_read"),
)


def table_row(summary: dict[str, Any]) -> list[str]:
    s = summary
    return [
        f"{s['n']:,}",
        f"{s['sync_seconds']:.1f}",
        f"{s['obs_per_second']:,.0f}",
        f"{s['limit_seconds']:.1f} ({s['read_seconds']:.1f}+{s['write_seconds']:.1f})",
        f"{s['ratio']:.2f}",
        f"{s['peak_rss_mb']:.0f}",
        f"{s['mysql_per_1000']:.2f}",
        f"{s['mongo_per_1000']:.2f}",
        f"{s['incremental_seconds']:.2f}",
        f"{s['incremental_mysql']}",
        f"{s['incremental_mongo']}",
        f"{s['next_incremental_seconds']:.2f}",
        f"{s['reconcile_idle_seconds']:.2f}",
        f"{s['reconcile_idle_share']:.3f}",
        f"{s['reconcile_idle_mysql']}",
        f"{s['reconcile_merge_rows_read']}/{s['merged_patient_rows']}",
    ]


def render_table(summaries: Sequence[dict[str, Any]]) -> str:
    header = [c[0] for c in TABLE_COLUMNS]
    rows = [table_row(s) for s in summaries]
    widths = [max(len(header[i]), *(len(r[i]) for r in rows)) for i in range(len(header))]
    lines = [_fmt_row(header, widths), "  ".join("-" * w for w in widths)]
    lines.extend(_fmt_row(r, widths) for r in rows)
    return "\n".join(lines)


def _drop_databases(mysql: MySQLTarget, databases: Sequence[str]) -> None:
    conn = mysql.connect()
    try:
        with conn.cursor() as cursor:
            for name in databases:
                cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
    finally:
        conn.close()


def _ensure_mysql(mysql: MySQLTarget, url_given: bool) -> None:
    try:
        mysql.connect().close()
        return
    except pymysql.MySQLError:
        if url_given:
            raise
    subprocess.run(["bash", str(REPO / "scripts" / "ensure-mariadb.sh")], check=True)


def _progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def generate(
    mysql: MySQLTarget, databases: Sequence[str], population: Population, n: int, seed: int, conns: list[Any]
) -> tuple[list[SyntheticHospital], GenerationStats]:
    """The OpenMRS databases (N observations split over them); returns the generators, whose
    connections are appended to ``conns`` (the caller closes them)."""
    hospitals: list[SyntheticHospital] = []
    total = GenerationStats()
    started = time.perf_counter()
    for index, database in enumerate(databases):
        admin = mysql.connect()
        load_openmrs_schema(admin, database)
        admin.close()
        conn = mysql.connect(database, autocommit=False)
        conns.append(conn)
        hospital = SyntheticHospital(conn, population, index=index, hospitals=len(databases), seed=seed)
        hospital.setup()
        share = n // len(databases) + (1 if index < n % len(databases) else 0)
        total.add(hospital.add_obs(share))
        add_recommended_indexes(conn)
        hospitals.append(hospital)
    total.seconds = time.perf_counter() - started
    return hospitals, total


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=200_000, help="observations to generate (default 200000)")
    parser.add_argument("--hospitals", type=int, default=3, help="hospitals (OpenMRS databases), default 3")
    parser.add_argument("--patients", type=int, default=3000, help="people in the synthetic population, default 3000")
    parser.add_argument("--batch-size", type=int, default=1000, help="sync.batch_size, default 1000")
    parser.add_argument("--mongodb-uri", help="a MongoDB server to use (default: start SecantusDB in a process)")
    parser.add_argument("--mysql-url", help=f"MariaDB/MySQL server (default {DEFAULT_MYSQL_URL})")
    parser.add_argument("--json", type=Path, help="where to write the results (default bench-results/bench-<N>.json)")
    parser.add_argument("--prefix", default="passport_bench", help="database name prefix (default passport_bench)")
    parser.add_argument("--seed", type=int, default=SEED, help="random seed (fixed by default)")
    parser.add_argument("--keep", action="store_true", help="keep the MySQL and MongoDB databases afterwards")
    parser.add_argument("--profile", type=Path, help="run the backfill under cProfile and write the stats here")
    parser.add_argument("--fleet", type=int, metavar="M", help="the fleet benchmark instead: M small hospitals")
    parser.add_argument("--fleet-obs", type=int, default=300, help="observations per fleet hospital, default 300")
    parser.add_argument("--rtt-ms", type=int, default=50, help="fleet: round trip added by each proxy, default 50")
    parser.add_argument(
        "--workers", type=int, nargs="+", default=[1, 4, 16], help="fleet: sync-all --workers values, default 1 4 16"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child)
        return 0
    if args.fleet is not None:
        if args.fleet < 1 or args.fleet_obs < 1 or min(args.workers) < 1:
            parser.error("--fleet, --fleet-obs and --workers must be positive")
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
        fleet_mysql = parse_mysql_url(args.mysql_url or DEFAULT_MYSQL_URL)
        _ensure_mysql(fleet_mysql, args.mysql_url is not None)
        return run_fleet(args, fleet_mysql)
    if args.n < 1 or args.hospitals < 1 or args.patients < args.hospitals:
        parser.error("--n, --hospitals must be positive and --patients at least --hospitals")

    # A SIGTERM (timeout, kill) still stops the MongoDB server and drops the databases.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    load_at_start = os.getloadavg()
    code_version = _git_commit()
    mysql = parse_mysql_url(args.mysql_url or DEFAULT_MYSQL_URL)
    _ensure_mysql(mysql, args.mysql_url is not None)
    databases = [f"{args.prefix}_openmrs_{i + 1}" for i in range(args.hospitals)]
    mongo_db_name = f"{args.prefix}_passport"
    json_path = args.json or REPO / "bench-results" / f"bench-{args.n}.json"

    with MongoServer(args.mongodb_uri, keep=args.keep) as mongo:
        client: pymongo.MongoClient[Any] = pymongo.MongoClient(mongo.uri, tz_aware=False)
        client.drop_database(mongo_db_name)
        db = client[mongo_db_name]
        _drop_databases(mysql, databases)
        conns: list[Any] = []
        try:
            _progress(f"generating {args.n:,} observations in {args.hospitals} OpenMRS databases")
            population = make_population(args.patients, args.seed)
            registered = register_population(db, population)
            generators, gen_stats = generate(mysql, databases, population, args.n, args.seed, conns)
            _progress(f"generated in {gen_stats.seconds:.1f} s: {gen_stats.as_dict()}")
            hospitals = [
                {
                    "id": f"bench_h{i + 1}",
                    "name": f"Bench Hospital {i + 1}",
                    "db": {
                        "host": mysql.host,
                        "port": mysql.port,
                        "name": database,
                        "user": mysql.user,
                        "password": mysql.password,
                    },
                }
                for i, database in enumerate(databases)
            ]
            spec = {"mongo_uri": f"{mongo.uri}/{mongo_db_name}", "hospitals": hospitals, "batch_size": args.batch_size}
            settings = sync_settings(spec["mongo_uri"], hospitals, args.batch_size)

            _progress("backfill: sync-all in a child process")
            backfill = run_child({**spec, "profile": str(args.profile) if args.profile else None}, mysql)
            _progress(f"backfill took {backfill['seconds']:.1f} s")
            records = db[RECORDS].count_documents({})
            parked = db["openmrs_sync_parked"].count_documents({})

            _progress("limit (a): raw reads of the sync's obs pages")
            read_seconds, rows_read = measure_read_limit(mysql, databases, args.batch_size)
            _progress("limit (b): plain insert_many of the written documents")
            write_seconds, docs_written = measure_write_limit(db, 1000)

            # Two incremental runs, as cron would run them: the first one right after the backfill
            # (the table), and the next one (steady state).
            increments = []
            for label in ("incremental", "next incremental"):
                checkpoint = db["syncstatus"].find_one({"hospitalId": "bench_h1"}, {"_id": 0})
                explain = explain_incremental(mysql, databases[0], checkpoint, settings)
                _progress(f"{label}: {INCREMENTAL_OBS} new observations in hospital 1, then sync-all")
                added = generators[0].add_obs(INCREMENTAL_OBS, gap=timedelta(hours=12))
                run = run_child(spec, mysql)
                run.update(new_obs=added.rows, obs_checkpoint_before=checkpoint, explain=explain)
                increments.append(run)
            incremental, repeat = increments

            reconciles = measure_reconcile(spec, mysql, databases[0], db)
        finally:
            for conn in conns:
                conn.close()
            if not args.keep:
                client.drop_database(mongo_db_name)
                _drop_databases(mysql, databases)
            client.close()

    n = gen_stats.rows
    limit_seconds = read_seconds + write_seconds
    summary = {
        "n": n,
        "sync_seconds": backfill["seconds"],
        "obs_per_second": n / backfill["seconds"],
        "read_seconds": read_seconds,
        "write_seconds": write_seconds,
        "limit_seconds": limit_seconds,
        "ratio": limit_seconds / backfill["seconds"],
        "peak_rss_mb": backfill["peak_rss_kb"] / 1024,
        "mysql_per_1000": backfill["mysql_statements"] * 1000 / n,
        "mongo_per_1000": backfill["mongo_commands"] * 1000 / n,
        "incremental_seconds": incremental["seconds"],
        "incremental_mysql": incremental["mysql_statements"],
        "incremental_mongo": incremental["mongo_commands"],
        "next_incremental_seconds": repeat["seconds"],
        "reconcile_first_seconds": reconciles["first"]["seconds"],
        "reconcile_idle_seconds": reconciles["idle"]["seconds"],
        "reconcile_idle_share": reconciles["idle"]["seconds"] / backfill["seconds"],
        "reconcile_idle_mysql": reconciles["idle"]["mysql_statements"],
        "reconcile_idle_rows_read": _rows_read(reconciles["idle"]),
        "reconcile_merge_seconds": reconciles["merge"]["seconds"],
        "reconcile_merge_rows_read": _rows_read(reconciles["merge"]),
        "reconcile_merge_moved": _repaired(reconciles["merge"], "moved"),
        "merged_patient_rows": reconciles["merge"]["patient_rows"],
    }
    targets = {
        "ratio_at_least_0.5": summary["ratio"] >= TARGET_RATIO,
        "mysql_per_1000_at_most_5": summary["mysql_per_1000"] <= TARGET_MYSQL_PER_1000,
        "mongo_per_1000_at_most_10": summary["mongo_per_1000"] <= TARGET_MONGO_PER_1000,
        "peak_rss_under_300_mb": summary["peak_rss_mb"] < TARGET_RSS_MB,
        "incremental_under_2_s": summary["incremental_seconds"] < TARGET_INCREMENTAL_SECONDS,
        "reconcile_idle_at_most_10pct_of_backfill": summary["reconcile_idle_share"] <= 0.10,
        "reconcile_idle_reads_no_row": summary["reconcile_idle_rows_read"] == 0,
        "reconcile_merge_reads_the_patients_rows": summary["reconcile_merge_rows_read"]
        <= summary["merged_patient_rows"] * 1.1 + 10,
        "incremental_queries_use_indexes": all(
            row.get("type") != "ALL" for run in increments for plan in run["explain"].values() for row in plan["plan"]
        ),
    }
    result = {
        "summary": summary,
        "targets": targets,
        "parameters": {
            "n": args.n,
            "hospitals": args.hospitals,
            "patients": args.patients,
            "registered_in_passport": registered,
            "batch_size": args.batch_size,
            "seed": args.seed,
            "profiled": bool(args.profile),
        },
        "generation": gen_stats.as_dict(),
        "backfill": {
            **{k: v for k, v in backfill.items() if k != "reports"},
            "records_written": records,
            "parked": parked,
            "mysql_statements_per_1000": summary["mysql_per_1000"],
            "mongo_commands_per_1000": summary["mongo_per_1000"],
            "reports": backfill["reports"],
        },
        "limit": {
            "read_seconds": read_seconds,
            "rows_read": rows_read,
            "write_seconds": write_seconds,
            "documents_written": docs_written,
            "seconds": limit_seconds,
            "ratio_limit_over_sync": summary["ratio"],
        },
        "incremental": incremental,
        "next_incremental": repeat,
        "reconcile": reconciles,
        "servers": {"mysql": _mysql_version(mysql), "mongodb": mongo.version},
        "passport_sync_commit": code_version,
        "machine": {
            **machine(),
            # Other work on the machine (tests, other benchmarks) shows here and skews the times.
            "load_average_at_start": load_at_start,
            "load_average_at_end": os.getloadavg(),
        },
    }
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(result, indent=2, default=str))

    print(render_table([summary]))
    print()
    print(
        f"backfill: {records:,} records written, {parked:,} parked; process wall {backfill['process_seconds']:.1f} s;"
        f" MySQL statements {backfill['mysql_statements']} {backfill['mysql_by_method']} (global Questions delta"
        f" {backfill['mysql_questions_global_delta']}); MongoDB commands {backfill['mongo_commands']}"
        f" {backfill['mongo_by_command']}; time split {backfill['seconds_split']}"
    )
    for label, run in (("incremental", incremental), ("next incremental", repeat)):
        print(
            f"{label} (+{run['new_obs']}): sync_all {run['seconds']:.2f} s, process wall"
            f" {run['process_seconds']:.2f} s; rows read {sum(r['read'] for r in run['reports'])};"
            f" MySQL {run['mysql_statements']} {run['mysql_by_method']}"
            f" (global delta {run['mysql_questions_global_delta']}); MongoDB {run['mongo_commands']}"
            f" {run['mongo_by_collection']}"
        )
        for name, plan in run["explain"].items():
            print(f"  EXPLAIN {name} {plan['params']}:")
            for row in plan["plan"]:
                print(
                    "    "
                    + "  ".join(
                        f"{k}={row.get(k)}" for k in ("id", "select_type", "table", "type", "key", "rows", "Extra")
                    )
                )
    for label, run in reconciles.items():
        found = {k: _repaired(run, k) for k in ("ranges_checked", "ranges_differing", "row_checksums", "moved")}
        print(
            f"reconcile ({label}): {run['seconds']:.2f} s, process wall {run['process_seconds']:.2f} s;"
            f" rows read {_rows_read(run)}; {found}; MySQL {run['mysql_statements']} {run['mysql_by_method']};"
            f" MongoDB {run['mongo_commands']} {run['mongo_by_collection']}"
        )
    print("targets: " + ", ".join(f"{k}={'met' if v else 'NOT met'}" for k, v in targets.items()))
    print(f"results: {json_path}")
    if args.profile:
        print(f"profile: {args.profile} (times above are inflated by cProfile)")
        pstats.Stats(str(args.profile)).sort_stats("tottime").print_stats(25)
    return 0


# =====================================================================================
# The fleet benchmark: many small hospitals, each behind a slow link
# =====================================================================================


class LatencyProxies:
    """Local TCP proxies to one MySQL server, one port per hospital, each delaying every chunk by
    ``delay`` seconds in each direction (a WAN round trip of 2 x delay, no bandwidth limit). They
    run on an asyncio loop in a thread of the benchmark process, not in the measured child."""

    def __init__(self, target_host: str, target_port: int, delay: float) -> None:
        self.target = (target_host, target_port)
        self.delay = delay
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="latency-proxies", daemon=True)
        self.servers: list[asyncio.AbstractServer] = []

    def __enter__(self) -> LatencyProxies:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        async def close() -> None:
            for server in self.servers:
                server.close()
            pending = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(close(), self.loop).result(timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()

    def open(self) -> int:
        """A new listening port forwarding to the target."""
        server = asyncio.run_coroutine_threadsafe(asyncio.start_server(self._serve, "127.0.0.1", 0), self.loop).result(
            timeout=10
        )
        self.servers.append(server)
        return int(server.sockets[0].getsockname()[1])

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            server_reader, server_writer = await asyncio.open_connection(*self.target)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(
            self._pipe(client_reader, server_writer), self._pipe(server_reader, client_writer), return_exceptions=True
        )

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Forward each chunk ``delay`` after it arrived; later chunks are not held behind it longer."""
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def deliver() -> None:
            while True:
                due, data = await queue.get()
                if not data:
                    break
                await asyncio.sleep(max(0.0, due - self.loop.time()))
                writer.write(data)
                await writer.drain()

        sender = asyncio.create_task(deliver())
        try:
            while data := await reader.read(65536):
                queue.put_nowait((self.loop.time() + self.delay, data))
        except OSError:
            pass
        finally:
            queue.put_nowait((0.0, b""))
            # Cancelled at shutdown: the connection is closed either way.
            with contextlib.suppress(OSError, asyncio.CancelledError):
                await sender
            writer.close()


FLEET_NEW_OBS = 5


def generate_fleet(
    mysql: MySQLTarget, databases: Sequence[str], population: Population, per_hospital: int, seed: int
) -> list[SyntheticHospital]:
    """Like ``generate``, but one connection at a time: hundreds of open connections would pass
    the server's max_connections (151 by default) and fail everyone else using it."""
    hospitals = []
    for index, database in enumerate(databases):
        admin = mysql.connect()
        try:
            load_openmrs_schema(admin, database)
        finally:
            admin.close()
        conn = mysql.connect(database, autocommit=False)
        try:
            hospital = SyntheticHospital(conn, population, index=index, hospitals=len(databases), seed=seed)
            hospital.setup()
            hospital.add_obs(per_hospital)
            add_recommended_indexes(conn)
        finally:
            conn.close()
        hospitals.append(hospital)
    return hospitals


@contextlib.contextmanager
def reconnected(mysql: MySQLTarget, database: str, hospital: SyntheticHospital) -> Iterator[None]:
    """The generator on a fresh connection for a while (its own was closed after generation)."""
    conn = mysql.connect(database, autocommit=False)
    hospital.conn = hospital.builder.conn = conn
    try:
        yield
    finally:
        conn.close()


def run_fleet(args: argparse.Namespace, mysql: MySQLTarget) -> int:
    """M small hospitals behind latency proxies: a backfill, then per --workers value an idle
    cycle and a cycle with a few new observations per hospital. Prints one table."""
    count, workers_values = args.fleet, sorted(set(args.workers))
    databases = [f"{args.prefix}_fleet_{i + 1}" for i in range(count)]
    mongo_db_name = f"{args.prefix}_fleet_passport"
    delay = args.rtt_ms / 2000
    rows: list[dict[str, Any]] = []
    with (
        MongoServer(args.mongodb_uri, keep=args.keep) as mongo,
        LatencyProxies(mysql.host, mysql.port, delay) as proxies,
    ):
        client: pymongo.MongoClient[Any] = pymongo.MongoClient(mongo.uri, tz_aware=False)
        client.drop_database(mongo_db_name)
        _drop_databases(mysql, databases)
        try:
            _progress(f"fleet: {count} OpenMRS databases of {args.fleet_obs} observations")
            population = make_population(max(args.patients // 10, count * 5), args.seed)
            register_population(client[mongo_db_name], population)
            generators = generate_fleet(mysql, databases, population, args.fleet_obs, args.seed)
            hospitals = [
                {
                    "id": f"fleet_{i + 1}",
                    "name": f"Fleet Hospital {i + 1}",
                    "db": {
                        "host": "127.0.0.1",
                        "port": proxies.open(),
                        "name": database,
                        "user": mysql.user,
                        "password": mysql.password,
                    },
                }
                for i, database in enumerate(databases)
            ]
            spec = {"mongo_uri": f"{mongo.uri}/{mongo_db_name}", "hospitals": hospitals, "batch_size": args.batch_size}
            _progress(
                f"fleet: backfill through the proxies ({args.rtt_ms} ms round trip), workers {max(workers_values)}"
            )
            backfill = run_child({**spec, "workers": max(workers_values)}, mysql)
            _progress(f"fleet: backfill took {backfill['seconds']:.1f} s")
            for workers in workers_values:
                for cycle in ("idle", f"+{FLEET_NEW_OBS} obs"):
                    if cycle != "idle":
                        for generator, database in zip(generators, databases, strict=True):
                            with reconnected(mysql, database, generator):
                                generator.add_obs(FLEET_NEW_OBS)
                    run = run_child({**spec, "workers": workers}, mysql)
                    failed = [r["hospital_id"] for r in run["reports"] if r["outcome"] != "ok"]
                    rows.append(
                        {
                            "hospitals": count,
                            "rtt_ms": args.rtt_ms,
                            "workers": workers,
                            "cycle": cycle,
                            "seconds": run["seconds"],
                            "mysql_per_hospital": run["mysql_statements"] / count,
                            "mongo_per_hospital": run["mongo_commands"] / count,
                            "peak_rss_mb": run["peak_rss_kb"] / 1024,
                            "written": sum(r["written"] for r in run["reports"]),
                            "failed": failed,
                        }
                    )
                    _progress(f"fleet: workers {workers}, {cycle}: {run['seconds']:.1f} s")
        finally:
            if not args.keep:
                client.drop_database(mongo_db_name)
                _drop_databases(mysql, databases)
            client.close()
    headers = (
        "hospitals",
        "RTT ms",
        "workers",
        "cycle",
        "cycle s",
        "MySQL st/hosp",
        "Mongo cmd/hosp",
        "peak RSS MB",
        "written",
    )
    table = [
        (
            f"{r['hospitals']}",
            f"{r['rtt_ms']}",
            f"{r['workers']}",
            r["cycle"],
            f"{r['seconds']:.1f}",
            f"{r['mysql_per_hospital']:.1f}",
            f"{r['mongo_per_hospital']:.1f}",
            f"{r['peak_rss_mb']:.0f}",
            f"{r['written']}",
        )
        for r in rows
    ]
    widths = [max(len(h), *(len(row[i]) for row in table)) for i, h in enumerate(headers)]
    print(_fmt_row(headers, widths))
    for row in table:
        print(_fmt_row(row, widths))
    if any(r["failed"] for r in rows):
        print(
            "failed hospitals: "
            + "; ".join(f"workers {r['workers']} {r['cycle']}: {r['failed']}" for r in rows if r["failed"])
        )
    json_path = args.json or REPO / "bench-results" / f"fleet-{count}.json"
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(
        json.dumps({"fleet": rows, "machine": machine(), "passport_sync_commit": _git_commit()}, indent=2)
    )
    print(f"results: {json_path}")
    return 0


def _mysql_version(mysql: MySQLTarget) -> str:
    conn = mysql.connect()
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT VERSION()")
            return str(cursor.fetchone()[0])
    finally:
        conn.close()


if __name__ == "__main__":
    sys.exit(main())
