"""categorise: the documented rules, first match wins."""

from __future__ import annotations

from typing import Any

import pytest

from passport_sync.config import RecordType
from passport_sync.mapping.categorise import CLASS_CATEGORIES, KEYWORD_CATEGORIES, categorise

UUID = "5089AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"


def cat(
    concept_name: str = "Misc finding",
    *,
    concept_uuid: str = UUID,
    concept_class: str = "Misc",
    datatype: str = "Text",
    **overrides: Any,
) -> RecordType:
    return categorise(
        concept_name=concept_name,
        concept_uuid=concept_uuid,
        concept_class=concept_class,
        datatype=datatype,
        **overrides,
    )


class TestConceptOverrides:
    def test_override_by_uuid(self) -> None:
        assert cat(concept_overrides={UUID: "visit"}) == "visit"

    def test_override_by_exact_name(self) -> None:
        assert cat("Misc finding", concept_overrides={"Misc finding": "medication"}) == "medication"

    def test_name_override_is_exact_not_case_insensitive_nor_substring(self) -> None:
        assert cat("Misc finding", concept_overrides={"misc finding": "medication"}) == "test"
        assert cat("Misc finding", concept_overrides={"Misc": "medication"}) == "test"

    def test_uuid_override_wins_over_name_override(self) -> None:
        overrides: dict[str, RecordType] = {"Misc finding": "medication", UUID: "image"}
        assert cat("Misc finding", concept_overrides=overrides) == "image"

    def test_concept_override_beats_class_override_and_every_later_rule(self) -> None:
        result = cat(
            "Malaria diagnosis",
            concept_class="Test",
            datatype="Complex",
            concept_overrides={UUID: "visit"},
            class_overrides={"Test": "medication"},
        )
        assert result == "visit"

    def test_override_for_another_concept_does_not_apply(self) -> None:
        assert cat(concept_overrides={"OTHER-UUID": "visit", "Other name": "visit"}) == "test"


class TestClassOverrides:
    def test_class_override(self) -> None:
        assert cat(concept_class="Finding", class_overrides={"Finding": "visit"}) == "visit"

    def test_class_override_beats_complex_class_table_and_keywords(self) -> None:
        assert (
            cat("Lab scan drug", concept_class="Diagnosis", datatype="Complex", class_overrides={"Diagnosis": "visit"})
            == "visit"
        )

    def test_class_override_for_another_class_does_not_apply(self) -> None:
        assert cat(concept_class="Finding", class_overrides={"Drug": "visit"}) == "test"


