"""Where each hospital's sync and reconciliation stand (``store.checkpoints``): the checkpoint in
the app's ``syncstatus``, the reconcile state and the per-range checksums of the last pass."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import pymongo

from passport_sync.sink.gateway import CHECKSUMS, RECONCILE, SYNCSTATUS, Concern


def _checksum_key(hospital_id: str, feed: str, index: int) -> str:
    # Zero-padded so that one _id range query returns a run of ranges in order.
    return f"{hospital_id}:{feed}:{index:012d}"


class Checkpoints(Concern):
    def load(self, hospital_id: str) -> dict[str, Any] | None:
        return self._gw.call(
            "reading the checkpoint", lambda: self._db[SYNCSTATUS].find_one({"hospitalId": hospital_id})
        )

    def save(self, hospital_id: str, fields: Mapping[str, Any], now: datetime) -> None:
        """One document per hospital in ``syncstatus``; ``lastSyncTime`` as the seed kept it."""
        update = {"$set": {**fields, "hospitalId": hospital_id, "lastSyncTime": now}}
        self._gw.call(
            "saving the checkpoint",
            lambda: self._db[SYNCSTATUS].update_one({"hospitalId": hospital_id}, update, upsert=True),
        )

    def save_backlog(self, hospital_id: str, backlog: Mapping[str, Any]) -> None:
        """The rows a run left waiting in OpenMRS, as it counted them at its end: what ``check``
        reads, from MongoDB alone, on a host that cannot (or must not) reach OpenMRS."""
        self._gw.call(
            "saving the backlog",
            lambda: self._db[SYNCSTATUS].update_one({"hospitalId": hospital_id}, {"$set": {"backlog": dict(backlog)}}),
        )

    def delete(self, hospital_id: str) -> int:
        result = self._gw.call(
            "resetting the checkpoint", lambda: self._db[SYNCSTATUS].delete_many({"hospitalId": hospital_id})
        )
        return result.deleted_count

    def load_with_owner(
        self, hospital_id: str, database: str, fingerprint: str | None
    ) -> tuple[dict[str, Any] | None, str | None]:
        """This hospital's checkpoint, and another hospital id whose checkpoint was kept for this
        OpenMRS database (the same fingerprint, or the same server and database when a fingerprint
        is missing), in one query."""
        either: list[dict[str, Any]] = [{"hospitalId": hospital_id}, {"sourceDatabase": database}]
        if fingerprint:
            either.append({"sourceFingerprint": fingerprint})
        docs = self._gw.call("reading the checkpoint", lambda: list(self._db[SYNCSTATUS].find({"$or": either})))
        own = next((d for d in docs if d.get("hospitalId") == hospital_id), None)
        return own, _other_owner(docs, hospital_id, database, fingerprint)

    def remember_database(self, hospital_id: str, database: str, fingerprint: str | None) -> None:
        fields: dict[str, Any] = {"sourceDatabase": database}
        if fingerprint:
            fields["sourceFingerprint"] = fingerprint
        self._gw.call(
            "saving the database fingerprint",
            lambda: self._db[SYNCSTATUS].update_one(
                {"hospitalId": hospital_id}, {"$set": {**fields, "hospitalId": hospital_id}}, upsert=True
            ),
        )

    def reconcile_state(self, hospital_id: str) -> dict[str, Any]:
        found = self._gw.call("reading the reconcile state", lambda: self._db[RECONCILE].find_one({"_id": hospital_id}))
        return found or {}

    def save_reconcile_state(self, hospital_id: str, fields: Mapping[str, Any]) -> None:
        self._gw.call(
            "saving the reconcile state",
            lambda: self._db[RECONCILE].update_one({"_id": hospital_id}, {"$set": dict(fields)}, upsert=True),
        )

    def stored_checksums(self, hospital_id: str, feed: str, first: int, last: int) -> dict[int, dict[str, Any]]:
        """The checksums kept by the last pass for ranges ``first..last`` of one source."""
        low, high = _checksum_key(hospital_id, feed, first), _checksum_key(hospital_id, feed, last)
        docs = self._gw.call(
            "reading checksums", lambda: list(self._db[CHECKSUMS].find({"_id": {"$gte": low, "$lte": high}}))
        )
        return {int(d["index"]): d for d in docs}

    def save_checksums(self, hospital_id: str, feed: str, ranges: Mapping[int, Mapping[str, Any] | None]) -> None:
        """Keep each range's checksum (None: the range is empty now, forget it)."""
        ops: list[Any] = []
        for index, values in ranges.items():
            key = _checksum_key(hospital_id, feed, index)
            if values is None:
                ops.append(pymongo.DeleteOne({"_id": key}))
            else:
                doc = {"hospitalId": hospital_id, "feed": feed, "index": index, **values}
                ops.append(pymongo.ReplaceOne({"_id": key}, doc, upsert=True))
        if ops:
            self._gw.call("saving checksums", lambda: self._db[CHECKSUMS].bulk_write(ops, ordered=False))


def _other_owner(docs: list[dict[str, Any]], hospital_id: str, database: str, fingerprint: str | None) -> str | None:
    for doc in sorted(docs, key=lambda d: str(d.get("hospitalId"))):
        if doc.get("hospitalId") == hospital_id:
            continue
        theirs = doc.get("sourceFingerprint")
        if (fingerprint and theirs == fingerprint) or (
            doc.get("sourceDatabase") == database and not (fingerprint and theirs)
        ):
            return str(doc["hospitalId"])
    return None
