"""OpenMRS rows the sync could not write yet (no Passport patient, ...), kept in
``openmrs_sync_parked`` until a later run can (``store.parked``)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from pymongo import UpdateOne

from passport_sync.sink.gateway import PARKED, Concern


class Parked(Concern):
    def park(self, parks: list[dict[str, Any]], now: datetime) -> None:
        ops = [
            UpdateOne(
                {"_id": p["_id"]},
                {
                    "$set": {**{k: v for k, v in p.items() if k != "_id"}, "lastSeenAt": now},
                    "$setOnInsert": {"firstParkedAt": now},
                },
                upsert=True,
            )
            for p in parks
        ]
        self._gw.call("parking observations", lambda: self._db[PARKED].bulk_write(ops, ordered=False))

    def unpark(self, keys: Iterable[str]) -> None:
        wanted = list(keys)
        self._gw.call("unparking", lambda: self._db[PARKED].delete_many({"_id": {"$in": wanted}}))

    def ids(
        self,
        hospital_id: str,
        source: str,
        *,
        person_ids: Iterable[int] | None = None,
        reason: str | None = None,
    ) -> list[int]:
        """Primary keys (obs_id, diagnosis_id, ...) of one source's rows parked for this hospital."""
        query: dict[str, Any] = {"hospitalId": hospital_id, "source": source}
        if person_ids is not None:
            query["personId"] = {"$in": sorted(set(person_ids))}
        if reason is not None:
            query["reason"] = reason
        docs = self._gw.call(
            "reading parked rows", lambda: list(self._db[PARKED].find(query, {"sourceId": 1, "obsId": 1, "_id": 0}))
        )
        return [int(d.get("sourceId", d.get("obsId"))) for d in docs]

    def keys_of_rows(self, hospital_id: str, source: str, pks: Iterable[int]) -> list[str]:
        """The parked copies of these rows of one source (by primary key)."""
        wanted = sorted(set(pks))
        if not wanted:
            return []
        query = {"hospitalId": hospital_id, "source": source, "sourceId": {"$in": wanted}}
        docs = self._gw.call("reading parked copies", lambda: list(self._db[PARKED].find(query, {"_id": 1})))
        return [str(d["_id"]) for d in docs]

    def person_ids(self, hospital_id: str, reason: str | None = None) -> set[int]:
        """Persons of this hospital with parked observations (few: unregistered patients), or
        with rows parked for ``reason``."""
        query = {"hospitalId": hospital_id, **({"reason": reason} if reason else {})}
        ids = self._gw.call("reading parked persons", lambda: self._db[PARKED].distinct("personId", query))
        return {int(i) for i in ids}

    def any(self, hospital_id: str) -> bool:
        found = self._gw.call(
            "reading parked rows", lambda: self._db[PARKED].find_one({"hospitalId": hospital_id}, {"_id": 1})
        )
        return found is not None

    def persons_among(self, hospital_id: str, person_ids: Iterable[int]) -> set[int]:
        """Which of these persons have parked rows: one index lookup, whatever the parked history."""
        wanted = sorted(set(person_ids))
        if not wanted:
            return set()
        ids = self._gw.call(
            "reading parked persons",
            lambda: self._db[PARKED].distinct("personId", {"hospitalId": hospital_id, "personId": {"$in": wanted}}),
        )
        return {int(i) for i in ids}

    def by_reason(self, hospital_id: str) -> dict[str, int]:
        pipeline: list[dict[str, Any]] = [
            {"$match": {"hospitalId": hospital_id}},
            {"$group": {"_id": "$reason", "n": {"$sum": 1}}},
        ]
        rows = self._gw.call("counting parked observations", lambda: list(self._db[PARKED].aggregate(pipeline)))
        return {str(r["_id"]): int(r["n"]) for r in sorted(rows, key=lambda r: str(r["_id"]))}

    def count(self, hospital_id: str) -> int:
        return self._gw.call(
            "counting parked observations", lambda: self._db[PARKED].count_documents({"hospitalId": hospital_id})
        )

    def reasons(self, hospital_id: str, person_ids: Iterable[int]) -> dict[int, set[str]]:
        """Why each of these persons has parked rows (no entry: nothing parked)."""
        wanted = sorted(set(person_ids))
        if not wanted:
            return {}
        docs = self._gw.call(
            "reading parked rows",
            lambda: list(
                self._db[PARKED].find(
                    {"hospitalId": hospital_id, "personId": {"$in": wanted}}, {"personId": 1, "reason": 1}
                )
            ),
        )
        reasons: dict[int, set[str]] = defaultdict(set)
        for doc in docs:
            reasons[int(doc["personId"])].add(str(doc.get("reason")))
        return dict(reasons)
