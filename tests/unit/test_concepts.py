"""Choosing a concept's display name from its concept_name rows."""

from __future__ import annotations

from passport_sync.mapping.concepts import choose_concept_name, chosen_answer_name
from passport_sync.models import ConceptName


def name(
    concept_name_id: int,
    text: str,
    locale: str,
    name_type: str | None = "FULLY_SPECIFIED",
    preferred: bool = False,
) -> ConceptName:
    return ConceptName(concept_name_id, text, locale, name_type, preferred)


class TestChooseConceptName:
    def test_no_names_is_none(self) -> None:
        assert choose_concept_name([], "en_GB") is None
        assert choose_concept_name(iter(()), "en") is None

    def test_exact_locale_beats_language_and_others(self) -> None:
        names = [
            name(1, "Haemoglobin (en)", "en", preferred=True),
            name(2, "Hémoglobine", "fr", preferred=True),
            name(3, "Haemoglobin (en_GB)", "en_GB"),
        ]
        assert choose_concept_name(names, "en_GB") == "Haemoglobin (en_GB)"

    def test_falls_back_to_language_when_locale_has_no_name(self) -> None:
        names = [
            name(1, "Hémoglobine", "fr", preferred=True),
            name(2, "Hemoglobin", "en"),
            name(3, "Hemoglobina", "es", preferred=True),
        ]
        assert choose_concept_name(names, "en_GB") == "Hemoglobin"

    def test_another_region_of_the_language_beats_another_language(self) -> None:
        names = [
            name(9, "Blutdruck", "de"),
            name(5, "Blood pressure (US)", "en_US", preferred=True),
        ]
        assert choose_concept_name(names, "en_GB") == "Blood pressure (US)"

    def test_falls_back_to_openmrs_default_locale_not_alphabetically(self) -> None:
        # The configured language has no name: OpenMRS's default_locale decides, not "de" < "fr".
        names = [
            name(1, "Fièvre", "fr"),
            name(2, "Fieber", "de"),
            name(3, "Umuriro", "rw"),
        ]
        assert choose_concept_name(names, "en", "fr") == "Fièvre"
        assert choose_concept_name(names, "en", "rw") == "Umuriro"
        assert choose_concept_name(names, "en_GB", "rw_RW") == "Umuriro"

    def test_default_locale_only_when_the_configured_language_has_no_name(self) -> None:
        names = [name(1, "Fièvre", "fr"), name(2, "Fever", "en")]
        assert choose_concept_name(names, "en", "fr") == "Fever"

    def test_falls_back_to_any_fully_specified_name(self) -> None:
        names = [
            name(1, "Hb", "fr", "SHORT", preferred=True),
            name(2, "Hämoglobin", "de", "FULLY_SPECIFIED"),
            name(3, "Hemoglobina", "es", "FULLY_SPECIFIED"),
        ]
        assert choose_concept_name(names, "en_GB") == "Hämoglobin"

    def test_fully_specified_fallback_breaks_locale_ties_by_lowest_id(self) -> None:
        names = [
            name(8, "Second", "fr", "FULLY_SPECIFIED"),
            name(4, "First", "fr", "FULLY_SPECIFIED"),
        ]
        assert choose_concept_name(names, "en") == "First"

    def test_falls_back_to_any_name_when_none_is_fully_specified(self) -> None:
        names = [
            name(7, "Hb (fr)", "fr", "SHORT"),
            name(3, "Hgb", "de", None),
        ]
        assert choose_concept_name(names, "en_GB") == "Hgb"

    def test_index_terms_are_never_shown(self) -> None:
        names = [
            name(1, "hb search term", "en_GB", "INDEX_TERM", preferred=True),
            name(2, "Haemoglobine", "fr", "FULLY_SPECIFIED"),
        ]
        assert choose_concept_name(names, "en_GB") == "Haemoglobine"
        assert choose_concept_name(names[:1], "en_GB") is None

    def test_short_names_are_never_shown(self) -> None:
        names = [
            name(1, "hb", "en_GB", "INDEX_TERM"),
            name(2, "Hb", "en", "SHORT", preferred=True),
            name(3, "Hémoglobine", "fr", "FULLY_SPECIFIED"),
        ]
        assert choose_concept_name(names, "en_GB") == "Hémoglobine"

    def test_locale_preferred_wins_within_a_locale(self) -> None:
        names = [
            name(1, "Haemoglobin", "en", "FULLY_SPECIFIED"),
            name(2, "Hemoglobin", "en", None, preferred=True),
            name(3, "Hb", "en", "SHORT", preferred=True),
        ]
        assert choose_concept_name(names, "en") == "Hemoglobin"

    def test_fully_specified_beats_other_types_when_none_is_preferred(self) -> None:
        names = [
            name(1, "Hb", "en", "SHORT"),
            name(2, "Haemoglobin", "en", "FULLY_SPECIFIED"),
            name(3, "Hgb", "en", None),
        ]
        assert choose_concept_name(names, "en") == "Haemoglobin"

    def test_lowest_id_breaks_ties_within_a_locale(self) -> None:
        names = [
            name(12, "Later", "en", None),
            name(11, "Earlier", "en", None),
        ]
        assert choose_concept_name(names, "en") == "Earlier"

    def test_language_only_locale(self) -> None:
        names = [name(1, "Poids", "fr"), name(2, "Weight", "en")]
        assert choose_concept_name(names, "fr") == "Poids"
        assert choose_concept_name(names, "en") == "Weight"


class TestChosenAnswerName:
    NAMES = (
        name(10, "Malaria", "en", "FULLY_SPECIFIED", preferred=True),
        name(11, "Plasmodium infection", "en", "SYNONYM"),
        name(12, "Paludisme", "fr", "FULLY_SPECIFIED", preferred=True),
        name(13, "Malaria (GB)", "en_GB", "SYNONYM"),
    )

    def test_picked_name_in_the_configured_language_is_used(self) -> None:
        assert chosen_answer_name(self.NAMES, "en", 11) == "Plasmodium infection"

    def test_picked_name_in_another_region_of_the_language_is_used(self) -> None:
        assert chosen_answer_name(self.NAMES, "en_US", 13) == "Malaria (GB)"
        assert chosen_answer_name(self.NAMES, "en", 13) == "Malaria (GB)"

    def test_picked_name_in_another_language_is_ignored(self) -> None:
        assert chosen_answer_name(self.NAMES, "en", 12) == "Malaria"
        assert chosen_answer_name(self.NAMES, "fr", 11) == "Paludisme"

    def test_no_pick_or_unknown_pick_uses_the_usual_choice(self) -> None:
        assert chosen_answer_name(self.NAMES, "en", None) == "Malaria"
        assert chosen_answer_name(self.NAMES, "en", 999) == "Malaria"
        assert chosen_answer_name(self.NAMES, "en_GB", None) == "Malaria (GB)"

    def test_accepts_an_iterator(self) -> None:
        assert chosen_answer_name(iter(self.NAMES), "en", 999) == "Malaria"

    def test_no_names_is_none(self) -> None:
        assert chosen_answer_name([], "en", 5) is None
