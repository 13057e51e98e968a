"""The sync pipeline: read a batch, map it, write it, then move the checkpoint.

One ``HospitalSync`` per hospital per run. The order inside a run:

1. re-read the late-commit gaps of earlier runs (rows whose transaction committed after we passed);
2. read new observations after the checkpoint, batch by batch, moving the checkpoint after each
   batch MongoDB acknowledged;
3. read voids since the void watermark (minus a look-back) and remove those records;
4. land parked observations whose patient has since become known.

Every write is idempotent, so a crash anywhere (kill -9 included) is repaired by the next run
re-reading from the last checkpoint.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from functools import partial
from typing import Any

from passport_sync import checkpoint as cp_logic
from passport_sync import tracing
from passport_sync.checkpoint import Checkpoint
from passport_sync.config import HospitalConfig, Settings
from passport_sync.errors import ConfigError, LockHeld, PassportSyncError
from passport_sync.mapping import RENDER_VERSION
from passport_sync.mapping.categorise import categorise
from passport_sync.mapping.clinical import (
    ClinicalContext,
    ClinicalRow,
    build_clinical_record,
    diagnosis_group_record,
    discontinuation_patch,
)
from passport_sync.mapping.concepts import choose_concept_name, chosen_answer_name
from passport_sync.mapping.national_id import normalise_national_id
from passport_sync.mapping.transform import (
    NUMERIC_DATATYPES,
    GroupMember,
    RecordContext,
    build_group_record,
    build_record,
    record_id,
)
from passport_sync.mapping.visits import DERIVED_SOURCES, VisitContext, derived_ids, plan_encounter
from passport_sync.models import ConceptName, HospitalReport, ObsRow, PersonIdentity, Provider
from passport_sync.observer import NullObserver, SyncObserver
from passport_sync.reconcile import Reconciler
from passport_sync.sink.locks import lock_owner
from passport_sync.sink.passport import PassportStore
from passport_sync.sink.records import BatchWrite, HospitalRefs
from passport_sync.source.clinical import ClinicalSource
from passport_sync.source.openmrs import OpenMRSSource

log = logging.getLogger("passport_sync")

Clock = Callable[[], datetime]

# Why an observation is parked instead of written. Stable strings: status and JSON show them.
NO_NATIONAL_ID = "no_national_id"
INVALID_NATIONAL_ID = "invalid_national_id"
CONFLICTING_NATIONAL_IDS = "conflicting_national_ids"
SHARED_NATIONAL_ID = "shared_national_id"
NOT_IN_PASSPORT = "patient_not_in_passport"
AMBIGUOUS_PASSPORT_PATIENT = "ambiguous_passport_patient"
MISSING_CONCEPT = "missing_concept"
INVALID_DATA = "invalid_data"
# Data to fix in OpenMRS: each such row is named in a WARNING (hospital and row id, never the
# national ID), and rows parked for a missing concept or invalid data are re-read every run.
DATA_PROBLEMS = {
    INVALID_NATIONAL_ID: "its patient's national ID is not 10-16 digits",
    CONFLICTING_NATIONAL_IDS: "its patient has two different national IDs",
    SHARED_NATIONAL_ID: "its patient's national ID is held by another OpenMRS patient too",
    AMBIGUOUS_PASSPORT_PATIENT: "its patient's national ID matches two Patient Passport patients",
}
RETRIED_EVERY_RUN = (MISSING_CONCEPT, INVALID_DATA)
# Re-rendering older records: at most this many batches per run, so one run after an upgrade
# stays bounded; the next runs continue where it stopped.
RERENDER_BATCHES_PER_RUN = 50
RERENDER = "re-render"


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class PersonMatch:
    """Where a person's observations go: a Passport patient id, or a reason to park them."""

    patient_id: str | None = None
    park_reason: str | None = None


@dataclass(frozen=True, slots=True)
class Feed:
    """One stream of source rows with its own checkpoint: observations, or a clinical source.

    Each feed keeps its own checkpoint in the hospital's ``syncstatus`` document (see
    ``checkpoint.stored_fields``).
    """

    name: str
    # The next page after a primary key, read through the given source (the read-ahead has its own).
    after: Callable[[OpenMRSSource, int, int], Sequence[Any]]
    in_ranges: Callable[[Sequence[tuple[int, int]], int, int], Sequence[Any]]
    changed: Callable[[datetime | None, int, int], Sequence[Any]]
    max_changed: Callable[[], datetime | None]
    by_pks: Callable[[Collection[int]], Sequence[Any]]
    of_persons: Callable[[Collection[int], int, int], Sequence[Any]]
    plan: Callable[[Sequence[Any]], tuple[BatchWrite, dict[str, int]]]
    pk: Callable[[Any], int]
    changed_at: Callable[[Any], datetime | None]


@dataclass(slots=True)
class RunCaches:
    """Facts looked up once per run, not once per batch."""

    concept_names: dict[int, list[ConceptName]] = field(default_factory=dict)
    providers: dict[int, Provider] = field(default_factory=dict)
    doctor_users: dict[str, str] = field(default_factory=dict)
    # Where each person's observations go, decided once per run (the parked phase re-decides).
    matches: dict[int, PersonMatch] = field(default_factory=dict)
    # Persons with parked observations: only their rows can need unparking.
    parked_persons: set[int] = field(default_factory=set)
    # (source, primary key) parked during this run: not landed again by the same run.
    parked_now: set[tuple[str, int]] = field(default_factory=set)


