"""Run summaries in the app's ``auditlogs`` (``store.audit``): one entry per hospital per run,
queryable as the seed's monitoring does, and read back for status and metrics."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from bson import ObjectId

from passport_sync.sink.gateway import AUDITLOGS, Concern

ACTION = "openmrs_auto_sync"


class Audit(Concern):
    def write_run_summary(self, summary: Mapping[str, Any], performed_by: ObjectId | None, now: datetime) -> None:
        """One ``auditlogs`` entry per hospital per run, queryable as the seed's monitoring does.

        ``performedBy`` and ``user`` hold a ``users._id`` (the hospital's user), which the app's
        sync status endpoint populates from ``users``.
        """
        doc = {
            "action": ACTION,
            "performedBy": performed_by,
            "user": performed_by,
            "targetModel": "MedicalRecord",
            "accessType": "regular",
            "details": (
                f"OpenMRS sync of {summary.get('hospital_name')}: {summary.get('outcome')}, "
                f"{summary.get('written', 0)} written, {summary.get('removed', 0)} removed, "
                f"{summary.get('parked', 0)} parked"
            )[:1000],
            "changes": {**summary, "errorCount": summary.get("error_count", 0)},
            "accessTime": now,
            "createdAt": now,
            "updatedAt": now,
        }
        self._gw.call("writing the run summary", lambda: self._db[AUDITLOGS].insert_one(doc))

    def last_successful_run_at(self, hospital_id: str) -> datetime | None:
        """When the newest run summary with outcome ok was written (UTC), or None."""
        found: dict[str, Any] | None = self._gw.call(
            "reading the last successful run",
            lambda: self._db[AUDITLOGS].find_one(
                {"action": ACTION, "changes.hospital_id": hospital_id, "changes.outcome": "ok"},
                {"createdAt": 1},
                sort=[("createdAt", -1)],
            ),
        )
        at = (found or {}).get("createdAt")
        return at.replace(tzinfo=UTC) if isinstance(at, datetime) and at.tzinfo is None else at

    def last_run_summary(self, hospital_id: str) -> dict[str, Any] | None:
        found: dict[str, Any] | None = self._gw.call(
            "reading the last run",
            lambda: self._db[AUDITLOGS].find_one(
                {"action": ACTION, "changes.hospital_id": hospital_id}, sort=[("createdAt", -1)]
            ),
        )
        return found
