"""The OpenMRS adapter: the only module that talks to pymysql.

Each call runs one parameterised statement under the retry policy; a transient failure closes the
connection so the next attempt reconnects. Driver errors leave this module as our own exceptions,
with a hint for the person reading them and never a password.
"""

from __future__ import annotations

import logging
import re
import ssl as ssl_module
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import fields
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any, Concatenate, ParamSpec, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pymysql
import pymysql.cursors

from passport_sync import tracing
from passport_sync.config import HospitalConfig, NationalIdType, RetryConfig
from passport_sync.errors import PassportSyncError, SourceError, SourceUnavailable
from passport_sync.mapping.clinical import ClinicalRow, row_identity
from passport_sync.mapping.national_id import choose_identifier_type, normalise_national_id
from passport_sync.models import (
    ConceptName,
    DatabaseProbe,
    EncounterRow,
    FeedHead,
    IdentifierType,
    ObsRow,
    PersonIdentity,
    Provider,
    ServerTimeZone,
)
from passport_sync.retry import call_with_retry
from passport_sync.source import checksums, clinical, queries
from passport_sync.source.clinical import ClinicalSource
from passport_sync.source.queries import Query, SchemaInfo

log = logging.getLogger("passport_sync")

_OBS_FIELDS = tuple(f.name for f in fields(ObsRow))
_BOOL_FIELDS = ("voided", "allow_decimal", "person_exists", "previous_version_voided")

# MySQL/MariaDB error numbers, by what the operator should do about them.
_TRANSIENT = {1040, 1053, 1205, 1213, 1927, 2003, 2006, 2013, 2055, 1158, 1159, 1160, 1161}
_HINTS = {
    1045: "check db.user and the password of this hospital, and that the user may connect from this host",
    1698: "check db.user and the password of this hospital, and that the user may connect from this host",
    1044: "grant the user SELECT on the OpenMRS database (see scripts/create-readonly-user.sql)",
    1142: "grant the user SELECT on the OpenMRS database (see scripts/create-readonly-user.sql)",
    1049: "check db.name: the database does not exist on that server",
    1146: "this database lacks an OpenMRS table; check db.name points at the OpenMRS database",
    1054: "this OpenMRS schema lacks a column passport-sync reads; report it with the OpenMRS version",
    2003: "check db.host and db.port, that the server runs, and that a firewall lets this host in",
    2005: "check db.host: the name does not resolve",
    2013: "the connection dropped; check the network and the server's wait_timeout",
    1205: "a lock wait timed out on the OpenMRS server; it usually passes",
}

Connect = Callable[..., Any]
P = ParamSpec("P")
R = TypeVar("R")


def _without_sql_separators(raw: str) -> str:
    """``raw`` as ``queries.identities_and_holders`` strips it in SQL."""
    for separator in queries.SQL_STRIPPED_SEPARATORS:
        raw = raw.replace(separator, "")
    return raw


def _traced(method: Callable[Concatenate[OpenMRSSource, P], R]) -> Callable[Concatenate[OpenMRSSource, P], R]:
    """Name the statements a public read runs after it, for the tracer (the outermost read wins)."""
    name = method.__name__

    def named(self: OpenMRSSource, /, *args: P.args, **kwargs: P.kwargs) -> R:
        if self._purpose:
            return method(self, *args, **kwargs)
        self._purpose = name
        try:
            return method(self, *args, **kwargs)
        finally:
            self._purpose = ""

    named.__name__ = name
    named.__doc__ = method.__doc__
    return named


# (host, port) of servers that offered no TLS to a tls: preferred connection in this process:
# their next connections go plaintext at once instead of asking again (one round trip each).
_SERVERS_WITHOUT_TLS: set[tuple[str, int]] = set()


def server_zone(session_zone: str, system_zone: str, offset_seconds: int) -> ServerTimeZone:
    """The zone a MySQL/MariaDB server's NOW() is in: a named session zone when it has one (so
    daylight saving is right for older rows), else the system zone when it is an IANA name, else
    the offset the server reports now."""
    for name in (session_zone, system_zone if session_zone.upper() == "SYSTEM" else ""):
        if "/" in name:
            try:
                return ServerTimeZone(ZoneInfo(name), f"{name} (from the database server)")
            except (ZoneInfoNotFoundError, ValueError):
                pass
    minutes = round(offset_seconds / 60)
    offset = timedelta(minutes=minutes)
    sign = "-" if minutes < 0 else "+"
    label = f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    zone: tzinfo = UTC if minutes == 0 else timezone(offset)
    shown = system_zone if session_zone.upper() == "SYSTEM" else session_zone
    return ServerTimeZone(zone, f"UTC{label} (the database server's offset; server zone {shown or 'unknown'})")


# pymysql's code when the server offers no TLS and the client asked for it.
_SSL_CONNECTION_ERROR = 2026


