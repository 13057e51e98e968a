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


class EncountersInFlight:
    """The records a hospital's first run has written, by encounter, until the encounter's visit
    record is built from them instead of from the records read back.

    On a first run (nothing was synced before it) an encounter's records in MongoDB are exactly
    the ones this run wrote, so the batches that wrote them hold everything the rebuild would read.
    An encounter is *settled* once a batch comes that does not touch it (an encounter's rows are
    read in primary-key order, so its rows are together); settled encounters are built
    ``build_at`` at a time (one statement for their encounter rows). An encounter a batch touches
    again after it was built or dropped is left to the rebuild path, which reads it back.
    """

    def __init__(self, build_at: int) -> None:
        self.build_at = build_at
        self._members: dict[str, dict[Any, dict[str, Any]]] = {}
        # Encounters no longer built from batches in this run (built, or left to the rebuild path).
        self._closed: set[str] = set()

    def add(self, batch: BatchWrite) -> list[str]:
        """Take in a planned batch of new rows; returns the settled encounters to build now
        (none until there are ``build_at`` of them)."""
        touched: dict[str, list[dict[str, Any]]] = {}
        for doc in [*batch.records, *batch.upserts]:
            uuid = doc["openmrsData"].get("encounterUuid")
            if uuid:
                touched.setdefault(str(uuid), []).append(doc)
        for uuid, docs in touched.items():
            if uuid not in self._closed:
                # A record written twice (a group's record, rewritten as its members come): the
                # later version is the one MongoDB holds.
                self._members.setdefault(uuid, {}).update((d["_id"], d) for d in docs)
        settled = [uuid for uuid in self._members if uuid not in touched]
        return settled if len(settled) >= self.build_at else []

    def take(self, uuids: Sequence[str]) -> list[dict[str, Any]]:
        """The records of these encounters, which are not built from batches again in this run."""
        records: list[dict[str, Any]] = []
        for uuid in uuids:
            records += self._members.pop(uuid, {}).values()
            self._closed.add(uuid)
        return records

    def pending(self) -> list[str]:
        return list(self._members)

    def drop(self) -> None:
        """Leave every encounter not built yet to the rebuild path (it stays due)."""
        self._closed.update(self._members)
        self._members.clear()
