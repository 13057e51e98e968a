"""Nothing on the patient's page misleads: a generated population of everyday records, recorded in
a real OpenMRS database (CIEL concepts, hospital zone Africa/Kigali), synced, and read through the
page's own rules (tests/page_rules.py) by readers in the hospital's zone, in UTC and at both ends
of the inhabited zones.

Each patient has a visit (at a time drawn from the whole day, midnight included, so that days
differ between readers), and on that visit's day: a provisional and a confirmed diagnosis, coded
positive results, vital signs of concepts without ranges, a relative's diagnosis, a PRN and a
free-text order; and outside any encounter an allergy, a condition without onset, a condition with
a date-only onset and a diagnosis observation.
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pymongo
import pytest
from bson import ObjectId

from tests import ciel_concepts
from tests.conftest import OpenMRSDatabase, hospital_entry, make_settings, register_patient
from tests.helpers import run_sync
from tests.page_rules import READER_ZONES, condition_date, condition_name, read_doctor_view, read_page, reader_day

KIGALI = ZoneInfo("Africa/Kigali")
PATIENTS = 6
POSITIVE_TESTS = ("hiv_rapid_test", "pregnancy_test", "malaria_smear")
ONSET = datetime(2010, 3, 1)  # a date-only onset, as the condition form stores it


@dataclass
class Chart:
    """What one generated patient's chart holds, to check the page against."""

    patient_id: str
    visit_day: date  # in Kigali
    outside_encounter: list[str] = field(default_factory=list)  # uuids of records outside encounters
    no_onset_created: datetime | None = None
    doctors_allergies: list[str] = field(default_factory=list)  # the doctor's view's allergies line


