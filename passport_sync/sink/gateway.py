"""The one way the sink runs a MongoDB call: retried, traced, and with pymongo's errors translated.

Every concern module (records, parked, checkpoints, ...) holds the same ``MongoGateway`` and sends
each command through ``call`` (with the retry policy) or ``once`` (one attempt, for checks and
Ctrl-C). Nothing outside ``passport_sync.sink`` imports pymongo, apart from the demo's setup.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import pymongo
from pymongo import monitoring
from pymongo.database import Database
from pymongo.errors import ConfigurationError, ConnectionFailure, OperationFailure, PyMongoError

from passport_sync import tracing
from passport_sync.config import RetryConfig, Settings, redact_uri
from passport_sync.errors import PassportSyncError, SinkError, SinkUnavailable
from passport_sync.retry import call_with_retry

T = TypeVar("T")

# Collections of the app the sync writes.
RECORDS = "medicalrecords"
PATIENTS = "patients"
USERS = "users"
DOCTORS = "doctors"
HOSPITALS = "hospitals"
SYNCSTATUS = "syncstatus"
AUDITLOGS = "auditlogs"
# Collections this tool owns.
PARKED = "openmrs_sync_parked"
REMOVED = "openmrs_sync_removed"
LOCKS = "openmrs_sync_locks"
ALLERGIES = "openmrs_sync_allergies"
CHECKSUMS = "openmrs_sync_checksums"
RECONCILE = "openmrs_sync_reconcile"
ENCOUNTERS_DUE = "openmrs_sync_encounters"

DUPLICATE_KEY = 11000
# A cursor batch size for reads that should come back in one reply: the server's first reply
# otherwise stops at 101 documents, and the rest costs a getMore round trip.
ONE_REPLY = 100_000


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
    if isinstance(exc, ConnectionFailure) and "ProtocolError" in str(exc):
        # An answer that is not MongoDB's wire protocol (a web server on that port): waiting and
        # retrying cannot help.
        return SinkError(
            f"MongoDB unreachable{at} during {what}: the server on that port does not speak MongoDB's protocol"
            " (a web server or another service?)",
            hint="check the host and port in MONGODB_URI (mongodb.uri): MongoDB listens on 27017 unless set otherwise",
        )
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


def open_database(settings: Settings) -> Database[Any]:
    """The Passport database of the settings, on a client that reports its commands to the tracer."""
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
    except OSError as exc:  # a tlsCAFile or tlsCertificateKeyFile that cannot be read or is not PEM
        raise SinkError(
            f"cannot use MongoDB URI {redact_uri(uri)}: cannot load its TLS files"
            f" ({getattr(exc, 'reason', None) or exc.strerror or type(exc).__name__})",
            hint="tlsCAFile and tlsCertificateKeyFile must be PEM files the service user can read",
        ) from None
    return client[settings.database_name]


class MongoGateway:
    """The database, the hosts it was reached at (for messages) and the retry policy."""

    def __init__(self, db: Database[Any], retry: RetryConfig) -> None:
        self.db = db
        self.hosts = _seed_hosts(db.client)
        self.retry = retry

    def once(self, what: str, fn: Callable[[], T]) -> T:
        """Run ``fn`` in one attempt; a pymongo error becomes ours, naming ``what``."""
        with _commands_for(what):
            try:
                return fn()
            except PyMongoError as exc:
                raise translate_mongo_error(exc, what, self.hosts) from None

    def call(self, what: str, fn: Callable[[], T]) -> T:
        """Run ``fn`` with the retry policy (a transient failure is tried again)."""
        return call_with_retry(self.retry, "MongoDB", lambda: self.once(what, fn))


class Concern:
    """One concern of the store (records, locks, ...): its commands go through the shared gateway."""

    def __init__(self, gateway: MongoGateway) -> None:
        self._gw = gateway
        self._db = gateway.db
