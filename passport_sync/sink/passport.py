"""The Patient Passport adapter: the only module that talks to pymongo.

Collections of the app we write: ``medicalrecords``, ``patients`` (medicalHistory and
allergies), ``users``/``doctors``/``hospitals`` (placeholders), ``syncstatus``, ``auditlogs``.
Collections this tool owns: ``openmrs_sync_parked``, ``openmrs_sync_removed``,
``openmrs_sync_locks``.

Every record has a deterministic ``_id`` (see ``mapping.transform.record_id``), so a write is an
``insert`` whose duplicate-key error means "already there": no read before write, no race
between runs or hosts, and nothing a doctor added to an existing record is ever overwritten.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import socket
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import bcrypt
import pymongo
from bson import ObjectId
from pymongo import IndexModel, ReturnDocument, UpdateOne, monitoring
from pymongo.database import Database
from pymongo.errors import (
    BulkWriteError,
    ConfigurationError,
    ConnectionFailure,
    DuplicateKeyError,
    OperationFailure,
    PyMongoError,
)

from passport_sync import tracing
from passport_sync.config import HospitalConfig, RetryConfig, Settings, redact_uri
from passport_sync.errors import LockHeld, PassportSyncError, SinkError, SinkUnavailable
from passport_sync.mapping.transform import placeholder_id, record_id
from passport_sync.mapping.visits import DERIVED_SOURCES
from passport_sync.models import Provider
from passport_sync.retry import call_with_retry
from passport_sync.sink import indexes

T = TypeVar("T")
log = logging.getLogger("passport_sync")

RECORDS = "medicalrecords"
PARKED = "openmrs_sync_parked"
REMOVED = "openmrs_sync_removed"
LOCKS = "openmrs_sync_locks"
ALLERGIES = "openmrs_sync_allergies"
CHECKSUMS = "openmrs_sync_checksums"
RECONCILE = "openmrs_sync_reconcile"
ENCOUNTERS_DUE = "openmrs_sync_encounters"
SYNCSTATUS = "syncstatus"
AUDITLOGS = "auditlogs"
DUPLICATE_KEY = 11000


_NO_DNS = ("Name or service not known", "nodename nor servname", "No address associated", "getaddrinfo failed",
           "DNS", "Temporary failure in name resolution")  # fmt: skip


def _connection_cause(exc: ConnectionFailure) -> tuple[str, bool]:
    """What went wrong reaching MongoDB, in words, and whether trying again may help."""
    text = str(exc)
    if any(marker in text for marker in _NO_DNS):
        return "the host name does not resolve", False
    tls = re.search(r"certificate verify failed: [^(\]\n,]*", text) or re.search(
        r"(?:SSL|TLS)[^:\n]*: \[?[A-Z_]+\]?[^(\n,]*|tlsv1 alert [a-z ]+", text
    )
    if tls or "SSL" in text or "TLS" in text:
        detail = tls.group(0).strip() if tls else "handshake failed"
        return f"TLS failed: {detail}", False
    if "Connection refused" in text:
        return "connection refused (nothing listens on that host and port)", True
    if "timed out" in text or "Timeout" in text:
        return "no answer (timed out)", True
    return f"unreachable ({exc.__class__.__name__})", True


def translate_mongo_error(exc: BaseException, what: str, hosts: str = "") -> PassportSyncError:
    """Our exception for a pymongo error, naming the host and the cause (never credentials)."""
    if isinstance(exc, PassportSyncError):
        return exc
    at = f" at {hosts}" if hosts else ""
    if isinstance(exc, ConnectionFailure):
        cause, transient = _connection_cause(exc)
        hint = (
            "check MONGODB_URI (mongodb.uri): host, port and TLS options; and that MongoDB is running"
            if transient
            else "check MONGODB_URI (mongodb.uri): host name, tls and tlsCAFile options"
        )
        error = SinkUnavailable if transient else SinkError
        return error(f"MongoDB unreachable{at} during {what}: {cause}", hint=hint)
    if isinstance(exc, OperationFailure) and exc.code in (13, 18):
        cause = "authentication failed" if exc.code == 18 else "not authorised"
        return SinkError(
            f"MongoDB{at} refused {what}: {cause} (code {exc.code})",
            hint="check the user and password in MONGODB_URI, its authSource, and the user's roles on the database",
        )
    if isinstance(exc, ConfigurationError):
        return SinkError(f"MongoDB configuration error{at}: {exc}", hint="check MONGODB_URI")
    code = getattr(exc, "code", None)
    return SinkError(f"MongoDB{at} error during {what}: {exc.__class__.__name__} (code {code})")


def _seed_hosts(client: pymongo.MongoClient[Any]) -> str:
    return ",".join(f"{host}:{port}" for host, port in client.topology_description.server_descriptions())


_purpose = threading.local()


@contextmanager
def _commands_for(what: str) -> Iterator[None]:
    """Name the MongoDB commands sent inside the block after ``what``, for the tracer."""
    outer = getattr(_purpose, "what", "")
    _purpose.what = outer or what
    try:
        yield
    finally:
        _purpose.what = outer


class CommandTracer(monitoring.CommandListener):
    """Reports every MongoDB command to ``tracing``, named after the store call that sent it.

    pymongo calls a listener on the thread that sent the command, so the name is this thread's.
    """

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        pass

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        self._report(event.command_name, event.duration_micros)

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        self._report(event.command_name, event.duration_micros)

    @staticmethod
    def _report(command: str, micros: int) -> None:
        what = getattr(_purpose, "what", "")
        tracing.report(tracing.MONGODB, f"{what}/{command}" if what else command, micros / 1e6)


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class HospitalRefs:
    """The Patient Passport documents a hospital's records point at."""

    hospital_oid: ObjectId
    fallback_user_id: str  # the placeholder doctor's user, for obs without a provider
    fallback_doctor_name: str
    # The hospital's own ``users._id``: who the run summaries in ``auditlogs`` name.
    user_id: ObjectId | None = None


