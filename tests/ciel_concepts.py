"""A small dictionary of real CIEL concepts, as a Reference Application 2.x site ships them.

Rows marked ``ciel`` are real: the concept id in CIEL, its uuid, class, datatype, English fully
specified name and (where CIEL has one) English preferred name, units and ranges as a RefApp 2.3
database holds them. Their French and Kinyarwanda names are given only where those locales exist for
the concept; the texts are the everyday words (Oui/Non, Yego/Oya, Fièvre), enough to test which
locale is chosen. Rows with ``ciel=None`` are local concepts a site adds itself (family history,
allergy forms, a vitals panel); their uuids are derived from their names.

``load`` writes them into a test OpenMRS database through the builder, with the concept_name rows
OpenMRS would have (fully specified, preferred, SHORT), and returns concept ids by key.
"""

from __future__ import annotations

import uuid as uuid_module
from dataclasses import dataclass, field
from typing import Any

from passport_sync.synthetic.builder import OpenMRSBuilder


@dataclass(frozen=True)
class Concept:
    key: str
    ciel: int | None
    concept_class: str
    datatype: str
    name: str  # English fully specified
    preferred: str | None = None  # English preferred name when it is another one
    short: str | None = None  # English SHORT name: never shown
    names: dict[str, str] = field(default_factory=dict)  # other locales: fully specified, preferred
    units: str | None = None
    hi_normal: float | None = None
    low_normal: float | None = None
    hi_critical: float | None = None
    allow_decimal: bool = True
    is_set: bool = False
    english: bool = True  # False: the concept has no English name but its SHORT one

    @property
    def uuid(self) -> str:
        if self.ciel is not None:
            return str(self.ciel).ljust(36, "A")
        return str(uuid_module.uuid5(uuid_module.NAMESPACE_URL, f"passport-sync-test/{self.key}"))


CONCEPTS: tuple[Concept, ...] = (
    Concept("yes", 1065, "Misc", "N/A", "Yes", names={"fr": "Oui", "rw": "Yego"}),
    Concept("no", 1066, "Misc", "N/A", "No", names={"fr": "Non", "rw": "Oya"}),
    Concept("unknown", 1067, "Misc", "N/A", "Unknown"),
    Concept("other", 5622, "Misc", "N/A", "OTHER NON-CODED", preferred="Other"),
    Concept("fever", 140238, "Diagnosis", "Coded", "Fever", names={"fr": "Fièvre"}),
    Concept("cough", 143264, "Diagnosis", "Coded", "Cough"),
    Concept("fatigue", 140501, "Diagnosis", "Boolean", "Fatigue"),
    Concept("weight_loss", 832, "Finding", "Boolean", "Weight loss"),
    Concept("diagnosis_date", 159948, "Question", "Date", "Diagnosis date"),
    Concept("problem_list", 1284, "Finding", "Coded", "PROBLEM LIST"),
    Concept("certainty", 159394, "Finding", "Coded", "Diagnosis certainty"),
    Concept("confirmed", 159392, "Misc", "N/A", "Confirmed diagnosis"),
    Concept("order", 159946, "Finding", "Coded", "Diagnosis order"),
    Concept("primary", 159943, "Misc", "N/A", "Primary"),
    Concept("visit_diagnoses", 159947, "ConvSet", "N/A", "Visit Diagnoses", is_set=True),
    Concept("non_coded_diagnosis", 161602, "Diagnosis", "Text", "Diagnosis or problem, non-coded"),
    Concept("puerperium", 120194, "Diagnosis", "Coded", "Complication of puerperium"),
    Concept("puerperal_sepsis", 130, "Diagnosis", "N/A", "Puerperal sepsis"),
    Concept("malaria", 116128, "Diagnosis", "N/A", "Malaria"),
    Concept("diabetes", 119481, "Diagnosis", "Coded", "Diabetes Mellitus"),
    Concept("asthma", 121375, "Diagnosis", "Coded", "Asthma"),
    Concept("hypertension", 117399, "Diagnosis", "N/A", "Hypertension"),
    Concept("hives", 111061, "Diagnosis", "N/A", "Wheal", preferred="Hives"),
    Concept(
        "penicillins",
        162297,
        "Pharmacologic Drug Class",
        "N/A",
        "Penicillin drug class",
        preferred="Penicillins",
        is_set=True,
    ),
    Concept("aspirin", 71617, "Drug", "N/A", "Acetylsalicylate sodium", preferred="Aspirin"),
    Concept("pulse", 5087, "Finding", "Numeric", "Pulse", units="beats/min", allow_decimal=False),
    Concept(
        "temperature", 5088, "Finding", "Numeric", "Temperature (C)", units="DEG C", names={"fr": "Température (C)"}
    ),
    Concept("weight", 5089, "Finding", "Numeric", "Weight (kg)", units="kg", names={"fr": "Poids (kg)"}),
    Concept("respiratory_rate", 5242, "Finding", "Numeric", "Respiratory rate", units="", hi_normal=70.0),
    Concept("spo2", 5092, "Test", "Numeric", "Blood oxygen saturation", units="%"),
    Concept(
        "systolic",
        5085,
        "Finding",
        "Numeric",
        "Systolic blood pressure",
        units="mmHg",
        short="SBP",
        english=False,
        names={"fr": "Tension artérielle systolique", "de": "Systolischer Blutdruck"},
    ),  # fmt: skip
    Concept(
        "head_circumference", 165174, "Test", "Numeric", "Head Circumference", units="cms", hi_normal=40, low_normal=30
    ),
    Concept("patient_note", 165095, "Question", "Text", "General patient note"),
    Concept("encounter_note", 162169, "Question", "Text", "Text of encounter note"),
    Concept("image", 165173, "Question", "Complex", "ATT IMAGE ATTACHMENT"),
    Concept("tablet", 1513, "Misc", "N/A", "Tablet"),
    Concept("days", 1072, "Misc", "N/A", "Days"),
    Concept("oral", 160240, "Misc", "N/A", "Oral administration", preferred="Oral"),
    Concept("thrice_daily", 160866, "Frequency", "N/A", "Thrice daily"),
    Concept("severe", 1500, "Finding", "N/A", "Severe"),
    # Qualitative laboratory results, as CIEL ships them: the question is a Test, the answers Misc.
    Concept("hiv_rapid_test", 1040, "Test", "Coded", "HIV rapid test 1, qualitative"),
    Concept("pregnancy_test", 45, "Test", "Coded", "Urine pregnancy test"),
    Concept("malaria_smear", 32, "Test", "Coded", "Malarial smear"),
    Concept("positive", 703, "Misc", "N/A", "Positive"),
    Concept("negative", 664, "Misc", "N/A", "Negative"),
    # Class Diagnosis, yet about a relative: never the patient's own diagnosis.
    Concept("family_history_diagnosis", 160592, "Diagnosis", "Coded", "Family history diagnosis"),
    # Local concepts of a site's own forms.
    Concept("chief_complaint", None, "Question", "Coded", "Chief complaint"),
    Concept("symptom_onset", None, "Question", "Datetime", "Onset of symptoms"),
    Concept("current_drug", None, "Question", "Coded", "Current drug"),
    Concept("drug_allergies", None, "Question", "Coded", "Drug allergies"),
    Concept("allergic_reaction", None, "Question", "Coded", "Allergic reaction"),
    Concept("allergy_form", None, "ConvSet", "N/A", "Allergy", is_set=True),
    Concept("family_history", None, "ConvSet", "N/A", "Family history", is_set=True),
    Concept("relationship", None, "Question", "Coded", "Relationship to patient"),
    Concept("mother", None, "Misc", "N/A", "Mother"),
    Concept("vital_signs", None, "LabSet", "N/A", "Vital signs", is_set=True),
    Concept("vitals", None, "ConvSet", "N/A", "Vitals", is_set=True),
    Concept("cipro_mic", None, "Test", "Numeric", "Ciprofloxacin MIC", units="ug/mL"),
)


