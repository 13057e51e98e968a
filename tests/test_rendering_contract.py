"""The rendering contract: what the patient's card shows for each OpenMRS value type and source.

One row per case, on real CIEL concepts (tests/ciel_concepts.py), recorded in a real MariaDB
OpenMRS database, synced into the MongoDB wire server, and read back the way the app's patient
page reads records. The README's rendering table is generated from the same rows
(``contract_table``) and checked against them, so the two cannot drift apart.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pymongo
import pytest

from passport_sync.mapping import RENDER_VERSION
from tests import ciel_concepts
from tests.conftest import OpenMRSDatabase, hospital_entry, make_settings, register_patient
from tests.helpers import run_sync

NATIONAL_ID = "1199780012345678"
VISIT = datetime(2025, 11, 6, 10, 30)  # Kigali time, as OpenMRS stores it
README = Path(__file__).resolve().parent.parent / "README.md"


@dataclass
class Site:
    """One patient's chart in a test OpenMRS, with the CIEL concepts loaded."""

    db: OpenMRSDatabase
    ids: dict[str, int]
    person: int
    encounter: int
    provider: int

    def obs(self, concept: str, **values: Any) -> str:
        obs_id = self.db.build.obs(self.person, self.ids[concept], encounter_id=self.encounter, **values)
        return str(self.db.execute("SELECT uuid FROM obs WHERE obs_id = %s", (obs_id,))[0][0])

    def coded(self, concept: str, answer: str, **values: Any) -> str:
        return self.obs(concept, value_coded=self.ids[answer], **values)

    def group(self, concept: str, *members: tuple[str, dict[str, Any]]) -> str:
        parent = self.db.build.obs(self.person, self.ids[concept], encounter_id=self.encounter)
        for member, values in members:
            self.db.build.obs(self.person, self.ids[member], encounter_id=self.encounter, obs_group_id=parent, **values)
        return str(self.db.execute("SELECT uuid FROM obs WHERE obs_id = %s", (parent,))[0][0])

    def obs_of_group(self, group: str, member: str) -> str:
        """The uuid of the latest ``member`` obs inside a ``group`` obs."""
        rows = self.db.execute(
            "SELECT o.uuid FROM obs o JOIN obs g ON g.obs_id = o.obs_group_id"
            " WHERE g.concept_id = %s AND o.concept_id = %s ORDER BY o.obs_id DESC LIMIT 1",
            (self.ids[group], self.ids[member]),
        )
        return str(rows[0][0])

    def uuid_of(self, table: str, pk_column: str, pk: int) -> str:
        return str(self.db.execute(f"SELECT uuid FROM {table} WHERE {pk_column} = %s", (pk,))[0][0]).lower()


@dataclass(frozen=True)
class Case:
    """One row of the contract: what was recorded, and what the patient's card shows."""

    name: str
    source: str  # README: the OpenMRS value type or source
    recorded: str  # README: what the clinician recorded
    record: Callable[[Site], str]  # records it; returns the uuid of the row whose record to read
    type: str
    shows: dict[str, str]  # data fields the card shows, exactly
    absent: tuple[str, ...] = ()  # data fields that must not be there
    extra: dict[str, Any] = field(default_factory=dict)  # other fields checked, not in the README


def _member(concept: str, **values: Any) -> tuple[str, dict[str, Any]]:
    return concept, values


def _yes(site: Site) -> int:
    return site.db.build.true_concept_id


def _allergy(site: Site) -> str:
    b = site.db.build
    allergy = b.allergy(
        site.person, site.ids["other"], non_coded_allergen="Cotrimoxazole", severity_concept_id=site.ids["severe"]
    )
    for concept, text in ((site.ids["other"], "Swollen lips"), (site.ids["hives"], None)):
        site.db.execute(
            "INSERT INTO allergy_reaction (allergy_id, reaction_concept_id, reaction_non_coded, uuid)"
            " VALUES (%s, %s, %s, UUID())",
            (allergy, concept, text),
        )
    return site.uuid_of("allergy", "allergy_id", allergy)