@dataclass(slots=True)
class BatchWrite:
    """Everything one batch changes in MongoDB, applied by ``PassportStore.apply``."""

    # Observations never change once written: inserted, a duplicate means "already there".
    records: list[dict[str, Any]] = field(default_factory=list)
    # Diagnoses, conditions, allergies, orders change in place: upserted field by field.
    upserts: list[dict[str, Any]] = field(default_factory=list)
    # Field updates of existing records (a discontinued order ends its order's record).
    patches: list[tuple[ObjectId, dict[str, Any]]] = field(default_factory=list)
    removals: list[tuple[ObjectId, dict[str, Any]]] = field(default_factory=list)
    parks: list[dict[str, Any]] = field(default_factory=list)
    unparks: list[str] = field(default_factory=list)
    # The upserted records as they are now, when the caller has just read them (None: read them).
    existing: dict[ObjectId, dict[str, Any]] | None = None

    def __bool__(self) -> bool:
        return bool(self.records or self.upserts or self.patches or self.removals or self.parks or self.unparks)


@dataclass(slots=True)
class BatchOutcome:
    written: int = 0
    updated: int = 0
    already_present: int = 0
    removed: int = 0
    reassigned: int = 0
    # Encounters whose records this batch wrote, changed or removed (their visit record is due).
    encounters: set[str] = field(default_factory=set)


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


def _email_local(*parts: str) -> str:
    # The app's validator: ^\w+([.-]?\w+)*@… so only single separators between word characters.
    return ".".join(re.sub(r"[^a-z0-9]+", "", p.lower())[:32] or "x" for p in parts)