class HospitalSync:
    """Syncs one hospital; use ``run_incremental`` (sync-all) or ``run_patient`` (sync-patient)."""

    def __init__(
        self,
        hospital: HospitalConfig,
        settings: Settings,
        source: OpenMRSSource,
        store: PassportStore,
        *,
        observer: SyncObserver | None = None,
        dry_run: bool = False,
        clock: Clock = utcnow,
        lock_wait: timedelta = timedelta(0),
    ) -> None:
        self.hospital = hospital
        self.settings = settings
        self.source = source
        self.store = store
        self.observer = observer or NullObserver()
        self.dry_run = dry_run
        self.clock = clock
        self.lock_wait = lock_wait
        self.report = HospitalReport(hospital.id, hospital.name, dry_run=dry_run)
        self.caches = RunCaches()
        self._owner = lock_owner()
        self._lock_ttl = timedelta(seconds=settings.sync.lock_ttl_seconds)
        self._lock_renewed_at: datetime | None = None
        self._refs: HospitalRefs | None = None
        self._type_ids: list[int] = []
        self._booleans = (1, 2)
        self._source_now: datetime | None = None
        # (server:port/database, fingerprint) of the OpenMRS database, kept with the checkpoint.
        self._database: tuple[str, str | None] = ("", None)
        self.persons_matched = 0
        # Set while reconciliation plans rows: every write is compared with the Passport first.
        self._reconciling = False
        # The configured zone, else the database server's (read in _prepare): never silently UTC.
        self.tz: tzinfo = hospital.zone() or UTC
        self._default_locale: str | None = None

    # -- entry points ------------------------------------------------------------------------------
    def run_incremental(self) -> HospitalReport:
        """The sync-all work: per feed (observations, then each clinical source) late commits,
        new rows and changes; then parked rows whose patient is now known."""

        def work() -> None:
            if not self.dry_run:
                self.store.checkpoints.remember_database(self.hospital.id, *self._database)
            doc = self.store.checkpoints.load(self.hospital.id) or {}
            for feed in self._feeds():
                self._run_feed(feed, doc)
            self._land_parked()
            self._rerender(doc)
            if not self.dry_run:
                self.report.reconcile = Reconciler(self).slice().as_dict()
            self._rebuild_encounters()

        return self._run(work, summary=True)

    def run_reconcile(self, *, compare_all: bool = False) -> HospitalReport:
        """A full reconciliation pass now (``passport-sync reconcile``); see ``reconcile``."""

        def work() -> None:
            self.report.reconcile = Reconciler(self).full_pass(compare_all=compare_all).as_dict()
            self._rebuild_encounters()  # the visit records of the encounters it repaired

        return self._run(work, summary=False)

    def run_patient(self, national_id: str) -> HospitalReport:
        """Every row of the patient(s) with this national ID, independent of checkpoints."""

        def work() -> None:
            persons = set(self.source.persons_by_national_id(national_id, self._type_ids))
            self.persons_matched = len(persons)
            if not persons:
                return
            for feed in self._feeds():
                after = 0
                while rows := feed.of_persons(persons, after, self.settings.sync.batch_size):
                    self._process(feed, rows, phase="patient")
                    after = feed.pk(rows[-1])
            self._rebuild_encounters()

        return self._run(work, summary=False)

    def _run(self, work: Callable[[], None], *, summary: bool) -> HospitalReport:
        with tracing.on_behalf_of(self.hospital.id):
            return self._run_traced(work, summary=summary)

    def _run_traced(self, work: Callable[[], None], *, summary: bool) -> HospitalReport:
        report = self.report
        report.started_at = self.clock()
        self.observer.hospital_started(self.hospital.id, self.hospital.name)
        locked = False
        try:
            if not self.dry_run:
                self._acquire_lock()
                locked = True
            self._prepare()
            work()
        except LockHeld as exc:
            report.outcome = "locked"
            report.errors.append(str(exc))
            log.warning("%s: %s", self.hospital.name, exc)
        except PassportSyncError as exc:
            report.outcome = "failed"
            report.errors.append(str(exc) + (f" (hint: {exc.hint})" if exc.hint else ""))
            log.error("%s: sync failed: %s", self.hospital.name, exc)
        except KeyboardInterrupt:
            # Ctrl-C or SIGTERM: the finally below still releases the lock and records the run.
            report.outcome = "failed"
            report.errors.append("interrupted")
            log.error("%s: interrupted", self.hospital.name)
            raise
        except Exception as exc:  # noqa: BLE001 - a bug must fail this hospital, not every other one
            report.outcome = "failed"
            # The class only: a driver's or our own message could quote row values.
            report.errors.append(f"internal error {type(exc).__name__}; run with --verbose for the traceback")
            log.error("%s: sync failed with an internal error %s", self.hospital.name, type(exc).__name__)
            log.debug("%s: traceback", self.hospital.name, exc_info=True)
        finally:
            report.finished_at = self.clock()
            if summary and not self.dry_run and report.outcome != "locked":
                self._write_summary()
            if locked:
                self._release_lock()
            self.observer.hospital_done(report)
        return report

    def _prepare(self) -> None:
        self.source.connect()
        self.source.schema()
        self._type_ids = [self.source.national_id_type(self.settings.national_id_type_for(self.hospital)).type_id]
        self._booleans = self.source.boolean_concepts()
        self._check_database_owner()
        # Read before any change: no watermark moves past the database's clock of this moment.
        self._source_now = self.source.database_now()
        self._default_locale = self.source.default_locale()
        if self.hospital.zone() is None:
            self.tz = self.source.server_time_zone().zone
        if self.dry_run:
            oid = self.store.placeholders.hospital_oid(self.hospital)
            self._refs = HospitalRefs(oid, "0" * 24, f"{self.hospital.name} (OpenMRS)")
        else:
            self._refs = self.store.placeholders.ensure_hospital(self.hospital, self.clock())
        self.caches.parked_persons = self.store.parked.person_ids(self.hospital.id)

    def _check_database_owner(self) -> None:
        """Refuse to sync an OpenMRS database already synced under another hospital id: the id
        is the key of every record, so a second id would copy each record a second time."""
        host, port, name = self.hospital.db.identity()
        database = f"{host}:{port}/{name}"
        fingerprint = self.source.fingerprint()
        other = self.store.checkpoints.database_synced_as(self.hospital.id, database, fingerprint)
        if other is not None:
            if other in {h.id for h in self.settings.hospitals}:
                problem = (
                    f"hospitals[{self.hospital.id}].db: this OpenMRS database is the one hospital {other!r} syncs"
                    " (same first observation); one OpenMRS database is one hospital: remove one entry"
                )
            else:
                problem = (
                    f"hospitals[{self.hospital.id}].id: this OpenMRS database was synced as hospital {other!r},"
                    f" whose records are in Patient Passport; syncing it as {self.hospital.id!r} would copy every"
                    f" record a second time. Set this hospital's id back to {other!r} (its name may change freely)"
                )
            raise ConfigError([problem])
        self._database = (database, fingerprint)

    def _acquire_lock(self) -> None:
        """Take the hospital's lease; wait up to ``lock_wait`` for a running sync to finish."""
        deadline = time.monotonic() + self.lock_wait.total_seconds()
        while True:
            try:
                self.store.locks.acquire(self.hospital.id, self._owner, self._lock_ttl)
                break
            except LockHeld:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(1.0)
        self._lock_renewed_at = self.clock()

    def _renew_lock(self) -> None:
        if self.dry_run or self._lock_renewed_at is None:
            return
        if self.clock() - self._lock_renewed_at >= self._lock_ttl / 3:
            self.store.locks.renew(self.hospital.id, self._owner, self._lock_ttl)
            self._lock_renewed_at = self.clock()

    def _release_lock(self) -> None:
        try:
            self.store.locks.release(self.hospital.id, self._owner)
        except PassportSyncError as exc:
            log.warning("%s: could not release the lock (it will expire): %s", self.hospital.name, exc)

    def _write_summary(self) -> None:
        assert self._refs is not None or self.report.outcome == "failed"
        try:
            self.store.audit.write_run_summary(
                self.report.as_dict(), self._refs.user_id if self._refs else None, self.clock()
            )
        except PassportSyncError as exc:
            log.warning("%s: could not write the run summary: %s", self.hospital.name, exc)

    # -- what reconciliation uses ----------------------------------------------------------------------
    def feeds(self) -> list[Feed]:
        return self._feeds()

    @property
    def type_ids(self) -> list[int]:
        return self._type_ids

    def match_persons(self, person_ids: Iterable[int], *, fresh: bool = False) -> dict[int, PersonMatch]:
        return self._match_persons(person_ids, fresh=fresh)

    def renew_lock(self) -> None:
        self._renew_lock()

    def plan_for_reconcile(self, feed: Feed, rows: Sequence[Any]) -> BatchWrite:
        """What a fresh sync would write for these rows: observations as upserts (so a changed
        value is rewritten), and every row's parked copy released or moved."""
        self._reconciling = True
        try:
            batch, _ = feed.plan(rows)
        finally:
            self._reconciling = False
        self.caches.parked_persons.update(p["personId"] for p in batch.parks)
        return batch

    def _was_parked(self, person_id: int) -> bool:
        # Reconciling, a row may be parked under the person it belonged to before a merge.
        return self._reconciling or person_id in self.caches.parked_persons

    # -- feeds ---------------------------------------------------------------------------------------
    def _feeds(self) -> list[Feed]:
        """Observations, then each clinical source this database has and the configuration allows."""
        src = self.source
        feeds = [
            Feed(
                name="obs",
                after=lambda reader, after, limit: reader.obs_after(after, limit),
                in_ranges=src.obs_in_ranges,
                changed=src.voided_since,
                max_changed=src.max_date_voided,
                by_pks=src.obs_by_ids,
                of_persons=src.obs_of_persons,
                plan=self._plan_obs,
                pk=lambda row: row.obs_id,
                changed_at=lambda row: row.date_voided,
            )
        ]
        switches = self.settings.sync.sources
        for source in src.clinical_sources():
            if switches.enabled(source.name) is False:
                continue
            feeds.append(
                Feed(
                    name=source.name,
                    after=partial(_clinical_after, source),
                    in_ranges=partial(src.clinical_in_ranges, source),
                    changed=partial(src.clinical_changed, source),
                    max_changed=partial(src.clinical_max_changed, source),
                    by_pks=partial(src.clinical_by_pks, source),
                    of_persons=partial(src.clinical_of_persons, source),
                    plan=self._plan_clinical,
                    pk=lambda row: row.pk,
                    changed_at=lambda row: row.changed_at,
                )
            )
        return feeds

    def _run_feed(self, feed: Feed, syncstatus: Mapping[str, Any]) -> Checkpoint:
        state = cp_logic.stored_checkpoint(feed.name, syncstatus)
        first_run = not cp_logic.is_stored(feed.name, syncstatus)
        change_start = feed.max_changed() if first_run else None
        state = self._recheck_gaps(feed, state)
        state = self._read_new(feed, state)
        if first_run:
            # Changes before this moment were seen, already changed, by the first full read.
            state = cp_logic.advance_voids(state, change_start, not_after=self._source_now)
        state = self._read_changes(feed, state)
        if first_run:
            # Stored even when the source is empty: the next run is not a first run.
            self._save(feed, state)
        return state

    def _save(self, feed: Feed, state: Checkpoint) -> None:
        if not self.dry_run:
            self.store.checkpoints.save(self.hospital.id, cp_logic.stored_fields(feed.name, state), self.clock())

    # -- phases ----------------------------------------------------------------------------------------
    def _recheck_gaps(self, feed: Feed, state: Checkpoint) -> Checkpoint:
        if not state.gaps:
            return state
        ranges = [(g.low, g.high) for g in state.gaps]
        found: list[int] = []
        after = 0
        while rows := feed.in_ranges(ranges, after, self.settings.sync.batch_size):
            self._process(feed, rows, phase="late commits")
            found.extend(feed.pk(r) for r in rows)
            after = found[-1]
        window = timedelta(minutes=self.settings.sync.late_commit_window_minutes)
        state = cp_logic.fill_gaps(state, found, self.clock(), window=window)
        self._save(feed, state)
        return state

    def _read_new(self, feed: Feed, state: Checkpoint) -> Checkpoint:
        """New rows in primary-key order, one batch at a time.

        The next page is read on a second connection while this one is mapped and written, so
        MySQL and MongoDB work at the same time. Writes and checkpoints stay strictly in order.
        """
        limit = self.settings.sync.batch_size
        with ThreadPoolExecutor(max_workers=1) as pool, self.source.read_ahead() as reader:
            page = pool.submit(feed.after, reader, state.last_obs_id, limit)
            while rows := page.result():
                page = pool.submit(feed.after, reader, feed.pk(rows[-1]), limit)
                self._process(feed, rows, phase="new")
                state = cp_logic.advance(state, [feed.pk(r) for r in rows], self.clock())
                self._save(feed, state)
        return state

    def _read_changes(self, feed: Feed, state: Checkpoint) -> Checkpoint:
        """Rows changed (voided, edited in place, stopped) since the watermark minus a look-back.

        The watermark moves once every page is written: rows come in id order, not time order.
        """
        since = cp_logic.void_read_from(state, timedelta(minutes=self.settings.sync.void_lookback_minutes))
        latest: datetime | None = None
        after = 0
        while rows := feed.changed(since, after, self.settings.sync.batch_size):
            self._process(feed, rows, phase="changes")
            moments = [m for m in map(feed.changed_at, rows) if m is not None]
            latest = max([*moments, latest] if latest else moments, default=latest)
            after = feed.pk(rows[-1])
        if latest is not None and latest != state.void_watermark:
            moved = cp_logic.advance_voids(state, latest, not_after=self._source_now)
            if moved != state:
                state = moved
                self._save(feed, state)
        return state

    def _land_parked(self) -> None:
        """Re-decide the persons with parked rows; land those whose patient is now known.

        Memory stays bounded: persons are decided in chunks, and only the parked rows of persons
        now ready are read (they leave the parked collection as they land).
        """
        batch = self.settings.sync.batch_size
        feeds = self._feeds()
        persons = sorted(self.caches.parked_persons)
        for chunk in _chunks(persons, batch):
            ready = [pid for pid, match in self._match_persons(chunk, fresh=True).items() if match.patient_id]
            if ready:
                for feed in feeds:
                    self._land(feed, self.store.parked.ids(self.hospital.id, feed.name, person_ids=ready))
        # Only observations are parked for their own data (retried every run, in case it is fixed).
        # One equality lookup per reason: an index serves it on every server (SecantusDB scans for $in).
        for reason in RETRIED_EVERY_RUN:
            self._land(feeds[0], self.store.parked.ids(self.hospital.id, "obs", reason=reason))

    def _rerender(self, syncstatus: Mapping[str, Any]) -> None:
        """Rewrite, once, the records an older rendering wrote: re-read their rows by primary key
        and write what this rendering makes of them (OpenMRS-owned fields only), a bounded number
        of batches per run; the pass resumes where it stopped and is recorded as done."""
        if syncstatus.get("renderVersion") == RENDER_VERSION or self.dry_run:
            return
        feeds = {feed.name: feed for feed in self._feeds()}
        after = syncstatus.get("renderAfter")
        for _ in range(RERENDER_BATCHES_PER_RUN):
            stale = self.store.records.stale(self.hospital.id, RENDER_VERSION, after, self.settings.sync.batch_size)
            if not stale:
                self._save_fields({"renderVersion": RENDER_VERSION, "renderAfter": None})
                return
            keys: dict[str, set[int]] = {}
            encounters: set[str] = set()
            for record in stale:
                provenance = record.get("openmrsData") or {}
                source = provenance.get("source")
                pk = provenance.get("obsId") if source == "obs" else provenance.get("sourceId")
                if source in feeds and isinstance(pk, int):
                    keys.setdefault(source, set()).add(pk)
                elif source in DERIVED_SOURCES and provenance.get("encounterUuid"):
                    # A visit or prescription record: rebuilt from its encounter at the end of the run.
                    encounters.add(str(provenance["encounterUuid"]))
                    self.report.rerendered += 1
            for name, pks in keys.items():
                self._process(feeds[name], feeds[name].by_pks(pks), phase=RERENDER)
            if encounters:
                self.store.encounters.mark_due(self.hospital.id, encounters)
            after = stale[-1]["_id"]
            self._save_fields({"renderAfter": after})

    def _save_fields(self, fields: Mapping[str, Any]) -> None:
        self.store.checkpoints.save(self.hospital.id, fields, self.clock())

    def _rebuild_encounters(self) -> None:
        """Rebuild the visit record and medication lists of every encounter whose records changed.

        The encounters come from ``openmrs_sync_encounters``, written with each batch, so a crash
        between a batch and this step is repaired by the next run.
        """
        if self.dry_run:
            return
        limit = self.settings.sync.batch_size
        while uuids := self.store.encounters.due(self.hospital.id, limit):
            rows = self.source.encounters(uuids)
            records = self.store.encounters.records(self.hospital.id, uuids)
            by_encounter: dict[str, list[dict[str, Any]]] = {}
            for record in records:
                by_encounter.setdefault(str(record["openmrsData"]["encounterUuid"]), []).append(record)
            doctors = self._doctor_users(list(rows.values()))
            batch = BatchWrite(existing={})
            for uuid in uuids:
                members = by_encounter.get(uuid, [])
                existing = {m["_id"]: m for m in members if m["openmrsData"].get("source") in DERIVED_SOURCES}
                batch.existing = {**(batch.existing or {}), **existing}
                encounter = rows.get(uuid)
                created_by, doctor_name, provider_uuid = self._doctor(
                    encounter.provider_id if encounter else None, doctors
                )
                context = VisitContext(
                    self.hospital.id, self.hospital.name, created_by, doctor_name, provider_uuid, self.clock(), self.tz
                )
                prescription = existing.get(derived_ids(self.hospital.id, uuid)[1])
                plan = plan_encounter(encounter, members, context, prescription)
                if encounter is None:
                    plan.removals = list(existing)
                batch.upserts += plan.upserts
                batch.patches += plan.patches
                batch.removals += [
                    (rid, {"reason": "encounter without synced records"}) for rid in plan.removals if rid in existing
                ]
            if batch:
                self.store.records.apply(batch, self.clock())
            self.store.encounters.done(self.hospital.id, uuids)
            self._renew_lock()
            if len(uuids) < limit:
                return

    def _land(self, feed: Feed, pks: list[int]) -> None:
        fresh = {pk for pk in pks if (feed.name, pk) not in self.caches.parked_now}
        for chunk in _chunks(sorted(fresh), self.settings.sync.batch_size):
            self._process(feed, feed.by_pks(chunk), phase="parked")

    # -- the heart: one batch -------------------------------------------------------------------------
    def _process(self, feed: Feed, rows: Sequence[Any], *, phase: str) -> None:
        """Map one batch and write it; returns after MongoDB acknowledged it."""
        batch, counts = feed.plan(rows)
        if phase == RERENDER:
            # Existing records are rewritten field by field, not inserted.
            batch.upserts.extend(batch.records)
            batch.records.clear()
        self.caches.parked_persons.update(p["personId"] for p in batch.parks)
        report = self.report
        report.read += len(rows)
        report.batches += 1
        report.skipped += counts["skipped"]
        report.parked += len(batch.parks)
        if self.dry_run:
            report.written += len(batch.records) + len(batch.upserts)
            # What the real run would remove: only records that are in Patient Passport (a void of
            # a row that was parked, or never synced, removes nothing).
            report.removed += self.store.records.count_existing([record_id for record_id, _ in batch.removals])
        elif batch:
            outcome = self.store.records.apply(batch, self.clock(), hospital_id=self.hospital.id)
            report.written += outcome.written
            report.updated += outcome.updated
            report.already_present += outcome.already_present
            report.removed += outcome.removed
            report.reassigned += outcome.reassigned
            report.unparked += counts["landed"] if phase == "parked" else 0
            report.rerendered += outcome.updated if phase == RERENDER else 0
        self.observer.batch_done(report, phase)
        self._renew_lock()

    def _start_plan(self, rows: Sequence[Any]) -> tuple[BatchWrite, dict[str, int], list[Any], dict[int, PersonMatch]]:
        """An empty batch, its counters, the rows not voided, and where their persons go."""
        live = [r for r in rows if not r.voided]
        return BatchWrite(), {"skipped": 0, "landed": 0}, live, self._match_persons({r.person_id for r in live})

    def _retire(self, batch: BatchWrite, source: str, row: Any, was_parked: bool) -> None:
        """A voided row: its record goes (to the audit trail); a parked copy is forgotten."""
        hid = self.hospital.id
        batch.removals.append((record_id(hid, source, row.uuid), _void_info(row)))
        if was_parked:
            batch.unparks.append(f"{hid}:{source}:{row.uuid}")

    def _replace(self, batch: BatchWrite, source: str, row: Any, was_parked: bool) -> None:
        """A new version of a row: the record of the version it replaces goes."""
        hid = self.hospital.id
        replaced = row.previous_version_uuid if source == "obs" else row.previous_uuid
        batch.removals.append((record_id(hid, source, replaced), {"reason": "replaced", "replacedBy": row.uuid}))
        if was_parked:
            batch.unparks.append(f"{hid}:{source}:{replaced}")

    def _doctor(self, provider_id: int | None, doctors: dict[str, str]) -> tuple[str, str, str | None]:
        """(user id, display name, provider uuid) of the doctor for a row."""
        assert self._refs is not None
        provider = self.caches.providers.get(provider_id or -1)
        if provider is None:
            return self._refs.fallback_user_id, self._refs.fallback_doctor_name, None
        return doctors.get(provider.uuid, self._refs.fallback_user_id), provider.display_name, provider.uuid

    def _plan_obs(self, rows: Sequence[ObsRow]) -> tuple[BatchWrite, dict[str, int]]:
        hid = self.hospital.id
        batch, counts, live, matches = self._start_plan(rows)
        self._load_concept_names(c for r in live for c in (r.concept_id, r.value_coded, r.group_concept_id))
        doctors = self._doctor_users(live)
        groups, members = self._group_units(batch, rows)
        for row in rows:
            park_key = f"{hid}:obs:{row.uuid}"
            was_parked = self._was_parked(row.person_id)
            if row.obs_group_id in groups:
                continue  # a member of a group that is one record: the group is rebuilt below
            if row.voided:
                self._retire(batch, "obs", row, was_parked)
                continue
            if row.previous_version_uuid:
                # An edit: the new row replaces the old one, whatever the old row's void says yet.
                self._replace(batch, "obs", row, was_parked)
            park = partial(self._park, batch, "obs", row.uuid, row.obs_id, row.person_id)
            if row.problem:
                park(INVALID_DATA, row.problem)
                continue
            if not row.has_value():
                counts["skipped"] += 1  # a group parent: its members carry the values
                continue
            if row.concept_uuid is None:
                park(MISSING_CONCEPT, f"refers to concept {row.concept_id}, which does not exist")
                continue
            if not row.person_exists:
                park(NO_NATIONAL_ID, f"refers to person {row.person_id}, which does not exist")
                continue
            match = matches.get(row.person_id) or PersonMatch(park_reason=NO_NATIONAL_ID)
            if match.patient_id is None:
                park(match.park_reason or NO_NATIONAL_ID)
                continue
            doc = build_record(row, self._record_context(row, match.patient_id, doctors))
            if doc is None:
                counts["skipped"] += 1
                continue
            (batch.upserts if self._reconciling else batch.records).append(doc)
            if was_parked:
                batch.unparks.append(park_key)
            counts["landed"] += 1
        if groups:
            self._plan_groups(batch, groups, members, counts)
        return batch, counts

    def _record_context(
        self, row: ObsRow, patient_id: str, doctors: dict[str, str], *, group: bool = False
    ) -> RecordContext:
        """The facts a record of ``row`` needs; ``group``: the record of the group ``row`` belongs to."""
        overrides = self.settings.sync.categories
        if group:
            concept_id, concept_uuid, concept_class = (
                row.group_concept_id,
                row.group_concept_uuid,
                row.group_concept_class,
            )
            datatype: str | None = "N/A"
        else:
            concept_id, concept_uuid, concept_class = row.concept_id, row.concept_uuid, row.concept_class
            datatype = row.concept_datatype
        concept_name = self._concept_name(concept_id)
        return RecordContext(
            **self._who_and_when(patient_id, row.provider_id, doctors),
            concept_name=concept_name,
            answer_name=None if group else self._name_of(row.value_coded, row.value_coded_name_id),
            group_concept_name=self._concept_name(row.group_concept_id) if row.group_concept_id and not group else None,
            category=categorise(
                concept_name=concept_name,
                concept_uuid=concept_uuid or "",
                concept_class=concept_class or "",
                datatype=datatype or "",
                answer_class=None if group else row.value_coded_class,
                concept_overrides=overrides.concepts,
                class_overrides=overrides.classes,
                keywords=overrides.keywords,
            ),
            true_concept_id=self._booleans[0],
            false_concept_id=self._booleans[1],
        )

    def _group_units(
        self, batch: BatchWrite, rows: Sequence[ObsRow]
    ) -> tuple[dict[int, tuple[str, bool]], dict[int, list[ObsRow]]]:
        """The groups this batch touches that become one record, as obs_group_id -> (group uuid,
        is a legacy diagnosis group), and their live members by group.

        One record: diagnosis groups, and every group whose members only mean something together.
        Kept apart, one record per member: the classes and concepts ``sync.groups`` names, and
        groups of numbers only (a vitals set), decided from the group's live members each time.
        """
        diagnosis = self.settings.sync.legacy_diagnosis_concepts
        set_uuid = diagnosis.set.lower() if diagnosis.enabled else None
        options = self.settings.sync.groups
        groups: dict[int, tuple[str, bool]] = {}
        for row in rows:
            if row.obs_group_id and row.group_uuid:
                group_id, uuid, concept_id = row.obs_group_id, row.group_uuid, row.group_concept_id
                concept_uuid, concept_class = row.group_concept_uuid, row.group_concept_class
            elif not row.voided and not row.has_value():
                group_id, uuid, concept_id = row.obs_id, row.uuid, row.concept_id
                concept_uuid, concept_class = row.concept_uuid, row.concept_class
            else:
                continue
            is_diagnosis = set_uuid is not None and (concept_uuid or "").lower() == set_uuid
            if is_diagnosis or not options.separate(concept_class, concept_uuid, self._concept_name(concept_id)):
                groups[group_id] = (uuid, is_diagnosis)
        by_group: dict[int, list[ObsRow]] = {}
        if not groups:
            return groups, by_group
        for member in self.source.live_members(groups.keys()):
            by_group.setdefault(member.obs_group_id or 0, []).append(member)
        for group_id, (uuid, is_diagnosis) in list(groups.items()):
            if is_diagnosis:
                continue
            valued = [m for m in by_group.get(group_id, []) if m.has_value()]
            if not valued:
                # Nothing left: each member's own row retires its record, and the group's goes.
                batch.removals.append((record_id(self.hospital.id, "obs", uuid), {"reason": "voided"}))
                del groups[group_id]
            elif all(m.value_numeric is not None and m.concept_datatype in NUMERIC_DATATYPES for m in valued):
                del groups[group_id]
                by_group.pop(group_id)
        return groups, by_group

    def _plan_groups(
        self,
        batch: BatchWrite,
        groups: dict[int, tuple[str, bool]],
        by_group: dict[int, list[ObsRow]],
        counts: dict[str, int],
    ) -> None:
        """Rebuild each touched group record from its live members (none left: remove it)."""
        hid = self.hospital.id
        members = [m for live in by_group.values() for m in live]
        self._load_concept_names(c for m in members for c in (m.concept_id, m.value_coded, m.group_concept_id))
        doctors = self._doctor_users(members)
        matches = self._match_persons({m.person_id for m in members})
        for group_id, (group_uuid, is_diagnosis) in groups.items():
            live = by_group.get(group_id)
            if not live:
                batch.removals.append((record_id(hid, "obs", group_uuid), {"reason": "voided"}))
                continue
            first = live[0]
            match = matches[first.person_id]
            if match.patient_id is None:
                self._park(batch, "obs", group_uuid, group_id, first.person_id, match.park_reason or NO_NATIONAL_ID)
                continue
            if is_diagnosis:
                ctx = self._clinical_context(match.patient_id, first.provider_id, doctors)
                doc = diagnosis_group_record(group_uuid, live, ctx, self.settings.sync.legacy_diagnosis_concepts)
            else:
                parts = [
                    GroupMember(
                        m, self._concept_name(m.concept_id), self._name_of(m.value_coded, m.value_coded_name_id)
                    )
                    for m in live
                    if not m.problem and m.has_value()
                ]
                ctx_group = self._record_context(first, match.patient_id, doctors, group=True)
                doc = build_group_record(group_uuid, ctx_group.concept_name, parts, ctx_group)
                # Written one per member by an older rendering: those records give way to this one.
                batch.removals.extend(
                    (record_id(hid, "obs", m.uuid), {"reason": "replaced", "replacedBy": group_uuid}) for m in live
                )
            if doc is None:
                counts["skipped"] += 1
                continue
            batch.upserts.append(doc)
            if self._was_parked(first.person_id):
                batch.unparks.append(f"{hid}:obs:{group_uuid}")

    def _park(
        self, batch: BatchWrite, source: str, uuid: str, pk: int, person_id: int, reason: str, detail: str = ""
    ) -> None:
        """Keep a row until its patient is known or its data is fixed; name data problems."""
        detail = detail or DATA_PROBLEMS.get(reason, "")
        if detail:
            log.warning("%s: %s %d %s; not synced, parked (%s)", self.hospital.name, source, pk, detail, reason)
        doc = _park_doc(self.hospital.id, source, uuid, pk, person_id, reason)
        if detail:
            doc["detail"] = detail
        batch.parks.append(doc)
        self.caches.parked_now.add((source, pk))

    def _who_and_when(self, patient_id: str, provider_id: int | None, doctors: dict[str, str]) -> dict[str, Any]:
        """The facts every record context has: hospital, patient, doctor, clock and time zone."""
        created_by, doctor_name, provider_uuid = self._doctor(provider_id, doctors)
        return {
            "hospital_id": self.hospital.id,
            "hospital_name": self.hospital.name,
            "patient_id": patient_id,
            "created_by": created_by,
            "doctor_name": doctor_name,
            "provider_uuid": provider_uuid,
            "now": self.clock(),
            "tz": self.tz,
        }

    def _clinical_context(self, patient_id: str, provider_id: int | None, doctors: dict[str, str]) -> ClinicalContext:
        return ClinicalContext(**self._who_and_when(patient_id, provider_id, doctors), name_of=self._name_of)

    def _plan_clinical(self, rows: Sequence[ClinicalRow]) -> tuple[BatchWrite, dict[str, int]]:
        hid = self.hospital.id
        batch, counts, live, matches = self._start_plan(rows)
        self._load_concept_names(c for r in live for c in r.concept_ids())
        doctors = self._doctor_users(live)
        for row in rows:
            if row.is_other_order:
                counts["skipped"] += 1
                continue
            was_parked = self._was_parked(row.person_id)
            if row.voided:
                self._retire(batch, row.source, row, was_parked)
                continue
            if row.replaced_by:
                # Revised or renewed: the newer order carries the record (re-read as a change).
                batch.removals.append(
                    (record_id(hid, row.source, row.uuid), {"reason": "replaced", "replacedBy": row.replaced_by})
                )
                continue
            if row.is_discontinuation:
                if row.previous_uuid:
                    batch.patches.append(
                        (record_id(hid, row.source, row.previous_uuid), discontinuation_patch(row, self.tz))
                    )
                counts["skipped"] += 1
                continue
            if row.previous_uuid:
                self._replace(batch, row.source, row, was_parked)
            match = matches.get(row.person_id) or PersonMatch(park_reason=NO_NATIONAL_ID)
            if match.patient_id is None:
                self._park(batch, row.source, row.uuid, row.pk, row.person_id, match.park_reason or NO_NATIONAL_ID)
                continue
            doc = build_clinical_record(row, self._clinical_context(match.patient_id, row.provider_id, doctors))
            if doc is None:
                counts["skipped"] += 1
                continue
            batch.upserts.append(doc)
            if was_parked:
                batch.unparks.append(f"{hid}:{row.source}:{row.uuid}")
            counts["landed"] += 1
        return batch, counts

    # -- lookups, per batch or cached per run ------------------------------------------------------------
    def _match_persons(self, person_ids: Iterable[int], *, fresh: bool = False) -> dict[int, PersonMatch]:
        """Where each person's observations go. Cached for the run unless ``fresh``."""
        wanted_ids = set(person_ids)
        cached = self.caches.matches
        unknown = wanted_ids if fresh else wanted_ids - cached.keys()
        if unknown:
            cached.update(self._decide_persons(unknown))
        return {pid: cached[pid] for pid in wanted_ids}

    def _decide_persons(self, person_ids: set[int]) -> dict[int, PersonMatch]:
        identities = self.source.identities(person_ids, self._type_ids)
        matches: dict[int, PersonMatch] = {}
        wanted: dict[int, str] = {}
        for pid in person_ids:
            match, national_id = _identity_verdict(identities.get(pid, PersonIdentity(pid)))
            matches[pid] = match
            if national_id:
                wanted[pid] = national_id
        found = self.store.patients.by_national_id(wanted.values())
        for pid, national_id in wanted.items():
            patients = found.get(national_id, [])
            if len(patients) == 1:
                matches[pid] = PersonMatch(patient_id=patients[0])
            elif patients:
                matches[pid] = PersonMatch(park_reason=AMBIGUOUS_PASSPORT_PATIENT)
            else:
                matches[pid] = PersonMatch(park_reason=NOT_IN_PASSPORT)
        return matches

    def _load_concept_names(self, concept_ids: Iterable[int | None]) -> None:
        missing = {c for c in concept_ids if c is not None} - self.caches.concept_names.keys()
        if missing:
            self.caches.concept_names.update(self.source.concept_names(missing))

    def _concept_name(self, concept_id: int | None) -> str:
        if concept_id is None:
            return ""
        names = self.caches.concept_names.get(concept_id, [])
        return choose_concept_name(names, self.settings.sync.locale, self._default_locale) or f"Concept {concept_id}"

    def _name_of(self, concept_id: int | None, picked_name_id: int | None) -> str | None:
        if concept_id is None:
            return None
        names = self.caches.concept_names.get(concept_id, [])
        locale = self.settings.sync.locale
        return chosen_answer_name(names, locale, picked_name_id, self._default_locale) or f"Concept {concept_id}"

    def _doctor_users(self, rows: Sequence[Any]) -> dict[str, str]:
        provider_ids = {r.provider_id for r in rows if r.provider_id is not None}
        missing = provider_ids - self.caches.providers.keys()
        if missing:
            self.caches.providers.update(self.source.providers(missing))
        providers = [self.caches.providers[p] for p in provider_ids if p in self.caches.providers]
        unknown = [p for p in providers if p.uuid not in self.caches.doctor_users]
        if unknown and self._refs is not None:
            if self.dry_run:
                self.caches.doctor_users.update({p.uuid: "0" * 24 for p in unknown})
            else:
                self.caches.doctor_users.update(
                    self.store.placeholders.doctor_users(self.hospital, self._refs.hospital_oid, unknown, self.clock())
                )
        return self.caches.doctor_users