def _drug_order(site: Site) -> str:
    b, ids = site.db.build, site.ids
    site.db.execute(
        "INSERT INTO order_frequency (concept_id, creator, date_created, retired, uuid)"
        " VALUES (%s, 1, NOW(), 0, UUID())",
        (ids["thrice_daily"],),
    )
    frequency = int(site.db.execute("SELECT MAX(order_frequency_id) FROM order_frequency")[0][0])
    drug = b.drug("Aspirin 300mg tablet", ids["aspirin"])
    order = b.drug_order(
        site.encounter,
        site.provider,
        drug_id=drug,
        dose=1,
        dose_units=ids["tablet"],
        route=ids["oral"],
        frequency=frequency,
        duration=5,
        duration_units=ids["days"],
        as_needed=True,
        dosing_instructions="after meals",
        instructions="Take with water",
        quantity=15,
        quantity_units=ids["tablet"],
        date_activated=VISIT,
    )
    site.db.execute("UPDATE drug_order SET as_needed_condition = 'for pain' WHERE order_id = %s", (order,))
    return site.uuid_of("orders", "order_id", order)


def _condition(**kwargs: Any) -> Callable[[Site], str]:
    def record(site: Site) -> str:
        concept = kwargs.pop("concept")
        pk = site.db.build.condition(site.person, condition_coded=site.ids[concept], **kwargs)
        return site.uuid_of("conditions", "condition_id", pk)

    return record


def _panel_member(site: Site) -> str:
    parent = site.db.build.obs(site.person, site.ids["vital_signs"], encounter_id=site.encounter)
    return site.obs("temperature", value_numeric=38.5, obs_group_id=parent)


def _vitals_set(site: Site) -> str:
    site.group("vitals", _member("pulse", value_numeric=88), _member("respiratory_rate", value_numeric=18))
    return site.obs_of_group("vitals", "pulse")