def load(builder: OpenMRSBuilder) -> dict[str, int]:
    """Insert every concept (and the classes a RefApp site has beyond core's); ids by key."""
    conn = builder.conn
    with conn.cursor() as cursor:
        for concept_class in ("Frequency", "Pharmacologic Drug Class"):
            cursor.execute("SELECT COUNT(*) FROM concept_class WHERE name = %s", (concept_class,))
            row: Any = cursor.fetchone()
            if not row[0]:
                cursor.execute(
                    "INSERT INTO concept_class (name, description, creator, date_created, retired, uuid)"
                    " VALUES (%s, %s, 1, NOW(), 0, UUID())",
                    (concept_class, concept_class),
                )
    conn.commit()
    ids: dict[str, int] = {}
    for concept in CONCEPTS:
        concept_id = builder.concept(
            concept.name,
            datatype=concept.datatype,
            concept_class=concept.concept_class,
            units=concept.units,
            hi_normal=concept.hi_normal,
            low_normal=concept.low_normal,
            allow_decimal=concept.allow_decimal,
            names={},
            uuid=concept.uuid,
            is_set=concept.is_set,
        )
        rows: list[tuple[str, str, str | None, bool]] = []
        if concept.english:
            rows.append((concept.name, "en", "FULLY_SPECIFIED", concept.preferred is None))
            if concept.preferred:
                rows.append((concept.preferred, "en", None, True))
        if concept.short:
            rows.append((concept.short, "en", "SHORT", False))
        rows += [(text, locale, "FULLY_SPECIFIED", True) for locale, text in concept.names.items()]
        with conn.cursor() as cursor:
            for text, locale, name_type, preferred in rows:
                cursor.execute(
                    "INSERT INTO concept_name (concept_id, name, locale, locale_preferred, concept_name_type,"
                    " creator, date_created, voided, uuid) VALUES (%s, %s, %s, %s, %s, 1, NOW(), 0, UUID())",
                    (concept_id, text, locale, int(preferred), name_type),
                )
        conn.commit()
        ids[concept.key] = concept_id
    return ids
