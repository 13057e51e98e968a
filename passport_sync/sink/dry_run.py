"""The sink of a dry run: it reads Patient Passport as a real run reads it and counts what a real
run would write, but writes nothing (no lock, checkpoint, record, placeholder or audit entry).

Each part is the real part with its writes replaced, so every read is the real one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from bson import ObjectId

from passport_sync.config import HospitalConfig
from passport_sync.models import Provider
from passport_sync.sink.audit import Audit
from passport_sync.sink.checkpoints import Checkpoints
from passport_sync.sink.encounters import Encounters
from passport_sync.sink.locks import Locks
from passport_sync.sink.passport import PassportStore
from passport_sync.sink.placeholders import Placeholders
from passport_sync.sink.records import Records
from passport_sync.writes import BatchOutcome, BatchWrite, HospitalRefs

# Stands for a placeholder user a real run would create.
NOT_CREATED = "0" * 24


class _CountedRecords(Records):
    def apply(
        self, batch: BatchWrite, now: datetime, *, hospital_id: str | None = None, keep_encounters: bool = True
    ) -> BatchOutcome:
        # What the real run would remove: only records that are in Patient Passport (a void of a
        # row that was parked, or never synced, removes nothing).
        removed = self.count_existing([record_id for record_id, _ in batch.removals])
        return BatchOutcome(written=len(batch.records) + len(batch.upserts), removed=removed)

    def stale(self, hospital_id: str, version: int, after: ObjectId | None, limit: int) -> list[dict[str, Any]]:
        return []  # re-rendering only rewrites what is there: nothing to count


class _UncreatedPlaceholders(Placeholders):
    def ensure_hospital(self, hospital: HospitalConfig, now: datetime) -> HospitalRefs:
        return HospitalRefs(self.hospital_oid(hospital))

    def doctor_users(
        self, hospital: HospitalConfig, hospital_oid: ObjectId, providers: Iterable[Provider], now: datetime
    ) -> dict[str, str]:
        return {p.uuid: NOT_CREATED for p in providers}


class _UnmovedCheckpoints(Checkpoints):
    def save(self, hospital_id: str, fields: Mapping[str, Any], now: datetime) -> None:
        pass

    def remember_database(self, hospital_id: str, database: str, fingerprint: str | None) -> None:
        pass

    def save_reconcile_state(self, hospital_id: str, fields: Mapping[str, Any]) -> None:
        pass

    def save_checksums(self, hospital_id: str, feed: str, ranges: Mapping[int, Mapping[str, Any] | None]) -> None:
        pass


class _NoEncounters(Encounters):
    def due(self, hospital_id: str, limit: int) -> list[str]:
        return []  # visit records are rebuilt from written records: none were written

    def mark_due(self, hospital_id: str, uuids: Iterable[str]) -> None:
        pass


class _NoAudit(Audit):
    def write_run_summary(self, summary: Mapping[str, Any], performed_by: ObjectId | None, now: datetime) -> None:
        pass


class _NoLocks(Locks):
    """A dry run takes no lock: it changes nothing another run could trip over."""

    def acquire(self, hospital_id: str, owner: str, ttl: timedelta) -> None:
        pass

    def renew(self, hospital_id: str, owner: str, ttl: timedelta) -> None:
        pass

    def release(self, hospital_id: str, owner: str) -> None:
        pass


class DryRunPassport(PassportStore):
    """The real store's reads over the same connection; its writes counted or dropped."""

    def __init__(self, store: PassportStore) -> None:
        gateway = store.gateway
        self.gateway = gateway
        self.indexes = store.indexes
        self.patients = store.patients
        self.parked = store.parked
        self.encounters = _NoEncounters(gateway)
        self.records = _CountedRecords(
            gateway, patients=store.patients, parked=store.parked, encounters=self.encounters
        )
        self.placeholders = _UncreatedPlaceholders(gateway, "")
        self.checkpoints = _UnmovedCheckpoints(gateway)
        self.audit = _NoAudit(gateway)
        self.locks = _NoLocks(gateway)

    def close(self) -> None:
        pass  # the real store's connection is its owner's to close