def _tls_failure(exc: BaseException) -> ssl_module.SSLError | None:
    """The TLS error behind a pymysql error (pymysql wraps the socket's OSError), or None."""
    for candidate in (exc, getattr(exc, "original_exception", None), exc.__cause__, exc.__context__):
        if isinstance(candidate, ssl_module.SSLError):
            return candidate
    return None


def _tls_error(where: str, failure: ssl_module.SSLError, hospital: HospitalConfig) -> SourceError:
    tls = hospital.db.tls_options
    if isinstance(failure, ssl_module.SSLCertVerificationError):
        reason = failure.verify_message or failure.reason or "verification failed"
        if "hostname mismatch" in reason.lower() or "ip address mismatch" in reason.lower():
            hint = (
                "connect by a name the server's certificate holds (db.host), or, if you trust the network, "
                "set db.ssl.verify_identity: false (the certificate is still checked against the CA)"
            )
        else:
            trusted = f"db.ssl.ca ({tls.ca})" if tls.ca else "the system's trust store (no db.ssl.ca set)"
            hint = f"the server's certificate must be signed by the CA in {trusted}; set db.ssl.ca to that CA"
        return SourceError(
            f"{where}: TLS: the server's certificate was refused: {reason} (certificate verify failed)", hint=hint
        )
    reason = failure.reason or failure.__class__.__name__
    return SourceError(
        f"{where}: TLS handshake failed: {reason}",
        hint="check db.ssl (ca, cert, key) of this hospital and the server's TLS settings "
        "(a server that REQUIREs X509 needs db.ssl.cert and db.ssl.key)",
    )


def translate_mysql_error(
    exc: BaseException, hospital: HospitalConfig, *, connecting: bool = False
) -> PassportSyncError:
    """Our exception for a pymysql error; the message names the hospital, never a secret.

    ``connecting``: the error happened while opening the connection (TCP, greeting, TLS, login),
    which connect_timeout_seconds bounds; later timeouts are read_timeout_seconds'.
    """
    code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
    detail = str(exc.args[1]) if len(exc.args) > 1 else str(exc) or exc.__class__.__name__
    db = hospital.db
    where = f"OpenMRS database {db.host}:{db.port}/{db.name}"
    failure = _tls_failure(exc)
    if failure is not None:
        return _tls_error(where, failure, hospital)
    if code == _SSL_CONNECTION_ERROR or "SSL" in detail:
        return SourceError(
            f"{where}: TLS handshake failed: {detail}",
            hint="check the ssl options of this hospital (ca, cert, key) and db.tls, and that the server has TLS "
            "enabled (tls: required needs a server with TLS)",
        )
    if "timed out" in detail.lower():
        if connecting:
            return SourceUnavailable(
                f"{where}: no answer within {db.connect_timeout_seconds}s while connecting (timed out)",
                hint="check db.host, db.port, the firewall and that the server is not hung; "
                "raise db.connect_timeout_seconds only on slow links",
            )
        return SourceUnavailable(
            f"{where}: a query got no answer within {db.read_timeout_seconds}s (timed out)",
            hint="raise db.read_timeout_seconds if the server is slow, or check that it is not hung",
        )
    if "Packet sequence number wrong" in detail:
        # The first bytes back were not a MySQL greeting: another service (HTTP, SSH) on that port.
        return SourceError(
            f"{where}: the server on that port does not speak MySQL's protocol ({detail})",
            hint="check db.host and db.port: they must name the MySQL/MariaDB server (port 3306 unless set"
            " otherwise), not a web server or another service",
        )
    hint = _HINTS.get(code or 0, "")
    message = f"{where}: MySQL error {code}: {detail}" if code else f"{where}: {detail}"
    if any(s in detail for s in ("Name or service not known", "nodename nor servname", "No address associated")):
        # A name that does not resolve stays unresolved: retrying only delays the other hospitals.
        return SourceError(message, hint=_HINTS[2005])
    if isinstance(exc, pymysql.err.InterfaceError) or code in _TRANSIENT:
        return SourceUnavailable(message, hint=hint)
    return SourceError(message, hint=hint)


_FROM = re.compile(r"\b(?:FROM|JOIN)\s+`?(\w+)", re.IGNORECASE)


def _tables_of(sql: str) -> str:
    """The tables a statement reads, for --verbose (the SQL's parameters are never logged)."""
    return ", ".join(dict.fromkeys(_FROM.findall(sql))) or "-"


def _transport(conn: Any) -> str:
    """``TLSv1.3 TLS_AES_256_GCM_SHA384`` or ``plaintext``, for --verbose."""
    sock = getattr(conn, "_sock", None)
    if isinstance(sock, ssl_module.SSLSocket):
        cipher = sock.cipher()
        return f"{sock.version()} {cipher[0] if cipher else ''}".strip()
    return "plaintext"


def verifies_server(hospital: HospitalConfig) -> bool:
    """Whether TLS to this hospital checks the server's certificate: always, except with
    ``tls: preferred`` and no ``ssl`` block."""
    return hospital.db.tls_mode == "required" or hospital.db.ssl is not None


