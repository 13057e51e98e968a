"""SQL for the clinical sources OpenMRS keeps outside ``obs`` (Platform 2.2+).

Each source is read like observations: new rows by primary key after a checkpoint (with late-commit
gaps), and changed rows (updated in place, voided, stopped) by a change watermark. Every query
returns the same column aliases, so one adapter method and one mapping entry point serve all four:

``pk, uuid, person_id, encounter_id, encounter_uuid, provider_id, location_name, happened_at,
date_created, changed_at, voided, date_voided, void_reason, coded, coded_name_id, non_coded,
previous_pk, previous_uuid`` plus source-specific columns.

Columns that differ between versions (``rank``/``dx_rank``, ``comment``/``comments``, missing
``encounter_id`` or ``date_changed``) are chosen from what ``information_schema`` reported.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from passport_sync.source.queries import (
    Query,
    SchemaInfo,
    Selection,
    column_expression,
    encounter_details,
    first_provider_of,
    names_of_concepts,
    pk_after_or_within,
    provider_details,
    window_digest,
)


@dataclass(frozen=True, slots=True)
class ClinicalSource:
    """One table (or table pair) of clinical facts outside ``obs``."""

    name: str  # stable: checkpoint key, openmrsData.source, configuration key
    table: str
    alias: str
    pk: str
    label: str

    def available(self, schema: SchemaInfo) -> bool:
        if self.name == "drug_order":
            return schema.has("orders") and schema.has("drug_order")
        return schema.has(self.table)


DIAGNOSES = ClinicalSource("diagnosis", "encounter_diagnosis", "d", "diagnosis_id", "diagnoses")
CONDITIONS = ClinicalSource("condition", "conditions", "c", "condition_id", "conditions")
ALLERGIES = ClinicalSource("allergy", "allergy", "a", "allergy_id", "allergies")
# Read over all orders (LEFT JOIN drug_order) so that order ids stay dense: a lab order between
# two drug orders is skipped, not mistaken for a late-committing gap.
DRUG_ORDERS = ClinicalSource("drug_order", "orders", "o", "order_id", "drug orders")
CLINICAL_SOURCES = (DIAGNOSES, CONDITIONS, ALLERGIES, DRUG_ORDERS)


def _col(schema: SchemaInfo, alias: str, table: str, column: str, as_name: str) -> str:
    return f"{alias}.`{column}` AS {as_name}" if schema.has(table, column) else f"NULL AS {as_name}"


def _stop_reason(schema: SchemaInfo, column: str, as_name: str) -> str:
    """A column of the live DISCONTINUE order that stops ``o`` (why it was stopped), or NULL."""
    if not schema.has("orders", column):
        return f"NULL AS {as_name}"
    return (
        f"(SELECT nx.`{column}` FROM orders nx WHERE nx.previous_order_id = o.order_id AND nx.voided = 0"
        f" AND nx.order_action = 'DISCONTINUE' ORDER BY nx.order_id LIMIT 1) AS {as_name}"
    )


def _changed(schema: SchemaInfo, alias: str, table: str) -> str:
    """The latest moment the row changed after its creation (NULL if never)."""
    parts = [f"{alias}.date_voided"]
    if schema.has(table, "date_changed"):
        parts.append(f"{alias}.date_changed")
    if table == "orders":
        parts.append(f"{alias}.date_stopped")
    coalesced = [f"COALESCE({p}, '1000-01-01')" for p in parts]
    greatest = f"GREATEST({', '.join(coalesced)})" if len(coalesced) > 1 else coalesced[0]
    # COALESCE of a DATETIME with a string literal is a string to MariaDB; the CAST makes the
    # driver hand back a datetime, without which the change watermark could never move.
    return f"CAST(NULLIF({greatest}, '1000-01-01') AS DATETIME)"


def selection(source: ClinicalSource, schema: SchemaInfo) -> Selection:
    """The read of one clinical source with the common aliases (see ``queries.Selection``)."""
    if source is DIAGNOSES:
        rank = "dx_rank" if schema.has("encounter_diagnosis", "dx_rank") else "rank"
        columns: tuple[str, ...] = (
            "d.diagnosis_id AS pk", "d.uuid", "d.patient_id AS person_id", "d.encounter_id",
            "e.uuid AS encounter_uuid", f"{first_provider_of('d.encounter_id')} AS provider_id",
            "l.name AS location_name", "e.encounter_datetime AS happened_at", "d.date_created",
            f"{_changed(schema, 'd', 'encounter_diagnosis')} AS changed_at",
            "d.voided", "d.date_voided", "d.void_reason",
            "d.diagnosis_coded AS coded", "d.diagnosis_coded_name AS coded_name_id",
            "d.diagnosis_non_coded AS non_coded", "NULL AS previous_pk", "NULL AS previous_uuid",
            "d.certainty", f"d.`{rank}` AS diagnosis_rank",
        )  # fmt: skip
        joins = """FROM encounter_diagnosis d
  LEFT JOIN encounter e ON e.encounter_id = d.encounter_id
  LEFT JOIN location l ON l.location_id = e.location_id"""
        return Selection(columns, joins, _depends_on("d.encounter_id", "d.diagnosis_coded"))
    if source is CONDITIONS:
        encounter = "c.encounter_id" if schema.has("conditions", "encounter_id") else "NULL"
        columns = (
            "c.condition_id AS pk", "c.uuid", "c.patient_id AS person_id", f"{encounter} AS encounter_id",
            "e.uuid AS encounter_uuid", f"{first_provider_of(encounter)} AS provider_id",
            "l.name AS location_name", "COALESCE(c.onset_date, c.date_created) AS happened_at", "c.date_created",
            f"{_changed(schema, 'c', 'conditions')} AS changed_at", "c.voided", "c.date_voided", "c.void_reason",
            "c.condition_coded AS coded", "c.condition_coded_name AS coded_name_id",
            "c.condition_non_coded AS non_coded",
            "c.previous_version AS previous_pk", "pv.uuid AS previous_uuid",
            "c.clinical_status", "c.verification_status", "c.onset_date", "c.end_date", "c.additional_detail",
        )  # fmt: skip
        joins = f"""FROM conditions c
  LEFT JOIN encounter e ON e.encounter_id = {encounter}
  LEFT JOIN location l ON l.location_id = e.location_id
  LEFT JOIN conditions pv ON pv.condition_id = c.previous_version"""
        return Selection(columns, joins, _depends_on(encounter, "c.condition_coded"))
    if source is ALLERGIES:
        encounter = "a.encounter_id" if schema.has("allergy", "encounter_id") else "NULL"
        comments = "comments" if schema.has("allergy", "comments") else "comment"
        reactions: tuple[str, ...] = (
            (
                "(SELECT GROUP_CONCAT(ar.reaction_concept_id ORDER BY ar.allergy_reaction_id)"
                " FROM allergy_reaction ar WHERE ar.allergy_id = a.allergy_id) AS reaction_concept_ids",
                # One entry per reaction, empty when coded only, so the two lists stay aligned.
                "(SELECT GROUP_CONCAT(COALESCE(ar.reaction_non_coded, '') ORDER BY ar.allergy_reaction_id"
                " SEPARATOR '\x1f') FROM allergy_reaction ar WHERE ar.allergy_id = a.allergy_id)"
                " AS reactions_non_coded",
            )
            if schema.has("allergy_reaction")
            else ("NULL AS reaction_concept_ids", "NULL AS reactions_non_coded")
        )
        columns = (
            "a.allergy_id AS pk", "a.uuid", "a.patient_id AS person_id", f"{encounter} AS encounter_id",
            "e.uuid AS encounter_uuid", f"{first_provider_of(encounter)} AS provider_id",
            "l.name AS location_name", "a.date_created AS happened_at", "a.date_created",
            f"{_changed(schema, 'a', 'allergy')} AS changed_at", "a.voided", "a.date_voided", "a.void_reason",
            "a.coded_allergen AS coded", "NULL AS coded_name_id", "a.non_coded_allergen AS non_coded",
            "NULL AS previous_pk", "NULL AS previous_uuid",
            "a.allergen_type", "a.severity_concept_id", f"a.`{comments}` AS comments", *reactions,
        )  # fmt: skip
        joins = f"""FROM allergy a
  LEFT JOIN encounter e ON e.encounter_id = {encounter}
  LEFT JOIN location l ON l.location_id = e.location_id"""
        depends = list(_depends_on(encounter, "a.coded_allergen", "a.severity_concept_id"))
        if schema.has("allergy_reaction"):
            # The reactions' names, through the reactions' concepts.
            depends.append(
                "(SELECT GROUP_CONCAT(CONCAT_WS(':', n.concept_name_id, n.name, n.locale,"
                " IFNULL(n.concept_name_type, '~'), n.locale_preferred, n.voided) ORDER BY n.concept_name_id)"
                " FROM allergy_reaction ar JOIN concept_name n ON n.concept_id = ar.reaction_concept_id"
                " WHERE ar.allergy_id = a.allergy_id)"
            )
        return Selection(columns, joins, tuple(depends))
    frequency = (
        "(SELECT f.concept_id FROM order_frequency f WHERE f.order_frequency_id = dor.frequency)"
        if schema.has("order_frequency")
        else "NULL"
    )
    columns = (
        "o.order_id AS pk", "o.uuid", "o.patient_id AS person_id", "o.encounter_id", "e.uuid AS encounter_uuid",
        "o.orderer AS provider_id", "l.name AS location_name",
        "COALESCE(o.date_activated, o.date_created) AS happened_at", "o.date_created",
        f"{_changed(schema, 'o', 'orders')} AS changed_at", "o.voided", "o.date_voided", "o.void_reason",
        "o.concept_id AS coded", "NULL AS coded_name_id", "dor.drug_non_coded AS non_coded",
        "o.previous_order_id AS previous_pk", "po.uuid AS previous_uuid",
        "o.order_action", "o.date_activated", "o.date_stopped", "o.auto_expire_date", "o.instructions",
        "(SELECT nx.uuid FROM orders nx WHERE nx.previous_order_id = o.order_id AND nx.voided = 0"
        " AND nx.order_action IN ('REVISE', 'RENEW') ORDER BY nx.order_id LIMIT 1) AS replaced_by_uuid",
        "(SELECT COALESCE(nx.date_activated, nx.date_created) FROM orders nx"
        " WHERE nx.previous_order_id = o.order_id AND nx.voided = 0 AND nx.order_action = 'DISCONTINUE'"
        " ORDER BY nx.order_id LIMIT 1) AS discontinued_at",
        _stop_reason(schema, "order_reason", "stop_reason"),
        _stop_reason(schema, "order_reason_non_coded", "stop_reason_non_coded"),
        "d.name AS drug_name", "dor.dose", "dor.dose_units", f"{frequency} AS frequency_concept", "dor.route",
        "dor.duration", "dor.duration_units", "dor.quantity", "dor.quantity_units", "dor.as_needed",
        _col(schema, "dor", "drug_order", "as_needed_condition", "as_needed_condition"),
        _col(schema, "dor", "drug_order", "dosing_type", "dosing_type"),
        "dor.dosing_instructions", "dor.order_id AS drug_order_id",
        _col(schema, "o", "orders", "order_reason", "order_reason"),
        _col(schema, "o", "orders", "order_reason_non_coded", "order_reason_non_coded"),
    )  # fmt: skip
    joins = """FROM orders o
  LEFT JOIN drug_order dor ON dor.order_id = o.order_id
  LEFT JOIN drug d ON d.drug_id = dor.drug_inventory_id
  LEFT JOIN orders po ON po.order_id = o.previous_order_id
  LEFT JOIN encounter e ON e.encounter_id = o.encounter_id
  LEFT JOIN location l ON l.location_id = e.location_id"""
    named = ["o.concept_id", "dor.dose_units", "dor.route", "dor.duration_units", "dor.quantity_units", frequency]
    if schema.has("orders", "order_reason"):
        # The order's reason, and the reason of the DISCONTINUE order that stopped it.
        named += ["o.order_reason", column_expression(_stop_reason(schema, "order_reason", "stop_reason"))]
    return Selection(columns, joins, (*_depends_on("o.encounter_id", *named), provider_details("o.orderer")))


def _depends_on(encounter: str, *concepts: str) -> tuple[str, ...]:
    """What a clinical record shows beyond its own columns: its concepts' names, and its
    encounter with the encounter's first provider."""
    depends = [names_of_concepts(*concepts)]
    if encounter != "NULL":
        depends += [provider_details(first_provider_of(encounter)), *encounter_details(encounter)]
    return tuple(depends)


