"""The reconciliation oracle for a few seeds (many more run in tests/reliability). One seed of
each runs with ``sync.medical_history_links`` on: the same comparison, the links included."""

from __future__ import annotations

from typing import Any

import pytest

from tests.oracle import TRACED_OPERATIONS, run_oracle, run_steady_oracle


@pytest.mark.parametrize(("seed", "links"), [(1, False), (2, False), (3, True)])
def test_reconciled_passport_equals_a_fresh_full_sync(seed: int, links: bool, openmrs: Any, mongo_uri: str) -> None:
    assert run_oracle(seed, openmrs, mongo_uri, links=links) == []


@pytest.mark.parametrize(("seed", "links"), [(21, False), (22, False), (23, True)])
def test_sync_all_alone_equals_a_fresh_full_sync_for_changes_that_leave_a_trace(
    seed: int, links: bool, openmrs: Any, mongo_uri: str
) -> None:
    """New rows, edits, voids, orders and their revisions, registrations in the Passport: each
    batch leaves out the reads and deletes of rows above the touched mark, and no reconciliation
    runs to repair what that would get wrong."""
    assert run_oracle(seed, openmrs, mongo_uri, operations=TRACED_OPERATIONS, reconcile=False, links=links) == []


@pytest.mark.parametrize("seed", [31, 32, 33])
def test_from_a_steady_state_sync_all_and_its_slices_alone_converge(seed: int, openmrs: Any, mongo_uri: str) -> None:
    """Changes undone in place, changes beside the row (concept names, encounters, rows moved or
    purged), sync-patient and reconciliation passes in any order, from a reconciled state."""
    assert run_steady_oracle(seed, openmrs, mongo_uri) == []
