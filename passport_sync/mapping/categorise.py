"""Which Patient Passport record type an observation becomes.

Order of the rules (first match wins), documented in the README:

1. a YAML override for the concept (by uuid or exact name);
2. a YAML override for the concept class;
3. datatype Complex -> ``image``;
4. concept class: Diagnosis -> ``condition``, Drug/MedSet -> ``medication``,
   Test/LabSet -> ``test``;
5. the seed's keywords in the concept name (table below);
6. a numeric value -> ``test``; anything else -> ``condition``.
"""

from __future__ import annotations

from collections.abc import Mapping

from passport_sync.config import RecordType

CLASS_CATEGORIES: Mapping[str, RecordType] = {
    "Diagnosis": "condition",
    "Drug": "medication",
    "MedSet": "medication",
    "Test": "test",
    "LabSet": "test",
}

# The seed's keyword table, in the seed's order.
KEYWORD_CATEGORIES: tuple[tuple[tuple[str, ...], RecordType], ...] = (
    (("DIAGNOSIS", "CONDITION", "DISEASE", "PROBLEM"), "condition"),
    (("MEDICATION", "DRUG", "PRESCRIPTION"), "medication"),
    (("TEST", "LAB", "INVESTIGATION", "SCAN"), "test"),
    (("VISIT", "ENCOUNTER", "ADMISSION"), "visit"),
)

NUMERIC_DATATYPES = frozenset({"Numeric", "Structured Numeric"})


def categorise(
    *,
    concept_name: str,
    concept_uuid: str,
    concept_class: str,
    datatype: str,
    concept_overrides: Mapping[str, RecordType] | None = None,
    class_overrides: Mapping[str, RecordType] | None = None,
) -> RecordType:
    """The record type for an observation of this concept."""
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
    upper = concept_name.upper()
    for keywords, category in KEYWORD_CATEGORIES:
        if any(word in upper for word in keywords):
            return category
    if datatype in NUMERIC_DATATYPES:
        return "test"
    return "condition"