def _identity_verdict(identity: PersonIdentity) -> tuple[PersonMatch, str | None]:
    """The national ID to look up for a person, or why their observations must wait."""
    if not identity.identifiers:
        return PersonMatch(park_reason=NO_NATIONAL_ID), None
    if any(holders > 1 for holders in identity.holders):
        return PersonMatch(park_reason=SHARED_NATIONAL_ID), None
    normalised = {normalise_national_id(raw) for raw in identity.identifiers}
    valid = {n for n in normalised if n}
    if not valid:
        return PersonMatch(park_reason=INVALID_NATIONAL_ID), None
    if len(valid) > 1:
        return PersonMatch(park_reason=CONFLICTING_NATIONAL_IDS), None
    return PersonMatch(), valid.pop()


def _park_doc(hospital_id: str, source: str, uuid: str, pk: int, person_id: int, reason: str) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "_id": f"{hospital_id}:{source}:{uuid}",
        "hospitalId": hospital_id,
        "source": source,
        "uuid": uuid,
        "sourceId": pk,
        "personId": person_id,
        "reason": reason,
    }
    if source == "obs":
        doc["obsId"] = pk
    return doc


def _void_info(row: ObsRow | ClinicalRow) -> dict[str, Any]:
    info: dict[str, Any] = {"reason": "voided", "voidReason": row.void_reason, "dateVoided": row.date_voided}
    if isinstance(row, ObsRow):
        info["obsId"] = row.obs_id
    return info


def _clinical_after(source: ClinicalSource, reader: OpenMRSSource, after: int, limit: int) -> list[ClinicalRow]:
    return reader.clinical_after(source, after, limit)


def _chunks(values: Sequence[int], size: int) -> Iterable[list[int]]:
    for start in range(0, len(values), size):
        yield list(values[start : start + size])
