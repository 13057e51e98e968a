"""The app's ``patients`` documents as the sync reads and changes them (``store.patients``): the
lookup by national ID, each patient's ``medicalHistory`` links to its records (only when
``sync.medical_history_links`` is on; otherwise the links earlier versions wrote are taken out
once), and the ``allergies`` list kept in step with the synced allergy records."""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from bson import ObjectId
from pymongo import UpdateOne

from passport_sync.passport_changes import PatientChange
from passport_sync.sink.gateway import ALLERGIES, ONE_REPLY, PATIENTS, RECORDS, Concern, MongoGateway

# The app's passport documents (``PatientPassport``), made when a doctor is granted access.
PASSPORTS = "patientpassports"


class Patients(Concern):
    def __init__(self, gateway: MongoGateway, *, links: bool = False) -> None:
        super().__init__(gateway)
        # Whether records are linked into ``patients.medicalHistory`` (sync.medical_history_links).
        self.links = links
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

    def changed_since(self, moment: datetime) -> list[PatientChange]:
        """The patients the app saved (registered or changed) from ``moment`` on, by their
        ``updatedAt`` (set by the app on every save; the sync never sets it), on an index of ours."""
        docs = self._gw.call(
            "reading changed patients",
            lambda: list(self._db[PATIENTS].find({"updatedAt": {"$gte": moment}}, {"nationalId": 1, "updatedAt": 1})),
        )
        return [
            PatientChange(str(d["_id"]), str(d["nationalId"]) if d.get("nationalId") else None, d["updatedAt"])
            for d in docs
            if isinstance(d.get("updatedAt"), datetime)
        ]

    def ids_between(self, first: str, last: str) -> set[str]:
        """The ``_id`` strings of the patients from ``first`` to ``last`` (24 hex digits, both
        included): a range on the ``_id`` index."""
        span = {"$gte": ObjectId(first), "$lte": ObjectId(last)}
        docs = self._gw.call("reading patients by id", lambda: list(self._db[PATIENTS].find({"_id": span}, {"_id": 1})))
        return {str(d["_id"]) for d in docs}

    def link(self, records: list[dict[str, Any]], fresh: set[ObjectId] | None = None) -> None:
        """``patients.medicalHistory`` gets each record id, as the original design did.

        Nothing at all unless links are configured (``links``).

        Records this batch inserted (``fresh``) cannot be in the array yet: they are appended,
        which stays cheap as the array grows; the condition on the first id makes a retried
        append a no-op. Records already present (a re-run after a crash, a reset) go through
        ``$addToSet``.
        """
        if not self.links or not records:
            return
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
        skipped. Sent whether or not links are configured: a record removed or moved may still
        carry a link an earlier version wrote (until ``remove_links`` has passed it), and removals
        and moves are rare."""
        pulls = [
            UpdateOne({"_id": ObjectId(patient)}, {"$pull": {"medicalHistory": rid}})
            for patient, rid in links
            if isinstance(patient, str) and ObjectId.is_valid(patient)
        ]
        if pulls:
            self._gw.call(what, lambda: self._db[PATIENTS].bulk_write(pulls, ordered=False))

    def highest_person(self, hospital_id: str) -> int | None:
        """The highest OpenMRS person id among the hospital's records (None: it has none)."""
        docs = self._gw.call(
            "reading records to unlink",
            lambda: list(
                self._db[RECORDS]
                .find({"openmrsData.hospitalId": hospital_id}, {"openmrsData.personId": 1})
                .sort("openmrsData.personId", -1)
                .limit(1)
            ),
        )
        person = (docs[0].get("openmrsData") or {}).get("personId") if docs else None
        return int(person) if isinstance(person, int) else None

    def remove_links(self, hospital_id: str, low: int, high: int) -> int:
        """Take the records of the hospital's persons ``low`` to ``high`` (excluded) out of their
        patients' ``medicalHistory``: the links earlier versions wrote. Idempotent: pulling a link
        twice changes nothing, so a crash in between only repeats a range. Returns the records
        passed."""
        # A range of persons, not of _id: the index on (hospital, person) serves it on every server
        # (SecantusDB scans and sorts the collection for a page of _ids).
        span = {"$gte": low, "$lt": high}
        records = self._gw.call(
            "reading records to unlink",
            lambda: list(
                self._db[RECORDS].find(
                    {"openmrsData.hospitalId": hospital_id, "openmrsData.personId": span},
                    {"patientId": 1},
                    batch_size=ONE_REPLY,
                )
            ),
        )
        owned: dict[str, list[ObjectId]] = defaultdict(list)
        for record in records:
            patient = record.get("patientId")
            if isinstance(patient, str) and ObjectId.is_valid(patient):
                owned[patient].append(record["_id"])
        pulls = [
            UpdateOne(
                {"_id": ObjectId(pid), "medicalHistory": {"$in": ids}}, {"$pull": {"medicalHistory": {"$in": ids}}}
            )
            for pid, ids in owned.items()
        ]
        if pulls:
            self._gw.call("removing medicalHistory links", lambda: self._db[PATIENTS].bulk_write(pulls, ordered=False))
        return len(records)

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
