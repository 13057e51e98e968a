"""Pure reconciliation logic: positions and pacing of a pass, row checksums, drift classification."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from passport_sync.mapping.transform import record_id
from passport_sync.matching import PersonMatch
from passport_sync.reconcile import (
    aggregate,
    coalesce,
    drift,
    due_position,
    needs_redecision,
    pack_rows,
    ranges_of,
    unpack_rows,
)
from passport_sync.writes import BatchWrite

H = "central"


def test_positions_interleave_sources_so_every_range_is_visited_once() -> None:
    layout = {"identity": 3, "obs": 5, "allergy": 1}
    seen = []
    for start in range(0, 15, 4):  # slices of four positions
        for index, name in enumerate(layout):
            bounds = ranges_of(start, min(start + 4, 15), index, 3, layout[name])
            if bounds:
                seen += [(name, r) for r in range(bounds[0], bounds[1] + 1)]
    assert sorted(seen) == sorted((name, r) for name, count in layout.items() for r in range(count))


def test_a_pass_is_paced_to_end_within_the_configured_hours() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    day = timedelta(hours=24)
    assert due_position(100, start, start, day) == 0
    assert 40 <= due_position(100, start, start + timedelta(hours=10), day) <= 50
    assert due_position(100, start, start + timedelta(hours=22), day) == 100  # ends with room to spare
    assert due_position(100, start, start + timedelta(days=3), day) == 100


def test_adjacent_ranges_are_read_as_one_and_row_checksums_round_trip() -> None:
    assert coalesce([3, 1, 2, 7], 10) == [(11, 40), (71, 80)]
    rows = {1001: 4_294_967_295, 1500: 7, 2000: 0}
    assert unpack_rows(pack_rows(rows, 1001), 1001) == rows
    assert aggregate([5, 3]) == "8:6" and aggregate([]) == "0:0"


def _doc(uuid: str, patient: str, details: str) -> dict[str, object]:
    return {"_id": record_id(H, "obs", uuid), "patientId": patient, "type": "test", "data": {"details": details}}


def test_drift_names_each_repair_and_writes_only_what_differs() -> None:
    same, moved, changed, restored = (_doc(u, "p1", "5") for u in ("a", "b", "c", "d"))
    moved["patientId"] = "p2"
    changed["data"] = {"details": "6"}
    gone = record_id(H, "obs", "e")
    parked = {"_id": f"{H}:obs:f", "source": "obs", "uuid": "f", "reason": "shared_national_id", "personId": 9}
    planned = BatchWrite(
        upserts=[same, moved, changed, restored], removals=[(gone, {"reason": "voided"})], parks=[parked]
    )
    existing = {d["_id"]: {**_doc("x", "p1", "5"), "_id": d["_id"]} for d in (same, moved, changed)}
    existing[gone] = {"patientId": "p1", "data": {}}
    existing[record_id(H, "obs", "f")] = {"patientId": "p1", "data": {}}
    repair, found = drift(H, planned, existing)
    assert (found.moved, found.updated, found.restored, found.removed, found.reparked) == (1, 1, 1, 1, 1)
    assert [d["_id"] for d in repair.upserts] == [moved["_id"], changed["_id"], restored["_id"]]
    assert {rid for rid, _ in repair.removals} == {gone, record_id(H, "obs", "f")}
    assert drift(H, BatchWrite(upserts=[same]), {same["_id"]: same})[1].drifted == 0


def test_a_person_is_re_read_only_when_the_passport_disagrees_with_the_decision() -> None:
    assert not needs_redecision(PersonMatch(patient_id="p1"), {"p1"}, ())
    assert needs_redecision(PersonMatch(patient_id="p1"), {"p0"}, ())
    assert needs_redecision(PersonMatch(patient_id="p1"), (), {"patient_not_in_passport"})
    assert not needs_redecision(PersonMatch(patient_id="p1"), (), {"missing_concept"})
    assert needs_redecision(PersonMatch(park_reason="shared_national_id"), {"p1"}, ())
    assert not needs_redecision(PersonMatch(park_reason="shared_national_id"), (), {"shared_national_id"})
