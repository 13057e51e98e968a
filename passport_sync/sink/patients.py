"""The app's ``patients`` documents as the sync reads and changes them (``store.patients``): the
lookup by national ID, each patient's ``medicalHistory`` links to its records, and the
``allergies`` list kept in step with the synced allergy records."""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from bson import ObjectId
from pymongo import UpdateOne

from passport_sync.sink.gateway import ALLERGIES, PATIENTS, RECORDS, Concern, MongoGateway

# The app's passport documents (``PatientPassport``), made when a doctor is granted access.
PASSPORTS = "patientpassports"


class Patients(Concern):
    def __init__(self, gateway: MongoGateway) -> None:
        super().__init__(gateway)
        # sync-all --workers shares one store between hospitals: two hospitals updating the same
        # patient's allergy list at once would each drop the other's new allergy (read, then write).
        self._allergies_lock = threading.Lock()

    def by_national_id(self, national_ids: Iterable[str]) -> dict[str, list[str]]:
        """Patient ``_id`` strings per digits-only national ID (more than one means ambiguous)."""
        ids = sorted(set(national_ids))
        if not ids:
            return {}
        docs = self._gw.call(
            "patient lookup",
            lambda: list(self._db[PATIENTS].find({"nationalId": {"$in": ids}}, {"nationalId": 1})),
        )
        found: dict[str, list[str]] = defaultdict(list)
        for doc in docs:
            found[str(doc["nationalId"])].append(str(doc["_id"]))
        return dict(found)

    def registered_since(self, moment: datetime, until: datetime) -> list[tuple[str, str]]:
        """(``_id`` string, national ID) of the patients registered from ``moment`` to ``until``
        (by their ``_id``'s creation second, so the lookup is on the ``_id`` index whatever the
        number of patients; an ``_id`` not made from a clock, dated in the future, is not taken for
        a new patient forever)."""
        window = {"$gte": ObjectId.from_datetime(moment), "$lt": ObjectId.from_datetime(until)}
        docs = self._gw.call(
            "reading new patients",
            lambda: list(self._db[PATIENTS].find({"_id": window}, {"nationalId": 1})),
        )
        return [(str(d["_id"]), str(d["nationalId"])) for d in docs if d.get("nationalId")]

    def link(self, records: list[dict[str, Any]], fresh: set[ObjectId] | None = None) -> None:
        """``patients.medicalHistory`` gets each record id, as the original design did.

        Records this batch inserted (``fresh``) cannot be in the array yet: they are appended,
        which stays cheap as the array grows; the condition on the first id makes a retried
        append a no-op. Records already present (a re-run after a crash, a reset) go through
        ``$addToSet``.
        """
        fresh = fresh or set()
        appended: dict[str, list[ObjectId]] = defaultdict(list)
        merged: dict[str, list[ObjectId]] = defaultdict(list)
        for record in records:
            (appended if record["_id"] in fresh else merged)[record["patientId"]].append(record["_id"])
        ops = [
            UpdateOne(
                {"_id": ObjectId(pid), "medicalHistory": {"$ne": ids[0]}}, {"$push": {"medicalHistory": {"$each": ids}}}
            )
            for pid, ids in appended.items()
        ]
        ops += [
            UpdateOne({"_id": ObjectId(pid)}, {"$addToSet": {"medicalHistory": {"$each": ids}}})
            for pid, ids in merged.items()
        ]
        self._gw.call("linking records to patients", lambda: self._db[PATIENTS].bulk_write(ops, ordered=False))

    def unlink(self, what: str, links: Iterable[tuple[Any, ObjectId]]) -> None:
        """Take each record out of its former patient's ``medicalHistory``: ``(patientId, record
        id)`` pairs, where a patient id that is no 24-hex string (never a Passport patient) is
        skipped."""
        pulls = [
            UpdateOne({"_id": ObjectId(patient)}, {"$pull": {"medicalHistory": rid}})
            for patient, rid in links
            if isinstance(patient, str) and ObjectId.is_valid(patient)
        ]
        if pulls:
            self._gw.call(what, lambda: self._db[PATIENTS].bulk_write(pulls, ordered=False))

    def sync_allergies(self, patient_ids: set[str]) -> None:
        """Keep ``patients.allergies`` in step with the synced allergy records of each patient.

        The strings this tool added are remembered in ``openmrs_sync_allergies``, so a removed
        allergy leaves the list while allergies the patient entered in the app stay.
        """
        with self._allergies_lock:
            self._sync_allergies_locked(patient_ids)

    def _sync_allergies_locked(self, patient_ids: set[str]) -> None:
        ids = sorted(p for p in patient_ids if ObjectId.is_valid(p))
        live = self._gw.call(
            "reading allergy records",
            lambda: list(
                self._db[RECORDS].find(
                    {"patientId": {"$in": ids}, "openmrsData.source": "allergy"},
                    {"patientId": 1, "openmrsData.allergyText": 1},
                )
            ),
        )
        wanted: dict[str, list[str]] = {pid: [] for pid in ids}
        for record in live:
            text = record.get("openmrsData", {}).get("allergyText")
            if text and text not in wanted[record["patientId"]]:
                wanted[record["patientId"]].append(text)
        before = {
            d["_id"]: d.get("texts", [])
            for d in self._gw.call(
                "reading synced allergies", lambda: list(self._db[ALLERGIES].find({"_id": {"$in": ids}}))
            )
        }
        current = {
            str(d["_id"]): d.get("allergies") or []
            for d in self._gw.call(
                "reading patients' allergies",
                lambda: list(self._db[PATIENTS].find({"_id": {"$in": [ObjectId(p) for p in ids]}}, {"allergies": 1})),
            )
        }
        patient_ops = []
        # The doctor's view reads the copy the app made in ``patientpassports`` when access was
        # granted: it changes with the patient's list, or it would go stale.
        passport_ops = []
        claimed: dict[str, list[str]] = {}
        kept: dict[str, list[str]] = {}
        for pid in ids:
            mine = before.get(pid, [])
            # A string already in the list that this tool did not put there is the patient's own:
            # it is never claimed, so no later change or void in OpenMRS removes it.
            added = [t for t in wanted[pid] if t not in current.get(pid, [])]
            kept[pid] = [t for t in wanted[pid] if t in mine or t in added]
            claimed[pid] = [*mine, *(t for t in added if t not in mine)]
            stale = [t for t in mine if t not in wanted[pid]]
            if stale:
                patient_ops.append(UpdateOne({"_id": ObjectId(pid)}, {"$pull": {"allergies": {"$in": stale}}}))
                passport_ops.append(
                    UpdateOne({"patient": ObjectId(pid)}, {"$pull": {"medicalInfo.allergies": {"$in": stale}}})
                )
            if added:
                patient_ops.append(UpdateOne({"_id": ObjectId(pid)}, {"$addToSet": {"allergies": {"$each": added}}}))
                passport_ops.append(
                    UpdateOne({"patient": ObjectId(pid)}, {"$addToSet": {"medicalInfo.allergies": {"$each": added}}})
                )
        # Claimed before the list changes: after a crash in between, the next run still knows
        # which strings it added.
        self._remember_allergies(claimed)
        if patient_ops:
            self._gw.call("updating allergies", lambda: self._db[PATIENTS].bulk_write(patient_ops, ordered=True))
            self._gw.call(
                "updating the doctor's copy of allergies",
                lambda: self._db[PASSPORTS].bulk_write(passport_ops, ordered=True),
            )
        self._remember_allergies(kept)

    def _remember_allergies(self, texts: Mapping[str, list[str]]) -> None:
        ops = [UpdateOne({"_id": pid}, {"$set": {"texts": t}}, upsert=True) for pid, t in texts.items()]
        if ops:
            self._gw.call("remembering synced allergies", lambda: self._db[ALLERGIES].bulk_write(ops, ordered=False))