@pytest.fixture(scope="module")
def population(mongo_uri: str) -> Iterator[tuple[list[Chart], list[dict[str, Any]]]]:
    db = OpenMRSDatabase(f"pstest_{secrets.token_hex(4)}")
    mongo_db = f"pstest_{secrets.token_hex(4)}"
    client: pymongo.MongoClient[Any] = pymongo.MongoClient(mongo_uri)
    try:
        ids = ciel_concepts.load(db.build)
        b = db.build
        provider = b.provider("Jean", "Uwimana")
        drug = b.drug("Paracetamol 500mg tablet", ids["aspirin"])
        rng = random.Random(21)
        charts = []
        passport = client[mongo_db]
        for index in range(PATIENTS):
            national_id = f"11997800{index:08d}"
            person = b.patient(national_id=national_id)
            day = datetime(2025, 10, 1) + timedelta(days=rng.randrange(30))
            # Midnight, the small hours, mid-morning, late evening: days differ between readers.
            when = day + timedelta(minutes=rng.choice((0, 45, 630, 1410, 1439)))
            encounter = b.encounter(person, provider_ids=[provider], when=when, date_created=when)
            b.encounter_diagnosis(encounter, diagnosis_coded=ids["malaria"], certainty="PROVISIONAL", rank=1)
            b.encounter_diagnosis(encounter, diagnosis_coded=ids["asthma"], certainty="CONFIRMED", rank=2)
            for test in POSITIVE_TESTS:
                b.obs(person, ids[test], encounter_id=encounter, obs_datetime=when, value_coded=ids["positive"])
            b.obs(person, ids["temperature"], encounter_id=encounter, obs_datetime=when, value_numeric=39.2)
            b.obs(person, ids["pulse"], encounter_id=encounter, obs_datetime=when, value_numeric=128)
            b.obs(
                person,
                ids["family_history_diagnosis"],
                encounter_id=encounter,
                obs_datetime=when,
                value_coded=ids["diabetes"],
            )
            b.drug_order(
                encounter, provider, drug_id=drug, dose=1, dose_units=ids["tablet"], as_needed=True,
                date_activated=when,
            )  # fmt: skip
            b.drug_order(
                encounter,
                provider,
                drug_id=drug,
                dosing_type="org.openmrs.FreeTextDosingInstructions",
                dosing_instructions="2 tablets at night for 3 nights",
                date_activated=when,
            )
            # Stopped the next day, for a reason typed by the clinician.
            stopped = b.drug_order(
                encounter, provider, drug_id=drug, dose=1, dose_units=ids["tablet"], date_activated=when
            )
            stop = b.drug_order(
                encounter,
                provider,
                drug_id=drug,
                order_action="DISCONTINUE",
                previous_order_id=stopped,
                date_activated=when + timedelta(days=1),
            )
            db.execute("UPDATE orders SET order_reason_non_coded = 'Rash' WHERE order_id = %s", (stop,))
            db.execute("UPDATE orders SET date_stopped = %s WHERE order_id = %s", (when + timedelta(days=1), stopped))
            # Outside any encounter, on the visit's day (Platform 2.3/2.4 forms record them so).
            later = when + timedelta(minutes=rng.randrange(0, 1440 - when.hour * 60 - when.minute))
            chart = Chart(register_patient(passport, national_id), when.date(), no_onset_created=later)
            allergy = b.allergy(person, ids["penicillins"], severity_concept_id=ids["severe"], date_created=later)
            no_onset = b.condition(person, condition_coded=ids["hypertension"], date_created=later)
            onset = b.condition(person, condition_coded=ids["asthma"], onset_date=ONSET, date_created=later)
            loose = b.obs(person, ids["non_coded_diagnosis"], obs_datetime=later, value_text="Suspected typhoid")
            chart.outside_encounter = [
                *(
                    str(db.execute(f"SELECT uuid FROM {table} WHERE {pk} = %s", (key,))[0][0]).lower()
                    for table, pk, key in (
                        ("allergy", "allergy_id", allergy),
                        ("conditions", "condition_id", no_onset),
                        ("conditions", "condition_id", onset),
                        ("obs", "obs_id", loose),
                    )
                )
            ]
            charts.append(chart)
        # A doctor was granted access to the first patient before: the app copied the allergies then.
        passport.patientpassports.insert_one(
            {"patient": ObjectId(charts[0].patient_id), "medicalInfo": {"allergies": ["Dust"]}}
        )
        settings = make_settings(mongo_uri, mongo_db, [hospital_entry(db.name, timezone="Africa/Kigali")])
        [report] = run_sync(settings)
        assert report.outcome == "ok", report.errors
        charts[0].doctors_allergies = passport.patientpassports.find_one()["medicalInfo"]["allergies"]
        yield charts, list(passport.medicalrecords.find())
    finally:
        client.drop_database(mongo_db)
        client.close()
        db.drop()


Population = tuple[list[Chart], list[dict[str, Any]]]


def _mine(records: list[dict[str, Any]], chart: Chart) -> list[dict[str, Any]]:
    return [r for r in records if r["patientId"] == chart.patient_id]


@pytest.mark.parametrize("zone", READER_ZONES)
def test_every_condition_and_allergy_is_on_a_row_of_the_page(population: Population, zone: str) -> None:
    charts, records = population
    checked = 0
    for chart in charts:
        page = read_page(records, chart.patient_id, zone)
        shown = page.diagnosis_text()
        for record in _mine(records, chart):
            if record["type"] == "condition":
                assert condition_name(record) in shown, (zone, condition_name(record), page.rows)
                checked += 1
    # Per patient: two diagnoses, an allergy, two conditions and a diagnosis observed outside a visit.
    assert checked == PATIENTS * 6


@pytest.mark.parametrize("zone", READER_ZONES)
def test_records_outside_encounters_show_on_their_own_day_for_every_reader(population: Population, zone: str) -> None:
    charts, records = population
    tz = ZoneInfo(zone)
    for chart in charts:
        page = read_page(records, chart.patient_id, zone)
        by_uuid = {r["openmrsData"]["uuid"].lower(): r for r in _mine(records, chart)}
        for uuid in chart.outside_encounter:
            record = by_uuid[uuid]
            day = reader_day(condition_date(record), tz)
            assert any(condition_name(record) in text and row_day == day for row_day, text in page.rows), (
                zone,
                condition_name(record),
                page.rows,
            )