class PassportStore:
    """Reads and writes the Patient Passport MongoDB for the sync."""

    def __init__(self, db: Database[Any], retry: RetryConfig, *, email_domain: str = "placeholder.example.org"):
        self.db = db
        self.hosts = _seed_hosts(db.client)
        self._retry = retry
        self._email_domain = email_domain
        self._password_hash: str | None = None
        # sync-all --workers shares one store between hospitals: two hospitals updating the same
        # patient's allergy list at once would each drop the other's new allergy (read, then write).
        self._allergies_lock = threading.Lock()

    @classmethod
    def connect(cls, settings: Settings) -> PassportStore:
        uri = settings.mongodb.uri.get_secret_value()
        try:
            client: pymongo.MongoClient[Any] = pymongo.MongoClient(
                uri,
                serverSelectionTimeoutMS=settings.mongodb.server_selection_timeout_ms,
                appname="passport-sync",
                tz_aware=False,
                event_listeners=[CommandTracer()],
            )
        except (PyMongoError, ValueError) as exc:
            raise SinkError(
                f"cannot use MongoDB URI {redact_uri(uri)}: {exc.__class__.__name__}",
                hint="check MONGODB_URI",
            ) from None
        return cls(
            client[settings.database_name], settings.sync.retry, email_domain=settings.sync.placeholder_email_domain
        )

    def close(self) -> None:
        self.db.client.close()

    def _once(self, what: str, fn: Callable[[], T]) -> T:
        with _commands_for(what):
            try:
                return fn()
            except PyMongoError as exc:
                raise translate_mongo_error(exc, what, self.hosts) from None

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        return call_with_retry(self._retry, "MongoDB", lambda: self._once(what, fn))

    # -- setup ------------------------------------------------------------------------------------
    def ping(self) -> str:
        """The server's version, in one attempt: a check says at once what is wrong."""
        info = self._once("ping", lambda: self.db.client.server_info())
        return str(info.get("version", "unknown"))

    def _existing_indexes(self) -> dict[str, dict[str, Any]]:
        names = sorted({n.collection for n in indexes.NEEDS} | {a.collection for a in indexes.APP_INDEXES})
        return self._call("index listing", lambda: {name: dict(self.db[name].index_information()) for name in names})

    def ensure_indexes(self) -> list[indexes.Finding]:
        """Create the tool's own missing indexes; never touch one on a key or name the app uses.

        Returns the conflicts found (indexes that stop the app from building its own), which
        are logged as warnings: the sync itself still works.
        """
        planned = indexes.plan(self._existing_indexes())

        def create() -> None:
            # One createIndexes command per collection; nothing when every index exists.
            for collection, needs in planned.create.items():
                self.db[collection].create_indexes(
                    [IndexModel(list(n.key), **indexes.create_options(n)) for n in needs]
                )

        if planned.create:
            self._call("index creation", create)
        conflicts = [f for f in planned.findings if f.level == "error"]
        for conflict in conflicts:
            log.warning("MongoDB index %s: %s; fix: %s", conflict.subject, conflict.detail, conflict.hint)
        return conflicts

    def index_findings(self) -> list[indexes.Finding]:
        """Every index the sync relies on, and every index that blocks one of the app's."""
        return indexes.plan(self._existing_indexes()).findings

    def collections(self) -> set[str]:
        return set(self._call("listing collections", self.db.list_collection_names))

    # -- placeholders -----------------------------------------------------------------------------
    def _placeholder_password(self) -> str:
        # A bcrypt hash (cost 12, as the app's own hook) of a secret that is discarded at once.
        if self._password_hash is None:
            secret = secrets.token_urlsafe(32).encode()
            self._password_hash = bcrypt.hashpw(secret, bcrypt.gensalt(rounds=12)).decode()
        return self._password_hash

    def _user_doc(self, user_id: ObjectId, name: str, email: str, role: str, now: datetime) -> dict[str, Any]:
        name = name.strip()[:50]
        if len(name) < 2:
            name = f"{name} (OpenMRS)"[:50]
        return {
            "_id": user_id,
            "name": name,
            "email": email.lower(),
            "password": self._placeholder_password(),
            "role": role,
            "isActive": True,
            "isEmailVerified": False,
            "avatar": None,
            "lastLogin": None,
            "createdAt": now,
            "updatedAt": now,
            "__v": 0,
        }

    def hospital_oid(self, hospital: HospitalConfig) -> ObjectId:
        if ObjectId.is_valid(hospital.id) and len(hospital.id) == 24:
            return ObjectId(hospital.id)
        return placeholder_id("hospital", hospital.id)

    def ensure_hospital(self, hospital: HospitalConfig, now: datetime) -> HospitalRefs:
        """The hospital document (created app-valid if missing) and its no-provider doctor."""
        oid = self.hospital_oid(hospital)
        found = self._call("hospital lookup", lambda: self.db["hospitals"].find_one({"_id": oid}, {"user": 1}))
        user_id = placeholder_id("hospital-user", hospital.id)
        if found is not None and isinstance(found.get("user"), ObjectId):
            user_id = found["user"]
        if found is None:
            user = self._user_doc(
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
            self._upsert_new("users", user)
            self._upsert_new("hospitals", doc)
        fallback = Provider(provider_id=0, uuid="", display_name=f"{hospital.name} (OpenMRS)")
        users = self.doctor_users(hospital, oid, [fallback], now)
        return HospitalRefs(oid, users[""], fallback.display_name, user_id)

    def _upsert_new(self, collection: str, doc: Mapping[str, Any]) -> None:
        def write() -> None:
            try:
                self.db[collection].update_one({"_id": doc["_id"]}, {"$setOnInsert": dict(doc)}, upsert=True)
            except DuplicateKeyError:
                # Created a moment ago by a concurrent run (same deterministic _id) or already present.
                pass

        self._call(f"creating a {collection} placeholder", write)

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
        found = self._call(
            "doctor lookup",
            lambda: list(
                self.db["doctors"].find(
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
                by_uuid[key] = str(self._create_placeholder_doctor(hospital, hospital_oid, key, provider, now))
            result[provider_uuid] = by_uuid[key]
        return result

    def _create_placeholder_doctor(
        self, hospital: HospitalConfig, hospital_oid: ObjectId, key: str, provider: Provider, now: datetime
    ) -> ObjectId:
        user_id = placeholder_id("doctor-user", hospital.id, key)
        doctor_id = placeholder_id("doctor", hospital.id, key)
        name = provider.display_name if provider.uuid == "" else f"Dr. {provider.display_name}"
        user = self._user_doc(
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
        self._upsert_new("users", user)
        self._upsert_new("doctors", doctor)
        self._call(
            "linking the placeholder doctor",
            lambda: self.db["hospitals"].update_one({"_id": hospital_oid}, {"$addToSet": {"doctors": doctor_id}}),
        )
        return user_id

    # -- patients -----------------------------------------------------------------------------------
    def patients_by_national_id(self, national_ids: Iterable[str]) -> dict[str, list[str]]:
        """Patient ``_id`` strings per digits-only national ID (more than one means ambiguous)."""
        ids = sorted(set(national_ids))
        if not ids:
            return {}
        docs = self._call(
            "patient lookup",
            lambda: list(self.db["patients"].find({"nationalId": {"$in": ids}}, {"nationalId": 1})),
        )
        found: dict[str, list[str]] = defaultdict(list)
        for doc in docs:
            found[str(doc["nationalId"])].append(str(doc["_id"]))
        return dict(found)

    # -- records ------------------------------------------------------------------------------------
    def apply(self, batch: BatchWrite, now: datetime, *, hospital_id: str | None = None) -> BatchOutcome:
        """Write one batch. Returns only after MongoDB acknowledged every part of it.

        With ``hospital_id``, the encounters the batch touched are remembered in
        ``openmrs_sync_encounters`` (in the same call, so a crash cannot lose them) until their
        derived records are rebuilt.
        """
        outcome = BatchOutcome()
        if hospital_id is not None:
            outcome.encounters = self._encounters_of(batch)
        allergy_patients: set[str] = set()
        if batch.records:
            fresh = self._insert_records(batch.records, now, outcome)
            self._link_patients(batch.records, fresh)
        if batch.upserts:
            allergy_patients |= self._upsert_records(batch.upserts, now, outcome, batch.existing)
            self._link_patients(batch.upserts)
        if batch.patches:
            ops = [
                UpdateOne(
                    {"_id": rid},
                    {
                        "$set": {**fields, "updatedAt": now},
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
                for rid, fields in batch.patches
            ]
            result = self._call("updating records", lambda: self.db[RECORDS].bulk_write(ops, ordered=False))
            outcome.updated += result.modified_count
        if batch.removals:
            allergy_patients |= self._remove_records(batch.removals, now, outcome)
        if allergy_patients:
            self._sync_allergies(allergy_patients)
        if batch.parks:
            self._park(batch.parks, now)
        if batch.unparks:
            keys = list(batch.unparks)
            self._call("unparking", lambda: self.db[PARKED].delete_many({"_id": {"$in": keys}}))
        if hospital_id is not None and outcome.encounters:
            self.mark_encounters_due(hospital_id, outcome.encounters)
        return outcome

    def _encounters_of(self, batch: BatchWrite) -> set[str]:
        """The encounters of every record the batch writes or changes."""
        found = {d["openmrsData"].get("encounterUuid") for d in [*batch.records, *batch.upserts]}
        # Removed records are read before they go (see _remove_records); patches are rare.
        ids = [rid for rid, _ in batch.patches]
        if ids:
            found |= set(
                self._call(
                    "reading encounters of changed records",
                    lambda: self.db[RECORDS].distinct("openmrsData.encounterUuid", {"_id": {"$in": ids}}),
                )
            )
        return {str(u) for u in found if u}

    def mark_encounters_due(self, hospital_id: str, uuids: Iterable[str]) -> None:
        ops = [
            UpdateOne(
                {"_id": f"{hospital_id}:{u}"}, {"$set": {"hospitalId": hospital_id, "encounterUuid": u}}, upsert=True
            )
            for u in sorted(set(uuids))
        ]
        if ops:
            self._call("remembering encounters", lambda: self.db[ENCOUNTERS_DUE].bulk_write(ops, ordered=False))

    def encounters_due(self, hospital_id: str, limit: int) -> list[str]:
        docs = self._call(
            "reading encounters due",
            lambda: list(self.db[ENCOUNTERS_DUE].find({"hospitalId": hospital_id}, {"encounterUuid": 1}).limit(limit)),
        )
        return [str(d["encounterUuid"]) for d in docs]

    def encounters_done(self, hospital_id: str, uuids: Iterable[str]) -> None:
        keys = [f"{hospital_id}:{u}" for u in uuids]
        self._call("forgetting encounters", lambda: self.db[ENCOUNTERS_DUE].delete_many({"_id": {"$in": keys}}))

    def encounter_records(self, hospital_id: str, uuids: Iterable[str]) -> list[dict[str, Any]]:
        """The synced records of these encounters (derived ones included)."""
        wanted = sorted(set(uuids))
        return self._call(
            "reading records of encounters",
            lambda: list(
                self.db[RECORDS].find(
                    {"openmrsData.hospitalId": hospital_id, "openmrsData.encounterUuid": {"$in": wanted}},
                    {"patientId": 1, "type": 1, "data": 1, "openmrsData": 1, "syncDate": 1},
                )
            ),
        )

    def _insert_records(self, records: list[dict[str, Any]], now: datetime, outcome: BatchOutcome) -> set[ObjectId]:
        """Insert new records; returns the ids this call inserted (the others were there)."""

        def insert() -> set[ObjectId]:
            try:
                self.db[RECORDS].insert_many(records, ordered=False)
                return set()
            except BulkWriteError as exc:
                errors = exc.details.get("writeErrors", [])
                fatal = [e for e in errors if e.get("code") != DUPLICATE_KEY]
                if fatal:
                    raise SinkError(
                        f"MongoDB refused {len(fatal)} record(s): {fatal[0].get('errmsg', '')[:200]}"
                    ) from None
                return {records[e["index"]]["_id"] for e in errors}

        duplicates = self._call("writing records", insert)
        outcome.written += len(records) - len(duplicates)
        outcome.already_present += len(duplicates)
        if duplicates:
            self._reassign_moved(records, duplicates, now, outcome)
        return {r["_id"] for r in records} - duplicates

    def _upsert_records(
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
                for e in self._call(
                    "checking existing records",
                    lambda: list(self.db[RECORDS].find({"_id": {"$in": ids}}, RECORD_STATE_FIELDS)),
                )
            }
        )
        ops = []
        pulls = []
        allergy_patients: set[str] = set()
        for doc in docs:
            if doc["openmrsData"].get("source") == "allergy":
                # Always re-applied: a crash may have come between the record and the list.
                allergy_patients.add(doc["patientId"])
            old = existing.get(doc["_id"])
            if old is not None and unchanged_record(old, doc):
                outcome.already_present += 1
                continue
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
                pulls.append(UpdateOne({"_id": ObjectId(old_patient)}, {"$pull": {"medicalHistory": doc["_id"]}}))
                outcome.reassigned += 1
                allergy_patients.add(old_patient)
        if ops:
            result = self._call("writing records", lambda: self.db[RECORDS].bulk_write(ops, ordered=False))
            outcome.written += result.upserted_count
            outcome.updated += result.modified_count
            outcome.already_present += result.matched_count - result.modified_count
        if pulls:
            self._call("unlinking moved records", lambda: self.db["patients"].bulk_write(pulls, ordered=False))
        return allergy_patients

    def _sync_allergies(self, patient_ids: set[str]) -> None:
        """Keep ``patients.allergies`` in step with the synced allergy records of each patient.

        The strings this tool added are remembered in ``openmrs_sync_allergies``, so a removed
        allergy leaves the list while allergies the patient entered in the app stay.
        """
        with self._allergies_lock:
            self._sync_allergies_locked(patient_ids)

    def _sync_allergies_locked(self, patient_ids: set[str]) -> None:
        ids = sorted(p for p in patient_ids if ObjectId.is_valid(p))
        live = self._call(
            "reading allergy records",
            lambda: list(
                self.db[RECORDS].find(
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
            for d in self._call(
                "reading synced allergies", lambda: list(self.db[ALLERGIES].find({"_id": {"$in": ids}}))
            )
        }
        current = {
            str(d["_id"]): d.get("allergies") or []
            for d in self._call(
                "reading patients' allergies",
                lambda: list(self.db["patients"].find({"_id": {"$in": [ObjectId(p) for p in ids]}}, {"allergies": 1})),
            )
        }
        patient_ops = []
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
            if added:
                patient_ops.append(UpdateOne({"_id": ObjectId(pid)}, {"$addToSet": {"allergies": {"$each": added}}}))
        # Claimed before the list changes: after a crash in between, the next run still knows
        # which strings it added.
        self._remember_allergies(claimed)
        if patient_ops:
            self._call("updating allergies", lambda: self.db["patients"].bulk_write(patient_ops, ordered=True))
        self._remember_allergies(kept)

    def _remember_allergies(self, texts: Mapping[str, list[str]]) -> None:
        ops = [UpdateOne({"_id": pid}, {"$set": {"texts": t}}, upsert=True) for pid, t in texts.items()]
        if ops:
            self._call("remembering synced allergies", lambda: self.db[ALLERGIES].bulk_write(ops, ordered=False))

    def _reassign_moved(
        self, records: list[dict[str, Any]], duplicates: set[ObjectId], now: datetime, outcome: BatchOutcome
    ) -> None:
        """An existing record whose patient differs now (OpenMRS identifier corrected) follows the
        observation to its right patient; nothing else of the record is touched."""
        wanted = {r["_id"]: r["patientId"] for r in records if r["_id"] in duplicates}
        existing = self._call(
            "checking existing records",
            lambda: list(self.db[RECORDS].find({"_id": {"$in": list(wanted)}}, {"patientId": 1})),
        )
        moves = [
            (d["_id"], d.get("patientId"), wanted[d["_id"]]) for d in existing if d.get("patientId") != wanted[d["_id"]]
        ]
        if not moves:
            return
        ops = [UpdateOne({"_id": rid}, {"$set": {"patientId": new, "updatedAt": now}}) for rid, _, new in moves]
        pulls = [
            UpdateOne({"_id": ObjectId(old)}, {"$pull": {"medicalHistory": rid}})
            for rid, old, _ in moves
            if isinstance(old, str) and ObjectId.is_valid(old)
        ]
        self._call("moving records", lambda: self.db[RECORDS].bulk_write(ops, ordered=False))
        if pulls:
            self._call("unlinking moved records", lambda: self.db["patients"].bulk_write(pulls, ordered=False))
        outcome.reassigned += len(moves)

    def _link_patients(self, records: list[dict[str, Any]], fresh: set[ObjectId] | None = None) -> None:
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
        self._call("linking records to patients", lambda: self.db["patients"].bulk_write(ops, ordered=False))

    def count_existing(self, record_ids: list[ObjectId]) -> int:
        """How many of these records exist (what removing them would remove)."""
        if not record_ids:
            return 0
        return self._call("counting records", lambda: self.db[RECORDS].count_documents({"_id": {"$in": record_ids}}))

    def _remove_records(
        self, removals: list[tuple[ObjectId, dict[str, Any]]], now: datetime, outcome: BatchOutcome
    ) -> set[str]:
        """Voided in OpenMRS: the patient stops seeing it; a copy goes to the audit trail."""
        reasons = dict(removals)
        docs = self._call(
            "reading records to remove",
            lambda: list(self.db[RECORDS].find({"_id": {"$in": list(reasons)}})),
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
        self._call("keeping removed records", lambda: self.db[REMOVED].bulk_write(trail, ordered=False))
        ids = [d["_id"] for d in docs]
        result = self._call("removing records", lambda: self.db[RECORDS].delete_many({"_id": {"$in": ids}}))
        pulls = [
            UpdateOne({"_id": ObjectId(d["patientId"])}, {"$pull": {"medicalHistory": d["_id"]}})
            for d in docs
            if isinstance(d.get("patientId"), str) and ObjectId.is_valid(d["patientId"])
        ]
        if pulls:
            self._call("unlinking removed records", lambda: self.db["patients"].bulk_write(pulls, ordered=False))
        outcome.removed += result.deleted_count
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
        found = self._call(
            "reading replacing records",
            lambda: list(self.db[RECORDS].find({"_id": {"$in": list(successors)}}, {"data": 1})),
        )
        ops = []
        for new in found:
            carried = _doctor_additions(successors[new["_id"]], new.get("data") or {})
            if carried:
                ops.append(UpdateOne({"_id": new["_id"]}, {"$set": {**carried, "updatedAt": now}}))
        if ops:
            self._call("carrying doctors' additions", lambda: self.db[RECORDS].bulk_write(ops, ordered=False))

    def _park(self, parks: list[dict[str, Any]], now: datetime) -> None:
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
        self._call("parking observations", lambda: self.db[PARKED].bulk_write(ops, ordered=False))

    # -- parked observations ---------------------------------------------------------------------------
    def parked_ids(
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
        docs = self._call(
            "reading parked rows", lambda: list(self.db[PARKED].find(query, {"sourceId": 1, "obsId": 1, "_id": 0}))
        )
        return [int(d.get("sourceId", d.get("obsId"))) for d in docs]

    def parked_person_ids(self, hospital_id: str) -> set[int]:
        """Persons of this hospital with parked observations (few: unregistered patients)."""
        ids = self._call(
            "reading parked persons", lambda: self.db[PARKED].distinct("personId", {"hospitalId": hospital_id})
        )
        return {int(i) for i in ids}

    def parked_by_reason(self, hospital_id: str) -> dict[str, int]:
        pipeline: list[dict[str, Any]] = [
            {"$match": {"hospitalId": hospital_id}},
            {"$group": {"_id": "$reason", "n": {"$sum": 1}}},
        ]
        rows = self._call("counting parked observations", lambda: list(self.db[PARKED].aggregate(pipeline)))
        return {str(r["_id"]): int(r["n"]) for r in sorted(rows, key=lambda r: str(r["_id"]))}

    def parked_count(self, hospital_id: str) -> int:
        return self._call(
            "counting parked observations", lambda: self.db[PARKED].count_documents({"hospitalId": hospital_id})
        )

    def stale_records(self, hospital_id: str, version: int, after: ObjectId | None, limit: int) -> list[dict[str, Any]]:
        """Records of a hospital rendered by an earlier (or no) rendering version, in ``_id`` order."""
        query: dict[str, Any] = {
            "openmrsData.hospitalId": hospital_id,
            "openmrsData.renderVersion": {"$not": {"$gte": version}},
        }
        if after is not None:
            query["_id"] = {"$gt": after}
        fields = {f"openmrsData.{k}": 1 for k in ("source", "obsId", "sourceId", "encounterUuid")}
        return self._call(
            "reading records of an earlier rendering",
            lambda: list(self.db[RECORDS].find(query, fields).sort("_id", 1).limit(limit)),
        )

    def record_count(self, hospital_id: str) -> int:
        return self._call(
            "counting records",
            # Records of OpenMRS rows: the visit records derived from encounters are not counted.
            lambda: self.db[RECORDS].count_documents(
                {"openmrsData.hospitalId": hospital_id, "openmrsData.source": {"$nin": list(DERIVED_SOURCES)}}
            ),
        )

    # -- reconciliation ---------------------------------------------------------------------------------
    def record_states(self, ids: Iterable[ObjectId]) -> dict[ObjectId, dict[str, Any]]:
        """What the Passport holds now for these records: owner, type and data (a projection)."""
        wanted = list(ids)
        if not wanted:
            return {}
        docs = self._call(
            "reading records to compare",
            lambda: list(self.db[RECORDS].find({"_id": {"$in": wanted}}, RECORD_STATE_FIELDS)),
        )
        return {d["_id"]: d for d in docs}

    def record_owners(self, hospital_id: str, person_ids: Iterable[int]) -> dict[int, set[str]]:
        """The Passport patients holding records of each OpenMRS person of this hospital."""
        wanted = sorted(set(person_ids))
        owners: dict[int, set[str]] = {pid: set() for pid in wanted}
        if not wanted:
            return owners
        # A range, not $in: persons come a range at a time, and a range is served by the index on
        # every server (SecantusDB scans the collection for $in).
        span = {"$gte": wanted[0], "$lte": wanted[-1]}
        docs = self._call(
            "reading record owners",
            lambda: list(
                self.db[RECORDS].find(
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

    def parked_reasons(self, hospital_id: str, person_ids: Iterable[int]) -> dict[int, set[str]]:
        """Why each of these persons has parked rows (no entry: nothing parked)."""
        wanted = sorted(set(person_ids))
        if not wanted:
            return {}
        docs = self._call(
            "reading parked rows",
            lambda: list(
                self.db[PARKED].find(
                    {"hospitalId": hospital_id, "personId": {"$in": wanted}}, {"personId": 1, "reason": 1}
                )
            ),
        )
        reasons: dict[int, set[str]] = defaultdict(set)
        for doc in docs:
            reasons[int(doc["personId"])].add(str(doc.get("reason")))
        return dict(reasons)

    @staticmethod
    def _checksum_key(hospital_id: str, feed: str, index: int) -> str:
        # Zero-padded so that one _id range query returns a run of ranges in order.
        return f"{hospital_id}:{feed}:{index:012d}"

    def stored_checksums(self, hospital_id: str, feed: str, first: int, last: int) -> dict[int, dict[str, Any]]:
        """The checksums kept by the last pass for ranges ``first..last`` of one source."""
        low, high = self._checksum_key(hospital_id, feed, first), self._checksum_key(hospital_id, feed, last)
        docs = self._call(
            "reading checksums", lambda: list(self.db[CHECKSUMS].find({"_id": {"$gte": low, "$lte": high}}))
        )
        return {int(d["index"]): d for d in docs}

    def save_checksums(self, hospital_id: str, feed: str, ranges: Mapping[int, Mapping[str, Any] | None]) -> None:
        """Keep each range's checksum (None: the range is empty now, forget it)."""
        ops: list[Any] = []
        for index, values in ranges.items():
            key = self._checksum_key(hospital_id, feed, index)
            if values is None:
                ops.append(pymongo.DeleteOne({"_id": key}))
            else:
                doc = {"hospitalId": hospital_id, "feed": feed, "index": index, **values}
                ops.append(pymongo.ReplaceOne({"_id": key}, doc, upsert=True))
        if ops:
            self._call("saving checksums", lambda: self.db[CHECKSUMS].bulk_write(ops, ordered=False))

    def reconcile_state(self, hospital_id: str) -> dict[str, Any]:
        found = self._call("reading the reconcile state", lambda: self.db[RECONCILE].find_one({"_id": hospital_id}))
        return found or {}

    def save_reconcile_state(self, hospital_id: str, fields: Mapping[str, Any]) -> None:
        self._call(
            "saving the reconcile state",
            lambda: self.db[RECONCILE].update_one({"_id": hospital_id}, {"$set": dict(fields)}, upsert=True),
        )

    # -- checkpoints ------------------------------------------------------------------------------------
    def load_checkpoint(self, hospital_id: str) -> dict[str, Any] | None:
        return self._call("reading the checkpoint", lambda: self.db[SYNCSTATUS].find_one({"hospitalId": hospital_id}))

    def save_checkpoint(self, hospital_id: str, fields: Mapping[str, Any], now: datetime) -> None:
        """One document per hospital in ``syncstatus``; ``lastSyncTime`` as the seed kept it."""
        update = {"$set": {**fields, "hospitalId": hospital_id, "lastSyncTime": now}}
        self._call(
            "saving the checkpoint",
            lambda: self.db[SYNCSTATUS].update_one({"hospitalId": hospital_id}, update, upsert=True),
        )

    def database_synced_as(self, hospital_id: str, database: str, fingerprint: str | None) -> str | None:
        """Another hospital id whose checkpoint was kept for this OpenMRS database: the same
        fingerprint, or the same server and database when a fingerprint is missing."""
        either: list[dict[str, Any]] = [{"sourceDatabase": database}]
        if fingerprint:
            either.append({"sourceFingerprint": fingerprint})
        docs = self._call(
            "reading other hospitals' checkpoints",
            lambda: list(
                self.db[SYNCSTATUS].find(
                    {"hospitalId": {"$ne": hospital_id}, "$or": either},
                    {"hospitalId": 1, "sourceDatabase": 1, "sourceFingerprint": 1},
                )
            ),
        )
        for doc in sorted(docs, key=lambda d: str(d.get("hospitalId"))):
            theirs = doc.get("sourceFingerprint")
            if (fingerprint and theirs == fingerprint) or (
                doc.get("sourceDatabase") == database and not (fingerprint and theirs)
            ):
                return str(doc["hospitalId"])
        return None

    def remember_database(self, hospital_id: str, database: str, fingerprint: str | None) -> None:
        fields: dict[str, Any] = {"sourceDatabase": database}
        if fingerprint:
            fields["sourceFingerprint"] = fingerprint
        self._call(
            "saving the database fingerprint",
            lambda: self.db[SYNCSTATUS].update_one(
                {"hospitalId": hospital_id}, {"$set": {**fields, "hospitalId": hospital_id}}, upsert=True
            ),
        )

    def delete_checkpoint(self, hospital_id: str) -> int:
        result = self._call(
            "resetting the checkpoint", lambda: self.db[SYNCSTATUS].delete_many({"hospitalId": hospital_id})
        )
        return result.deleted_count

    # -- audit ---------------------------------------------------------------------------------------------
    def write_run_summary(self, summary: Mapping[str, Any], performed_by: ObjectId | None, now: datetime) -> None:
        """One ``auditlogs`` entry per hospital per run, queryable as the seed's monitoring does.

        ``performedBy`` and ``user`` hold a ``users._id`` (the hospital's user), which the app's
        sync status endpoint populates from ``users``.
        """
        doc = {
            "action": "openmrs_auto_sync",
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
        self._call("writing the run summary", lambda: self.db[AUDITLOGS].insert_one(doc))

    def last_successful_run_at(self, hospital_id: str) -> datetime | None:
        """When the newest run summary with outcome ok was written (UTC), or None."""
        found: dict[str, Any] | None = self._call(
            "reading the last successful run",
            lambda: self.db[AUDITLOGS].find_one(
                {"action": "openmrs_auto_sync", "changes.hospital_id": hospital_id, "changes.outcome": "ok"},
                {"createdAt": 1},
                sort=[("createdAt", -1)],
            ),
        )
        at = (found or {}).get("createdAt")
        return at.replace(tzinfo=UTC) if isinstance(at, datetime) and at.tzinfo is None else at

    def last_run_summary(self, hospital_id: str) -> dict[str, Any] | None:
        found: dict[str, Any] | None = self._call(
            "reading the last run",
            lambda: self.db[AUDITLOGS].find_one(
                {"action": "openmrs_auto_sync", "changes.hospital_id": hospital_id}, sort=[("createdAt", -1)]
            ),
        )
        return found

    # -- locks -----------------------------------------------------------------------------------------
    def acquire_lock(self, hospital_id: str, owner: str, ttl: timedelta) -> None:
        """Take the hospital's lease, or take over one whose holder stopped renewing it."""

        def take() -> None:
            now = utcnow()
            try:
                self.db[LOCKS].find_one_and_update(
                    {"_id": hospital_id, "$or": [{"expiresAt": {"$lte": now}}, {"owner": owner}]},
                    {"$set": {"owner": owner, "expiresAt": now + ttl, "acquiredAt": now}},
                    upsert=True,
                    return_document=ReturnDocument.AFTER,
                )
            except DuplicateKeyError:
                holder = self.db[LOCKS].find_one({"_id": hospital_id}) or {}
                if _died_on_this_host(str(holder.get("owner", ""))):
                    taken = self.db[LOCKS].update_one(
                        {"_id": hospital_id, "owner": holder["owner"]},
                        {"$set": {"owner": owner, "expiresAt": now + ttl, "acquiredAt": now}},
                    )
                    if taken.matched_count == 1:
                        log.warning(
                            "hospital %s: took over the lock of a run that died (%s)", hospital_id, holder["owner"]
                        )
                        return
                raise LockHeld(
                    f"hospital {hospital_id} is being synced by {holder.get('owner', 'another run')} "
                    f"(lease until {holder.get('expiresAt')})",
                    hint="wait for that run to finish; a lease left by a killed run expires by itself",
                ) from None

        self._call("taking the lock", take)

    def renew_lock(self, hospital_id: str, owner: str, ttl: timedelta) -> None:
        def renew() -> None:
            result = self.db[LOCKS].update_one(
                {"_id": hospital_id, "owner": owner}, {"$set": {"expiresAt": utcnow() + ttl}}
            )
            if result.matched_count == 0:
                raise LockHeld(
                    f"hospital {hospital_id}: the lease was lost (expired and taken over); stopping this run",
                    hint="raise sync.lock_ttl_seconds if batches take longer than the lease",
                )

        self._call("renewing the lock", renew)

    def release_lock(self, hospital_id: str, owner: str) -> None:
        self._call("releasing the lock", lambda: self.db[LOCKS].delete_one({"_id": hospital_id, "owner": owner}))

    def release_locks_of_this_process(self) -> int:
        """Release every lease this process holds, in one attempt (on Ctrl-C, for the hospitals
        still running on worker threads); returns how many."""
        mine = {"owner": {"$regex": "^" + re.escape(_process_owner_prefix())}}
        return self._once("releasing this run's locks", lambda: self.db[LOCKS].delete_many(mine).deleted_count)

    def lock_holder(self, hospital_id: str) -> dict[str, Any] | None:
        doc: dict[str, Any] | None = self._call(
            "reading the lock", lambda: self.db[LOCKS].find_one({"_id": hospital_id})
        )
        if doc and doc.get("expiresAt") and doc["expiresAt"].replace(tzinfo=UTC) > utcnow():
            return doc
        return None


def _pid_namespace() -> str:
    try:
        return os.readlink("/proc/self/ns/pid").removeprefix("pid:[").removesuffix("]")
    except OSError:
        return "-"


def _process_owner_prefix() -> str:
    return f"{socket.gethostname()}:{_pid_namespace()}:{os.getpid()}:"


def lock_owner() -> str:
    """Who holds a lease: host, pid namespace, pid and a random suffix (unique per run)."""
    return f"{_process_owner_prefix()}{secrets.token_hex(4)}"


def _died_on_this_host(owner: str) -> bool:
    """True when the lease holder ran on this host, in this pid namespace, and its process is gone.

    Then a killed run's lease is taken over at once instead of after its expiry. Any doubt
    (another host, another container, a live or unknown pid) answers False: wait for expiry.
    """
    parts = owner.split(":")
    if len(parts) != 4 or parts[0] != socket.gethostname() or parts[1] in ("-", "") or parts[1] != _pid_namespace():
        return False
    try:
        pid = int(parts[2])
    except ValueError:
        return False
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False
