"""The reconciliation oracle over many seeds: random in-place changes interleaved with sync-all
runs, then reconcile; the Passport must equal a fresh full sync of the final OpenMRS state."""

from __future__ import annotations

import os
from typing import Any

import pytest

from tests.conftest import OpenMRSDatabase
from tests.oracle import run_oracle, run_steady_oracle

pytestmark = pytest.mark.reliability


def _seeds(default: range) -> range:
    """``PASSPORT_SYNC_ORACLE_SEEDS=FIRST-LAST`` runs many more seeds outside CI."""
    wanted = os.environ.get("PASSPORT_SYNC_ORACLE_SEEDS")
    if not wanted:
        return default
    first, _, last = wanted.partition("-")
    return range(int(first), int(last or first) + 1)


SEEDS = range(100, 106)
STEADY_SEEDS = _seeds(range(300, 306))


def _record(figures: Any, oracle: str, case: str, problems: list[str]) -> None:
    figures.record(
        oracle,
        case,
        injected=80,
        expected=0,
        found=len(problems),
        duplicated=0,
        missing=0,
        unexpected=len(problems),
        outcome="ok" if not problems else "differs",
    )


@pytest.mark.parametrize("seed", SEEDS)
def test_reconciled_passport_equals_a_fresh_full_sync(
    seed: int, openmrs: OpenMRSDatabase, mongo_uri: str, figures: Any
) -> None:
    problems = run_oracle(seed, openmrs, mongo_uri, steps=80)
    _record(figures, "reconcile oracle", f"seed {seed}: 80 random in-place changes", problems)
    assert problems == []


@pytest.mark.parametrize("seed", STEADY_SEEDS)
def test_from_a_steady_state_sync_all_alone_converges(
    seed: int, openmrs: OpenMRSDatabase, mongo_uri: str, figures: Any
) -> None:
    problems = run_steady_oracle(seed, openmrs, mongo_uri, steps=80)
    _record(
        figures, "steady-state oracle", f"seed {seed}: 80 random changes and runs from a reconciled state", problems
    )
    assert problems == []
