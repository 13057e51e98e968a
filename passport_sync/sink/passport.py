"""The Patient Passport store: one object per MongoDB database, composed of one part per concern.

Collections of the app we write: ``medicalrecords``, ``patients`` (allergies, and medicalHistory
links when configured), ``users``/``doctors``/``hospitals`` (placeholders), ``syncstatus``,
``auditlogs``.
Collections this tool owns: ``openmrs_sync_parked``, ``openmrs_sync_removed``,
``openmrs_sync_locks``, ``openmrs_sync_allergies``, ``openmrs_sync_checksums``,
``openmrs_sync_reconcile``, ``openmrs_sync_encounters``.

Each part lives in its own module of ``passport_sync.sink`` and shapes the documents of its
collections; all of them run their commands through one ``MongoGateway`` (retry policy, error
translation, tracer names). Only the modules of ``passport_sync.sink`` talk to pymongo.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

from pymongo.database import Database

from passport_sync.config import RetryConfig, Settings
from passport_sync.sink.audit import Audit
from passport_sync.sink.checkpoints import Checkpoints
from passport_sync.sink.encounters import Encounters
from passport_sync.sink.gateway import MongoGateway, open_database
from passport_sync.sink.index_builder import Indexes
from passport_sync.sink.locks import Locks
from passport_sync.sink.parked import Parked
from passport_sync.sink.patients import Patients
from passport_sync.sink.placeholders import Placeholders
from passport_sync.sink.records import Records


class PassportStore:
    """Reads and writes the Patient Passport MongoDB for the sync."""

    def __init__(
        self,
        db: Database[Any],
        retry: RetryConfig,
        *,
        email_domain: str = "placeholder.example.org",
        medical_history_links: bool = False,
    ):
        self.gateway = MongoGateway(db, retry)
        self.indexes = Indexes(self.gateway)
        self.placeholders = Placeholders(self.gateway, email_domain)
        self.patients = Patients(self.gateway, links=medical_history_links)
        self.parked = Parked(self.gateway)
        self.encounters = Encounters(self.gateway)
        self.records = Records(self.gateway, patients=self.patients, parked=self.parked, encounters=self.encounters)
        self.checkpoints = Checkpoints(self.gateway)
        self.audit = Audit(self.gateway)
        self.locks = Locks(self.gateway)

    @classmethod
    def connect(cls, settings: Settings) -> PassportStore:
        return cls(
            open_database(settings),
            settings.sync.retry,
            email_domain=settings.sync.placeholder_email_domain,
            medical_history_links=settings.sync.medical_history_links,
        )

    @property
    def db(self) -> Database[Any]:
        return self.gateway.db

    @property
    def hosts(self) -> str:
        return self.gateway.hosts

    def close(self) -> None:
        self.db.client.close()

    def __enter__(self) -> PassportStore:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def ping(self) -> str:
        """The server's version, in one attempt: a check says at once what is wrong."""
        info = self.gateway.once("ping", lambda: self.db.client.server_info())
        return str(info.get("version", "unknown"))

    def collections(self) -> set[str]:
        return set(self.gateway.call("listing collections", self.db.list_collection_names))
