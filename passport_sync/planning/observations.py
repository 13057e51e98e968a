"""Observations: what a batch of ``obs`` rows becomes.

A row is one record, except in a group whose members only mean something together (a diagnosis,
a drug given with its dose): the group is one record, rebuilt from its live members whenever one
of them changes. Groups of numbers only (a vitals set), and the classes and concepts
``sync.groups`` names, stay one record per member.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from passport_sync.mapping.categorise import categorise
from passport_sync.mapping.clinical import ClinicalContext, diagnosis_group_record
from passport_sync.mapping.transform import (
    NUMERIC_DATATYPES,
    GroupMember,
    RecordContext,
    build_group_record,
    build_record,
    record_id,
)
from passport_sync.mapping.visits import OWN_ROW_VOIDED, needs_own_row, own_row, own_row_id
from passport_sync.models import ObsRow
from passport_sync.parking import INVALID_DATA, MISSING_CONCEPT, NO_NATIONAL_ID
from passport_sync.planning import Plan, PlanContext

SOURCE = "obs"

# A group this batch touches that becomes one record: obs_group_id -> (group uuid, is a legacy
# diagnosis group).
Groups = dict[int, tuple[str, bool]]


def concepts_of(rows: Iterable[ObsRow]) -> set[int]:
    """The concepts whose names the records of ``rows`` (or their groups) show."""
    ids = {c for r in rows for c in (r.concept_id, r.value_coded, r.group_concept_id)}
    return {c for c in ids if c is not None}


def groups_touched(rows: Sequence[ObsRow], ctx: PlanContext) -> Groups:
    """The groups of ``rows`` that may be one record; their live members decide (``plan``)."""
    diagnosis = ctx.options.legacy_diagnosis_concepts
    set_uuid = diagnosis.set.lower() if diagnosis.enabled else None
    groups: Groups = {}
    for row in rows:
        if row.obs_group_id and row.group_uuid:
            group_id, uuid, concept_id = row.obs_group_id, row.group_uuid, row.group_concept_id
            concept_uuid, concept_class = row.group_concept_uuid, row.group_concept_class
        elif not row.voided and not row.has_value():
            group_id, uuid, concept_id = row.obs_id, row.uuid, row.concept_id
            concept_uuid, concept_class = row.concept_uuid, row.concept_class
        else:
            continue
        is_diagnosis = set_uuid is not None and (concept_uuid or "").lower() == set_uuid
        name = ctx.facts.concept_name(concept_id)
        if is_diagnosis or not ctx.options.groups.separate(concept_class, concept_uuid, name):
            groups[group_id] = (uuid, is_diagnosis)
    return groups


def plan(rows: Sequence[ObsRow], groups: Groups, members: Sequence[ObsRow], ctx: PlanContext) -> Plan:
    """The batch for ``rows``; ``groups`` from ``groups_touched`` and their live ``members``."""
    result = Plan()
    by_group = _units(result, dict(groups), members, ctx)
    for row in rows:
        if row.obs_group_id in by_group.groups:
            continue  # a member of a group that is one record: the group is rebuilt below
        if row.voided:
            result.retire(ctx, SOURCE, row, row.obs_id)
            if not row.encounter_uuid:
                result.remove(ctx, own_row_id(ctx.hospital_id, SOURCE, row.uuid), OWN_ROW_VOIDED, row.obs_id)
            continue
        if row.previous_version_uuid and row.previous_version_voided is not False:
            # An edit: the new row replaces the old one, which OpenMRS voided in the same
            # transaction. An old version unvoided since is live again: OpenMRS shows it beside
            # the new one, and so does its record (its own row decides it, on every path).
            result.replace(ctx, SOURCE, row, row.previous_version_uuid, row.previous_version)
        _plan_row(result, row, ctx)
    _plan_groups(result, by_group, ctx)
    return result


class _Units:
    """The groups that are one record in this batch, and their live members."""

    def __init__(self, groups: Groups, members: dict[int, list[ObsRow]]) -> None:
        self.groups = groups
        self.members = members


def _units(result: Plan, groups: Groups, members: Sequence[ObsRow], ctx: PlanContext) -> _Units:
    by_group: dict[int, list[ObsRow]] = {}
    for member in members:
        by_group.setdefault(member.obs_group_id or 0, []).append(member)
    for group_id, (uuid, is_diagnosis) in list(groups.items()):
        if is_diagnosis:
            continue
        valued = [m for m in by_group.get(group_id, []) if m.has_value()]
        if not valued:
            # Nothing left: each member's own row retires its record, and the group's goes.
            result.remove(ctx, record_id(ctx.hospital_id, SOURCE, uuid), {"reason": "voided"}, group_id)
            result.remove(ctx, own_row_id(ctx.hospital_id, SOURCE, uuid), OWN_ROW_VOIDED, group_id)
            del groups[group_id]
        elif all(m.value_numeric is not None and m.concept_datatype in NUMERIC_DATATYPES for m in valued):
            del groups[group_id]
            by_group.pop(group_id)
    return _Units(groups, {g: by_group[g] for g in groups if g in by_group})


def _plan_row(result: Plan, row: ObsRow, ctx: PlanContext) -> None:
    def park(reason: str, detail: str = "") -> None:
        result.park(ctx, SOURCE, row.uuid, row.obs_id, row.person_id, reason, detail)

    if row.problem:
        park(INVALID_DATA, row.problem)
        return
    if not row.has_value():
        result.skipped += 1  # a group parent: its members carry the values
        return
    if row.concept_uuid is None:
        park(MISSING_CONCEPT, f"refers to concept {row.concept_id}, which does not exist")
        return
    if not row.person_exists:
        park(NO_NATIONAL_ID, f"refers to person {row.person_id}, which does not exist")
        return
    match = ctx.match(row.person_id)
    if match.patient_id is None:
        park(match.park_reason or NO_NATIONAL_ID)
        return
    doc = build_record(row, record_context(row, match.patient_id, ctx))
    if doc is None:
        result.skipped += 1
        return
    (result.batch.upserts if ctx.reconciling else result.batch.records).append(doc)
    if needs_own_row(doc):
        # A diagnosis observed outside any encounter: a row of its own, rewritten with it.
        result.batch.upserts.append(own_row(doc))
    result.release(ctx, SOURCE, row.uuid, row.person_id, row.obs_id)
    result.landed += 1


def _plan_groups(result: Plan, units: _Units, ctx: PlanContext) -> None:
    """Rebuild each touched group record from its live members (none left: remove it)."""
    for group_id, (group_uuid, is_diagnosis) in units.groups.items():
        live = units.members.get(group_id)
        if not live:
            result.remove(ctx, record_id(ctx.hospital_id, SOURCE, group_uuid), {"reason": "voided"}, group_id)
            result.remove(ctx, own_row_id(ctx.hospital_id, SOURCE, group_uuid), OWN_ROW_VOIDED, group_id)
            continue
        first = live[0]
        match = ctx.match(first.person_id)
        if match.patient_id is None:
            result.park_unmatched(ctx, SOURCE, group_uuid, group_id, first.person_id)
            continue
        if is_diagnosis:
            clinical = ClinicalContext(
                **ctx.who_and_when(match.patient_id, first.provider_id), name_of=ctx.facts.answer_name
            )
            doc = diagnosis_group_record(group_uuid, live, clinical, ctx.options.legacy_diagnosis_concepts)
        else:
            names = ctx.facts
            parts = [
                GroupMember(
                    m, names.concept_name(m.concept_id), names.answer_name(m.value_coded, m.value_coded_name_id)
                )
                for m in live
                if not m.problem and m.has_value()
            ]
            group_ctx = record_context(first, match.patient_id, ctx, group=True)
            doc = build_group_record(group_uuid, group_ctx.concept_name, parts, group_ctx)
            # Written one per member by an older rendering: those records give way to this one.
            for m in live:
                why = {"reason": "replaced", "replacedBy": group_uuid}
                result.remove(ctx, record_id(ctx.hospital_id, SOURCE, m.uuid), why, m.obs_id)
        if doc is None:
            result.skipped += 1
            continue
        result.batch.upserts.append(doc)
        if needs_own_row(doc):
            result.batch.upserts.append(own_row(doc))
        result.release(ctx, SOURCE, group_uuid, first.person_id, group_id)


def record_context(row: ObsRow, patient_id: str, ctx: PlanContext, *, group: bool = False) -> RecordContext:
    """The facts a record of ``row`` needs; ``group``: the record of the group ``row`` belongs to."""
    overrides = ctx.options.categories
    names = ctx.facts
    if group:
        concept_id, concept_uuid, concept_class = row.group_concept_id, row.group_concept_uuid, row.group_concept_class
        datatype: str | None = "N/A"
    else:
        concept_id, concept_uuid, concept_class = row.concept_id, row.concept_uuid, row.concept_class
        datatype = row.concept_datatype
    concept_name = names.concept_name(concept_id)
    return RecordContext(
        **ctx.who_and_when(patient_id, row.provider_id),
        concept_name=concept_name,
        answer_name=None if group else names.answer_name(row.value_coded, row.value_coded_name_id),
        group_concept_name=names.concept_name(row.group_concept_id) if row.group_concept_id and not group else None,
        category=categorise(
            concept_name=concept_name,
            concept_uuid=concept_uuid or "",
            concept_class=concept_class or "",
            datatype=datatype or "",
            answer_class=None if group else row.value_coded_class,
            concept_overrides=overrides.concepts,
            class_overrides=overrides.classes,
            keywords=overrides.keywords,
            not_own_diagnoses=overrides.not_own_diagnoses,
        ),
        true_concept_id=ctx.booleans[0],
        false_concept_id=ctx.booleans[1],
    )
