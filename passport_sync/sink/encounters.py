"""Encounters whose derived (visit) record is due to be rebuilt, kept in ``openmrs_sync_encounters``
(``store.encounters``), and the records such a rebuild starts from."""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial
from typing import Any

from pymongo import UpdateOne

from passport_sync.sink.gateway import ENCOUNTERS_DUE, ONE_REPLY, RECORDS, Concern

ENCOUNTERS_PER_READ = 100


class Encounters(Concern):
    def mark_due(self, hospital_id: str, uuids: Iterable[str]) -> None:
        ops = [
            UpdateOne(
                {"_id": f"{hospital_id}:{u}"}, {"$set": {"hospitalId": hospital_id, "encounterUuid": u}}, upsert=True
            )
            for u in sorted(set(uuids))
        ]
        if ops:
            self._gw.call("remembering encounters", lambda: self._db[ENCOUNTERS_DUE].bulk_write(ops, ordered=False))

    def due(self, hospital_id: str, limit: int) -> list[str]:
        docs = self._gw.call(
            "reading encounters due",
            lambda: list(
                self._db[ENCOUNTERS_DUE]
                .find({"hospitalId": hospital_id}, {"encounterUuid": 1})
                .limit(limit)
                .batch_size(limit)  # one reply, not 101 documents and a getMore
            ),
        )
        return [str(d["encounterUuid"]) for d in docs]

    def done(self, hospital_id: str, uuids: Iterable[str]) -> None:
        keys = [f"{hospital_id}:{u}" for u in uuids]
        self._gw.call("forgetting encounters", lambda: self._db[ENCOUNTERS_DUE].delete_many({"_id": {"$in": keys}}))

    def records(self, hospital_id: str, uuids: Iterable[str]) -> list[dict[str, Any]]:
        """The synced records of these encounters (derived ones included)."""

        def read(chunk: list[str]) -> list[dict[str, Any]]:
            return list(
                self._db[RECORDS].find(
                    {"openmrsData.hospitalId": hospital_id, "openmrsData.encounterUuid": {"$in": chunk}},
                    {"patientId": 1, "type": 1, "data": 1, "openmrsData": 1, "syncDate": 1},
                    # As many as one 16 MB reply holds, not 101 documents and then the rest.
                    batch_size=ONE_REPLY,
                )
            )

        wanted = sorted(set(uuids))
        found: list[dict[str, Any]] = []
        # A hundred encounters a query: SecantusDB matches $in in time that grows with the square of
        # the list (a thousand at once took 10 s for 12,000 records, ten hundreds 2.6 s); mongod
        # does not mind, and pays one more command per hundred encounters.
        for start in range(0, len(wanted), ENCOUNTERS_PER_READ):
            chunk = wanted[start : start + ENCOUNTERS_PER_READ]
            found += self._gw.call("reading records of encounters", partial(read, chunk))
        return found