class TestBuiltInRules:
    def test_complex_is_an_image_even_for_a_mapped_class(self) -> None:
        assert cat("X-ray test", concept_class="Test", datatype="Complex") == "image"
        assert cat("Scan", concept_class="Misc", datatype="Complex") == "image"

    @pytest.mark.parametrize(
        ("concept_class", "expected"),
        [("Drug", "medication"), ("MedSet", "medication"), ("Test", "test"), ("LabSet", "test")],
    )
    def test_class_table(self, concept_class: str, expected: RecordType) -> None:
        # A name whose keyword says otherwise: the class wins.
        assert cat("Visit note", concept_class=concept_class, datatype="Numeric") == expected

    def test_class_table_is_exactly_the_documented_one(self) -> None:
        assert dict(CLASS_CATEGORIES) == {
            "Drug": "medication",
            "MedSet": "medication",
            "Test": "test",
            "LabSet": "test",
        }

    @pytest.mark.parametrize(
        ("datatype", "answer_class", "expected"),
        [
            ("Coded", "Diagnosis", "condition"),  # "Complication of puerperium: Puerperal sepsis"
            ("Text", None, "condition"),  # "Diagnosis or problem, non-coded"
            ("Coded", "Misc", "test"),  # "Fever: No" is a finding, not a condition "No"
            ("Boolean", None, "test"),  # "Fatigue: Yes"
            ("Date", None, "test"),
            ("Numeric", None, "test"),
        ],
    )
    def test_a_diagnosis_question_is_a_condition_only_when_its_answer_names_one(
        self, datatype: str, answer_class: str | None, expected: RecordType
    ) -> None:
        assert cat("Fever", concept_class="Diagnosis", datatype=datatype, answer_class=answer_class) == expected

    def test_class_match_is_case_sensitive(self) -> None:
        assert cat("Something", concept_class="diagnosis", datatype="Text") == "test"

    @pytest.mark.parametrize(
        "concept_name",
        ["Drug allergies", "Return visit date", "Text of encounter note", "Problem list", "Current medication"],
    )
    def test_words_in_the_name_decide_nothing_by_default(self, concept_name: str) -> None:
        for concept_class in ("Misc", "Question", "Finding", "Symptom"):
            assert cat(concept_name, concept_class=concept_class) == "test"

    @pytest.mark.parametrize(
        ("concept_name", "expected"),
        [
            ("Primary diagnosis", "condition"),
            ("Chronic condition", "condition"),
            ("Disease history", "condition"),
            ("Problem list", "condition"),
            ("Current medication", "medication"),
            ("Drug allergy", "medication"),
            ("Prescription note", "medication"),
            ("Malaria test", "test"),
            ("Lab comment", "test"),
            ("Investigation notes", "test"),
            ("Scan findings", "test"),
            ("Visit reason", "visit"),
            ("Encounter note", "visit"),
            ("Admission reason", "visit"),
        ],
    )
    def test_each_seed_keyword_when_the_operator_opts_in(self, concept_name: str, expected: RecordType) -> None:
        # Text datatype and an unmapped class, so only the keyword can decide.
        assert cat(concept_name, keywords=True) == expected
        assert cat(concept_name.lower(), keywords=True) == expected
        assert cat(concept_name.upper(), keywords=True) == expected

    def test_keyword_table_is_exactly_the_seeds(self) -> None:
        assert KEYWORD_CATEGORIES == (
            (("DIAGNOSIS", "CONDITION", "DISEASE", "PROBLEM"), "condition"),
            (("MEDICATION", "DRUG", "PRESCRIPTION"), "medication"),
            (("TEST", "LAB", "INVESTIGATION", "SCAN"), "test"),
            (("VISIT", "ENCOUNTER", "ADMISSION"), "visit"),
        )

    @pytest.mark.parametrize(
        ("concept_name", "expected"),
        [
            ("Admission diagnosis", "condition"),  # condition row comes before visit
            ("Drug test", "medication"),  # medication row comes before test
            ("Visit lab order", "test"),  # test row comes before visit
            ("Problem drug", "condition"),
        ],
    )
    def test_keyword_rows_are_tried_in_table_order(self, concept_name: str, expected: RecordType) -> None:
        assert cat(concept_name, keywords=True) == expected

    def test_class_rules_come_before_keywords(self) -> None:
        assert cat("Visit count", concept_class="Test", datatype="Numeric", keywords=True) == "test"

    @pytest.mark.parametrize("datatype", ["Numeric", "Structured Numeric", "Text", "Coded", "Boolean", "Date", "N/A"])
    def test_anything_else_is_an_observation(self, datatype: str) -> None:
        assert cat("Weight (kg)", concept_class="Finding", datatype=datatype) == "test"

    def test_empty_overrides_are_like_none(self) -> None:
        assert cat("Weight (kg)", datatype="Numeric", concept_overrides={}, class_overrides={}) == "test"


class TestNotThePatientsOwnDiagnosis:
    """A Diagnosis-class question about a relative or the past is an observation, not a condition."""

    FAMILY_HISTORY = "160592AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"  # CIEL "Family history diagnosis"

    def test_the_ciel_family_history_question_is_an_observation_by_default(self) -> None:
        from passport_sync.config import CategoryOverrides

        defaults = CategoryOverrides().not_own_diagnoses
        assert self.FAMILY_HISTORY in defaults
        shown = cat(
            "Family history diagnosis",
            concept_uuid=self.FAMILY_HISTORY.lower(),
            concept_class="Diagnosis",
            datatype="Coded",
            answer_class="Diagnosis",
            not_own_diagnoses=defaults,
        )
        assert shown == "test"

    def test_the_patients_own_diagnosis_question_stays_a_condition(self) -> None:
        own = cat(concept_class="Diagnosis", datatype="Coded", answer_class="Diagnosis")
        assert own == "condition"

    def test_the_list_takes_exact_names_too(self) -> None:
        past = cat(
            "Past medical history",
            concept_class="Diagnosis",
            datatype="Coded",
            answer_class="Diagnosis",
            not_own_diagnoses=["Past medical history"],
        )
        assert past == "test"
