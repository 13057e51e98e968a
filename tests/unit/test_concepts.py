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

    def test_other_region_of_the_language_is_not_the_language_step(self) -> None:
        # en_US is neither the locale en_GB nor the language en: the fully specified fallback
        # picks by (locale, id), so "de" < "en_US" wins.
        names = [
            name(5, "Blood pressure (US)", "en_US", preferred=True),
            name(9, "Blutdruck", "de"),
        ]
        assert choose_concept_name(names, "en_GB") == "Blutdruck"

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

    def test_index_term_is_only_a_last_resort(self) -> None:
        # An INDEX_TERM in the wanted locale is skipped in the locale steps ...
        names = [
            name(1, "hb search term", "en_GB", "INDEX_TERM", preferred=True),
            name(2, "Haemoglobine", "fr", "FULLY_SPECIFIED"),
        ]
        assert choose_concept_name(names, "en_GB") == "Haemoglobine"
        # ... but is shown when it is the only name there is.
        assert choose_concept_name(names[:1], "en_GB") == "hb search term"

    def test_index_term_skipped_in_locale_falls_through_to_language(self) -> None:
        names = [
            name(1, "hb", "en_GB", "INDEX_TERM"),
            name(2, "Haemoglobin", "en", "SHORT"),
        ]
        assert choose_concept_name(names, "en_GB") == "Haemoglobin"

    def test_locale_preferred_wins_within_a_locale(self) -> None:
        names = [
            name(1, "Haemoglobin", "en", "FULLY_SPECIFIED"),
            name(2, "Hb", "en", "SHORT", preferred=True),
        ]
        assert choose_concept_name(names, "en") == "Hb"

    def test_fully_specified_beats_other_types_when_none_is_preferred(self) -> None:
        names = [
            name(1, "Hb", "en", "SHORT"),
            name(2, "Haemoglobin", "en", "FULLY_SPECIFIED"),
            name(3, "Hgb", "en", None),
        ]
        assert choose_concept_name(names, "en") == "Haemoglobin"

    def test_lowest_id_breaks_ties_within_a_locale(self) -> None:
        names = [
            name(12, "Later", "en", "SHORT"),
            name(11, "Earlier", "en", "SHORT"),
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
