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
from passport_sync.errors import PassportSyncError, UsageError
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

# The collections the Patient Passport backend creates when it first starts (Mongoose builds its
# indexes then) and that the sync never creates: a database without them is not a Passport, so a
# mistyped database name in the URI is refused instead of filling a new database nobody reads.
APP_COLLECTIONS = ("patients", "users")


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

    def passport_problem(self) -> str | None:
        """Why this database is not a Patient Passport (None when it is): it lacks the app's
        collections, as a new database made by a mistyped name in the URI does."""
        present = self.collections()
        missing = [name for name in APP_COLLECTIONS if name not in present]
        if not missing:
            return None
        return (
            f"MongoDB database {self.db.name!r} is not a Patient Passport database:"
            f" it has no {' and no '.join(missing)} collection"
        )

    def require_passport(self) -> None:
        """UsageError (nothing written) unless this database is the app's; see ``passport_problem``."""
        problem = self.passport_problem()
        if problem is None:
            return
        hint = "check the database name at the end of MONGODB_URI (mongodb.uri)"
        others = self._other_passports()
        if others:
            hint += f"; Patient Passport databases on this server: {', '.join(others)}"
        hint += (
            "; for a new Patient Passport, start its backend once against this database"
            " (it creates its collections), then run again"
        )
        raise UsageError(problem, hint=hint)

    def _other_passports(self) -> list[str]:
        """The databases on the server that hold the app's collections (empty when the user may
        not list them): the likely right name for the hint."""
        try:
            names = self.gateway.once("listing databases", self.db.client.list_database_names)
            found = []
            for name in sorted(names)[:50]:  # bounded: a shared server may hold many
                if name in ("admin", "local", "config") or name == self.db.name:
                    continue
                present = set(self.gateway.once("listing collections", self.db.client[name].list_collection_names))
                if all(c in present for c in APP_COLLECTIONS):
                    found.append(name)
            return found[:5]
        except PassportSyncError:
            return []