def tls_context(hospital: HospitalConfig) -> ssl_module.SSLContext:
    """The TLS context for a hospital: the server's certificate verified against db.ssl.ca (else
    the system's trust store), its host name checked unless verify_identity is false, and the
    client certificate presented when configured.

    Built here and passed whole as ``ssl=``: given ssl_verify_cert/ssl_verify_identity, pymysql
    builds its own context and drops the ca, cert and key it was given.
    """
    tls = hospital.db.tls_options
    where = f"hospitals[{hospital.id}].db.ssl"
    try:
        context = ssl_module.create_default_context(cafile=str(tls.ca) if tls.ca else None)
        if verifies_server(hospital):
            context.check_hostname = tls.verify_identity
            context.verify_mode = ssl_module.CERT_REQUIRED
        else:
            # tls: preferred without a db.ssl block: encrypted against eavesdropping, not against
            # an impostor (MySQL's own ssl-mode=PREFERRED); test-connection says so.
            context.check_hostname = False
            context.verify_mode = ssl_module.CERT_NONE
        if tls.cert and tls.key:
            context.load_cert_chain(str(tls.cert), str(tls.key))
    except FileNotFoundError as exc:
        raise SourceError(f"{where}: file not found: {exc.filename}", hint="check the ca, cert and key paths") from None
    except (OSError, ssl_module.SSLError) as exc:
        raise SourceError(
            f"{where}: cannot load the CA, certificate or key ({getattr(exc, 'reason', None) or type(exc).__name__})",
            hint="ca, cert and key must be PEM files readable by the service user; key must match cert",
        ) from None
    return context


_CLINICAL_COMMON = (
    "pk", "uuid", "person_id", "encounter_id", "encounter_uuid", "provider_id", "location_name", "happened_at",
    "date_created", "changed_at", "voided", "date_voided", "void_reason", "coded", "coded_name_id", "non_coded",
    "previous_pk", "previous_uuid",
)  # fmt: skip


def _clinical_row(source: ClinicalSource, raw: dict[str, Any]) -> ClinicalRow:
    extra = {k: v for k, v in raw.items() if k not in _CLINICAL_COMMON}
    previous_uuid = raw.get("previous_uuid")
    return ClinicalRow(
        source=source.name,
        pk=int(raw["pk"]),
        uuid=row_identity(source.name, raw.get("uuid"), int(raw["pk"])),
        person_id=int(raw["person_id"]),
        date_created=raw["date_created"],
        voided=bool(raw.get("voided")),
        happened_at=raw.get("happened_at"),
        changed_at=raw.get("changed_at") if isinstance(raw.get("changed_at"), datetime) else None,
        date_voided=raw.get("date_voided"),
        void_reason=raw.get("void_reason"),
        encounter_uuid=raw.get("encounter_uuid"),
        provider_id=raw.get("provider_id"),
        location_name=raw.get("location_name"),
        coded=raw.get("coded"),
        coded_name_id=raw.get("coded_name_id"),
        non_coded=raw.get("non_coded"),
        previous_pk=raw.get("previous_pk"),
        previous_uuid=(
            row_identity(source.name, previous_uuid, int(raw["previous_pk"])) if raw.get("previous_pk") else None
        ),
        extra=extra,
    )


_TEXT_FIELDS = ("value_text", "comments", "value_complex", "value_modifier", "void_reason")
_DATE_FIELDS = ("obs_datetime", "date_created")


def _datetime_or_none(value: Any) -> datetime | None:
    return value if isinstance(value, datetime) else None


def _obs_row(raw: dict[str, Any]) -> ObsRow:
    values: dict[str, Any] = {name: raw.get(name) for name in _OBS_FIELDS if name in raw}
    for name in _BOOL_FIELDS:
        if values.get(name) is not None:
            values[name] = bool(values[name])
    problems = []
    for name in _TEXT_FIELDS:
        if isinstance(values.get(name), bytes):
            # A binary column (or a database written with the wrong charset) hands us bytes.
            try:
                values[name] = values[name].decode("utf-8")
            except UnicodeDecodeError:
                values[name] = None
                problems.append(f"{name} is not valid UTF-8")
    for name in _DATE_FIELDS:
        if not isinstance(values.get(name), datetime):
            values[name] = None
            problems.append(f"{name} is missing or zero")
    if values.get("value_datetime") is not None and not isinstance(values["value_datetime"], datetime):
        values["value_datetime"] = None
        problems.append("value_datetime is zero")
    if raw.get("encounter_id") is not None and raw.get("encounter_uuid") is None:
        problems.append(f"it refers to encounter {raw['encounter_id']}, which does not exist")
    values["problem"] = "; ".join(problems) or None
    return ObsRow(**values)


