"""The reconciliation oracle for a few seeds (many more run in tests/reliability)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.oracle import run_oracle


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_reconciled_passport_equals_a_fresh_full_sync(seed: int, openmrs: Any, mongo_uri: str) -> None:
    assert run_oracle(seed, openmrs, mongo_uri) == []
