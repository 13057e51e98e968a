"""Which Patient Passport record type an observation becomes.

From what the clinician recorded, never from words in the question's name (unless the operator
opts in). Order of the rules (first match wins), documented in the README:

1. a YAML override for the concept (by uuid or exact name);
2. a YAML override for the concept class;
3. datatype Complex -> ``image``;
4. concept class Test/LabSet -> ``test``; Drug/MedSet -> ``medication``;
5. concept class Diagnosis, when the answer names a diagnosis (a coded answer of class Diagnosis,
   or free text) and the question is not one of ``not_own_diagnoses`` (family history, past
   history: about someone else or another time) -> ``condition``;
6. only with ``sync.categories.keywords: true``: the original keyword table on the concept name;
7. anything else -> ``test``: an observation (finding, symptom, history, plan, note) shown as
   question and answer on the card the app shows observations with, never as the patient's
   condition or medication.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from passport_sync.config import RecordType

CLASS_CATEGORIES: Mapping[str, RecordType] = {
    "Test": "test",
    "LabSet": "test",
    "Drug": "medication",
    "MedSet": "medication",
}

# The seed's keyword table, in the seed's order: only applied when the operator opts in.
KEYWORD_CATEGORIES: tuple[tuple[tuple[str, ...], RecordType], ...] = (
    (("DIAGNOSIS", "CONDITION", "DISEASE", "PROBLEM"), "condition"),
    (("MEDICATION", "DRUG", "PRESCRIPTION"), "medication"),
    (("TEST", "LAB", "INVESTIGATION", "SCAN"), "test"),
    (("VISIT", "ENCOUNTER", "ADMISSION"), "visit"),
)

OBSERVATION: RecordType = "test"


def categorise(
    *,
    concept_name: str,
    concept_uuid: str,
    concept_class: str,
    datatype: str,
    answer_class: str | None = None,
    concept_overrides: Mapping[str, RecordType] | None = None,
    class_overrides: Mapping[str, RecordType] | None = None,
    keywords: bool = False,
    not_own_diagnoses: Collection[str] = (),
) -> RecordType:
    """The record type for an observation of this concept (``answer_class``: the concept class
    of its coded answer, if any)."""
    concept_overrides = concept_overrides or {}
    class_overrides = class_overrides or {}
    for key in (concept_uuid, concept_name):
        if key in concept_overrides:
            return concept_overrides[key]
    if concept_class in class_overrides:
        return class_overrides[concept_class]
    if datatype == "Complex":
        return "image"
    if concept_class in CLASS_CATEGORIES:
        return CLASS_CATEGORIES[concept_class]
    others = {key.lower() for key in not_own_diagnoses}
    own = concept_uuid.lower() not in others and concept_name.lower() not in others
    if concept_class == "Diagnosis" and own and (datatype == "Text" or answer_class == "Diagnosis"):
        return "condition"
    if keywords:
        upper = concept_name.upper()
        for words, category in KEYWORD_CATEGORIES:
            if any(word in upper for word in words):
                return category
    return OBSERVATION
