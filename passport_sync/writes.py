"""What a run asks the Passport sink to write, and what came of it: plain data, no I/O.

The planners fill a ``BatchWrite``; ``sink.records.Records.apply`` writes it and answers with a
``BatchOutcome``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bson import ObjectId


@dataclass(frozen=True, slots=True)
class HospitalRefs:
    """The Patient Passport documents a hospital's records point at."""

    hospital_oid: ObjectId
    # The hospital's own ``users._id``: who the run summaries in ``auditlogs`` name.
    user_id: ObjectId | None = None


@dataclass(slots=True)
class BatchWrite:
    """Everything one batch changes in MongoDB, applied by ``Records.apply``."""

    # Observations never change once written: inserted, a duplicate means "already there".
    records: list[dict[str, Any]] = field(default_factory=list)
    # Diagnoses, conditions, allergies, orders change in place: upserted field by field.
    upserts: list[dict[str, Any]] = field(default_factory=list)
    # Field updates of existing records (a discontinued order ends its order's record).
    patches: list[tuple[ObjectId, dict[str, Any]]] = field(default_factory=list)
    removals: list[tuple[ObjectId, dict[str, Any]]] = field(default_factory=list)
    parks: list[dict[str, Any]] = field(default_factory=list)
    unparks: list[str] = field(default_factory=list)
    # The upserted records as they are now, when the caller has just read them (None: read them).
    existing: dict[ObjectId, dict[str, Any]] | None = None

    def __bool__(self) -> bool:
        return bool(self.records or self.upserts or self.patches or self.removals or self.parks or self.unparks)


@dataclass(slots=True)
class BatchOutcome:
    written: int = 0
    updated: int = 0
    already_present: int = 0
    removed: int = 0
    reassigned: int = 0
    # Encounters whose records this batch wrote, changed or removed (their visit record is due).
    encounters: set[str] = field(default_factory=set)