def select(source: ClinicalSource, schema: SchemaInfo) -> str:
    """The SELECT of one clinical source with the common aliases."""
    return selection(source, schema).sql()


def _page(
    source: ClinicalSource, schema: SchemaInfo, where: str, params: Sequence[Any], after: int, limit: int
) -> Query:
    pk = f"{source.alias}.{source.pk}"
    return (
        f"{select(source, schema)}\n WHERE ({where}) AND {pk} > %s\n ORDER BY {pk}\n LIMIT %s",
        (*params, after, limit),
    )


def after_pk(source: ClinicalSource, schema: SchemaInfo, after: int, limit: int) -> Query:
    return _page(source, schema, "1 = 1", (), after, limit)


def in_ranges(
    source: ClinicalSource, schema: SchemaInfo, ranges: Sequence[tuple[int, int]], after: int, limit: int
) -> Query:
    pk = f"{source.alias}.{source.pk}"
    where = " OR ".join([f"{pk} BETWEEN %s AND %s"] * len(ranges))
    return _page(source, schema, where, [v for r in ranges for v in r], after, limit)


def by_pks(source: ClinicalSource, schema: SchemaInfo, pks: Collection[int]) -> Query:
    pk = f"{source.alias}.{source.pk}"
    ids = sorted(pks)
    return _page(source, schema, f"{pk} IN ({', '.join(['%s'] * len(ids))})", ids, 0, len(ids))


