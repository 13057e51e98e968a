"""Visit records and medication lists derived from an encounter's synced records (pure)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from bson import ObjectId

from passport_sync.mapping.visits import (
    SYNCED_MEDICATIONS,
    VisitContext,
    derived_ids,
    merged_medications,
    needs_own_row,
    own_row,
    own_row_id,
    plan_encounter,
)
from passport_sync.models import EncounterRow
from passport_sync.planning.visits import EncountersInFlight
from passport_sync.writes import BatchWrite

CTX = VisitContext(
    "h1", "Central Hospital", "6" * 24, "Dr A", "prov-uuid", datetime(2025, 11, 7, tzinfo=UTC), ZoneInfo("UTC")
)
ENCOUNTER = EncounterRow(
    7, "enc-1", 42, datetime(2025, 11, 6, 10, 30), datetime(2025, 11, 6, 10, 31), type_name="Consultation"
)


def record(kind: str, source: str, **fields: Any) -> dict[str, Any]:
    openmrs = {"source": source, **fields.pop("openmrs", {})}
    return {"_id": ObjectId(), "patientId": "5" * 24, "type": kind, "data": fields, "openmrsData": openmrs}


def test_the_visit_names_primary_diagnoses_first_and_orders_go_to_their_reason() -> None:
    secondary = record("condition", "diagnosis", diagnosis="Pneumonia", openmrs={"rank": 2, "conceptId": 5})
    primary = record("condition", "diagnosis", diagnosis="Malaria", openmrs={"rank": 1, "conceptId": 4})
    order = record("medication", "drug_order", medicationName="Amoxicillin", openmrs={"orderReason": 5})
    plan = plan_encounter(ENCOUNTER, [secondary, primary, order], CTX)
    visit = plan.upserts[0]
    assert visit["_id"] == derived_ids("h1", "enc-1")[0] and visit["type"] == "visit"
    assert visit["data"]["diagnosis"] == "Malaria; Pneumonia"
    assert visit["data"]["date"] == "2025-11-06T10:30:00.000Z" and visit["data"]["reason"] == "Consultation"
    assert plan.patches == [
        (
            secondary["_id"],
            {
                "data.medications": [{"name": "Amoxicillin"}],
                f"openmrsData.{SYNCED_MEDICATIONS}": [{"name": "Amoxicillin"}],
            },
        )
    ]
    assert derived_ids("h1", "enc-1")[1] in plan.removals  # no prescription record needed


def test_nothing_changes_when_the_lists_already_hold_what_they_should() -> None:
    entry = {"name": "Amoxicillin"}
    condition = record("condition", "diagnosis", diagnosis="Malaria", medications=[{**entry, "_id": "a"}])
    condition["openmrsData"][SYNCED_MEDICATIONS] = [entry]
    order = record("medication", "drug_order", medicationName="Amoxicillin")
    assert plan_encounter(ENCOUNTER, [condition, order], CTX).patches == []


def test_a_list_left_empty_goes_as_a_fresh_sync_never_wrote_it_but_a_doctors_entry_stays() -> None:
    entry = {"name": "Amoxicillin"}
    emptied = record("condition", "diagnosis", diagnosis="Malaria", medications=[{**entry, "_id": "a"}])
    emptied["openmrsData"][SYNCED_MEDICATIONS] = [entry]
    # The encounter's order is gone: no medication record among its records any more.
    assert plan_encounter(ENCOUNTER, [emptied], CTX).patches == [
        (emptied["_id"], {"data.medications": None, f"openmrsData.{SYNCED_MEDICATIONS}": None})
    ]
    doctors = {"name": "Paracetamol"}
    kept = record("condition", "diagnosis", diagnosis="Malaria", medications=[entry, doctors])
    kept["openmrsData"][SYNCED_MEDICATIONS] = [entry]
    assert plan_encounter(ENCOUNTER, [kept], CTX).patches == [
        (kept["_id"], {"data.medications": [doctors], f"openmrsData.{SYNCED_MEDICATIONS}": []})
    ]
    never = record("condition", "diagnosis", diagnosis="Malaria")
    assert plan_encounter(ENCOUNTER, [never], CTX).patches == []


def test_a_doctors_entries_stay_and_a_changed_synced_entry_is_replaced_not_doubled() -> None:
    old = {"name": "Amoxicillin", "medicationStatus": "Active"}
    new = {"name": "Amoxicillin", "medicationStatus": "Past"}
    doctors = {"name": "Paracetamol", "_id": "d"}
    assert merged_medications([{**old, "_id": "s"}, doctors], [old], [new]) == [new, doctors]


def test_no_live_record_or_a_voided_encounter_removes_the_derived_records() -> None:
    assert set(plan_encounter(ENCOUNTER, [], CTX).removals) == set(derived_ids("h1", "enc-1"))
    voided = EncounterRow(7, "enc-1", 42, ENCOUNTER.encounter_datetime, None, voided=True)
    assert set(plan_encounter(voided, [record("test", "obs")], CTX).removals) == set(derived_ids("h1", "enc-1"))


def _in(uuid: str, doc: dict[str, Any]) -> dict[str, Any]:
    doc["openmrsData"]["encounterUuid"] = uuid
    return doc


def test_encounters_in_flight_are_built_once_settled_and_never_from_part_of_their_records() -> None:
    flight = EncountersInFlight(build_at=2)
    a1, a2 = _in("a", record("test", "obs")), _in("a", record("condition", "obs"))
    b1, c1 = _in("b", record("test", "obs")), _in("c", record("test", "obs"))
    # "a" spans two batches; nothing is settled until two encounters are.
    assert flight.add(BatchWrite(records=[a1])) == []
    assert flight.add(BatchWrite(records=[a2, b1])) == []
    assert flight.add(BatchWrite(records=[c1])) == ["a", "b"]
    assert sorted(str(r["_id"]) for r in flight.take(["a", "b"])) == sorted(str(r["_id"]) for r in (a1, a2, b1))
    # A record of a built encounter written later: left to the rebuild path, never built again.
    assert flight.add(BatchWrite(upserts=[_in("a", record("test", "obs"))])) == []
    assert flight.pending() == ["c"]
    # A record written twice in flight: the later version is the one built from.
    d = _in("d", record("test", "obs"))
    flight.add(BatchWrite(upserts=[{**d}]))
    flight.add(BatchWrite(upserts=[{**d, "data": {"result": "new"}}]))
    assert [r["data"] for r in flight.take(["d"])] == [{"result": "new"}]
    flight.drop()
    assert flight.pending() == [] and flight.add(BatchWrite(records=[c1])) == []


def _outside(kind: str, source: str, **fields: Any) -> dict[str, Any]:
    doc = record(kind, source, openmrs={"hospitalId": "h1", "uuid": "u-9", "sourceId": 9}, **fields)
    return {**doc, "createdBy": "6" * 24, "createdAt": datetime(2025, 11, 7, tzinfo=UTC)}


def test_a_condition_or_medication_outside_any_encounter_gets_a_row_of_its_own_on_its_date() -> None:
    condition = _outside(
        "condition", "condition", diagnosis="Hypertension", details="Active", diagnosedDate="2010-03-01T00:00:00.000"
    )
    assert needs_own_row(condition)
    row = own_row(condition)
    assert row["_id"] == own_row_id("h1", "condition", "u-9")
    assert row["type"] == "visit"
    assert row["data"]["diagnosis"] == "Hypertension - Active"
    assert row["data"]["date"] == row["data"]["visitDate"] == "2010-03-01T00:00:00.000"
    # A new rendering re-reads the origin row, which rewrites both.
    assert (row["openmrsData"]["ownRowOf"], row["openmrsData"]["sourceId"]) == ("condition", 9)
    medication = _outside("medication", "obs", medicationName="Aspirin", startDate="2025-11-06T08:30:00.000Z")
    assert own_row(medication)["data"]["diagnosis"] == "Medication: Aspirin"
    in_encounter = record("condition", "diagnosis", openmrs={"encounterUuid": "enc-1"})
    assert not needs_own_row(in_encounter) and not needs_own_row(_outside("test", "obs"))
