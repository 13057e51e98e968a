"""Patients registered in Patient Passport the way the app stores them (a ``users`` document and a
``patients`` document pointing at it), for the tests and the benchmark."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from bson import ObjectId

from passport_sync.sink.indexes import APP_INDEXES
from passport_sync.synthetic.population import FAMILY, GIVEN, Population

# Inserted in batches of this many documents: one round trip each, well under the 16 MB limit.
_BATCH = 1000


def registration(
    national_id: str,
    *,
    name: str,
    user_id: ObjectId,
    patient_id: ObjectId,
    date_of_birth: datetime,
    gender: str,
    now: datetime,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ``users`` and ``patients`` documents of one registered patient."""
    user = {
        "_id": user_id,
        "name": name,
        "email": f"p{user_id}@example.org",
        "password": "$2b$12$" + "x" * 53,
        "role": "patient",
        "createdAt": now,
        "updatedAt": now,
    }
    patient = {
        "_id": patient_id,
        "user": user_id,
        "nationalId": national_id,
        "dateOfBirth": date_of_birth,
        "gender": gender,
        "contactNumber": "+250788000000",
        "address": "Kigali",
        "emergencyContact": {"name": "A", "relationship": "sibling", "phone": "+250788000001"},
        "allergies": [],
        "medicalHistory": [],
        "createdAt": now,
        "updatedAt": now,
    }
    return user, patient


def register_patient(db: Any, national_id: str, name: str = "Marie Reine") -> str:
    """Register one patient (born 1980-01-01, female); returns its ``patients._id``."""
    user, patient = registration(
        national_id,
        name=name,
        user_id=ObjectId(),
        patient_id=ObjectId(),
        date_of_birth=datetime(1980, 1, 1),
        gender="female",
        now=datetime.now(UTC),
    )
    db.users.insert_one(user)
    db.patients.insert_one(patient)
    return str(patient["_id"])


def _oid(*parts: object, created: datetime = datetime(2025, 1, 1, tzinfo=UTC)) -> ObjectId:
    """A stable id that, like the app's own, starts with the second it was created."""
    seconds = int(created.timestamp()).to_bytes(4, "big")
    return ObjectId(seconds + hashlib.sha256(":".join(map(str, parts)).encode()).digest()[:8])


def create_app_indexes(db: Any) -> None:
    """The indexes the app builds at startup (its Mongoose models), as a real Patient Passport has them."""
    for index in APP_INDEXES:
        options = {"unique": True} if index.unique else {}
        if index.sparse:
            options["sparse"] = True
        db[index.collection].create_index(list(index.key), name=index.name, **options)


def register_population(db: Any, population: Population) -> int:
    """Register the registered people of ``population`` (stable ids, birth year and sex from the
    national ID) in a Patient Passport with the app's indexes; returns how many."""
    create_app_indexes(db)
    now = datetime(2025, 1, 1, tzinfo=UTC)
    users: list[dict[str, Any]] = []
    patients: list[dict[str, Any]] = []
    for person, (nid, registered) in enumerate(zip(population.national_ids, population.registered, strict=True)):
        if not registered:
            continue
        user, patient = registration(
            nid,
            name=f"{GIVEN[person % len(GIVEN)]} {FAMILY[person % len(FAMILY)]}",
            user_id=_oid("bench-user", nid),
            patient_id=_oid("bench-patient", nid),
            date_of_birth=datetime(int(nid[1:5]), 1, 1),
            gender="female" if nid[5] == "7" else "male",
            now=now,
        )
        users.append(user)
        patients.append(patient)
    for start in range(0, len(users), _BATCH):
        db.users.insert_many(users[start : start + _BATCH], ordered=False)
        db.patients.insert_many(patients[start : start + _BATCH], ordered=False)
    return len(patients)
