"""Diagnoses, conditions, allergies and drug orders: what a batch of clinical rows becomes.

Each row is one record. Orders have lives of their own: a DISCONTINUE order ends the record of the
order it stops, and a REVISE or RENEW order's record replaces the one of the order it revises.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from passport_sync.mapping.clinical import ClinicalContext, ClinicalRow, build_clinical_record, discontinuation_patch
from passport_sync.mapping.transform import record_id
from passport_sync.mapping.visits import OWN_ROW_VOIDED, needs_own_row, own_row, own_row_id
from passport_sync.planning import Plan, PlanContext


def concepts_of(rows: Iterable[ClinicalRow]) -> set[int]:
    """The concepts whose names the records of ``rows`` show."""
    return {c for r in rows if not r.voided for c in r.concept_ids() if c is not None}


def plan(rows: Sequence[ClinicalRow], ctx: PlanContext) -> Plan:
    result = Plan()
    hid = ctx.hospital_id
    for row in rows:
        if row.is_other_order:
            result.skipped += 1
            continue
        if row.voided:
            result.retire(ctx, row.source, row, row.pk)
            if _may_have_own_row(row):
                result.remove(ctx, own_row_id(hid, row.source, row.uuid), OWN_ROW_VOIDED, row.pk)
            continue
        if row.replaced_by:
            # Revised or renewed: the newer order carries the record (re-read as a change).
            removed = {"reason": "replaced", "replacedBy": row.replaced_by}
            result.remove(ctx, record_id(hid, row.source, row.uuid), removed, row.pk)
            # Parked while its patient was unknown: a fresh sync would not park it now either.
            result.release(ctx, row.source, row.uuid, row.person_id, row.pk)
            continue
        if row.is_discontinuation:
            if row.previous_uuid:
                patch = discontinuation_patch(row, ctx.tz, ctx.facts.answer_name)
                result.batch.patches.append((record_id(hid, row.source, row.previous_uuid), patch))
            result.skipped += 1
            continue
        if row.previous_uuid:
            result.replace(ctx, row.source, row, row.previous_uuid, row.previous_pk)
            if _may_have_own_row(row):
                why = {"reason": "replaced", "ownRow": True}
                result.remove(ctx, own_row_id(hid, row.source, row.previous_uuid), why, row.previous_pk)
        match = ctx.match(row.person_id)
        if match.patient_id is None:
            result.park_unmatched(ctx, row.source, row.uuid, row.pk, row.person_id)
            continue
        context = ClinicalContext(**ctx.who_and_when(match.patient_id, row.provider_id), name_of=ctx.facts.answer_name)
        doc = build_clinical_record(row, context)
        if doc is None:
            result.skipped += 1
            continue
        result.batch.upserts.append(doc)
        if needs_own_row(doc):
            result.batch.upserts.append(own_row(doc))
        result.release(ctx, row.source, row.uuid, row.person_id, row.pk)
        result.landed += 1
    return result


def _may_have_own_row(row: ClinicalRow) -> bool:
    """Conditions and allergies recorded outside an encounter have a visit record of their own."""
    return row.source in ("condition", "allergy") and not row.encounter_uuid
