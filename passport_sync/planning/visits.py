"""Encounters: the visit record and the medication lists derived from an encounter's records,
rebuilt whenever one of those records changed (``mapping.visits`` renders them)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from passport_sync.mapping.visits import DERIVED_SOURCES, VisitContext, derived_ids, plan_encounter
from passport_sync.models import EncounterRow
from passport_sync.planning import PlanContext
from passport_sync.writes import BatchWrite


def plan(
    uuids: Sequence[str],
    encounters: Mapping[str, EncounterRow],
    records: Sequence[dict[str, Any]],
    ctx: PlanContext,
) -> BatchWrite:
    """The writes that make each encounter's derived records match its synced records now; an
    encounter gone from OpenMRS (or left without records) takes its derived records with it."""
    by_encounter: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_encounter.setdefault(str(record["openmrsData"]["encounterUuid"]), []).append(record)
    batch = BatchWrite(existing={})
    for uuid in uuids:
        members = by_encounter.get(uuid, [])
        existing = {m["_id"]: m for m in members if m["openmrsData"].get("source") in DERIVED_SOURCES}
        batch.existing = {**(batch.existing or {}), **existing}
        encounter = encounters.get(uuid)
        created_by, doctor_name, provider_uuid = ctx.facts.doctor(encounter.provider_id if encounter else None)
        context = VisitContext(
            ctx.hospital_id, ctx.hospital_name, created_by, doctor_name, provider_uuid, ctx.now, ctx.tz
        )
        prescription = existing.get(derived_ids(ctx.hospital_id, uuid)[1])
        planned = plan_encounter(encounter, members, context, prescription)
        if encounter is None:
            planned.removals = list(existing)
        # A derived record not there yet is inserted (cheaper than an upsert); one there is upserted.
        batch.records += [doc for doc in planned.upserts if doc["_id"] not in existing]
        batch.upserts += [doc for doc in planned.upserts if doc["_id"] in existing]
        batch.patches += planned.patches
        batch.removals += [
            (rid, {"reason": "encounter without synced records"}) for rid in planned.removals if rid in existing
        ]
    return batch