@pytest.mark.parametrize("zone", READER_ZONES)
def test_no_date_moves_and_no_condition_is_dated_today(population: Population, zone: str) -> None:
    charts, records = population
    tz = ZoneInfo(zone)
    today = datetime.now(tz).date()
    for chart in charts:
        for record in _mine(records, chart):
            if record["type"] != "condition":
                continue
            assert condition_date(record), condition_name(record)
            shown = reader_day(condition_date(record), tz)
            assert shown != today, condition_name(record)
            if condition_name(record) == "Asthma" and record["openmrsData"]["source"] == "condition":
                assert shown == ONSET.date()  # the calendar day typed, for every reader
            if condition_name(record) == "Hypertension":
                assert chart.no_onset_created is not None
                recorded = chart.no_onset_created.replace(tzinfo=KIGALI).astimezone(tz).date()
                assert shown == recorded  # when it was recorded, as an instant read in the reader's zone
        for card in read_doctor_view(records, chart.patient_id, zone):
            assert card.day != today, card.title


@pytest.mark.parametrize("zone", READER_ZONES)
def test_no_positive_or_uninterpreted_result_is_called_normal(population: Population, zone: str) -> None:
    charts, records = population
    for chart in charts:
        page = read_page(records, chart.patient_id, zone)
        shown = dict(page.tests)
        assert {shown[f"{name}: Positive"] for name in _names(POSITIVE_TESTS)} == {"ABNORMAL"}
        assert shown["Temperature (C)"] == shown["Pulse"] == "NOT INTERPRETED"
        for name, status in page.tests:
            assert status != "NORMAL", name


def _names(keys: tuple[str, ...]) -> list[str]:
    by_key = {c.key: c.name for c in ciel_concepts.CONCEPTS}
    return [by_key[k] for k in keys]


@pytest.mark.parametrize("zone", READER_ZONES)
def test_certainty_and_relation_read_true_on_the_visit_row(population: Population, zone: str) -> None:
    charts, records = population
    for chart in charts:
        page = read_page(records, chart.patient_id, zone)
        names = [name for _, text in page.rows for name in text.split("; ")]
        assert "Malaria (provisional)" in names and "Malaria" not in names
        assert "Asthma" in names  # confirmed: its bare name
        assert not any("Diabetes" in name for name in names)  # the relative's diagnosis
        relative = [r for r in _mine(records, chart) if "Family history diagnosis" in str(r["data"].get("testName"))]
        assert [r["type"] for r in relative] == ["test"]


def test_prn_and_free_text_dosing_show_where_the_page_shows_medications(population: Population) -> None:
    charts, records = population
    for chart in charts:
        entries = [
            m for r in _mine(records, chart) if r["type"] == "condition" for m in r["data"].get("medications") or []
        ]
        stopped = f"1.0 Tablet; Stopped {chart.visit_day + timedelta(days=1)}: Rash"
        assert sorted(e["dosage"] for e in entries) == ["1.0 Tablet PRN", stopped, "2 tablets at night for 3 nights"]
        assert [e["frequency"] for e in entries if "PRN" in e["dosage"]] == ["As needed"]


def test_the_doctors_view_shows_every_condition_marked_synced_with_allergies_in_step(population: Population) -> None:
    charts, records = population
    for chart in charts:
        cards = read_doctor_view(records, chart.patient_id)
        conditions = [r for r in _mine(records, chart) if r["type"] == "condition"]
        assert sorted(c.title for c in cards) == sorted(condition_name(r) for r in conditions)
        assert all(r["openmrsData"]["synced"] is True for r in _mine(records, chart))
    # The copy the doctor's view reads follows the synced allergies; what was there stays.
    assert charts[0].doctors_allergies == ["Dust", "Penicillins (severe)"]
