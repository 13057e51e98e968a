"""Synced records in ``medicalrecords`` (``store.records``): the batch write and the reads of them.

Every record has a deterministic ``_id`` (see ``mapping.transform.record_id``), so a write is an
``insert`` whose duplicate-key error means "already there": no read before write, no race
between runs or hosts, and nothing a doctor added to an existing record is ever overwritten.

A batch touches more than records: what it removes goes to ``openmrs_sync_removed`` (shaped
here), its patients' links and allergy lists, its parked rows and the encounters it makes due
go through the concern objects that own those collections.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from bson import ObjectId
from pymongo import UpdateOne
from pymongo.errors import BulkWriteError

from passport_sync.errors import SinkError
from passport_sync.mapping.transform import record_id
from passport_sync.mapping.visits import DERIVED_SOURCES, OWN_ROW_SOURCE, needs_own_row, own_row_id
from passport_sync.sink.encounters import Encounters
from passport_sync.sink.gateway import DUPLICATE_KEY, RECORDS, REMOVED, Concern, MongoGateway
from passport_sync.sink.parked import Parked
from passport_sync.sink.patients import Patients
from passport_sync.writes import BatchOutcome, BatchWrite

# The ``data`` fields the sync writes (OpenMRS owns them). Anything else in ``data`` (such as the
# ``medications`` doctors add to a condition in the app) is the app's and is never touched.
OPENMRS_DATA_FIELDS = frozenset(
    {
        "name", "diagnosis", "details", "diagnosed", "diagnosedDate", "date", "doctor", "diagnosedBy", "hospital",
        "medicationName", "dosage", "frequency", "medicationStatus", "startDate", "endDate", "prescribedBy",
        "testName", "testDate", "result", "testStatus", "reason", "visitDate", "description", "imageType", "notes",
        "status",
    }
)  # fmt: skip


def _own_row_of(doc: Mapping[str, Any]) -> ObjectId | None:
    """The id of the row of its own of ``doc``, if it has one (``mapping.visits.own_row``)."""
    origin = doc.get("openmrsData") or {}
    if not needs_own_row(doc) or not origin.get("hospitalId") or not origin.get("uuid"):
        return None
    return own_row_id(str(origin["hospitalId"]), str(origin.get("source")), str(origin["uuid"]))


def _render_version(doc: Mapping[str, Any]) -> Any:
    return (doc.get("openmrsData") or {}).get("renderVersion")


# What is read of a record to decide whether to rewrite it.
RECORD_STATE_FIELDS = {
    "patientId": 1,
    "type": 1,
    "data": 1,
    "syncDate": 1,
    "openmrsData.contentDigest": 1,
    "openmrsData.renderVersion": 1,
    "openmrsData.syncedFields": 1,
    # Reconciliation: a record moved to another encounter leaves the old one's visit record stale.
    "openmrsData.encounterUuid": 1,
}


def unchanged_record(existing: Mapping[str, Any], doc: Mapping[str, Any]) -> bool:
    """True when the OpenMRS row gives the same record as when it was last written, so a doctor's
    edit of the record in the app stands: the digests of what the sync wrote (rendering version
    included) are equal. A record written before digests existed: every field the sync owns
    already holds the value it would write, and no ``data`` field it wrote is one it no longer
    writes."""
    openmrs = existing.get("openmrsData") or {}
    stored = openmrs.get("contentDigest")
    if stored is not None:
        # The version too: a record missing it would be picked up for re-rendering every run.
        same_version = openmrs.get("renderVersion") == (doc.get("openmrsData") or {}).get("renderVersion")
        return bool(stored == doc["openmrsData"].get("contentDigest")) and same_version
    data = existing.get("data") or {}
    return (
        existing.get("patientId") == doc["patientId"]
        and existing.get("type") == doc["type"]
        and _render_version(existing) == _render_version(doc)
        and _naive_utc(existing.get("syncDate")) == _naive_utc(doc.get("syncDate"))
        and all(data.get(k) == v for k, v in doc["data"].items())
        and not any(k in data for k in stale_data_keys(existing, doc))
    )


def _naive_utc(value: Any) -> Any:
    """MongoDB keeps milliseconds of UTC and hands back naive datetimes: compare on those terms."""
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value.replace(microsecond=value.microsecond // 1000 * 1000)
    return value


def _doctor_additions(old: Mapping[str, Any], new_data: Mapping[str, Any]) -> dict[str, Any]:
    """The ``data`` fields a doctor added to ``old`` in the app that its replacement lacks.

    Fields the sync owned on the old version are OpenMRS's and are not carried (the new version
    says what they are now). A list both have (``medications``) gets the old entries it lacks.
    """
    data = old.get("data") or {}
    synced = (old.get("openmrsData") or {}).get("syncedFields")
    added = {k: v for k, v in data.items() if k not in synced} if synced is not None else {}
    if synced is None and "medications" in data:
        added["medications"] = data["medications"]  # written before the sync listed its fields
    carried: dict[str, Any] = {}
    for key, value in added.items():
        if key not in new_data:
            carried[f"data.{key}"] = value
        elif isinstance(value, list) and isinstance(new_data[key], list):
            extra = [v for v in value if v not in new_data[key]]
            if extra:
                carried[f"data.{key}"] = [*new_data[key], *extra]
    return carried


def stale_data_keys(existing: Mapping[str, Any], doc: Mapping[str, Any]) -> list[str]:
    """``data`` fields the sync wrote into ``existing`` (``openmrsData.syncedFields``) that the new
    version of the record no longer has: an order active again has no end date. Fields a doctor
    added in the app were never the sync's and are never listed."""
    written = (existing.get("openmrsData") or {}).get("syncedFields")
    if written is None:
        # Written before the sync listed its fields (an older rendering): the fields it writes.
        written = [k for k in (existing.get("data") or {}) if k in OPENMRS_DATA_FIELDS]
    return sorted(set(written) - set(doc["data"]))