CASES: tuple[Case, ...] = (
    Case(
        "coded finding",
        "coded (a finding)",
        "Fever (CIEL 140238, class Diagnosis) = No",
        lambda s: s.coded("fever", "no"),
        "test",
        {"testName": "Fever: No", "result": "No"},
        ("diagnosis",),
    ),
    Case(
        "coded complaint",
        "coded (a question)",
        "Chief complaint = Cough (CIEL 143264)",
        lambda s: s.coded("chief_complaint", "cough"),
        "test",
        {"testName": "Chief complaint: Cough", "result": "Cough"},
        ("diagnosis",),
    ),
    Case(
        "coded Other, typed",
        "coded Other (CIEL 5622) with the text typed",
        "Chief complaint = Other, typed 'Toothache'",
        lambda s: s.coded("chief_complaint", "other", value_text="Toothache"),
        "test",
        {"testName": "Chief complaint: Toothache", "result": "Toothache"},
    ),
    Case(
        "coded diagnosis answer",
        "coded, the answer a diagnosis",
        "Complication of puerperium (CIEL 120194) = Puerperal sepsis",
        lambda s: s.coded("puerperium", "puerperal_sepsis"),
        "condition",
        {"diagnosis": "Puerperal sepsis", "name": "Complication of puerperium"},
    ),
    Case(
        "free-text diagnosis",
        "text of a Diagnosis-class question",
        "Diagnosis or problem, non-coded (CIEL 161602) = Suspected typhoid",
        lambda s: s.obs("non_coded_diagnosis", value_text="Suspected typhoid"),
        "condition",
        {"diagnosis": "Suspected typhoid"},
    ),
    Case(
        "boolean",
        "boolean (True/False concepts)",
        "Fatigue (CIEL 140501) = True",
        lambda s: s.obs("fatigue", value_coded=_yes(s)),
        "test",
        {"testName": "Fatigue: Yes", "result": "Yes"},
        ("diagnosis",),
    ),
    Case(
        "legacy boolean",
        "boolean stored as 1/0",
        "Weight loss (CIEL 832) = 0",
        lambda s: s.obs("weight_loss", value_numeric=0),
        "test",
        {"testName": "Weight loss: No", "result": "No"},
    ),
    Case(
        "date",
        "date",
        "Diagnosis date (CIEL 159948) = 2020-04-15",
        lambda s: s.obs("diagnosis_date", value_datetime=datetime(2020, 4, 15)),
        "test",
        {"testName": "Diagnosis date: 2020-04-15", "result": "2020-04-15"},
        ("diagnosis",),
    ),
    Case(
        "datetime",
        "date-time (hospital local time)",
        "Onset of symptoms = 2025-11-05 22:30 in Kigali",
        lambda s: s.obs("symptom_onset", value_datetime=datetime(2025, 11, 5, 22, 30)),
        "test",
        {"testName": "Onset of symptoms: 2025-11-05 22:30", "result": "2025-11-05 22:30"},
    ),
    Case(
        "drug answer",
        "drug (value_drug)",
        "Current drug = the drug Aspirin 300mg (value_drug)",
        lambda s: s.obs(
            "current_drug", value_coded=s.ids["aspirin"], value_drug=s.db.build.drug("Aspirin 300mg", s.ids["aspirin"])
        ),
        "test",
        {"testName": "Current drug: Aspirin 300mg", "result": "Aspirin 300mg"},
        ("medicationName",),
    ),
    Case(
        "allergy question",
        "coded, a question naming drugs",
        "Drug allergies = Penicillins (CIEL 162297)",
        lambda s: s.coded("drug_allergies", "penicillins"),
        "test",
        {"testName": "Drug allergies: Penicillins"},
        ("medicationName",),
    ),
    Case(
        "whole number",
        "numeric, allow_decimal = 0, no ranges",
        "Pulse (CIEL 5087) = 72.6",
        lambda s: s.obs("pulse", value_numeric=72.6),
        "test",
        {"testName": "Pulse", "result": "72 beats/min", "status": "not interpreted"},
        ("testStatus",),
    ),
    Case(
        "positive coded result",
        "coded test result Positive, no interpretation",
        "HIV rapid test 1, qualitative (CIEL 1040) = Positive (CIEL 703)",
        lambda s: s.coded("hiv_rapid_test", "positive"),
        "test",
        {"testName": "HIV rapid test 1, qualitative: Positive", "status": "abnormal", "testStatus": "Abnormal"},
    ),
    Case(
        "negative coded result",
        "coded test result Negative, no interpretation",
        "Urine pregnancy test (CIEL 45) = Negative (CIEL 664)",
        lambda s: s.coded("pregnancy_test", "negative"),
        "test",
        {"testName": "Urine pregnancy test: Negative", "status": "not interpreted"},
        ("testStatus",),
    ),
    Case(
        "preliminary result",
        "numeric, obs status PRELIMINARY",
        "Head Circumference = 35, preliminary",
        lambda s: s.obs("head_circumference", value_numeric=35, status="PRELIMINARY"),
        "test",
        {"result": "35 cms (preliminary; normal 30-40 cms)", "status": "normal"},
    ),
    Case(
        "relative's diagnosis",
        "a Diagnosis-class question about a relative",
        "Family history diagnosis (CIEL 160592, class Diagnosis) = Diabetes Mellitus",
        lambda s: s.coded("family_history_diagnosis", "diabetes"),
        "test",
        {"testName": "Family history diagnosis: Diabetes Mellitus"},
        ("diagnosis",),
    ),
    Case(
        "provisional diagnosis",
        "encounter diagnosis, provisional",
        "Malaria (CIEL 116128), PROVISIONAL, secondary",
        lambda s: s.uuid_of(
            "encounter_diagnosis",
            "diagnosis_id",
            s.db.build.encounter_diagnosis(
                s.encounter, diagnosis_coded=s.ids["malaria"], certainty="PROVISIONAL", rank=2
            ),
        ),
        "condition",
        {"diagnosis": "Malaria (provisional)", "details": "Provisional secondary diagnosis"},
    ),
    Case(
        "high with range",
        "numeric, interpretation HIGH",
        "Head Circumference (CIEL 165174, normal 30-40) = 45, HIGH",
        lambda s: s.obs("head_circumference", value_numeric=45, interpretation="HIGH"),
        "test",
        {"testName": "Head Circumference", "result": "45 cms (High; normal 30-40 cms)", "testStatus": "Abnormal"},
        extra={"referenceRange": {"lowNormal": 30.0, "hiNormal": 40.0, "units": "cms"}},
    ),
    Case(
        "low from range",
        "numeric below the normal range",
        "Head Circumference = 25",
        lambda s: s.obs("head_circumference", value_numeric=25),
        "test",
        {"result": "25 cms (Low; normal 30-40 cms)", "testStatus": "Abnormal"},
    ),
    Case(
        "microbiology",
        "numeric, interpretation RESISTANT",
        "Ciprofloxacin MIC = 4, RESISTANT",
        lambda s: s.obs("cipro_mic", value_numeric=4, interpretation="RESISTANT"),
        "test",
        {"testName": "Ciprofloxacin MIC", "result": "4 ug/mL (Resistant)", "testStatus": "Abnormal"},
    ),
    Case(
        "comment on a test",
        "numeric with a comment",
        "Weight (CIEL 5089) = 70, comment 'after a meal'",
        lambda s: s.obs("weight", value_numeric=70, comments="after a meal"),
        "test",
        {"testName": "Weight (kg)", "result": "70 kg - after a meal"},
    ),
    Case(
        "text",
        "text",
        "Text of encounter note (CIEL 162169) = 'Seen with her mother'",
        lambda s: s.obs("encounter_note", value_text="Seen with her mother"),
        "test",
        {"testName": "Text of encounter note", "result": "Seen with her mother"},
        ("reason",),
    ),
    Case(
        "attachment",
        "complex",
        "ATT IMAGE ATTACHMENT (165173) = chest.png",
        lambda s: s.obs("image", value_complex="chest.png|chest_3f2a.png"),
        "image",
        {"description": "chest.png", "imageType": "png"},
    ),
    Case(
        "locale fallback",
        "a name missing in the configured locale",
        "Systolic blood pressure (CIEL 5085) named only in fr, de and an English SHORT name; default_locale fr",
        lambda s: s.obs("systolic", value_numeric=120),
        "test",
        {"testName": "Tension artérielle systolique", "result": "120 mmHg"},
    ),
    Case(
        "family history",
        "obs group (family history)",
        "Family history { Relationship to patient = Mother, PROBLEM LIST (CIEL 1284) = Diabetes Mellitus }",
        lambda s: s.group(
            "family_history",
            _member("relationship", value_coded=s.ids["mother"]),
            _member("problem_list", value_coded=s.ids["diabetes"]),
        ),
        "test",
        {"testName": "Family history: Mother - Diabetes Mellitus"},
        ("diagnosis",),
    ),
    Case(
        "allergy as obs",
        "obs group (allergy form)",
        "Allergy { Drug allergies = Penicillins, Allergic reaction = Hives }",
        lambda s: s.group(
            "allergy_form",
            _member("drug_allergies", value_coded=s.ids["penicillins"]),
            _member("allergic_reaction", value_coded=s.ids["hives"]),
        ),
        "test",
        {"testName": "Allergy: Penicillins - Hives"},
        ("medicationName",),
    ),
    Case(
        "diagnosis construct",
        "obs group (emrapi diagnosis, CIEL 159947)",
        "Visit Diagnoses { PROBLEM LIST = Malaria, certainty Confirmed, order Primary }",
        lambda s: s.group(
            "visit_diagnoses",
            _member("problem_list", value_coded=s.ids["malaria"]),
            _member("certainty", value_coded=s.ids["confirmed"]),
            _member("order", value_coded=s.ids["primary"]),
        ),
        "condition",
        {"diagnosis": "Malaria", "details": "Confirmed primary diagnosis"},
    ),
    Case(
        "panel member",
        "obs group (LabSet panel)",
        "Vital signs { Temperature (C) (CIEL 5088) = 38.5 }",
        _panel_member,
        "test",
        {"testName": "Temperature (C) (Vital signs)", "result": "38.5 DEG C"},
    ),
    Case(
        "numbers-only group",
        "obs group of numbers only (a vitals set)",
        "Vitals { Pulse = 88, Respiratory rate (CIEL 5242) = 18 }",
        _vitals_set,
        "test",
        {"testName": "Pulse (Vitals)", "result": "88 beats/min"},
    ),
    Case(
        "time zone",
        "obs_datetime",
        "any observation at 10:30 in Kigali (hospital timezone Africa/Kigali)",
        lambda s: s.obs("spo2", value_numeric=97),
        "test",
        {"date": "2025-11-06T08:30:00.000Z", "testDate": "2025-11-06T08:30:00.000Z", "result": "97 %"},
    ),
    Case(
        "condition with a note",
        "conditions, inactive, with a note",
        "Asthma (CIEL 121375), INACTIVE, onset 2010-03-01, note 'childhood only'",
        _condition(
            concept="asthma",
            clinical_status="INACTIVE",
            onset_date=datetime(2010, 3, 1),
            additional_detail="childhood only",
        ),
        "condition",
        {
            "diagnosis": "Asthma",
            "notes": "Inactive, confirmed. childhood only",
            "status": "Inactive",
            "diagnosedDate": "2010-03-01T00:00:00.000",
        },
    ),
    Case(
        "condition without onset",
        "conditions, no onset date",
        "Hypertension (CIEL 117399), ACTIVE, no onset",
        _condition(concept="hypertension"),
        "condition",
        {
            "diagnosis": "Hypertension",
            "details": "Active, confirmed; onset date not recorded (entered 2025-11-06)",
            "diagnosedDate": "2025-11-06T08:30:00.000Z",
        },
    ),
    Case(
        "row of its own",
        "allergy outside any encounter: its own visit record",
        "the allergy above, recorded without an encounter on a visit's day",
        lambda s: "allergy:" + _allergy(s),
        "visit",
        {"reason": "Recorded outside a visit", "diagnosis": "Allergy: Cotrimoxazole (severe): Swollen lips, Hives"},
    ),
    Case(
        "non-coded allergen",
        "allergy, non-coded allergen and reactions",
        "Other = 'Cotrimoxazole', severe; reactions Other = 'Swollen lips', Hives",
        _allergy,
        "condition",
        {"diagnosis": "Allergy: Cotrimoxazole", "details": "Cotrimoxazole (severe): Swollen lips, Hives"},
    ),
    Case(
        "drug order",
        "drug order (simple dosing)",
        "Aspirin 1 Tablet Oral Thrice daily 5 Days, as needed for pain, after meals; 15 Tablet",
        _drug_order,
        "medication",
        {
            "medicationName": "Aspirin 300mg tablet",
            "details": "1.0 Tablet Oral Thrice daily 5 Days PRN for pain after meals; Instructions: Take with water;"
            " Quantity: 15 Tablet",
            "frequency": "Thrice daily, as needed for pain",
        },
    ),
    Case(
        "free-text order",
        "drug order (free-text dosing)",
        "Aspirin, dosing typed as '2 tablets at night for 3 nights'",
        lambda s: s.uuid_of(
            "orders",
            "order_id",
            s.db.build.drug_order(
                s.encounter,
                s.provider,
                drug_id=s.db.build.drug("Aspirin 300mg", s.ids["aspirin"]),
                dosing_type="org.openmrs.FreeTextDosingInstructions",
                dosing_instructions="2 tablets at night for 3 nights",
                date_activated=VISIT,
            ),
        ),
        "medication",
        {"medicationName": "Aspirin 300mg", "details": "2 tablets at night for 3 nights"},
    ),
)


