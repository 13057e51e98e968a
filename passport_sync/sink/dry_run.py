"""The sink of a dry run: it reads Patient Passport as a real run would and counts what a real
run would write, but writes nothing (no lock, checkpoint, record, placeholder or audit entry)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from bson import ObjectId

from passport_sync.config import HospitalConfig
from passport_sync.models import Provider
from passport_sync.sink.passport import BatchOutcome, BatchWrite, HospitalRefs, PassportStore

# Stands for a placeholder user a real run would create.
NOT_CREATED = "0" * 24


class DryRunPassport:
    """Wraps the real store: reads pass through, writes are counted or dropped."""

    def __init__(self, store: PassportStore) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def apply(self, batch: BatchWrite, now: datetime, *, hospital_id: str | None = None) -> BatchOutcome:
        # What the real run would remove: only records that are in Patient Passport (a void of a
        # row that was parked, or never synced, removes nothing).
        removed = self._store.count_existing([record_id for record_id, _ in batch.removals])
        return BatchOutcome(written=len(batch.records) + len(batch.upserts), removed=removed)

    def ensure_hospital(self, hospital: HospitalConfig, now: datetime) -> HospitalRefs:
        return HospitalRefs(self._store.hospital_oid(hospital), NOT_CREATED, f"{hospital.name} (OpenMRS)")

    def doctor_users(
        self, hospital: HospitalConfig, hospital_oid: ObjectId, providers: Iterable[Provider], now: datetime
    ) -> dict[str, str]:
        return {p.uuid: NOT_CREATED for p in providers}

    # A dry run re-renders nothing and rebuilds no visit record: both only rewrite what is there.
    def stale_records(self, hospital_id: str, version: int, after: ObjectId | None, limit: int) -> list[Any]:
        return []

    def encounters_due(self, hospital_id: str, limit: int) -> list[str]:
        return []

    def acquire_lock(self, hospital_id: str, owner: str, ttl: timedelta) -> None:
        pass

    def renew_lock(self, hospital_id: str, owner: str, ttl: timedelta) -> None:
        pass

    def release_lock(self, hospital_id: str, owner: str) -> None:
        pass

    def save_checkpoint(self, hospital_id: str, fields: Mapping[str, Any], now: datetime) -> None:
        pass

    def remember_database(self, hospital_id: str, database: str, fingerprint: str | None) -> None:
        pass

    def write_run_summary(self, summary: Mapping[str, Any], performed_by: ObjectId | None, now: datetime) -> None:
        pass

    def mark_encounters_due(self, hospital_id: str, uuids: Iterable[str]) -> None:
        pass

    def save_checksums(self, hospital_id: str, feed: str, ranges: Mapping[int, Any]) -> None:
        pass

    def save_reconcile_state(self, hospital_id: str, fields: Mapping[str, Any]) -> None:
        pass
