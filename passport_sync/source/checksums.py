"""Range checksums for reconciliation, computed in MySQL (as pt-table-checksum does).

Each source's primary-key space is cut into fixed ranges of ``range_size`` ids (range ``i`` holds
ids ``i * size + 1`` to ``(i + 1) * size``). One statement returns, per range, the row count and
two aggregates (sum and XOR) of a CRC32 over the columns that decide the Passport record (owner,
voided, value columns, versions, stop and expiry). Only the few result rows travel; the rows
themselves stay in MySQL. Inside a range whose checksum differs from the last pass, the per-row
checksums (key and number) tell which rows changed; only those are re-read.

Persons are checksummed the same way over their national-ID identifiers (value, voided, and the
patient's own void), so a corrected or copied identifier shows as one differing person.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from passport_sync.source.clinical import ALLERGIES, CONDITIONS, DIAGNOSES, DRUG_ORDERS, ClinicalSource
from passport_sync.source.queries import Query, SchemaInfo

IDENTITIES = "identity"


def _digest(columns: Sequence[str]) -> str:
    # IFNULL keeps columns apart: CONCAT_WS alone skips NULLs, so (NULL, 'a') and ('a', NULL) would agree.
    return "CRC32(CONCAT_WS('#', " + ", ".join(f"IFNULL({c}, '~')" for c in columns) + "))"


def _optional(schema: SchemaInfo, alias: str, table: str, column: str) -> list[str]:
    return [f"{alias}.`{column}`"] if schema.has(table, column) else []


def _feed_table(feed: str, schema: SchemaInfo, now: datetime) -> tuple[str, str, list[str], list[Any]]:
    """(FROM clause, primary key, the deciding columns, their parameters) of one source."""
    if feed == "obs":
        columns = [
            "o.uuid", "o.person_id", "o.voided", "o.concept_id", "o.value_coded", "o.value_coded_name_id",
            "o.value_drug", "o.value_numeric", "o.value_modifier", "o.value_text", "o.value_datetime",
            "o.value_complex", "o.obs_datetime", "o.date_created", "o.comments", "o.obs_group_id",
            "o.previous_version", "o.encounter_id", "o.location_id",
        ]  # fmt: skip
        columns += _optional(schema, "o", "obs", "status") + _optional(schema, "o", "obs", "interpretation")
        return "obs o", "o.obs_id", columns, []
    source = _clinical(feed)
    if source is DIAGNOSES:
        rank = "dx_rank" if schema.has("encounter_diagnosis", "dx_rank") else "rank"
        columns = [
            "d.uuid", "d.patient_id", "d.voided", "d.diagnosis_coded", "d.diagnosis_coded_name",
            "d.diagnosis_non_coded", "d.certainty", f"d.`{rank}`", "d.encounter_id",
        ]  # fmt: skip
        return "encounter_diagnosis d", "d.diagnosis_id", columns, []
    if source is CONDITIONS:
        columns = [
            "c.uuid", "c.patient_id", "c.voided", "c.condition_coded", "c.condition_coded_name",
            "c.condition_non_coded", "c.clinical_status", "c.verification_status", "c.onset_date",
            "c.end_date", "c.additional_detail", "c.previous_version",
        ]  # fmt: skip
        columns += _optional(schema, "c", "conditions", "encounter_id")
        return "conditions c", "c.condition_id", columns, []
    if source is ALLERGIES:
        comments = "comments" if schema.has("allergy", "comments") else "comment"
        columns = [
            "a.uuid", "a.patient_id", "a.voided", "a.coded_allergen", "a.non_coded_allergen", "a.allergen_type",
            "a.severity_concept_id", f"a.`{comments}`",
        ]  # fmt: skip
        columns += _optional(schema, "a", "allergy", "encounter_id")
        if schema.has("allergy_reaction"):
            columns.append(
                "(SELECT GROUP_CONCAT(CONCAT_WS(':', ar.reaction_concept_id, ar.reaction_non_coded)"
                " ORDER BY ar.allergy_reaction_id) FROM allergy_reaction ar WHERE ar.allergy_id = a.allergy_id)"
            )
        return "allergy a", "a.allergy_id", columns, []
    assert source is DRUG_ORDERS
    columns = [
        "o.uuid", "o.patient_id", "o.voided", "o.order_action", "o.previous_order_id", "o.concept_id",
        "o.orderer", "o.encounter_id", "o.date_activated", "o.date_stopped", "o.auto_expire_date",
        # Expiry writes nothing: whether it has passed is part of what the record shows.
        "o.auto_expire_date <= %s", "o.instructions",
        "dor.order_id", "dor.drug_inventory_id", "dor.drug_non_coded", "dor.dose", "dor.dose_units",
        "dor.frequency", "dor.route", "dor.duration", "dor.duration_units", "dor.as_needed",
        "dor.dosing_instructions", "dor.quantity", "dor.quantity_units",
    ]  # fmt: skip
    # Shown in the dosing text, as OpenMRS reads it.
    columns += _optional(schema, "dor", "drug_order", "as_needed_condition")
    columns += _optional(schema, "dor", "drug_order", "dosing_type")
    return "orders o LEFT JOIN drug_order dor ON dor.order_id = o.order_id", "o.order_id", columns, [now]


def _clinical(feed: str) -> ClinicalSource:
    for source in (DIAGNOSES, CONDITIONS, ALLERGIES, DRUG_ORDERS):
        if source.name == feed:
            return source
    raise ValueError(f"unknown source {feed!r}")


def range_checksums(feed: str, schema: SchemaInfo, range_size: int, first: int, last: int, now: datetime) -> Query:
    """Per range ``first..last`` of one source: ``r`` (range index), ``n`` and ``crc``.

    ``now`` is the hospital's wall-clock time (naive, as OpenMRS stores it) for order expiry.
    """
    table, pk, columns, params = _feed_table(feed, schema, now)
    digest = _digest(columns)
    low, high = first * range_size + 1, (last + 1) * range_size
    return (
        f"SELECT ({pk} - 1) DIV %s AS r, COUNT(*) AS n,"
        f" CONCAT(SUM({digest}), ':', BIT_XOR({digest})) AS crc"
        f" FROM {table} WHERE {pk} BETWEEN %s AND %s GROUP BY r",
        (range_size, *params, *params, low, high),
    )


def row_checksums(feed: str, schema: SchemaInfo, bounds: Sequence[tuple[int, int]], now: datetime) -> Query:
    """``k`` (primary key) and ``c`` (the row's checksum) of every row within ``bounds``: inside a
    differing range, which rows changed (small rows: the key and one number each)."""
    table, pk, columns, params = _feed_table(feed, schema, now)
    where = " OR ".join([f"{pk} BETWEEN %s AND %s"] * len(bounds))
    return (
        f"SELECT {pk} AS k, {_digest(columns)} AS c FROM {table} WHERE {where} ORDER BY {pk}",
        (*params, *(v for b in bounds for v in b)),
    )


def max_pk(feed: str) -> Query:
    """The highest primary key of a source (of ``patient`` for identities): where ranges end."""
    if feed == IDENTITIES:
        table, pk = "patient", "patient_id"
    elif feed == "obs":
        table, pk = "obs", "obs_id"
    else:
        table, pk = _clinical(feed).table, _clinical(feed).pk
    return (f"SELECT MAX({pk}) AS m FROM {table}", ())


def _identity_rows(type_ids: Collection[int]) -> tuple[str, str, tuple[Any, ...]]:
    placeholders = ", ".join(["%s"] * len(type_ids))
    digest = _digest(["pi.identifier", "pi.identifier_type", "pi.voided", "pa.voided"])
    return (
        f"FROM patient_identifier pi JOIN patient pa ON pa.patient_id = pi.patient_id"
        f" WHERE pi.identifier_type IN ({placeholders})",
        digest,
        tuple(sorted(type_ids)),
    )


def identity_checksums(type_ids: Collection[int], range_size: int, first: int, last: int) -> Query:
    """Per range of patient ids: ``r``, ``n`` and ``crc`` over their national-ID identifiers."""
    source, digest, params = _identity_rows(type_ids)
    low, high = first * range_size + 1, (last + 1) * range_size
    return (
        f"SELECT (pi.patient_id - 1) DIV %s AS r, COUNT(*) AS n,"
        f" CONCAT(SUM({digest}), ':', BIT_XOR({digest})) AS crc"
        f" {source} AND pi.patient_id BETWEEN %s AND %s GROUP BY r",
        (range_size, *params, low, high),
    )


def person_checksums(type_ids: Collection[int], low: int, high: int) -> Query:
    """Per patient with ids ``low..high``: ``p`` and ``crc`` over their national-ID identifiers."""
    source, digest, params = _identity_rows(type_ids)
    return (
        f"SELECT pi.patient_id AS p, CONCAT(SUM({digest}), ':', BIT_XOR({digest})) AS crc"
        f" {source} AND pi.patient_id BETWEEN %s AND %s GROUP BY pi.patient_id",
        (*params, low, high),
    )
