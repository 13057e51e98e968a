"""The library API behind each command: wires the adapters and runs the pipeline.

The CLI is a thin layer over these functions; they raise our exceptions and return plain data.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, TypeVar

from passport_sync import checkpoint as cp_logic
from passport_sync.config import HospitalConfig, NationalIdType, Settings, check_passwords
from passport_sync.errors import NothingMatched, PassportSyncError, SourceError, UsageError
from passport_sync.health import HospitalFacts
from passport_sync.mapping.national_id import normalise_national_id
from passport_sync.models import HospitalReport, IdentifierType
from passport_sync.observer import NullObserver, SyncObserver
from passport_sync.parking import DATA_PROBLEMS, RETRIED_BY_FULL_PASS
from passport_sync.pipeline import HospitalSync
from passport_sync.sink.locks import lock_owner
from passport_sync.sink.passport import PassportStore
from passport_sync.source import clinical, queries
from passport_sync.source.openmrs import OpenMRSSource, verifies_server

log = logging.getLogger("passport_sync")

SourceFactory = Callable[[HospitalConfig, Settings], OpenMRSSource]
PATIENT_LOCK_WAIT = timedelta(minutes=2)


def default_source(hospital: HospitalConfig, settings: Settings) -> OpenMRSSource:
    return OpenMRSSource(hospital, settings.sync.retry)


def select_hospitals(settings: Settings, selectors: Sequence[str] | None) -> list[HospitalConfig]:
    """Enabled hospitals, or those named (by id or name, case-insensitive) in ``selectors``.

    Their passwords are resolved now, so a missing credential is a configuration error (exit 2)
    before anything is read or written.
    """
    hospitals = _select(settings, selectors)
    check_passwords(hospitals)
    return hospitals


def _select(settings: Settings, selectors: Sequence[str] | None) -> list[HospitalConfig]:
    if not selectors:
        hospitals = settings.enabled_hospitals()
        if not hospitals:
            raise UsageError(
                "no enabled hospital is configured",
                hint="add hospitals to the YAML file or set HOSPITAL_1_ID, HOSPITAL_1_DB_HOST, …",
            )
        return hospitals
    chosen: list[HospitalConfig] = []
    for selector in selectors:
        wanted = selector.casefold()
        matches = [h for h in settings.hospitals if wanted in (h.id.casefold(), h.name.casefold())]
        if not matches:
            known = ", ".join(h.id for h in settings.hospitals) or "none"
            raise UsageError(f"unknown hospital {selector!r}", hint=f"configured hospital ids: {known}")
        chosen.extend(m for m in matches if m not in chosen)
    return chosen


def sync_all(
    settings: Settings,
    store: PassportStore,
    hospitals: Sequence[HospitalConfig],
    *,
    observer: SyncObserver | None = None,
    dry_run: bool = False,
    source_factory: SourceFactory = default_source,
    workers: int | None = None,
    count_behind: bool = False,
) -> list[HospitalReport]:
    """Sync the hospitals, up to ``workers`` at once (default ``sync.workers``); one hospital's
    failure or hang never stops the others. Reports come back in the order of ``hospitals``.

    ``count_behind`` counts, after each successful run, the rows still waiting in OpenMRS
    (``HospitalReport.behind``) on the hospital's own connection; the metrics file shows it.
    """
    if not dry_run:
        store.indexes.ensure()

    def sync_one(hospital: HospitalConfig) -> HospitalReport:
        with source_factory(hospital, settings) as source:
            sync = HospitalSync(hospital, settings, source, store, observer=observer, dry_run=dry_run)
            report = sync.run_incremental()
            if count_behind and report.outcome == "ok":
                try:
                    report.behind, _ = count_behind_rows(source, store.checkpoints.load(hospital.id))
                except PassportSyncError as exc:
                    log.warning("%s: cannot count the rows still behind: %s", hospital.name, exc)
            return report

    return for_each_hospital(hospitals, sync_one, workers or settings.sync.workers)


T = TypeVar("T")


def for_each_hospital(
    hospitals: Sequence[HospitalConfig], work: Callable[[HospitalConfig], T], workers: int
) -> list[T]:
    """``work`` for every hospital, up to ``workers`` at once; results in the order of ``hospitals``.

    Each call runs on its own thread with its own OpenMRS connections; ``work`` must not raise
    for one hospital's failure (the pipeline turns it into a failed report).
    """
    if workers <= 1 or len(hospitals) <= 1:
        return [work(hospital) for hospital in hospitals]
    pool = ThreadPoolExecutor(max_workers=min(workers, len(hospitals)), thread_name_prefix="hospital")
    try:
        futures = [pool.submit(work, hospital) for hospital in hospitals]
        results = [future.result() for future in futures]
    except BaseException:
        # Ctrl-C or a bug: hospitals not started yet are not started at all.
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    return results


def last_successes(store: PassportStore, reports: Sequence[HospitalReport]) -> dict[str, datetime | None]:
    """Each hospital's newest successful run: this run's end when it succeeded, else from the audit
    log (an earlier run, or another host's run that held the lock). Unknown when MongoDB fails."""
    found: dict[str, datetime | None] = {}
    for report in reports:
        if report.outcome == "ok" and not report.dry_run:
            found[report.hospital_id] = report.finished_at
            continue
        try:
            found[report.hospital_id] = store.audit.last_successful_run_at(report.hospital_id)
        except PassportSyncError as exc:
            log.warning("%s: cannot read the last successful run: %s", report.hospital_name, exc)
            found[report.hospital_id] = None
    return found


def health_facts(
    settings: Settings,
    store: PassportStore,
    hospital: HospitalConfig,
    *,
    source_factory: SourceFactory = default_source,
) -> HospitalFacts:
    """What ``check`` judges about one hospital: the status facts plus the last successful run."""
    status = hospital_status(settings, store, hospital, source_factory=source_factory)
    last = status["last_run"] or {}
    return HospitalFacts(
        hospital_id=hospital.id,
        hospital_name=hospital.name,
        last_run_at=datetime.fromisoformat(last["at"]) if last.get("at") else None,
        last_run_outcome=last.get("outcome"),
        last_run_errors=tuple(last.get("errors") or ()),
        last_run_error_count=int(last.get("error_count") or 0),
        last_success_at=store.audit.last_successful_run_at(hospital.id),
        behind=status["behind"],
        behind_error=status["behind_error"],
        data_problems={
            reason: count for reason, count in status["parked_by_reason"].items() if reason in DATA_PROBLEM_REASONS
        },
    )


# Parked rows that wait for someone to correct OpenMRS (not for a patient to register).
DATA_PROBLEM_REASONS = frozenset(DATA_PROBLEMS) | frozenset(RETRIED_BY_FULL_PASS)


def reconcile(
    settings: Settings,
    store: PassportStore,
    hospitals: Sequence[HospitalConfig],
    *,
    observer: SyncObserver | None = None,
    dry_run: bool = False,
    compare_all: bool = False,
    source_factory: SourceFactory = default_source,
) -> list[HospitalReport]:
    """A full reconciliation pass of each hospital now, under its lock (see ``reconcile``)."""
    if not dry_run:
        store.indexes.ensure()
    reports = []
    for hospital in hospitals:
        with source_factory(hospital, settings) as source:
            sync = HospitalSync(hospital, settings, source, store, observer=observer, dry_run=dry_run)
            reports.append(sync.run_reconcile(compare_all=compare_all))
    return reports


@dataclass(slots=True)
class PatientSyncResult:
    national_id_known_to_passport: bool
    reports: list[HospitalReport] = field(default_factory=list)
    persons_matched: int = 0


def sync_patient(
    settings: Settings,
    store: PassportStore,
    hospitals: Sequence[HospitalConfig],
    national_id: str,
    *,
    observer: SyncObserver | None = None,
    dry_run: bool = False,
    source_factory: SourceFactory = default_source,
) -> PatientSyncResult:
    digits = normalise_national_id(national_id)
    if digits is None:
        raise UsageError(
            "the national ID must be 10 to 16 digits (spaces, dashes, dots and slashes are ignored)",
        )
    if not dry_run:
        store.indexes.ensure()
    result = PatientSyncResult(national_id_known_to_passport=bool(store.patients.by_national_id([digits])))
    for hospital in hospitals:
        with source_factory(hospital, settings) as source:
            sync = HospitalSync(
                hospital,
                settings,
                source,
                store,
                observer=observer or NullObserver(),
                dry_run=dry_run,
                # An admin's one-patient sync waits for a running sync-all rather than failing.
                lock_wait=PATIENT_LOCK_WAIT,
            )
            result.reports.append(sync.run_patient(digits))
            result.persons_matched += sync.persons_matched
    failed = any(r.outcome != "ok" for r in result.reports)
    if not failed and result.persons_matched == 0 and not result.national_id_known_to_passport:
        raise NothingMatched(
            "that national ID matches no patient in OpenMRS nor in Patient Passport",
            hint="check the number; the identifier type is set by national_id_type",
        )
    return result


def hospital_status(
    settings: Settings,
    store: PassportStore,
    hospital: HospitalConfig,
    *,
    source_factory: SourceFactory = default_source,
) -> dict[str, Any]:
    """What support staff need to see about one hospital, as plain data (JSON-ready)."""
    doc = store.checkpoints.load(hospital.id)
    state = cp_logic.from_document(doc)
    last = store.audit.last_run_summary(hospital.id)
    holder = store.locks.holder(hospital.id)
    changes = (last or {}).get("changes", {})
    status: dict[str, Any] = {
        "hospital_id": hospital.id,
        "hospital_name": hospital.name,
        "enabled": hospital.enabled,
        "checkpoint": {
            "last_obs_id": state.last_obs_id,
            "pending_late_commit_ids": state.gap_ids,
            "void_watermark": _iso(state.void_watermark),
            # Only a checkpoint sync-all saved (sync-patient keeps marks in the same document).
            "saved_at": _iso((doc or {}).get("lastSyncTime")) if cp_logic.is_stored("obs", doc) else None,
        },
        "last_run": {
            "at": _iso((last or {}).get("createdAt")),
            "outcome": changes.get("outcome"),
            "written": changes.get("written"),
            "removed": changes.get("removed"),
            "error_count": changes.get("error_count"),
            "errors": changes.get("errors", []),
        }
        if last
        else None,
        "records": store.records.count(hospital.id),
        "parked": store.parked.count(hospital.id),
        "parked_by_reason": store.parked.by_reason(hospital.id),
        "behind": None,
        "behind_error": None,
        "sources": {},
        "locked_by": holder.get("owner") if holder else None,
        "reconcile": _reconcile_status(store.checkpoints.reconcile_state(hospital.id)),
    }
    try:
        with source_factory(hospital, settings) as source:
            status["behind"], status["sources"] = count_behind_rows(source, doc)
    except PassportSyncError as exc:
        status["behind_error"] = str(exc)
    return status


def count_behind_rows(source: OpenMRSSource, syncstatus: dict[str, Any] | None) -> tuple[int, dict[str, Any]]:
    """Rows in OpenMRS not synced yet (after each feed's checkpoint, plus those committed late
    inside its gaps): the total, and {source name: {last_id, behind}} for the clinical sources.
    Rows, not ids: a gap below the first id a feed read may be wide and hold nothing."""
    state = cp_logic.from_document(syncstatus)
    total = source.count_obs_after(state.last_obs_id, state.gap_ranges)
    sources: dict[str, Any] = {}
    for clinical_source in source.clinical_sources():
        feed_state = cp_logic.stored_checkpoint(clinical_source.name, syncstatus)
        behind = source.clinical_count_after(clinical_source, feed_state.last_obs_id, feed_state.gap_ranges)
        sources[clinical_source.name] = {"last_id": feed_state.last_obs_id, "behind": behind}
        total += behind
    return total, sources


def reset_checkpoint(
    settings: Settings,
    store: PassportStore,
    hospital: HospitalConfig,
    *,
    to: datetime | None = None,
    source_factory: SourceFactory = default_source,
) -> dict[str, Any]:
    """Move the hospital's checkpoints back: to the start, or to the rows created at ``to``
    (observations and each clinical source alike).

    A checkpoint only ever moves back: a feed already before ``to`` keeps its place (moving it
    forward would skip rows never synced), and its late-commit gaps are kept. It takes the
    hospital's lock, so a running sync cannot write its checkpoint over the reset one.
    """
    owner = lock_owner()
    store.locks.acquire(hospital.id, owner, timedelta(seconds=settings.sync.lock_ttl_seconds))
    try:
        if to is None:
            store.checkpoints.delete(hospital.id)
            return {"hospital_id": hospital.id, "rereads": "everything", "last_obs_id": 0, "moved": True}
        return _reset_to(settings, store, hospital, to, source_factory)
    finally:
        store.locks.release(hospital.id, owner)


def _reset_to(
    settings: Settings, store: PassportStore, hospital: HospitalConfig, to: datetime, source_factory: SourceFactory
) -> dict[str, Any]:
    doc = store.checkpoints.load(hospital.id)
    fields: dict[str, Any] = {}
    unmoved: list[str] = []
    with source_factory(hospital, settings) as source:
        feeds: list[tuple[str, Callable[[], int], Callable[[int, list[tuple[int, int]]], int]]] = [
            ("obs", lambda: source.last_obs_id_before(to), source.count_obs_after)
        ]
        for clinical_source in source.clinical_sources():
            feeds.append(
                (
                    clinical_source.name,
                    partial(source.clinical_last_pk_before, clinical_source, to),
                    partial(source.clinical_count_after, clinical_source),
                )
            )
        remaining = 0
        stored = [feed for feed in feeds if cp_logic.is_stored(feed[0], doc)]  # the others read everything
        for name, last_before, count_after in stored:
            current = cp_logic.stored_checkpoint(name, doc)
            state = cp_logic.move_back(current, last_before(), to)
            if state == current:
                unmoved.append(name)
            fields.update(cp_logic.stored_fields(name, state))
            remaining += count_after(state.last_obs_id, state.gap_ranges)
    if fields:
        store.checkpoints.save(hospital.id, fields, datetime.now().astimezone())
    obs_state = cp_logic.stored_checkpoint("obs", {**(doc or {}), **fields})
    return {
        "hospital_id": hospital.id,
        "rereads": f"rows created since {to.isoformat(sep=' ')}",
        "last_obs_id": obs_state.last_obs_id,
        "rows_to_reread": remaining,
        "moved": len(unmoved) < len(stored),
        "already_before": unmoved,
    }


def check_source(hospital: HospitalConfig, settings: Settings, source: OpenMRSSource) -> dict[str, Any]:
    """test-connection for one hospital: everything support staff would check by hand."""
    result: dict[str, Any] = {"hospital_id": hospital.id, "hospital_name": hospital.name, "ok": False}
    checks: list[dict[str, Any]] = []
    result["checks"] = checks

    def check(name: str, ok: bool, detail: str = "", hint: str = "", level: str = "") -> None:
        checks.append(
            {"check": name, "ok": ok, "level": level or ("ok" if ok else "error"), "detail": detail, "hint": hint}
        )

    try:
        source.connect()
    except PassportSyncError as exc:
        check("connect", False, str(exc), exc.hint)
        return result
    check("connect", True, f"{hospital.db.host}:{hospital.db.port}/{hospital.db.name}")
    _check_tls(hospital, source, check)
    try:
        check("server version", True, source.server_version())
        configured = hospital.zone()
        zone = f"{hospital.timezone} (configured)" if configured is not None else source.server_time_zone().description
        result["timezone"] = zone
        check("time zone", True, zone)
        schema = source.schema()
        check("OpenMRS tables", True, f"{len(queries.REQUIRED_TABLES)} required tables present")
        wanted = settings.national_id_type_for(hospital)
        try:
            chosen: IdentifierType | None = source.national_id_type(wanted)
        except SourceError as exc:
            chosen = None
            check("national ID identifier type", False, str(exc), exc.hint)
        if chosen is not None:
            check("national ID identifier type", True, chosen.describe())
        look_alikes = source.look_alike_types(chosen, {wanted.name, NationalIdType().name}) if chosen else []
        if chosen is not None and look_alikes:
            check(
                "national ID look-alikes",
                True,
                "not used: " + ", ".join(t.describe() for t in look_alikes),
                f'only "{chosen.name}" counts as the patient\'s own national ID; if that is wrong,'
                " set national_id_type.uuid for this hospital",
                level="warning",
            )
        check(
            "obs columns",
            schema.has("obs", "previous_version"),
            "obs.previous_version present" if schema.has("obs", "previous_version") else "obs.previous_version missing",
        )
        available = source.clinical_sources()
        switches = settings.sync.sources
        synced = [c.label for c in available if switches.enabled(c.name) is not False]
        missing = [c.label for c in clinical.CLINICAL_SOURCES if c not in available]
        result["sources"] = ["observations", *synced]
        check(
            "sources",
            True,
            "observations"
            + "".join(f", {label}" for label in synced)
            + (f" (not in this OpenMRS version: {', '.join(missing)})" if missing else ""),
        )
        indexes = source.run(
            (
                "SELECT TABLE_NAME, COLUMN_NAME FROM information_schema.STATISTICS"
                " WHERE TABLE_SCHEMA = DATABASE() AND SEQ_IN_INDEX = 1",
                (),
            )
        )
        indexed = {(r["TABLE_NAME"], r["COLUMN_NAME"]) for r in indexes}
        for table, column in RECOMMENDED_INDEXES:
            present = (table, column) in indexed
            check(
                f"index on {table}({column})",
                True,
                "present" if present else "missing",
                "" if present else "create it: see scripts/create-readonly-user.sql",
                level="ok" if present else "warning",
            )
        grants = " ".join(str(next(iter(r.values()))) for r in source.run(("SHOW GRANTS", ())))
        writable = any(w in grants.upper() for w in ("ALL PRIVILEGES", "INSERT", "UPDATE", "DELETE"))
        check(
            "read-only user",
            True,
            "the MySQL user can write; passport-sync needs SELECT only" if writable else "SELECT only",
            "use a SELECT-only user (scripts/create-readonly-user.sql)" if writable else "",
            level="warning" if writable else "ok",
        )
    except PassportSyncError as exc:
        check("schema", False, str(exc), exc.hint)
        return result
    result["ok"] = all(c["ok"] for c in checks)
    return result


def _check_tls(hospital: HospitalConfig, source: OpenMRSSource, check: Callable[..., None]) -> None:
    db = hospital.db
    fix = "set db.tls: required and db.ssl.ca (the CA of the server's certificate); see the README, TLS"
    if not source.encrypted:
        why = "tls: disabled" if db.tls_mode == "disabled" else "the server offers no TLS (tls: preferred)"
        check("TLS", True, f"NOT encrypted: {why}", fix, level="warning")
        return
    if not verifies_server(hospital):
        check("TLS", True, "encrypted, but the server's certificate is NOT verified (tls: preferred)", fix, "warning")
        return
    tls = db.tls_options
    trusted = f"CA {tls.ca}" if tls.ca else "the system's trust store"
    identity = "host name checked" if tls.verify_identity else "host name NOT checked (verify_identity: false)"
    client = "; client certificate sent" if tls.cert else ""
    check("TLS", True, f"encrypted; certificate verified against {trusted}; {identity}{client}")


# The indexes the sync's own queries use: voids by date_voided each run, a patient's rows by
# person_id (sync-patient), identifiers by value. New rows are read by primary key.
RECOMMENDED_INDEXES = (
    ("obs", "person_id"),
    ("obs", "date_voided"),
    ("patient_identifier", "identifier"),
)


def check_sink(store: PassportStore) -> dict[str, Any]:
    checks: list[dict[str, Any]] = []
    result: dict[str, Any] = {"target": "mongodb", "ok": False, "checks": checks}
    try:
        checks.append(
            {"check": "reachable", "ok": True, "level": "ok", "detail": f"MongoDB {store.ping()}", "hint": ""}
        )
        present = store.collections()
        for name in ("patients", "medicalrecords", "users", "doctors", "hospitals"):
            ok = name in present
            checks.append(
                {
                    "check": f"collection {name}",
                    "ok": True,
                    "level": "ok" if ok else "warning",
                    "detail": "present" if ok else "missing (is this the Patient Passport database?)",
                    "hint": "" if ok else "check the database name at the end of MONGODB_URI",
                }
            )
        for finding in store.indexes.findings():
            checks.append(
                {
                    "check": f"index {finding.subject}",
                    "ok": finding.level != "error",
                    "level": finding.level,
                    "detail": finding.detail,
                    "hint": finding.hint,
                }
            )
    except PassportSyncError as exc:
        checks.append({"check": "reachable", "ok": False, "level": "error", "detail": str(exc), "hint": exc.hint})
        return result
    result["ok"] = all(c["ok"] for c in checks)
    return result


def _reconcile_status(state: dict[str, Any]) -> dict[str, Any]:
    """When the last full reconciliation pass ended and what it found; how far the current one is."""
    last = state.get("lastFullPass")
    current = state.get("pass")
    return {
        "last_full_pass": {
            "started_at": _iso(last.get("startedAt")),
            "ended_at": _iso(last.get("endedAt")),
            "by": last.get("by"),
            "findings": last.get("findings", {}),
        }
        if last
        else None,
        "current_pass": {
            "started_at": _iso(current.get("startedAt")),
            "position": current.get("cursor", 0),
            "positions": max(current.get("layout", {}).values(), default=0) * len(current.get("layout", {})),
        }
        if current
        else None,
    }


def _iso(value: Any) -> str | None:
    """ISO 8601 in UTC with a ``Z``; MongoDB hands back naive datetimes that are UTC."""
    if not isinstance(value, datetime):
        return None
    utc = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return utc.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def status_healthy(status: Mapping[str, Any]) -> bool:
    """What ``status`` exits 0 for: OpenMRS reachable and the last run (if any) not failed."""
    last = status.get("last_run") or {}
    return status.get("behind_error") is None and last.get("outcome") != "failed"
