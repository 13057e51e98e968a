"""The app's documents a synced record points at, created app-valid when missing
(``store.placeholders``): the hospital, its user, and a doctor (with its user) per provider."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import bcrypt
from bson import ObjectId
from pymongo import UpdateOne
from pymongo.errors import BulkWriteError

from passport_sync.config import HospitalConfig
from passport_sync.mapping.transform import placeholder_id
from passport_sync.models import Provider
from passport_sync.sink.gateway import DOCTORS, DUPLICATE_KEY, HOSPITALS, USERS, Concern, MongoGateway
from passport_sync.writes import HospitalRefs


def unusable_password() -> str:
    """A bcrypt hash (cost 12, as the app's own hook) of a secret that is discarded at once:
    nobody can log in as the user that holds it."""
    return bcrypt.hashpw(secrets.token_urlsafe(32).encode(), bcrypt.gensalt(rounds=12)).decode()


def app_user(user_id: ObjectId, name: str, email: str, role: str, password: str, now: datetime) -> dict[str, Any]:
    """A ``users`` document as the app's User model stores one (its validators and defaults)."""
    name = name.strip()[:50]
    if len(name) < 2:
        name = f"{name} (OpenMRS)"[:50]
    return {
        "_id": user_id,
        "name": name,
        "email": email.lower(),
        "password": password,
        "role": role,
        "isActive": True,
        "isEmailVerified": False,
        "avatar": None,
        "lastLogin": None,
        "createdAt": now,
        "updatedAt": now,
        "__v": 0,
    }


def _email_local(*parts: str) -> str:
    # The app's validator: ^\w+([.-]?\w+)*@… so only single separators between word characters.
    return ".".join(re.sub(r"[^a-z0-9]+", "", p.lower())[:32] or "x" for p in parts)


class Placeholders(Concern):
    def __init__(self, gateway: MongoGateway, email_domain: str) -> None:
        super().__init__(gateway)
        self._email_domain = email_domain
        self._password_hash: str | None = None

    def _password(self) -> str:
        # One hash per store: bcrypt at cost 12 is slow on purpose.
        if self._password_hash is None:
            self._password_hash = unusable_password()
        return self._password_hash

    def _user(self, user_id: ObjectId, name: str, email: str, role: str, now: datetime) -> dict[str, Any]:
        return app_user(user_id, name, email, role, self._password(), now)

    def hospital_oid(self, hospital: HospitalConfig) -> ObjectId:
        if ObjectId.is_valid(hospital.id) and len(hospital.id) == 24:
            return ObjectId(hospital.id)
        return placeholder_id("hospital", hospital.id)

    def ensure_hospital(self, hospital: HospitalConfig, now: datetime) -> HospitalRefs:
        """The hospital document, created app-valid if missing."""
        oid = self.hospital_oid(hospital)
        found = self._gw.call("hospital lookup", lambda: self._db[HOSPITALS].find_one({"_id": oid}, {"user": 1}))
        user_id = placeholder_id("hospital-user", hospital.id)
        if found is not None and isinstance(found.get("user"), ObjectId):
            user_id = found["user"]
        if found is None:
            user = self._user(
                user_id,
                hospital.name,
                f"{_email_local('openmrs', 'hospital', hospital.id)}@{self._email_domain}",
                "hospital",
                now,
            )
            doc = {
                "_id": oid,
                "user": user_id,
                "name": hospital.name,
                "address": "Not recorded (created by passport-sync)",
                "contact": "Not recorded",
                "licenseNumber": f"OPENMRS-{re.sub(r'[^A-Za-z0-9]+', '-', hospital.id)}".upper(),
                "doctors": [],
                "patients": [],
                "openmrsUuid": None,
                "status": "active",
                "createdAt": now,
                "updatedAt": now,
                "__v": 0,
            }
            self._upsert_new(USERS, [user])
            self._upsert_new(HOSPITALS, [doc])
        return HospitalRefs(oid, user_id)

    def _upsert_new(self, collection: str, docs: Sequence[Mapping[str, Any]]) -> None:
        """Create each document unless it exists (same deterministic ``_id``): nothing present is changed."""

        def write() -> None:
            ops = [UpdateOne({"_id": d["_id"]}, {"$setOnInsert": dict(d)}, upsert=True) for d in docs]
            try:
                self._db[collection].bulk_write(ops, ordered=False)
            except BulkWriteError as exc:
                # Created a moment ago by a concurrent run (same deterministic _id) or already present.
                fatal = [e for e in exc.details.get("writeErrors", []) if e.get("code") != DUPLICATE_KEY]
                if fatal:
                    raise

        self._gw.call(f"creating a {collection} placeholder", write)

    def doctor_users(
        self, hospital: HospitalConfig, hospital_oid: ObjectId, providers: Iterable[Provider], now: datetime
    ) -> dict[str, str]:
        """The ``users._id`` (24-hex) of the doctor for each provider uuid, creating placeholders.

        A doctor is found by ``openmrsProviderUuid``; a provider unknown to the app becomes a
        placeholder user (role doctor) and doctor. The key ``""`` is the hospital's no-provider
        doctor.
        """
        wanted = {p.uuid: p for p in providers}
        if not wanted:
            return {}
        lookup_uuids = [u or f"no-provider:{hospital.id}" for u in wanted]
        found = self._gw.call(
            "doctor lookup",
            lambda: list(
                self._db[DOCTORS].find(
                    {"openmrsProviderUuid": {"$in": lookup_uuids}}, {"user": 1, "hospital": 1, "openmrsProviderUuid": 1}
                )
            ),
        )
        by_uuid: dict[str, str] = {}
        for doc in sorted(found, key=lambda d: (d.get("hospital") != hospital_oid, str(d["_id"]))):
            by_uuid.setdefault(doc["openmrsProviderUuid"], str(doc["user"]))
        missing = {
            key: provider
            for provider_uuid, provider in wanted.items()
            if (key := provider_uuid or f"no-provider:{hospital.id}") not in by_uuid
        }
        by_uuid.update(self._create_doctors(hospital, hospital_oid, missing, now))
        return {u: by_uuid[u or f"no-provider:{hospital.id}"] for u in wanted}

    def _create_doctors(
        self, hospital: HospitalConfig, hospital_oid: ObjectId, providers: Mapping[str, Provider], now: datetime
    ) -> dict[str, str]:
        """A placeholder user and doctor for each provider key, and the hospital's link to them:
        three commands for any number of providers. Returns the user id of each key."""
        if not providers:
            return {}
        users: list[dict[str, Any]] = []
        doctors: list[dict[str, Any]] = []
        for key, provider in providers.items():
            user_id = placeholder_id("doctor-user", hospital.id, key)
            name = provider.display_name if provider.uuid == "" else f"Dr. {provider.display_name}"
            email = f"{_email_local('openmrs', hospital.id, key)}@{self._email_domain}"
            users.append(self._user(user_id, name, email, "doctor", now))
            doctors.append(
                {
                    "_id": placeholder_id("doctor", hospital.id, key),
                    "user": user_id,
                    "licenseNumber": f"OPENMRS-{re.sub(r'[^A-Za-z0-9]+', '', key)}".upper()[:64],
                    "specialization": "General Practice",
                    "hospital": hospital_oid,
                    "patients": [],
                    "openmrsProviderUuid": key,
                    "isActive": True,
                    "createdAt": now,
                    "updatedAt": now,
                    "__v": 0,
                }
            )
        self._upsert_new(USERS, users)
        self._upsert_new(DOCTORS, doctors)
        doctor_ids = [d["_id"] for d in doctors]
        self._gw.call(
            "linking the placeholder doctor",
            lambda: self._db[HOSPITALS].update_one(
                {"_id": hospital_oid}, {"$addToSet": {"doctors": {"$each": doctor_ids}}}
            ),
        )
        return {d["openmrsProviderUuid"]: str(d["user"]) for d in doctors}