def of_persons(
    source: ClinicalSource, schema: SchemaInfo, person_ids: Collection[int], after: int, limit: int
) -> Query:
    ids = sorted(person_ids)
    where = f"{source.alias}.patient_id IN ({', '.join(['%s'] * len(ids))})"
    return _page(source, schema, where, ids, after, limit)


# Every change time is after this: a window from here holds every row that ever changed.
NO_DATE = datetime(1000, 1, 1)


def _base_table(source: ClinicalSource) -> str:
    """The table holding the source's keys and change times (drug orders: ``orders``)."""
    return "orders" if source is DRUG_ORDERS else source.table


def _change_columns(source: ClinicalSource, schema: SchemaInfo) -> list[str]:
    table = _base_table(source)
    columns = ["date_voided"]
    if schema.has(table, "date_changed"):
        columns.append("date_changed")
    if source is DRUG_ORDERS:
        columns.append("date_stopped")
    return [f"{source.alias}.{c}" for c in columns]


def _changed_window(source: ClinicalSource, schema: SchemaInfo, since: datetime | None) -> tuple[str, list[Any]]:
    """The WHERE of the change read (rows updated, voided or stopped at or after ``since``),
    shared by the read and its digest so that the two cannot disagree on which rows are in it."""
    columns = _change_columns(source, schema)
    where = " OR ".join(f"{c} >= %s" for c in columns)
    return where, [since or NO_DATE] * len(columns)


