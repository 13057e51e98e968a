"""How diagnoses, conditions, allergies and drug orders read, as OpenMRS shows them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from passport_sync.mapping.clinical import (
    ClinicalContext,
    ClinicalRow,
    allergen_name,
    allergy_text,
    build_clinical_record,
    discontinuation_patch,
    dosing_text,
)
from passport_sync.mapping.visits import medication_entry

NAMES = {1513: "Tablet", 160240: "Oral", 160866: "Thrice daily", 1072: "Days", 5622: "Other", 111061: "Hives"}
NAMES |= {1500: "Severe", 121375: "Asthma"}


def name_of(concept_id: int | None, _picked: int | None) -> str | None:
    return NAMES.get(concept_id or 0)


def row(source: str = "drug_order", **extra: Any) -> ClinicalRow:
    coded = extra.pop("coded", None)
    non_coded = extra.pop("non_coded", None)
    return ClinicalRow(
        source=source,
        pk=1,
        uuid="u-1",
        person_id=7,
        date_created=datetime(2025, 11, 6, 9, 0),
        coded=coded,
        non_coded=non_coded,
        extra=extra,
    )


def context() -> ClinicalContext:
    return ClinicalContext(
        hospital_id="h",
        hospital_name="Central Hospital",
        patient_id="64b000000000000000000001",
        created_by="64b000000000000000000002",
        doctor_name="Dr. A",
        provider_uuid=None,
        name_of=name_of,
        now=datetime(2025, 11, 6, 12, 0, tzinfo=UTC),
        tz=ZoneInfo("Africa/Kigali"),
    )


SIMPLE = {
    "dose": 1.0,
    "dose_units": 1513,
    "route": 160240,
    "frequency_concept": 160866,
    "duration": 5,
    "duration_units": 1072,
    "dosing_type": "org.openmrs.SimpleDosingInstructions",
    "drug_order_id": 1,
}


class TestDosingText:
    def test_simple_dosing_reads_as_openmrs_writes_it(self) -> None:
        order = row(**SIMPLE, as_needed=1, as_needed_condition="for pain", dosing_instructions="after meals")
        assert dosing_text(order, name_of) == "1.0 Tablet Oral Thrice daily 5 Days PRN for pain after meals"

    def test_prn_without_a_condition_and_no_duration(self) -> None:
        order = row(**{**SIMPLE, "duration": None}, as_needed=1)
        assert dosing_text(order, name_of) == "1.0 Tablet Oral Thrice daily PRN"

    def test_fractional_dose(self) -> None:
        assert dosing_text(row(**{**SIMPLE, "dose": 0.5}), name_of) == "0.5 Tablet Oral Thrice daily 5 Days"

    def test_free_text_dosing_is_its_text(self) -> None:
        order = row(dosing_type="org.openmrs.FreeTextDosingInstructions", dosing_instructions="2 puffs when wheezy")
        assert dosing_text(order, name_of) == "2 puffs when wheezy"

    def test_instructions_and_quantity_are_kept_beside_the_dosing(self) -> None:
        order = row(**SIMPLE, instructions="Take with water", quantity=15.0, quantity_units=1513, drug_name="Aspirin")
        record = build_clinical_record(order, context())
        assert record is not None
        assert record["data"]["details"] == (
            "1.0 Tablet Oral Thrice daily 5 Days; Instructions: Take with water; Quantity: 15 Tablet"
        )

    def test_instructions_are_kept_when_there_is_no_dosing(self) -> None:
        order = row(instructions="Stop if rash", drug_order_id=1, drug_name="Aspirin")
        record = build_clinical_record(order, context())
        assert record is not None
        assert record["data"]["details"] == "Instructions: Stop if rash"


class TestAllergies:
    def test_a_non_coded_allergen_shows_its_text(self) -> None:
        assert allergen_name(row("allergy", coded=5622, non_coded="Cotrimoxazole"), name_of) == "Cotrimoxazole"
        assert allergen_name(row("allergy", coded=111061), name_of) == "Hives"

    def test_reactions_show_typed_text_instead_of_other_and_keep_their_order(self) -> None:
        allergy = row(
            "allergy",
            coded=5622,
            non_coded="Cotrimoxazole",
            severity_concept_id=1500,
            reaction_concept_ids="111061,5622",
            reactions_non_coded="\x1fSwollen lips",
        )
        assert allergy_text(allergy, name_of) == "Cotrimoxazole (severe): Hives, Swollen lips"


class TestConditions:
    def test_a_note_never_hides_the_status(self) -> None:
        condition = row(
            "condition",
            coded=121375,
            clinical_status="INACTIVE",
            verification_status="CONFIRMED",
            onset_date=datetime(2010, 3, 1),
            additional_detail="childhood only",
        )
        record = build_clinical_record(condition, context())
        assert record is not None
        assert record["data"]["notes"] == "Inactive, confirmed. childhood only"
        # A date-only onset is the same calendar day for every reader: no offset, read as local.
        assert record["data"]["diagnosedDate"] == "2010-03-01T00:00:00.000"
        assert record["data"]["date"] == "2010-03-01T00:00:00.000"

    def test_an_onset_with_a_time_of_day_is_an_instant(self) -> None:
        condition = row("condition", coded=121375, clinical_status="ACTIVE", onset_date=datetime(2010, 3, 1, 8, 15))
        record = build_clinical_record(condition, context())
        assert record is not None
        assert record["data"]["diagnosedDate"] == "2010-03-01T06:15:00.000Z"

    def test_without_an_onset_it_is_dated_when_recorded_never_today(self) -> None:
        condition = row("condition", coded=121375, clinical_status="ACTIVE")
        record = build_clinical_record(condition, context())
        assert record is not None
        data = record["data"]
        # 09:00 in Kigali when it was typed (the page would show an undated condition as today).
        assert data["date"] == data["diagnosed"] == data["diagnosedDate"] == "2025-11-06T07:00:00.000Z"
        assert data["details"] == "Active; onset date not recorded (entered 2025-11-06)"

    def test_a_provisional_condition_says_so_in_its_name(self) -> None:
        condition = row("condition", coded=121375, clinical_status="ACTIVE", verification_status="PROVISIONAL")
        record = build_clinical_record(condition, context())
        assert record is not None
        assert record["data"]["diagnosis"] == "Asthma (provisional)"

    def test_a_resolved_condition_says_when_it_ended_where_the_page_looks(self) -> None:
        condition = row(
            "condition",
            coded=121375,
            clinical_status="RESOLVED",
            onset_date=datetime(2010, 3, 1),
            end_date=datetime(2015, 6, 30),
        )
        record = build_clinical_record(condition, context())
        assert record is not None
        assert record["data"]["details"] == "Resolved; ended 2015-06-30"
        assert record["data"]["endDate"] == "2015-06-30T00:00:00.000"


class TestDiagnoses:
    def test_certainty_is_in_the_name_the_page_shows(self) -> None:
        provisional = row("diagnosis", coded=121375, certainty="PROVISIONAL", diagnosis_rank=1)
        confirmed = row("diagnosis", coded=121375, certainty="CONFIRMED", diagnosis_rank=2)
        shown = [build_clinical_record(r, context()) for r in (provisional, confirmed)]
        assert [r["data"]["diagnosis"] for r in shown if r] == ["Asthma (provisional)", "Asthma"]


class TestOrdersOnThePage:
    """The page shows a drug order only as an entry of a condition's ``data.medications``."""

    def _entry(self, **extra: Any) -> dict[str, str]:
        record = build_clinical_record(row(drug_name="Aspirin", **extra), context())
        assert record is not None
        return medication_entry(record)

    def test_the_entry_carries_the_whole_dosing_sentence(self) -> None:
        entry = self._entry(
            **SIMPLE, as_needed=1, as_needed_condition="for pain", instructions="Take with water", quantity=15.0
        )
        assert entry["dosage"] == (
            "1.0 Tablet Oral Thrice daily 5 Days PRN for pain; Instructions: Take with water; Quantity: 15"
        )
        assert entry["frequency"] == "Thrice daily, as needed for pain"

    def test_free_text_dosing_is_shown(self) -> None:
        entry = self._entry(
            dosing_type="org.openmrs.FreeTextDosingInstructions", dosing_instructions="2 puffs when wheezy"
        )
        assert entry["dosage"] == "2 puffs when wheezy"

    def test_a_prn_order_without_a_frequency_reads_as_needed(self) -> None:
        assert self._entry(dose=2.0, dose_units=1513, as_needed=1)["frequency"] == "As needed"

    def test_a_stopped_order_says_stopped_and_when(self) -> None:
        entry = self._entry(**SIMPLE, date_stopped=datetime(2025, 11, 8, 23, 30))
        assert entry["dosage"].endswith("; Stopped 2025-11-08")
        assert entry["medicationStatus"] == "Past"
        assert entry["endDate"] == "2025-11-08T21:30:00.000Z"

    def test_a_discontinuation_says_when_and_why(self) -> None:
        stop = row(order_action="DISCONTINUE", date_activated=datetime(2025, 11, 8, 9, 0), order_reason=1500)
        patch = discontinuation_patch(stop, context().tz, name_of)
        assert patch["data.status"] == "Stopped 2025-11-08: Severe"
        typed = row(
            order_action="DISCONTINUE", date_activated=datetime(2025, 11, 8, 9, 0), order_reason_non_coded="Rash"
        )
        assert discontinuation_patch(typed, context().tz, name_of)["data.status"] == "Stopped 2025-11-08: Rash"
