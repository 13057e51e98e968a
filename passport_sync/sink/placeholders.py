"""The app's documents a synced record points at, created app-valid when missing
(``store.placeholders``): the hospital, its user, and a doctor (with its user) per provider."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import bcrypt
from bson import ObjectId
from pymongo.errors import DuplicateKeyError

from passport_sync.config import HospitalConfig
from passport_sync.mapping.transform import placeholder_id
from passport_sync.models import Provider
from passport_sync.sink.gateway import DOCTORS, HOSPITALS, USERS, Concern, MongoGateway
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
            self._upsert_new(USERS, user)
            self._upsert_new(HOSPITALS, doc)
        return HospitalRefs(oid, user_id)

    def _upsert_new(self, collection: str, doc: Mapping[str, Any]) -> None:

        def write() -> None:
            try:
                self._db[collection].update_one({"_id": doc["_id"]}, {"$setOnInsert": dict(doc)}, upsert=True)
            except DuplicateKeyError:
                # Created a moment ago by a concurrent run (same deterministic _id) or already present.
                pass

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
        result: dict[str, str] = {}
        for provider_uuid, provider in wanted.items():
            key = provider_uuid or f"no-provider:{hospital.id}"
            if key not in by_uuid:
                by_uuid[key] = str(self._create_doctor(hospital, hospital_oid, key, provider, now))
            result[provider_uuid] = by_uuid[key]
        return result

    def _create_doctor(
        self, hospital: HospitalConfig, hospital_oid: ObjectId, key: str, provider: Provider, now: datetime
    ) -> ObjectId:
        user_id = placeholder_id("doctor-user", hospital.id, key)
        doctor_id = placeholder_id("doctor", hospital.id, key)
        name = provider.display_name if provider.uuid == "" else f"Dr. {provider.display_name}"
        user = self._user(
            user_id, name, f"{_email_local('openmrs', hospital.id, key)}@{self._email_domain}", "doctor", now
        )
        doctor = {
            "_id": doctor_id,
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
        self._upsert_new(USERS, user)
        self._upsert_new(DOCTORS, doctor)
        self._gw.call(
            "linking the placeholder doctor",
            lambda: self._db[HOSPITALS].update_one({"_id": hospital_oid}, {"$addToSet": {"doctors": doctor_id}}),
        )
        return user_id
