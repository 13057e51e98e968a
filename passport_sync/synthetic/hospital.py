"""A synthetic hospital at scale: fills one OpenMRS database with realistic rows, fast enough for
hundreds of thousands of observations (the benchmark, the statement-bound test).

Encounters of 5-20 obs of one patient, provider and location: numeric vitals with units and
ranges, coded diagnoses, text notes, obs groups, drugs, booleans and dates; some voided, some
edited. Concepts, drugs, locations and providers go through :class:`OpenMRSBuilder`; patients,
encounters and obs are inserted in bulk.
"""

from __future__ import annotations

import itertools
import random
import time
import uuid as uuid_module
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from passport_sync.synthetic.builder import OpenMRSBuilder
from passport_sync.synthetic.mysql import MySQLTarget
from passport_sync.synthetic.population import FAMILY, GIVEN, SEED, Population
from passport_sync.synthetic.schema import load_openmrs_schema

# The indexes scripts/create-readonly-user.sql asks every deployment to create.
RECOMMENDED_INDEXES = (
    "CREATE INDEX IF NOT EXISTS idx_obs_date_voided ON obs (date_voided)",
    "CREATE INDEX IF NOT EXISTS idx_obs_date_created ON obs (date_created)",
    "CREATE INDEX IF NOT EXISTS idx_obs_voided ON obs (voided)",
)

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
        self.groups: list[tuple[int, list[tuple[str, Any]], list[tuple[str, Any]]]] = [
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


def create_hospitals(
    mysql: MySQLTarget, databases: Sequence[str], population: Population, observations: Sequence[int], seed: int = SEED
) -> list[SyntheticHospital]:
    """One OpenMRS database per name in ``databases``, holding its number of ``observations`` and
    the recommended indexes; returns the generators (see :func:`reopened` to add more later).

    One connection at a time, closed after its database is filled: hundreds of open connections
    would pass the server's max_connections (151 by default) and fail everyone else using it.
    """
    hospitals = []
    for index, (database, count) in enumerate(zip(databases, observations, strict=True)):
        admin = mysql.connect()
        try:
            load_openmrs_schema(admin, database)
        finally:
            admin.close()
        conn = mysql.connect(database, autocommit=False)
        try:
            hospital = SyntheticHospital(conn, population, index=index, hospitals=len(databases), seed=seed)
            hospital.setup()
            hospital.add_obs(count)
            add_recommended_indexes(conn)
        finally:
            conn.close()
        hospitals.append(hospital)
    return hospitals


@contextmanager
def reopened(mysql: MySQLTarget, database: str, hospital: SyntheticHospital) -> Iterator[SyntheticHospital]:
    """The generator on a fresh connection for a while (its own was closed after generation)."""
    conn = mysql.connect(database, autocommit=False)
    hospital.conn = hospital.builder.conn = conn
    try:
        yield hospital
    finally:
        conn.close()