def changed_since(source: ClinicalSource, schema: SchemaInfo, since: datetime | None, after: int, limit: int) -> Query:
    """Rows updated, voided or stopped at or after ``since`` (paged by primary key)."""
    where, params = _changed_window(source, schema, since)
    return _page(source, schema, where, params, after, limit)


def changed_digest(source: ClinicalSource, schema: SchemaInfo, since: datetime | None) -> Query:
    """The digest of the rows ``changed_since(since, ...)`` pages through: key, void flag and
    every change time. The read's joins are all to one row (or none), so the table alone has
    the same rows."""
    table = _base_table(source)
    where, params = _changed_window(source, schema, since)
    columns = [f"{source.alias}.{source.pk}", f"{source.alias}.voided", *_change_columns(source, schema)]
    return window_digest(f"{table} {source.alias}", columns, f"({where})", params)


def max_changed(source: ClinicalSource, schema: SchemaInfo) -> Query:
    alias = source.alias
    table = _base_table(source)
    join = " JOIN drug_order dor ON dor.order_id = o.order_id" if source is DRUG_ORDERS else ""
    return (f"SELECT MAX({_changed(schema, alias, table)}) AS m FROM {table} {alias}{join}", ())


def count_after(source: ClinicalSource, after: int, gaps: Sequence[tuple[int, int]] = ()) -> Query:
    """The rows that wait: after the checkpoint or inside one of its late-commit gaps (rows, not ids)."""
    table = "orders o JOIN drug_order dor ON dor.order_id = o.order_id" if source is DRUG_ORDERS else source.table
    pk = f"o.{source.pk}" if source is DRUG_ORDERS else source.pk
    where = pk_after_or_within(pk, gaps)
    return (f"SELECT COUNT(*) AS n FROM {table} WHERE {where}", (after, *(b for gap in gaps for b in gap)))


def last_pk_before(source: ClinicalSource, moment: datetime) -> Query:
    table = _base_table(source)
    return (f"SELECT MAX({source.pk}) AS m FROM {table} WHERE date_created < %s", (moment,))