def contract_table() -> list[str]:
    """The README's rendering table, one line per case."""
    lines = [
        "| OpenMRS value or source | recorded (example) | record type | the card shows |",
        "|---|---|---|---|",
    ]
    for case in CASES:
        shown = "; ".join(f"`data.{k}` {v}" for k, v in case.shows.items())
        lines.append(f"| {case.source} | {case.recorded} | `{case.type}` | {shown} |")
    return lines


@pytest.fixture(scope="module")
def synced(mongo_uri: str) -> Iterator[tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]]:
    """Every case recorded in one OpenMRS chart and synced once: (records by case, patient's records)."""
    db = OpenMRSDatabase(f"pstest_{secrets.token_hex(4)}")
    mongo_db = f"pstest_{secrets.token_hex(4)}"
    client: pymongo.MongoClient[Any] = pymongo.MongoClient(mongo_uri)
    try:
        ids = ciel_concepts.load(db.build)
        db.execute(
            "INSERT INTO global_property (property, property_value, uuid) VALUES ('default_locale', 'fr', UUID())"
            " ON DUPLICATE KEY UPDATE property_value = 'fr'"
        )
        person = db.build.patient(national_id=NATIONAL_ID)
        provider = db.build.provider("Jean", "Uwimana")
        encounter = db.build.encounter(person, provider_ids=[provider], when=VISIT)
        site = Site(db, ids, person, encounter, provider)
        uuids = {case.name: case.record(site).lower() for case in CASES}
        passport = client[mongo_db]
        patient_id = register_patient(passport, NATIONAL_ID)
        settings = make_settings(mongo_uri, mongo_db, [hospital_entry(db.name, timezone="Africa/Kigali")])
        [report] = run_sync(settings)
        assert report.outcome == "ok", report.errors
        records = list(passport.medicalrecords.find({"patientId": patient_id}))
        by_uuid = {r["openmrsData"]["uuid"].lower(): r for r in records}
        yield {name: by_uuid[uuid] for name, uuid in uuids.items() if uuid in by_uuid}, records
    finally:
        client.drop_database(mongo_db)
        client.close()
        db.drop()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_the_card_shows_what_the_clinician_recorded(
    case: Case, synced: tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]
) -> None:
    by_case, _ = synced
    assert case.name in by_case, f"no record for {case.name}"
    record = by_case[case.name]
    assert record["type"] == case.type
    shown = {k: record["data"].get(k) for k in case.shows}
    assert shown == case.shows
    for absent in case.absent:
        assert absent not in record["data"]
    for key, value in case.extra.items():
        assert record["openmrsData"][key] == value
    assert record["openmrsData"]["renderVersion"] == RENDER_VERSION