class OpenMRSSource:
    """Reads one hospital's OpenMRS database. Use as a context manager."""

    def __init__(self, hospital: HospitalConfig, retry: RetryConfig, *, connect: Connect = pymysql.connect) -> None:
        self.hospital = hospital
        self._retry = retry
        self._connect = connect
        self._conn: Any = None
        self._schema: SchemaInfo | None = None
        self._properties: dict[str, Any] | None = None
        # normalised national ID -> patients, for identifiers not stored as plain digits
        self._written_otherwise: dict[str, set[int]] | None = None
        self._counted: OpenMRSSource = self
        self._server_has_no_tls = (hospital.db.host, hospital.db.port) in _SERVERS_WITHOUT_TLS
        self._count_lock = threading.Lock()
        self.statements = 0
        # The public method a statement is run for, named in each tracer report.
        self._purpose = ""

    # -- connection -------------------------------------------------------------------------
    def __enter__(self) -> OpenMRSSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def read_ahead(self) -> OpenMRSSource:
        """A second reader on its own connection (pymysql connections are not thread-safe),
        sharing this one's schema and statement count."""
        reader = OpenMRSSource(self.hospital, self._retry, connect=self._connect)
        reader._schema = self._schema
        reader._counted = self
        return reader

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # noqa: BLE001 - closing a broken connection may fail; it is gone anyway
                pass
            self._conn = None

    def _connection(self) -> Any:
        if self._conn is None:
            db = self.hospital.db
            kwargs: dict[str, Any] = {
                "host": db.host,
                "port": db.port,
                "user": db.user,
                "password": db.resolved_password().get_secret_value(),
                "database": db.name,
                "charset": "utf8mb4",
                "autocommit": True,
                "connect_timeout": db.connect_timeout_seconds,
                # pymysql's connect_timeout bounds only the TCP connect: the greeting, the TLS
                # handshake and the login wait for the read timeout. A server that accepts and
                # never answers must fail within the connect timeout, so the read timeout is
                # the connect timeout until the connection is up.
                "read_timeout": db.connect_timeout_seconds,
                "write_timeout": db.connect_timeout_seconds,
                "cursorclass": pymysql.cursors.DictCursor,
            }
            mode = db.tls_mode
            if mode == "disabled" or (mode == "preferred" and self._server_has_no_tls):
                kwargs["ssl_disabled"] = True
            else:
                kwargs["ssl"] = tls_context(self.hospital)
            try:
                try:
                    conn = self._connect(**kwargs)
                except pymysql.err.OperationalError as exc:
                    if mode != "preferred" or exc.args[0] != _SSL_CONNECTION_ERROR:
                        raise
                    # tls: preferred and a server without TLS: plaintext, said in test-connection.
                    self._server_has_no_tls = True
                    _SERVERS_WITHOUT_TLS.add((db.host, db.port))
                    if db.on_this_machine:
                        log.info("%s: the OpenMRS server offers no TLS; plaintext (tls: preferred)", self.hospital.name)
                    else:
                        # Patient data crosses a network unencrypted: a WARNING, which --quiet keeps.
                        log.warning(
                            "%s: the OpenMRS server %s:%d offers no TLS: patient data crosses the network in"
                            " plaintext (tls: preferred); set db.tls: required with db.ssl.ca, or db.tls: disabled"
                            " to accept plaintext on purpose",
                            self.hospital.name, db.host, db.port,
                        )  # fmt: skip
                    del kwargs["ssl"]
                    conn = self._connect(**kwargs, ssl_disabled=True)
            except Exception as exc:  # noqa: BLE001 - every driver failure is translated here
                raise translate_mysql_error(exc, self.hospital, connecting=True) from None
            # Private attributes, read before every socket operation: pymysql has no public way to
            # change a connection's timeouts once it is open.
            conn._read_timeout = db.read_timeout_seconds
            conn._write_timeout = db.read_timeout_seconds
            self._conn = conn
            if log.isEnabledFor(logging.DEBUG):
                log.debug(
                    "%s: connected to %s:%d/%s as %s, %s",
                    self.hospital.name, db.host, db.port, db.name, db.user, _transport(conn),
                )  # fmt: skip
        return self._conn

    @property
    def encrypted(self) -> bool | None:
        """Whether the open connection is TLS (None before connecting)."""
        if self._conn is None:
            return None
        return not (self.hospital.db.tls_mode == "disabled" or self._server_has_no_tls)

    def _translate(self, exc: BaseException) -> PassportSyncError:
        if isinstance(exc, PassportSyncError):
            return exc
        return translate_mysql_error(exc, self.hospital)

    def _run_once(self, query: Query) -> list[dict[str, Any]]:
        sql, params = query
        conn = self._connection()
        try:
            with conn.cursor() as cursor:
                with self._counted._count_lock:
                    self._counted.statements += 1
                started = time.monotonic()
                try:
                    cursor.execute(sql, params)
                    rows = list(cursor.fetchall())
                finally:
                    tracing.report(
                        tracing.MYSQL, self._purpose or _tables_of(sql), time.monotonic() - started, self.hospital.id
                    )
                if log.isEnabledFor(logging.DEBUG):
                    log.debug(
                        "%s: %d rows in %.3fs from %s",
                        self.hospital.name, len(rows), time.monotonic() - started, _tables_of(sql),
                    )  # fmt: skip
                return rows
        except (pymysql.err.MySQLError, OSError, ssl_module.SSLError) as exc:
            error = self._translate(exc)
            if isinstance(error, SourceUnavailable):
                self.close()
            raise error from None

    def run(self, query: Query) -> list[dict[str, Any]]:
        """Run one statement, retrying transient failures with a fresh connection."""
        return call_with_retry(self._retry, f"{self.hospital.name}: OpenMRS", lambda: self._run_once(query))

    def connect(self) -> None:
        """Open the connection now (retrying), so connection problems surface first."""
        call_with_retry(self._retry, f"{self.hospital.name}: OpenMRS", self._connection)

    # -- facts about the database -----------------------------------------------------------------
    @_traced
    def server_version(self) -> str:
        return str(self.run(("SELECT VERSION() AS v", ()))[0]["v"])

    @_traced
    def schema(self) -> SchemaInfo:
        if self._schema is None:
            rows = self.run(queries.SCHEMA_QUERY)
            self._schema = SchemaInfo(frozenset((r["TABLE_NAME"], r["COLUMN_NAME"]) for r in rows))
            missing_tables = [t for t in queries.REQUIRED_TABLES if not self._schema.has(t)]
            if missing_tables:
                self._schema = None
                raise SourceError(
                    f"not an OpenMRS database: missing table(s) {', '.join(missing_tables)}",
                    hint="check db.name of this hospital, and that the MySQL user may SELECT these tables"
                    " (scripts/create-readonly-user.sql)",
                )
            missing = queries.missing_columns(self._schema)
            if missing:
                self._schema = None
                raise SourceError(
                    f"this OpenMRS database lacks column(s) passport-sync reads: {', '.join(missing)}",
                    hint="passport-sync reads OpenMRS Platform 2.x tables as they ship; restore the column(s), or"
                    " grant the MySQL user SELECT on them if only the grant is missing",
                )
        return self._schema

    @_traced
    def identifier_types(self, name_like: str | None, uuid: str | None = None) -> list[IdentifierType]:
        rows = self.run(queries.identifier_types(name_like, uuid))
        return [IdentifierType(int(r["patient_identifier_type_id"]), str(r["name"]), str(r["uuid"])) for r in rows]

    @_traced
    def national_id_type(self, wanted: NationalIdType) -> IdentifierType:
        """The one identifier type that holds national IDs; SourceError naming the candidates
        when the configuration leaves it unclear."""
        candidates = self.identifier_types(wanted.name, wanted.uuid)
        described = f"uuid {wanted.uuid}" if wanted.uuid else f"a name like {wanted.name!r}"
        if not candidates:
            raise SourceError(
                f"no patient_identifier_type with {described}",
                hint="set national_id_type (name or uuid) for this hospital to the type that holds national IDs",
            )
        chosen = choose_identifier_type(candidates)
        if chosen is None:
            raise SourceError(
                f"several patient_identifier_types have {described}: "
                + ", ".join(c.describe() for c in candidates)
                + "; it is not clear which holds the patient's own national ID",
                hint="set national_id_type.uuid (or national_id_type.name to the exact name) for this hospital",
            )
        return chosen

    @_traced
    def look_alike_types(self, chosen: IdentifierType, patterns: Collection[str]) -> list[IdentifierType]:
        """Other identifier types whose names look like a national ID's (a parent's, an old
        one): they are not used, and test-connection says so."""
        found: dict[int, IdentifierType] = {}
        for pattern in patterns:
            found.update((t.type_id, t) for t in self.identifier_types(pattern))
        return [t for t_id, t in sorted(found.items()) if t_id != chosen.type_id]

    def _global_properties(self) -> dict[str, Any]:
        """The global properties the sync reads, once per connection's run."""
        if self._properties is None:
            query = queries.global_properties(self.schema())
            rows = self.run(query) if query is not None else []
            self._properties = {r["property"]: r["property_value"] for r in rows}
        return self._properties

    @_traced
    def probe(self, clinical_sources: Sequence[ClinicalSource]) -> DatabaseProbe:
        """The clock, time zone, fingerprint, global properties and every feed's head, in one
        statement (each part as its own method would read it)."""
        schema = self.schema()
        latest: list[tuple[str, Query, Query]] = [("obs", checksums.max_pk("obs"), queries.max_date_voided())]
        latest += [(c.name, checksums.max_pk(c.name), clinical.max_changed(c, schema)) for c in clinical_sources]
        row = self.run(queries.probe(schema, latest))[0]
        self._properties = {name: row[name] for name in queries.PROBED_PROPERTIES if row[name] is not None}
        heads = {
            name: FeedHead(
                None if row[f"pk_{i}"] is None else int(row[f"pk_{i}"]),
                _datetime_or_none(row[f"changed_{i}"]),
            )
            for i, (name, _, _) in enumerate(latest)
        }
        return DatabaseProbe(
            now=_datetime_or_none(row["now"]),
            zone=server_zone(str(row["tz"] or ""), str(row["sys"] or ""), int(row["offset_seconds"] or 0)),
            fingerprint=None if row["fingerprint"] is None else str(row["fingerprint"]),
            heads=heads,
            identifier_max=int(row["identifier_max"] or 0),
        )

    @_traced
    def boolean_concepts(self) -> tuple[int, int]:
        """The concept ids OpenMRS uses for True and False (global properties, default 1 and 2)."""
        props = self._global_properties()
        try:
            return int(props.get("concept.true") or 1), int(props.get("concept.false") or 2)
        except ValueError:
            return 1, 2

    @_traced
    def default_locale(self) -> str | None:
        """OpenMRS's ``default_locale`` global property: the fallback language of concept names."""
        value = str(self._global_properties().get("default_locale") or "").strip()
        return value or None

    @_traced
    def server_time_zone(self) -> ServerTimeZone:
        """The time zone the server writes DATETIMEs in (OpenMRS stores its local time)."""
        row = self.run(queries.server_time_zone())[0]
        return server_zone(str(row["tz"] or ""), str(row["sys"] or ""), int(row["offset_seconds"] or 0))

    # -- observations ---------------------------------------------------------------------------
    @_traced
    def obs_after(self, after_obs_id: int, limit: int) -> list[ObsRow]:
        return [_obs_row(r) for r in self.run(queries.obs_after(self.schema(), after_obs_id, limit))]

    @_traced
    def obs_in_ranges(self, ranges: Sequence[tuple[int, int]], after_obs_id: int, limit: int) -> list[ObsRow]:
        if not ranges:
            return []
        return [_obs_row(r) for r in self.run(queries.obs_in_ranges(self.schema(), ranges, after_obs_id, limit))]

    @_traced
    def obs_by_ids(self, obs_ids: Collection[int]) -> list[ObsRow]:
        if not obs_ids:
            return []
        return [_obs_row(r) for r in self.run(queries.obs_by_ids(self.schema(), obs_ids))]

    @_traced
    def live_members(self, group_ids: Collection[int]) -> list[ObsRow]:
        if not group_ids:
            return []
        return [_obs_row(r) for r in self.run(queries.live_members(self.schema(), group_ids))]

    @_traced
    def obs_of_persons(self, person_ids: Collection[int], after_obs_id: int, limit: int) -> list[ObsRow]:
        if not person_ids:
            return []
        return [_obs_row(r) for r in self.run(queries.obs_of_persons(self.schema(), person_ids, after_obs_id, limit))]

    @_traced
    def voided_since(self, since: datetime | None, after_obs_id: int, limit: int) -> list[ObsRow]:
        return [_obs_row(r) for r in self.run(queries.voided_since(self.schema(), since, after_obs_id, limit))]

    @_traced
    def last_obs_id_before(self, moment: datetime) -> int:
        return int(self.run(queries.last_obs_id_before(moment))[0]["m"] or 0)

    @_traced
    def count_obs_after(self, after_obs_id: int, gaps: Sequence[tuple[int, int]] = ()) -> int:
        row = self.run(queries.count_obs_after(after_obs_id, gaps))[0]
        return int(next(iter(row.values())) or 0)

    @_traced
    def count_waiting(self, feeds: Sequence[tuple[str, int, Sequence[tuple[int, int]]]]) -> dict[str, int]:
        """Rows waiting per feed (name, checkpoint, gaps), counted in one statement: the
        observations and each clinical source (by its name) after the checkpoint or in a gap."""
        by_name = {source.name: source for source in clinical.CLINICAL_SOURCES}
        parts: list[Query] = []
        for name, after, gaps in feeds:
            if name == "obs":
                parts.append(queries.count_obs_after(after, gaps))
            else:
                parts.append(clinical.count_after(by_name[name], after, gaps))
        if not parts:
            return {}
        row = self.run(queries.scalars(parts))[0]
        return {name: int(row[f"n_{index}"] or 0) for index, (name, _, _) in enumerate(feeds)}

    # -- people and names ------------------------------------------------------------------------
    @_traced
    def identities(self, person_ids: Collection[int], type_ids: Collection[int]) -> dict[int, PersonIdentity]:
        """Each person's national-ID identifiers, and every patient holding the same national ID
        once normalised (so '3200-0000-001' and '32000000001' are one ID held by two patients).

        One statement finds the identifiers and the holders of each number written as plain digits
        (SQL strips the usual separators from the persons' values); a number typed with another
        kind of space costs a second one, and identifiers written otherwise are read once per run."""
        found: dict[int, list[str]] = {pid: [] for pid in person_ids}
        holders: dict[str, set[int]] = {}
        if person_ids:
            for r in self.run(queries.identities_and_holders(person_ids, type_ids)):
                raw, pid = str(r["identifier"]), int(r["patient_id"])
                if r["part"] == "own":
                    found[pid].append(raw)
                elif digits := normalise_national_id(raw):
                    holders.setdefault(digits, set()).add(pid)
        # A number written with a separator SQL does not strip (another kind of space): its holders
        # of the plain form are asked apart.
        unplain = {
            d
            for raws in found.values()
            for raw in raws
            if (d := normalise_national_id(raw)) and d != _without_sql_separators(raw)
        }
        if unplain:
            for digits, held in self.holders(unplain, type_ids).items():
                holders.setdefault(digits, set()).update(held)
        if any(found.values()):
            for digits, held in self._identifiers_written_otherwise(type_ids).items():
                holders.setdefault(digits, set()).update(held)
        return {
            pid: PersonIdentity(
                pid,
                tuple(raws),
                tuple(len(holders.get(normalise_national_id(raw) or "", set()) | {pid}) for raw in raws),
            )
            for pid, raws in found.items()
        }

    @_traced
    def holders(self, national_ids: Collection[str], type_ids: Collection[int]) -> dict[str, set[int]]:
        """The patients holding each (digits-only) national ID, however it is written."""
        result: dict[str, set[int]] = {n: set() for n in national_ids}
        if not national_ids:
            return result
        rows = self.run(queries.identifiers_equal_to(national_ids, type_ids))
        for r in rows:
            digits = normalise_national_id(str(r["identifier"]))
            if digits in result:
                result[digits].add(int(r["patient_id"]))
        for digits, held in self._identifiers_written_otherwise(type_ids).items():
            if digits in result:
                result[digits] |= held
        return result

    def _identifiers_written_otherwise(self, type_ids: Collection[int]) -> dict[str, set[int]]:
        """The holders of identifiers not written as plain digits, by normalised number: the only
        ones an exact match on the digits misses. Read once per run."""
        if self._written_otherwise is None:
            self._written_otherwise = {}
            for r in self.run(queries.identifiers_not_plain_digits(type_ids)):
                digits = normalise_national_id(str(r["identifier"]))
                if digits:
                    self._written_otherwise.setdefault(digits, set()).add(int(r["patient_id"]))
        return self._written_otherwise

    @_traced
    def persons_with_identifiers_after(self, after_id: int, type_ids: Collection[int]) -> set[int]:
        """Patients given a national-ID identifier after ``after_id`` (patient_identifier_id)."""
        return {int(r["patient_id"]) for r in self.run(queries.identifiers_after(after_id, type_ids))}

    @_traced
    def patient_references(self, person_ids: Collection[int], type_ids: Collection[int]) -> dict[int, dict[str, Any]]:
        """person_id -> {uuid, openmrs_identifier, national_id} (see queries.patient_references)."""
        found: dict[int, dict[str, Any]] = {}
        ordered = sorted(set(person_ids))
        for start in range(0, len(ordered), 1000):
            for row in self.run(queries.patient_references(ordered[start : start + 1000], type_ids)):
                found[int(row["person_id"])] = {
                    "uuid": row["uuid"],
                    "openmrs_identifier": row["openmrs_identifier"],
                    "national_id": row["national_id"],
                }
        return found

    @_traced
    def persons_by_national_id(self, digits: str, type_ids: Collection[int]) -> list[int]:
        """OpenMRS patients holding this national ID, however it is written (sync-patient)."""
        return sorted(self.holders([digits], type_ids)[digits])

    @_traced
    def concept_names(self, concept_ids: Collection[int]) -> dict[int, list[ConceptName]]:
        names: dict[int, list[ConceptName]] = {cid: [] for cid in concept_ids}
        if concept_ids:
            for r in self.run(queries.concept_names(concept_ids)):
                names[int(r["concept_id"])].append(
                    ConceptName(
                        concept_name_id=int(r["concept_name_id"]),
                        name=str(r["name"]),
                        locale=str(r["locale"]),
                        name_type=r["concept_name_type"],
                        locale_preferred=bool(r["locale_preferred"]),
                    )
                )
        return names

    @_traced
    def encounters(self, uuids: Collection[str]) -> dict[str, EncounterRow]:
        """The encounters with these uuids (voided ones included, marked)."""
        if not uuids:
            return {}
        return {
            str(r["uuid"]): EncounterRow(
                encounter_id=int(r["encounter_id"]),
                uuid=str(r["uuid"]),
                person_id=int(r["person_id"]),
                encounter_datetime=_datetime_or_none(r["encounter_datetime"]),
                date_created=_datetime_or_none(r["date_created"]),
                voided=bool(r["voided"]),
                type_name=r.get("type_name"),
                location_name=r.get("location_name"),
                provider_id=r.get("provider_id"),
            )
            for r in self.run(queries.encounters(uuids))
        }

    @_traced
    def providers(self, provider_ids: Collection[int]) -> dict[int, Provider]:
        result: dict[int, Provider] = {}
        if provider_ids:
            for r in self.run(queries.providers(provider_ids)):
                parts = [r.get(k) for k in ("prefix", "given_name", "middle_name", "family_name")]
                person_name = " ".join(str(p).strip() for p in parts if p and str(p).strip())
                display = person_name or (r.get("name") or "").strip() or f"Provider {r['provider_id']}"
                result[int(r["provider_id"])] = Provider(int(r["provider_id"]), str(r["uuid"]), display)
        return result

    # -- diagnoses, conditions, allergies, drug orders -------------------------------------------------
    @_traced
    def clinical_sources(self) -> list[ClinicalSource]:
        """The clinical sources this database has (Platform 2.2+ for diagnoses and conditions)."""
        schema = self.schema()
        return [source for source in clinical.CLINICAL_SOURCES if source.available(schema)]

    def _clinical(self, source: ClinicalSource, query: Query) -> list[ClinicalRow]:
        return [_clinical_row(source, r) for r in self.run(query)]

    @_traced
    def clinical_after(self, source: ClinicalSource, after: int, limit: int) -> list[ClinicalRow]:
        return self._clinical(source, clinical.after_pk(source, self.schema(), after, limit))

    @_traced
    def clinical_in_ranges(
        self, source: ClinicalSource, ranges: Sequence[tuple[int, int]], after: int, limit: int
    ) -> list[ClinicalRow]:
        if not ranges:
            return []
        return self._clinical(source, clinical.in_ranges(source, self.schema(), ranges, after, limit))

    @_traced
    def clinical_by_pks(self, source: ClinicalSource, pks: Collection[int]) -> list[ClinicalRow]:
        if not pks:
            return []
        return self._clinical(source, clinical.by_pks(source, self.schema(), pks))

    @_traced
    def clinical_of_persons(
        self, source: ClinicalSource, person_ids: Collection[int], after: int, limit: int
    ) -> list[ClinicalRow]:
        if not person_ids:
            return []
        return self._clinical(source, clinical.of_persons(source, self.schema(), person_ids, after, limit))

    @_traced
    def clinical_changed(
        self, source: ClinicalSource, since: datetime | None, after: int, limit: int
    ) -> list[ClinicalRow]:
        return self._clinical(source, clinical.changed_since(source, self.schema(), since, after, limit))

    @_traced
    def changes_digests(self, windows: Mapping[str, datetime | None]) -> dict[str, tuple[int, int]]:
        """(rows, XOR of their checksums) of each feed's change window (feed name: the moment it
        starts), in one statement: a summary of the rows ``voided_since`` or ``clinical_changed``
        would return from that moment, without reading them."""
        if not windows:
            return {}
        schema = self.schema()
        sources = {source.name: source for source in clinical.CLINICAL_SOURCES}
        names = list(windows)
        parts = [
            queries.voided_digest(windows[name])
            if name == "obs"
            else clinical.changed_digest(sources[name], schema, windows[name])
            for name in names
        ]
        return {names[int(r["i"])]: (int(r["n"]), int(r["x"])) for r in self.run(queries.digests(parts))}

    @_traced
    def clinical_count_after(self, source: ClinicalSource, after: int, gaps: Sequence[tuple[int, int]] = ()) -> int:
        return int(self.run(clinical.count_after(source, after, gaps))[0]["n"] or 0)

    @_traced
    def clinical_last_pk_before(self, source: ClinicalSource, moment: datetime) -> int:
        return int(self.run(clinical.last_pk_before(source, moment))[0]["m"] or 0)

    # -- reconciliation checksums ------------------------------------------------------------------
    @_traced
    def max_pk(self, feed: str) -> int:
        return int(self.run(checksums.max_pk(feed))[0]["m"] or 0)

    @_traced
    def range_checksums(
        self, feed: str, range_size: int, first: int, last: int, now: datetime
    ) -> dict[int, tuple[int, str]]:
        """(row count, checksum) per non-empty range ``first..last`` of one source."""
        query = checksums.range_checksums(feed, self.schema(), range_size, first, last, now)
        return {int(r["r"]): (int(r["n"]), _text(r["crc"])) for r in self.run(query)}

    @_traced
    def row_checksums(self, feed: str, bounds: Sequence[tuple[int, int]], now: datetime) -> dict[int, int]:
        """The checksum of each row within ``bounds`` of one source, by primary key."""
        if not bounds:
            return {}
        query = checksums.row_checksums(feed, self.schema(), bounds, now)
        return {int(r["k"]): int(r["c"]) for r in self.run(query)}

    @_traced
    def identity_checksums(
        self, type_ids: Collection[int], range_size: int, first: int, last: int
    ) -> dict[int, tuple[int, str]]:
        query = checksums.identity_checksums(type_ids, range_size, first, last)
        return {int(r["r"]): (int(r["n"]), _text(r["crc"])) for r in self.run(query)}

    @_traced
    def person_checksums(self, type_ids: Collection[int], low: int, high: int) -> dict[int, str]:
        return {int(r["p"]): _text(r["crc"]) for r in self.run(checksums.person_checksums(type_ids, low, high))}


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
