"""The planners decide what a batch of OpenMRS rows becomes, from facts handed in: no database."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

from passport_sync.config import SyncOptions
from passport_sync.mapping.clinical import ClinicalRow
from passport_sync.mapping.transform import record_id
from passport_sync.mapping.visits import own_row_id
from passport_sync.matching import PersonMatch
from passport_sync.models import ConceptName, ObsRow, Provider
from passport_sync.parking import INVALID_DATA, MISSING_CONCEPT, NO_NATIONAL_ID, NOT_IN_PASSPORT, park_key
from passport_sync.planning import PlanContext, RunFacts, clinical, observations

H = "central"
WHEN = datetime(2026, 3, 1, 9, 30)
PATIENT = "65f000000000000000000001"


def _facts() -> RunFacts:
    facts = RunFacts("fallback-user", "Central Hospital (OpenMRS)")
    facts.concept_names = {
        5089: [ConceptName(1, "Weight (kg)", "en", "FULLY_SPECIFIED", True)],
        1284: [ConceptName(2, "Problem list", "en", "FULLY_SPECIFIED", True)],
        160: [ConceptName(3, "Malaria", "en", "FULLY_SPECIFIED", True)],
        1000: [ConceptName(4, "Family history", "en", "FULLY_SPECIFIED", True)],
    }
    facts.providers = {9: Provider(9, "prov-9", "Dr Amina")}
    facts.doctor_users = {"prov-9": "user-of-amina"}
    return facts


def _ctx(matches: dict[int, PersonMatch], *, parked: frozenset[int] = frozenset(), **kw: Any) -> PlanContext:
    return PlanContext(
        hospital_id=H,
        hospital_name="Central Hospital",
        tz=UTC,
        now=datetime(2026, 3, 2, tzinfo=UTC),
        options=SyncOptions(),
        facts=_facts(),
        matches=matches,
        parked_persons=parked,
        **kw,
    )


def _weight(obs_id: int, person: int = 1, **kw: Any) -> ObsRow:
    values: dict[str, Any] = {
        "obs_id": obs_id,
        "uuid": f"obs-{obs_id}",
        "person_id": person,
        "concept_id": 5089,
        "concept_uuid": "5089AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "concept_datatype": "Numeric",
        "concept_class": "Finding",
        "obs_datetime": WHEN,
        "date_created": WHEN,
        "value_numeric": 70.0,
        "provider_id": 9,
        "units": "kg",
    }
    values.update(kw)
    return ObsRow(**values)


def test_a_matched_observation_becomes_a_record_and_releases_its_parked_copy() -> None:
    ctx = _ctx({1: PersonMatch(patient_id=PATIENT)}, parked=frozenset({1}))
    plan = observations.plan([_weight(10)], {}, [], ctx)
    [doc] = plan.batch.records
    assert doc["_id"] == record_id(H, "obs", "obs-10")
    assert doc["patientId"] == PATIENT and doc["createdBy"] == "user-of-amina"
    assert plan.batch.unparks == [park_key(H, "obs", "obs-10")]
    assert (plan.landed, plan.skipped, plan.batch.parks) == (1, 0, [])


def test_reconciling_rewrites_records_field_by_field_instead_of_inserting() -> None:
    ctx = _ctx({1: PersonMatch(patient_id=PATIENT)}, reconciling=True)
    plan = observations.plan([_weight(10)], {}, [], ctx)
    assert plan.batch.records == [] and len(plan.batch.upserts) == 1
    assert plan.batch.unparks == [park_key(H, "obs", "obs-10")]  # any row may have a parked copy


def test_rows_that_cannot_land_are_parked_with_their_reason() -> None:
    ctx = _ctx({1: PersonMatch(park_reason=NOT_IN_PASSPORT), 2: PersonMatch(patient_id=PATIENT)})
    rows = [
        _weight(10),  # patient unknown to the Passport
        _weight(11, person=2, concept_uuid=None),  # its concept is gone
        _weight(12, person=2, problem="value_numeric is not a number"),
        _weight(13, person=2, person_exists=False),
        _weight(14, person=3),  # nothing known of person 3
    ]
    plan = observations.plan(rows, {}, [], ctx)
    reasons = {p["obsId"]: p["reason"] for p in plan.batch.parks}
    assert reasons == {
        10: NOT_IN_PASSPORT,
        11: MISSING_CONCEPT,
        12: INVALID_DATA,
        13: NO_NATIONAL_ID,
        14: NO_NATIONAL_ID,
    }
    assert plan.parked == {("obs", pk) for pk in reasons}
    # Data to fix in OpenMRS is named (by row id) for a warning; an unknown patient is not a problem.
    assert {p.pk for p in plan.problems} == {11, 12, 13}
    assert plan.batch.records == [] and plan.landed == 0


def test_a_void_retires_the_record_and_an_edit_replaces_the_previous_version() -> None:
    ctx = _ctx({1: PersonMatch(patient_id=PATIENT)}, parked=frozenset({1}))
    voided = _weight(10, voided=True, void_reason="wrong patient", date_voided=WHEN)
    edit = _weight(11, previous_version=9, previous_version_uuid="obs-9")
    plan = observations.plan([voided, edit], {}, [], ctx)
    removals = dict(plan.batch.removals)
    assert removals[record_id(H, "obs", "obs-10")]["voidReason"] == "wrong patient"
    assert removals[record_id(H, "obs", "obs-9")] == {"reason": "replaced", "replacedBy": "obs-11"}
    assert [d["_id"] for d in plan.batch.records] == [record_id(H, "obs", "obs-11")]
    assert set(plan.batch.unparks) == {park_key(H, "obs", u) for u in ("obs-10", "obs-9", "obs-11")}


def test_an_edit_whose_previous_version_is_live_again_leaves_that_version_to_its_own_row() -> None:
    # The original was unvoided after the edit: OpenMRS shows both, and so does the Passport,
    # however the two rows meet (one batch, or the new version alone).
    ctx = _ctx({1: PersonMatch(patient_id=PATIENT)}, parked=frozenset({1}))
    original = _weight(9)
    edit = _weight(11, previous_version=9, previous_version_uuid="obs-9", previous_version_voided=False)
    for rows in ([original, edit], [edit]):
        plan = observations.plan(rows, {}, [], ctx)
        assert plan.batch.removals == []
        assert [d["_id"] for d in plan.batch.records] == [record_id(H, "obs", f"obs-{r.obs_id}") for r in rows]
    # Voided with the edit, as OpenMRS does: replaced.
    voided_with_it = _weight(11, previous_version=9, previous_version_uuid="obs-9", previous_version_voided=True)
    removals = dict(observations.plan([voided_with_it], {}, [], ctx).batch.removals)
    assert removals == {record_id(H, "obs", "obs-9"): {"reason": "replaced", "replacedBy": "obs-11"}}


def _member(obs_id: int, group_id: int, **kw: Any) -> ObsRow:
    return _weight(
        obs_id,
        obs_group_id=group_id,
        group_uuid=f"obs-{group_id}",
        group_concept_id=1000,
        group_concept_uuid="1000AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        group_concept_class="Misc",
        **kw,
    )


def test_a_group_of_text_is_one_record_rebuilt_from_its_live_members() -> None:
    ctx = _ctx({1: PersonMatch(patient_id=PATIENT)})
    members = [
        _member(21, 20, concept_datatype="Text", value_numeric=None, value_text="mother"),
        _member(22, 20, concept_datatype="Text", value_numeric=None, value_text="diabetes"),
    ]
    groups = observations.groups_touched(members, ctx)
    assert groups == {20: ("obs-20", False)}
    plan = observations.plan(members, groups, members, ctx)
    [group] = plan.batch.upserts
    assert group["_id"] == record_id(H, "obs", "obs-20")
    assert plan.batch.records == []  # no record per member
    # Records an older rendering wrote per member give way to the group's.
    assert {rid for rid, _ in plan.batch.removals} == {record_id(H, "obs", "obs-21"), record_id(H, "obs", "obs-22")}


def test_a_group_of_numbers_stays_one_record_per_member_and_an_emptied_group_goes() -> None:
    ctx = _ctx({1: PersonMatch(patient_id=PATIENT)})
    vitals = [_member(31, 30), _member(32, 30, value_numeric=36.6)]
    groups = observations.groups_touched(vitals, ctx)
    plan = observations.plan(vitals, groups, vitals, ctx)
    assert len(plan.batch.records) == 2 and plan.batch.upserts == []
    emptied = [_member(41, 40, voided=True, date_voided=WHEN)]
    plan = observations.plan(emptied, {40: ("obs-40", False)}, [], ctx)
    # Outside any encounter, each may have had a visit record of its own: it goes with it.
    gone = {f(H, "obs", u) for f in (record_id, own_row_id) for u in ("obs-40", "obs-41")}
    assert {rid for rid, _ in plan.batch.removals} == gone


def _order(pk: int, **extra: Any) -> ClinicalRow:
    return ClinicalRow(
        source="drug_order",
        pk=pk,
        uuid=f"order-{pk}",
        person_id=1,
        date_created=WHEN,
        happened_at=WHEN,
        coded=160,
        provider_id=9,
        extra={"drug_order_id": pk, "order_action": "NEW", **extra},
    )


def test_orders_discontinued_revised_or_not_drugs_plan_as_openmrs_means_them() -> None:
    ctx = _ctx({1: PersonMatch(patient_id=PATIENT)})
    rows = [
        _order(1),
        ClinicalRow("drug_order", 2, "order-2", 1, WHEN, extra={"drug_order_id": None}),  # a lab order
        dataclasses.replace(_order(3, order_action="DISCONTINUE"), previous_uuid="order-1"),
        _order(4, replaced_by_uuid="order-5"),
    ]
    plan = clinical.plan(rows, ctx)
    assert [d["_id"] for d in plan.batch.upserts] == [record_id(H, "drug_order", "order-1")]
    assert [rid for rid, _ in plan.batch.patches] == [record_id(H, "drug_order", "order-1")]
    assert dict(plan.batch.removals) == {
        record_id(H, "drug_order", "order-4"): {"reason": "replaced", "replacedBy": "order-5"}
    }
    assert (plan.landed, plan.skipped) == (1, 2)


def test_a_revised_order_of_a_patient_still_unknown_forgets_its_parked_copy() -> None:
    """Parked while its patient was unknown, then revised: a fresh sync would neither write nor
    park it, so its parked copy goes with its record."""
    ctx = _ctx({1: PersonMatch(park_reason=NOT_IN_PASSPORT)}, parked_before=True)
    plan = clinical.plan([_order(4, replaced_by_uuid="order-5")], ctx)
    assert plan.batch.unparks == [park_key(H, "drug_order", "order-4")]
    assert plan.batch.parks == []


def test_a_clinical_row_of_an_unknown_patient_is_parked() -> None:
    plan = clinical.plan([_order(1)], _ctx({1: PersonMatch(park_reason=NOT_IN_PASSPORT)}))
    assert [(p["source"], p["sourceId"], p["reason"]) for p in plan.batch.parks] == [("drug_order", 1, NOT_IN_PASSPORT)]
    assert plan.batch.upserts == [] and plan.problems == []


def test_a_hospital_with_parked_rows_releases_every_landing_rows_copy_and_one_without_none() -> None:
    matched = {1: PersonMatch(patient_id=PATIENT)}
    with_parked = observations.plan([_weight(10)], {}, [], _ctx(matched, parked_before=True))
    assert with_parked.batch.unparks == [park_key(H, "obs", "obs-10")]
    without = observations.plan([_weight(10)], {}, [], _ctx(matched))
    assert without.batch.unparks == [] and len(without.batch.records) == 1


def test_rows_above_the_touched_mark_remove_and_release_nothing_and_rows_below_it_do() -> None:
    """A row whose key is above the feed's touched mark was never written or parked: its void,
    its landing and the version it replaces cost no read and no delete; at or below the mark they do."""
    matched = {1: PersonMatch(patient_id=PATIENT)}

    def plan_of(rows: list[ObsRow], mark: int | None) -> Any:
        return observations.plan(rows, {}, [], _ctx(matched, parked_before=True, untouched_above=mark)).batch

    voided = _weight(20, voided=True, void_reason="entered in error", date_voided=WHEN)
    edit = _weight(21, previous_version=19, previous_version_uuid="obs-19")
    above = plan_of([voided, edit, _weight(22)], 18)
    assert (above.removals, above.unparks) == ([], [])
    assert [d["_id"] for d in above.records] == [record_id(H, "obs", "obs-21"), record_id(H, "obs", "obs-22")]

    below = plan_of([voided, edit, _weight(22)], 22)
    gone = [record_id(H, "obs", "obs-20"), own_row_id(H, "obs", "obs-20"), record_id(H, "obs", "obs-19")]
    assert sorted(rid for rid, _ in below.removals) == sorted(gone)
    assert sorted(below.unparks) == sorted(park_key(H, "obs", f"obs-{n}") for n in (19, 20, 21, 22))
    # Not known (a hospital synced before the mark existed): every row is treated as synced.
    assert plan_of([voided, edit, _weight(22)], None) == below


def test_a_clinical_row_above_the_touched_mark_removes_nothing() -> None:
    row = ClinicalRow(
        source="condition", pk=7, uuid="cond-7", person_id=1, date_created=WHEN, voided=True, date_voided=WHEN
    )
    ctx = _ctx({1: PersonMatch(patient_id=PATIENT)}, parked_before=True, untouched_above=6)
    assert clinical.plan([row], ctx).batch.removals == []
    ctx = dataclasses.replace(ctx, untouched_above=7)
    gone = [record_id(H, "condition", "cond-7"), own_row_id(H, "condition", "cond-7")]
    assert [rid for rid, _ in clinical.plan([row], ctx).batch.removals] == gone