def _card(record: dict[str, Any]) -> tuple[str, str]:
    """(headline, body) of a record as the app's patient page shows it."""
    data = record["data"]
    if record["type"] == "condition":
        return data.get("diagnosis") or data.get("name") or "", data.get("notes") or data.get("details") or ""
    if record["type"] == "test":
        return data.get("testName", ""), data.get("result", "")
    if record["type"] == "visit":
        return data.get("reason", ""), ""
    if record["type"] == "image":
        return data.get("description", ""), ""
    return data.get("medicationName", ""), data.get("details", "")


def test_no_card_states_an_answer_without_its_question_or_a_relatives_condition(
    synced: tuple[dict[str, dict[str, Any]], list[dict[str, Any]]],
) -> None:
    _, records = synced
    headlines = [_card(r)[0] for r in records]
    bare_answers = {"Yes", "No", "Unknown", "Mother", "2020-04-15", "Penicillins", "Cough", "Diabetes Mellitus"}
    assert not bare_answers & set(headlines)
    conditions = {r["data"]["diagnosis"] for r in records if r["type"] == "condition"}
    assert conditions == {
        "Puerperal sepsis",
        "Suspected typhoid",
        "Malaria",
        "Malaria (provisional)",
        "Asthma",
        "Hypertension",
        "Allergy: Cotrimoxazole",
    }
    # A group is one record: its members have none of their own.
    member_records = [r for r in records if r["openmrsData"].get("groupUuid") and r["type"] != "test"]
    assert member_records == []
    # Observations are never the patient's medications: only the drug order is one.
    assert [r["openmrsData"]["source"] for r in records if r["type"] == "medication"] == ["drug_order"] * 2


def test_the_readme_rendering_table_is_the_tested_one() -> None:
    readme = README.read_text(encoding="utf-8").splitlines()
    expected = contract_table()
    assert expected[0] in readme, "the README has no rendering contract table"
    start = readme.index(expected[0])
    end = start
    while end < len(readme) and readme[end].startswith("|"):
        end += 1
    assert readme[start:end] == expected, "the README's rendering table differs from these tests: regenerate it"