class Records(Concern):
    def __init__(self, gateway: MongoGateway, *, patients: Patients, parked: Parked, encounters: Encounters) -> None:
        super().__init__(gateway)
        self._patients = patients
        self._parked = parked
        self._encounters = encounters

    def apply(
        self, batch: BatchWrite, now: datetime, *, hospital_id: str | None = None, keep_encounters: bool = True
    ) -> BatchOutcome:
        """Write one batch. Returns only after MongoDB acknowledged every part of it.

        With ``hospital_id``, the encounters the batch touched are found (``outcome.encounters``)
        and, unless ``keep_encounters`` is false (the caller keeps them with its checkpoint),
        remembered in ``openmrs_sync_encounters`` (in the same call, so a crash cannot lose them)
        until their derived records are rebuilt.
        """
        outcome = BatchOutcome()
        if hospital_id is not None:
            outcome.encounters = self._encounters_of(batch)
        allergy_patients: set[str] = set()
        if batch.records:
            fresh = self._insert(batch.records, now, outcome)
            self._patients.link(batch.records, fresh)
        if batch.upserts:
            allergy_patients |= self._upsert(batch.upserts, now, outcome, batch.existing)
            self._patients.link(batch.upserts)
        if batch.patches:
            self._patch(batch.patches, now, outcome)
        if batch.removals:
            allergy_patients |= self._remove(batch.removals, now, outcome)
        if allergy_patients:
            self._patients.sync_allergies(allergy_patients)
        if batch.parks:
            self._parked.park(batch.parks, now)
        if batch.unparks:
            self._parked.unpark(batch.unparks)
        if hospital_id is not None and keep_encounters and outcome.encounters:
            self._encounters.mark_due(hospital_id, outcome.encounters)
        return outcome

    def _patch(self, patches: list[tuple[ObjectId, dict[str, Any]]], now: datetime, outcome: BatchOutcome) -> None:
        ops = [
            UpdateOne(
                {"_id": rid},
                {
                    # A field patched to None is one the record no longer has (an emptied list).
                    "$set": {**{k: v for k, v in fields.items() if v is not None}, "updatedAt": now},
                    **({"$unset": {k: "" for k, v in fields.items() if v is None}} if None in fields.values() else {}),
                    "$addToSet": {
                        "openmrsData.syncedFields": {
                            # data.medications is the sync's only in part (openmrsData.syncedMedications)
                            "$each": [
                                k.removeprefix("data.")
                                for k in fields
                                if k.startswith("data.") and k != "data.medications"
                            ]
                        }
                    },
                },
            )
            for rid, fields in patches
        ]
        result = self._gw.call("updating records", lambda: self._db[RECORDS].bulk_write(ops, ordered=False))
        outcome.updated += result.modified_count

    def _encounters_of(self, batch: BatchWrite) -> set[str]:
        """The encounters of every record the batch writes or changes."""
        found = {d["openmrsData"].get("encounterUuid") for d in [*batch.records, *batch.upserts]}
        # Removed records are read before they go (see _remove); patches are rare.
        ids = [rid for rid, _ in batch.patches]
        if ids:
            found |= set(
                self._gw.call(
                    "reading encounters of changed records",
                    lambda: self._db[RECORDS].distinct("openmrsData.encounterUuid", {"_id": {"$in": ids}}),
                )
            )
        return {str(u) for u in found if u}

    def _insert(self, records: list[dict[str, Any]], now: datetime, outcome: BatchOutcome) -> set[ObjectId]:
        """Insert new records; returns the ids this call inserted (the others were there)."""

        def insert() -> set[ObjectId]:
            try:
                self._db[RECORDS].insert_many(records, ordered=False)
                return set()
            except BulkWriteError as exc:
                errors = exc.details.get("writeErrors", [])
                fatal = [e for e in errors if e.get("code") != DUPLICATE_KEY]
                if fatal:
                    raise SinkError(
                        f"MongoDB refused {len(fatal)} record(s): {fatal[0].get('errmsg', '')[:200]}"
                    ) from None
                return {records[e["index"]]["_id"] for e in errors}

        duplicates = self._gw.call("writing records", insert)
        outcome.written += len(records) - len(duplicates)
        outcome.already_present += len(duplicates)
        if duplicates:
            self._reassign_moved(records, duplicates, now, outcome)
        return {r["_id"] for r in records} - duplicates

    def _upsert(
        self,
        docs: list[dict[str, Any]],
        now: datetime,
        outcome: BatchOutcome,
        known: dict[ObjectId, dict[str, Any]] | None = None,
    ) -> set[str]:
        """Insert or update records field by field: fields a doctor added in the app (such as
        ``data.medications``) are never touched. Returns the patients whose allergies changed."""
        ids = [d["_id"] for d in docs]
        existing = (
            known
            if known is not None
            else {
                e["_id"]: e
                for e in self._gw.call(
                    "checking existing records",
                    lambda: list(self._db[RECORDS].find({"_id": {"$in": ids}}, RECORD_STATE_FIELDS)),
                )
            }
        )
        ops = []
        moved: list[tuple[Any, ObjectId]] = []
        allergy_patients: set[str] = set()
        # A record's row of its own is derived, like visit records: not counted as written.
        own_rows = {d["_id"] for d in docs if d["openmrsData"].get("source") == OWN_ROW_SOURCE}
        own_rows_changed = 0
        for doc in docs:
            if doc["openmrsData"].get("source") == "allergy":
                # Always re-applied: a crash may have come between the record and the list.
                allergy_patients.add(doc["patientId"])
            old = existing.get(doc["_id"])
            if old is not None and unchanged_record(old, doc):
                outcome.already_present += 0 if doc["_id"] in own_rows else 1
                continue
            own_rows_changed += 1 if old is not None and doc["_id"] in own_rows else 0
            fields = {f"data.{k}": v for k, v in doc["data"].items()}
            # openmrsData too, field by field: it also holds what the sync put into data.medications.
            fields.update({f"openmrsData.{k}": v for k, v in doc["openmrsData"].items()})
            fields.update(patientId=doc["patientId"], type=doc["type"], syncDate=doc["syncDate"], updatedAt=now)
            on_insert = {k: doc[k] for k in ("createdBy", "editableBy", "createdAt", "__v")}
            update: dict[str, Any] = {"$set": fields, "$setOnInsert": on_insert}
            stale = stale_data_keys(old, doc) if old is not None else []
            if stale:
                update["$unset"] = {f"data.{k}": "" for k in stale}
            ops.append(UpdateOne({"_id": doc["_id"]}, update, upsert=True))
            old_patient = old.get("patientId") if old else None
            if isinstance(old_patient, str) and old_patient != doc["patientId"] and ObjectId.is_valid(old_patient):
                moved.append((old_patient, doc["_id"]))
                outcome.reassigned += 1
                allergy_patients.add(old_patient)
        if ops:
            result = self._gw.call("writing records", lambda: self._db[RECORDS].bulk_write(ops, ordered=False))
            upserted = (result.upserted_ids or {}).values()
            outcome.written += len([rid for rid in upserted if rid not in own_rows])
            outcome.updated += max(0, result.modified_count - own_rows_changed)
            outcome.already_present += result.matched_count - result.modified_count
        self._patients.unlink("unlinking moved records", moved)
        return allergy_patients

    def _reassign_moved(
        self, records: list[dict[str, Any]], duplicates: set[ObjectId], now: datetime, outcome: BatchOutcome
    ) -> None:
        """An existing record whose patient differs now (OpenMRS identifier corrected) follows the
        observation to its right patient; nothing else of the record is touched."""
        wanted = {r["_id"]: r["patientId"] for r in records if r["_id"] in duplicates}
        existing = self._gw.call(
            "checking existing records",
            lambda: list(self._db[RECORDS].find({"_id": {"$in": list(wanted)}}, {"patientId": 1})),
        )
        moves = [
            (d["_id"], d.get("patientId"), wanted[d["_id"]]) for d in existing if d.get("patientId") != wanted[d["_id"]]
        ]
        if not moves:
            return
        ops = [UpdateOne({"_id": rid}, {"$set": {"patientId": new, "updatedAt": now}}) for rid, _, new in moves]
        self._gw.call("moving records", lambda: self._db[RECORDS].bulk_write(ops, ordered=False))
        self._patients.unlink("unlinking moved records", [(old, rid) for rid, old, _ in moves])
        outcome.reassigned += len(moves)

    def _remove(
        self, removals: list[tuple[ObjectId, dict[str, Any]]], now: datetime, outcome: BatchOutcome
    ) -> set[str]:
        """Voided in OpenMRS: the patient stops seeing it; a copy goes to the audit trail."""
        reasons = dict(removals)
        docs = self._gw.call(
            "reading records to remove",
            lambda: list(self._db[RECORDS].find({"_id": {"$in": list(reasons)}})),
        )
        if not docs:
            return set()
        self._carry_doctor_additions(docs, reasons, now)
        trail = [
            UpdateOne(
                {"_id": d["_id"]},
                {"$set": {"record": d, "removedAt": now, **reasons[d["_id"]]}},
                upsert=True,
            )
            for d in docs
        ]
        self._gw.call("keeping removed records", lambda: self._db[REMOVED].bulk_write(trail, ordered=False))
        ids = [d["_id"] for d in docs]
        result = self._gw.call("removing records", lambda: self._db[RECORDS].delete_many({"_id": {"$in": ids}}))
        self._patients.unlink("unlinking removed records", [(d.get("patientId"), d["_id"]) for d in docs])
        # Rows of their own are derived, like visit records: not counted.
        derived = sum(1 for d in docs if (d.get("openmrsData") or {}).get("source") == OWN_ROW_SOURCE)
        outcome.removed += max(0, result.deleted_count - derived)
        # A record's row of its own goes with it, whichever way it goes (parked again, purged
        # from OpenMRS; a void or an edit names it already).
        orphans = [rid for rid in map(_own_row_of, docs) if rid is not None and rid not in reasons]
        if orphans:
            query = {"_id": {"$in": orphans}}
            self._gw.call("removing rows of their own", lambda: self._db[RECORDS].delete_many(query))
        outcome.encounters |= {str(e) for d in docs if (e := (d.get("openmrsData") or {}).get("encounterUuid"))}
        return {d["patientId"] for d in docs if d.get("openmrsData", {}).get("source") == "allergy"}

    def _carry_doctor_additions(
        self, docs: list[dict[str, Any]], reasons: Mapping[ObjectId, Mapping[str, Any]], now: datetime
    ) -> None:
        """An edited OpenMRS row replaced by a new version: what a doctor added to the old
        record in the app (``data.medications``, notes, ...) moves to the new record."""
        successors: dict[ObjectId, dict[str, Any]] = {}
        for doc in docs:
            info = reasons[doc["_id"]]
            origin = doc.get("openmrsData") or {}
            if info.get("reason") == "replaced" and info.get("replacedBy") and origin.get("hospitalId"):
                successors[record_id(origin["hospitalId"], origin.get("source", "obs"), info["replacedBy"])] = doc
        if not successors:
            return
        found = self._gw.call(
            "reading replacing records",
            lambda: list(self._db[RECORDS].find({"_id": {"$in": list(successors)}}, {"data": 1})),
        )
        ops = []
        for new in found:
            carried = _doctor_additions(successors[new["_id"]], new.get("data") or {})
            if carried:
                ops.append(UpdateOne({"_id": new["_id"]}, {"$set": {**carried, "updatedAt": now}}))
        if ops:
            self._gw.call("carrying doctors' additions", lambda: self._db[RECORDS].bulk_write(ops, ordered=False))

    def count_existing(self, record_ids: list[ObjectId]) -> int:
        """How many of these records exist (what removing them would remove)."""
        if not record_ids:
            return 0
        return self._gw.call(
            "counting records", lambda: self._db[RECORDS].count_documents({"_id": {"$in": record_ids}})
        )

    def any_of(self, hospital_id: str) -> bool:
        """Whether the hospital has any record in the Passport."""
        found = self._gw.call(
            "asking whether records exist",
            lambda: self._db[RECORDS].find_one({"openmrsData.hospitalId": hospital_id}, {"_id": 1}),
        )
        return found is not None

    def stale(self, hospital_id: str, version: int, after: ObjectId | None, limit: int) -> list[dict[str, Any]]:
        """Records of a hospital rendered by an earlier (or no) rendering version, in ``_id`` order."""
        query: dict[str, Any] = {
            "openmrsData.hospitalId": hospital_id,
            "openmrsData.renderVersion": {"$not": {"$gte": version}},
        }
        if after is not None:
            query["_id"] = {"$gt": after}
        fields = {f"openmrsData.{k}": 1 for k in ("source", "obsId", "sourceId", "encounterUuid")}
        return self._gw.call(
            "reading records of an earlier rendering",
            lambda: list(self._db[RECORDS].find(query, fields).sort("_id", 1).limit(limit)),
        )

    def count(self, hospital_id: str) -> int:
        return self._gw.call(
            "counting records",
            # Records of OpenMRS rows: the visit records derived from encounters are not counted.
            lambda: self._db[RECORDS].count_documents(
                {"openmrsData.hospitalId": hospital_id, "openmrsData.source": {"$nin": list(DERIVED_SOURCES)}}
            ),
        )

    def states(self, ids: Iterable[ObjectId]) -> dict[ObjectId, dict[str, Any]]:
        """What the Passport holds now for these records: owner, type and data (a projection)."""
        wanted = list(ids)
        if not wanted:
            return {}
        docs = self._gw.call(
            "reading records to compare",
            lambda: list(self._db[RECORDS].find({"_id": {"$in": wanted}}, RECORD_STATE_FIELDS)),
        )
        return {d["_id"]: d for d in docs}

    def of_rows(self, hospital_id: str, source: str, pks: Iterable[int]) -> dict[int, list[ObjectId]]:
        """The records of these rows of one source (by primary key), for rows gone from OpenMRS.
        Observations are found through the app's index on ``openmrsData.obsId``; the clinical
        sources (rarely purged) through the hospital and source prefix of ours."""
        wanted = sorted(set(pks))
        if not wanted:
            return {}
        key = "openmrsData.obsId" if source == "obs" else "openmrsData.sourceId"
        query = {key: {"$in": wanted}, "openmrsData.hospitalId": hospital_id, "openmrsData.source": source}
        docs = self._gw.call(
            "reading records of purged rows",
            lambda: list(self._db[RECORDS].find(query, {"openmrsData.obsId": 1, "openmrsData.sourceId": 1})),
        )
        found: dict[int, list[ObjectId]] = {}
        for doc in docs:
            origin = doc.get("openmrsData") or {}
            pk = origin.get("obsId") if source == "obs" else origin.get("sourceId")
            found.setdefault(int(pk or 0), []).append(doc["_id"])
        return found

    def owners(self, hospital_id: str, person_ids: Iterable[int]) -> dict[int, set[str]]:
        """The Passport patients holding records of each OpenMRS person of this hospital."""
        wanted = sorted(set(person_ids))
        owners: dict[int, set[str]] = {pid: set() for pid in wanted}
        if not wanted:
            return owners
        # A range, not $in: persons come a range at a time, and a range is served by the index on
        # every server (SecantusDB scans the collection for $in).
        span = {"$gte": wanted[0], "$lte": wanted[-1]}
        docs = self._gw.call(
            "reading record owners",
            lambda: list(
                self._db[RECORDS].find(
                    {"openmrsData.hospitalId": hospital_id, "openmrsData.personId": span},
                    {"patientId": 1, "openmrsData.personId": 1},
                )
            ),
        )
        for doc in docs:
            person = int(doc["openmrsData"]["personId"])
            if person in owners:
                owners[person].add(str(doc.get("patientId")))
        return owners

    def persons_on(self, hospital_id: str, patient_ids: Iterable[str]) -> set[int]:
        """The OpenMRS persons of this hospital whose records are on these patients."""
        wanted = sorted(set(patient_ids))
        if not wanted:
            return set()
        found = self._gw.call(
            "reading persons on patients",
            lambda: self._db[RECORDS].distinct(
                "openmrsData.personId", {"openmrsData.hospitalId": hospital_id, "patientId": {"$in": wanted}}
            ),
        )
        return {int(p) for p in found if isinstance(p, int)}

    def patient_bounds(self, hospital_id: str) -> tuple[str, str] | None:
        """The lowest and the highest patient id this hospital's records point to (None: no record)."""
        query = {"openmrsData.hospitalId": hospital_id, "patientId": {"$type": "string"}}

        def first(direction: int) -> list[dict[str, Any]]:
            return list(self._db[RECORDS].find(query, {"patientId": 1}).sort("patientId", direction).limit(1))

        low = self._gw.call("reading the lowest patient of records", lambda: first(1))
        high = self._gw.call("reading the highest patient of records", lambda: first(-1))
        if not low or not high:
            return None
        return str(low[0]["patientId"]), str(high[0]["patientId"])

    def patients_between(self, hospital_id: str, first: str, last: str) -> set[str]:
        """The patients from ``first`` to ``last`` (both included) this hospital's records point to:
        a range on the app's index on ``patientId``."""
        found = self._gw.call(
            "reading patients of records",
            lambda: self._db[RECORDS].distinct(
                "patientId", {"openmrsData.hospitalId": hospital_id, "patientId": {"$gte": first, "$lte": last}}
            ),
        )
        return {str(p) for p in found}
