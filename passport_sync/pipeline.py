"""The sync pipeline of one hospital: read a batch, plan it, write it, then move the checkpoint.

One ``HospitalSync`` per hospital per run, under the hospital's lease lock. Inside a run, for each
feed (observations, then each clinical source):

1. re-read the late-commit gaps of earlier runs (rows whose transaction committed after we passed);
2. read new rows after the checkpoint, batch by batch, moving the checkpoint after each batch
   MongoDB acknowledged (the next page is read while this one is written);
3. read changes (voids, edits in place, stopped orders) since the watermark minus a look-back,
   unless the window's digest (taken for every feed in one statement before the feeds run) is
   the one kept when the same window was last read.

Then: land parked rows whose patient is now known, re-render records an older version wrote, take
the due slice of reconciliation, and rebuild the visit records of the encounters that changed.

What a batch becomes is decided by the pure planners (``planning``); this module gathers the facts
they need, hands the plan to the sink and keeps the counts. Every write is idempotent, so a crash
anywhere (kill -9 included) is repaired by the next run re-reading from the last checkpoint.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, TypeVar

from passport_sync import checkpoint as cp_logic
from passport_sync import passport_changes as changes
from passport_sync import tracing, unverified
from passport_sync.checkpoint import ChangesDigest, Checkpoint
from passport_sync.config import HospitalConfig, Settings
from passport_sync.errors import ConfigError, LockHeld, PassportSyncError
from passport_sync.feeds import ClinicalFeed, Feed, ObservationFeed
from passport_sync.lease import Lease
from passport_sync.mapping import RENDER_VERSION
from passport_sync.mapping.visits import DERIVED_SOURCES
from passport_sync.matching import PatientMatcher, PersonMatch
from passport_sync.models import FeedHead, HospitalReport
from passport_sync.observer import NullObserver, SyncObserver
from passport_sync.parking import RETRIED_BY_FULL_PASS
from passport_sync.planning import Plan, PlanContext, RunFacts, fallback_doctor
from passport_sync.planning import clinical as clinical_planner
from passport_sync.planning import observations as obs_planner
from passport_sync.planning import visits as visits_planner
from passport_sync.ports import OpenMRSReader, PassportSink
from passport_sync.reconcile import Reconciler, due_position
from passport_sync.sink.dry_run import DryRunPassport
from passport_sync.sink.locks import lock_owner
from passport_sync.sink.passport import PassportStore
from passport_sync.writes import BatchWrite, HospitalRefs

log = logging.getLogger("passport_sync")

Clock = Callable[[], datetime]
_T = TypeVar("_T")

# Re-rendering older records: at most this many batches per run, so one run after an upgrade
# stays bounded; the next runs continue where it stopped.
RERENDER_BATCHES_PER_RUN = 50
RERENDER = "re-render"
# Removing the medicalHistory links earlier versions wrote: the records of this many persons at a
# time, at most so many ranges per run; the next runs continue where it stopped.
LINK_REMOVAL_PERSONS_PER_RANGE = 200
LINK_REMOVAL_RANGES_PER_RUN = 50
LINKS_REMOVED = "medicalHistoryLinksRemoved"
LINKS_REMOVED_AFTER = "medicalHistoryLinksAfter"
# The encounters whose visit records new rows made due are kept with the checkpoint (in the same
# command), up to this many; beyond it they move to ``openmrs_sync_encounters``.
ENCOUNTERS_DUE_FIELD = "encountersDue"
ENCOUNTERS_KEPT_WITH_CHECKPOINT = 5000
# A first run builds the visit records of settled encounters from its batches this many at a time
# (one statement for their encounter rows), as the rebuild path reads them back.
ENCOUNTERS_BUILT_AT_ONCE = 500


def utcnow() -> datetime:
    return datetime.now(UTC)


class HospitalSync:
    """Syncs one hospital: ``run_incremental`` (sync-all), ``run_patient`` (sync-patient) or
    ``run_reconcile`` (reconcile). A dry run writes through a sink that only counts."""

    def __init__(
        self,
        hospital: HospitalConfig,
        settings: Settings,
        source: OpenMRSReader,
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
        self.store: PassportSink = DryRunPassport(store) if dry_run else store
        self.observer = observer or NullObserver()
        self.dry_run = dry_run
        self.clock = clock
        self.lock_wait = lock_wait
        self.report = HospitalReport(hospital.id, hospital.name, dry_run=dry_run)
        ttl = timedelta(seconds=settings.sync.lock_ttl_seconds)
        self.lease = Lease(self.store.locks, hospital.id, lock_owner(), ttl, clock)
        self.matcher = PatientMatcher(source, self.store.patients, [])
        self.facts = RunFacts("", "", locale=settings.sync.locale)
        self.persons_matched = 0
        # Persons whose rows this run parked: a row of theirs that lands later releases its copy.
        self.parked_persons: set[int] = set()
        # (source, primary key) parked during this run: not landed again by the same run.
        self._parked_now: set[tuple[str, int]] = set()
        self._refs: HospitalRefs | None = None
        self._booleans = (1, 2)
        self._source_now: datetime | None = None
        # Each feed's highest primary key and latest change when the run started.
        self._heads: dict[str, FeedHead] = {}
        # Each feed's change window as it is before the feeds run (see _digest_changes).
        self._digests: dict[str, ChangesDigest] = {}
        # (server:port/database, fingerprint) of the OpenMRS database, kept with the checkpoint.
        self._database: tuple[str, str | None] = ("", None)
        self._syncstatus: dict[str, Any] = {}
        self._identifier_max = 0
        # Whether the hospital had parked rows when the run began (None: not asked yet).
        self._parked_before: bool | None = None
        # Each feed's touched mark: no row with a higher primary key has a record or a parked copy
        # (raised, and stored, before any such row is written). As stored when the run began, and now.
        self._touched_at_start: dict[str, int] = {}
        self._touched: dict[str, int] = {}
        # The hospital had no record and no parked row before this run wrote any (None: not asked).
        self._nothing_synced: bool | None = None
        # Only sync-all starts a feed's mark (sync-patient and reconcile keep an existing one up).
        self._sets_marks = False
        # Keys written since reconciliation last compared them (see unverified.py).
        self._unverified: dict[str, list[unverified.Interval]] = {}
        # Encounters made due by new rows and kept with the checkpoint, not yet rebuilt.
        self._encounters_due: set[str] = set()
        # A first run's records by encounter, until the visit record is built from them; and the
        # encounters whose visit record was built so and not touched since (nothing to rebuild).
        self._in_flight = visits_planner.EncountersInFlight(ENCOUNTERS_BUILT_AT_ONCE)
        self._visits_built: set[str] = set()
        # The configured zone, else the database server's (read in _prepare): never silently UTC.
        self.tz: tzinfo = hospital.zone() or UTC

    # -- entry points ------------------------------------------------------------------------------
    def run_incremental(self) -> HospitalReport:
        """The sync-all work: per feed late commits, new rows and changes; then parked rows whose
        patient is now known, re-rendering, the due reconciliation slice and visit records."""

        def work() -> None:
            doc = self._syncstatus
            if (doc.get("sourceDatabase"), doc.get("sourceFingerprint")) != self._database:
                self.store.checkpoints.remember_database(self.hospital.id, *self._database)
            self._sets_marks = True
            feeds = self.feeds()
            self._digests = self._digest_changes(feeds, doc)
            for feed in feeds:
                self._run_feed(feed, doc)
            self._land_parked(doc)
            self._rerender(doc)
            self._remove_links(doc)
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
            persons = set(self.source.persons_by_national_id(national_id, self.type_ids))
            self.persons_matched = len(persons)
            if not persons:
                return
            for feed in self.feeds():
                after = 0
                while rows := feed.of_persons(persons, after, self.settings.sync.batch_size):
                    self._process(feed, rows, phase="patient")
                    after = feed.pk(rows[-1])
            # Records already on a patient that no longer holds the number (a national ID corrected
            # in the app) are moved off it: parking the rows again alone would leave them there.
            self._redecide(persons)
            self._rebuild_encounters()

        return self._run(work, summary=False)

    def _run(self, work: Callable[[], None], *, summary: bool) -> HospitalReport:
        report = self.report
        report.started_at = self.clock()
        self.observer.hospital_started(self.hospital.id, self.hospital.name)
        try:
            with tracing.on_behalf_of(self.hospital.id):
                self.lease.acquire(self.lock_wait)
                self._prepare()
                work()
        except LockHeld as exc:
            report.outcome = "locked"
            report.errors.append(str(exc))
            log.info("%s: %s", self.hospital.name, exc)  # benign: the other run syncs it
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
            with tracing.on_behalf_of(self.hospital.id):
                if summary and report.outcome != "locked":
                    self._write_summary()
                self.lease.release(self.hospital.name)
            self.observer.hospital_done(report)
        return report

    def _prepare(self) -> None:
        source = self.source
        source.connect()
        source.schema()
        type_id = source.national_id_type(self.settings.national_id_type_for(self.hospital)).type_id
        self.matcher = PatientMatcher(source, self.store.patients, [type_id])
        # One statement: the clock (read before any change, so no watermark moves past it), the
        # zone, the fingerprint, the global properties, and where each feed's rows end now.
        probe = source.probe([feed.table for feed in self.feeds() if isinstance(feed, ClinicalFeed)])
        self._heads = probe.heads
        self._source_now = probe.now
        self._identifier_max = probe.identifier_max
        self._booleans = source.boolean_concepts()
        self.facts.default_locale = source.default_locale()
        self._check_database_owner(probe.fingerprint)
        if self.hospital.zone() is None:
            self.tz = probe.zone.zone
        self._refs = self.store.placeholders.ensure_hospital(self.hospital, self.clock())

    def _check_database_owner(self, fingerprint: str | None) -> None:
        """Load the checkpoint, and refuse to sync an OpenMRS database already synced under another
        hospital id: the id is the key of every record, so a second id would copy each record a
        second time."""
        host, port, name = self.hospital.db.identity()
        database = f"{host}:{port}/{name}"
        doc, other = self.store.checkpoints.load_with_owner(self.hospital.id, database, fingerprint)
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
        self._syncstatus = doc or {}
        self._database = (database, fingerprint)
        touched = self._syncstatus.get("touched") or {}
        self._touched_at_start = {str(k): int(v) for k, v in touched.items() if isinstance(v, int)}
        self._touched = dict(self._touched_at_start)
        self._encounters_due = {str(u) for u in self._syncstatus.get(ENCOUNTERS_DUE_FIELD) or ()}
        self._unverified = unverified.load(self._syncstatus)

    def _write_summary(self) -> None:
        try:
            user_id = self._refs.user_id if self._refs else None
            self.store.audit.write_run_summary(self.report.as_dict(), user_id, self.clock())
        except PassportSyncError as exc:
            log.warning("%s: could not write the run summary: %s", self.hospital.name, exc)

    # -- what reconciliation uses ----------------------------------------------------------------------
    def feeds(self) -> list[Feed]:
        """Observations, then each clinical source this database has and the configuration allows."""
        switches = self.settings.sync.sources
        feeds: list[Feed] = [ObservationFeed(self.source)]
        for table in self.source.clinical_sources():
            if switches.enabled(table.name) is not False:
                feeds.append(ClinicalFeed(self.source, table))
        return feeds

    @property
    def type_ids(self) -> list[int]:
        return self.matcher.type_ids

    def match_persons(self, person_ids: Iterable[int], *, fresh: bool = False) -> dict[int, PersonMatch]:
        return self.matcher.match(person_ids, fresh=fresh)

    def renew_lock(self) -> None:
        self.lease.renew()

    def cover(self, feed: Feed, rows: Sequence[Any], *, verified: bool = False, new_rows: bool = False) -> None:
        """Before a batch of ``rows`` is written: raise the feed's touched mark over every key it may
        write (to the feed's head at once, so a run saves it once), so a crash after the write
        still finds the rows inside the mark; and, unless reconciliation writes what it compared
        (``verified``), mark the keys unverified (new rows up to the feed's head at once). One
        command for both.

        Persons need no mark of their own: every row written under today's match is marked, so
        the next pass re-reads it and re-decides its patient whatever the person's kept checksum."""
        keys = [k for row in rows for k in feed.keys_written(row) if k > 0]
        highest = max(keys, default=0)
        head = self._heads.get(feed.name)
        head_pk = (head.max_pk or 0) if head else 0
        fields: dict[str, Any] = {}
        current = self._touched.get(feed.name)
        if (current is None or highest > current) and (current is not None or self._sets_marks):
            # Without a mark yet only sync-all starts one (the next sync-all then takes no row for untouched).
            fields[f"touched.{feed.name}"] = max(highest, head_pk)
        if not verified and keys:
            spans = unverified.of_keys(keys)
            if new_rows:
                # From the batch's first row to the head: the run's later batches need no save. A
                # group row below it (a new member of an old group) is marked on its own.
                first = min(feed.pk(row) for row in rows)
                spans = unverified.add(
                    unverified.of_keys(k for k in keys if k < first), [(first, max(highest, head_pk))]
                )
            fields.update(self._unverified_fields(feed.name, keys, spans))
        if fields:
            self._save_fields(fields)
            if f"touched.{feed.name}" in fields:
                self._touched[feed.name] = fields[f"touched.{feed.name}"]

    def _unverified_fields(
        self, name: str, keys: Sequence[int], spans: Sequence[unverified.Interval]
    ) -> dict[str, Any]:
        """The checkpoint field marking ``keys`` of ``name`` unverified (none if they already are);
        the marks in memory follow."""
        marks = self._unverified.get(name, [])
        if unverified.covers(marks, keys):
            return {}
        self._unverified[name] = unverified.add(marks, spans)
        return unverified.stored(name, self._unverified[name])

    def unverified_within(self, name: str, low: int, high: int) -> list[unverified.Interval]:
        return unverified.within(self._unverified.get(name, []), low, high)

    def verified(self, name: str, low: int, high: int) -> None:
        """Reconciliation compared keys ``low..high`` of ``name``: their marks go."""
        marks = self._unverified.get(name, [])
        if unverified.within(marks, low, high):
            self._unverified[name] = unverified.remove(marks, low, high)
            self._save_fields(unverified.stored(name, self._unverified[name]))

    def _untouched_above(self, feed: Feed) -> int | None:
        """The key above which the feed's rows had no record and no parked copy when the run began
        (None: not known, so every row is treated as possibly synced)."""
        if feed.name in self._touched_at_start:
            return self._touched_at_start[feed.name]
        if self._nothing_synced is None:
            # A first run, or one after a reset or an upgrade: "untouched" only if nothing is synced
            # (asked before this run writes anything of the feed; any record makes the answer no).
            self._nothing_synced = not self._had_parked_rows() and not self.store.records.any_of(self.hospital.id)
        return 0 if self._nothing_synced else None

    def plan_for_reconcile(self, feed: Feed, rows: Sequence[Any]) -> BatchWrite:
        """What a fresh sync would write for these rows: observations as upserts (so a changed
        value is rewritten), and every row's parked copy released or moved."""
        plan = self._plan(feed, rows, reconciling=True)
        self.parked_persons.update(p["personId"] for p in plan.batch.parks)
        return plan.batch

    # -- phases ----------------------------------------------------------------------------------------
    def _run_feed(self, feed: Feed, syncstatus: Mapping[str, Any]) -> Checkpoint:
        state = cp_logic.stored_checkpoint(feed.name, syncstatus)
        first_run = not cp_logic.is_stored(feed.name, syncstatus)
        head = self._heads.get(feed.name) or FeedHead(None, None)
        state = self._recheck_gaps(feed, state)
        if head.max_pk is not None and head.max_pk > state.last_obs_id:
            state = self._read_new(feed, state, head.max_pk)
        if first_run:
            # Changes before this moment were seen, already changed, by the first full read.
            state = cp_logic.advance_voids(state, head.max_changed, not_after=self._source_now)
        since = cp_logic.void_read_from(state, self._void_lookback)
        if cp_logic.changes_due(head.max_changed, since) and not cp_logic.changes_unchanged(
            state, since, self._digests.get(feed.name)
        ):
            state = self._read_changes(feed, state, since)
        if first_run:
            # Stored even when the source is empty: the next run is not a first run.
            self._save(feed, state)
        return state

    @property
    def _void_lookback(self) -> timedelta:
        return timedelta(minutes=self.settings.sync.void_lookback_minutes)

    def _digest_changes(self, feeds: Sequence[Feed], syncstatus: Mapping[str, Any]) -> dict[str, ChangesDigest]:
        """The digest of each feed's change window with something in it, in one statement, taken
        before anything is read: for the window the next run will read once this run has read the
        changes the probe saw (the window it reads now when nothing moved the watermark)."""
        windows: dict[str, datetime | None] = {}
        for feed in feeds:
            head = self._heads.get(feed.name) or FeedHead(None, None)
            state = cp_logic.stored_checkpoint(feed.name, syncstatus)
            since = cp_logic.next_void_read_from(
                state, head.max_changed, self._void_lookback, not_after=self._source_now
            )
            if cp_logic.changes_due(head.max_changed, since):
                windows[feed.name] = since
        if not windows:
            return {}
        found = self.source.changes_digests(windows)
        return {name: ChangesDigest(windows[name], *found[name]) for name in windows if name in found}

    def _save(self, feed: Feed, state: Checkpoint, also: Mapping[str, Any] | None = None) -> None:
        """Store the feed's checkpoint, and ``also`` these fields in the same command."""
        fields = {**cp_logic.stored_fields(feed.name, state), **(also or {})}
        self.store.checkpoints.save(self.hospital.id, fields, self.clock())

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

    def _read_new(self, feed: Feed, state: Checkpoint, until: int | None = None) -> Checkpoint:
        """New rows in primary-key order, one batch at a time, in a pipeline of three: the next
        page is read (on a second connection) while this one is planned and the previous one is
        written, so MySQL, this process and MongoDB work at the same time. Writes and checkpoints
        stay strictly in order, and a failed write stops the run before any later checkpoint.
        """
        limit = self.settings.sync.batch_size
        read_page: Callable[[OpenMRSReader, int, int], Sequence[Any]] = feed.after
        written: Future[Checkpoint] | None = None
        with (
            ThreadPoolExecutor(max_workers=1) as reading,
            ThreadPoolExecutor(max_workers=1) as writing,
            self.source.read_ahead() as reader,
        ):
            page: Future[Sequence[Any]] | None = reading.submit(read_page, reader, state.last_obs_id, limit)
            while page is not None and (rows := page.result()):
                # A short page, or one reaching the feed's head, is the last one for now: rows
                # committed after the probe are the next run's.
                last = feed.pk(rows[-1])
                more = len(rows) >= limit and (until is None or last < until)
                page = reading.submit(read_page, reader, last, limit) if more else None
                plan = self._plan_batch(feed, rows, phase="new", untouched_above=self._untouched_above(feed))
                visits = self._visits_from_batches(plan.batch)
                if written is not None:
                    state = written.result()
                written = writing.submit(self._write_and_advance, feed, rows, plan, state, visits)
            if written is not None:
                state = written.result()
        self._build_pending_visits()
        return state

    def _builds_visits_from_batches(self) -> bool:
        """Whether visit records are built from the batches that wrote their records: only on a
        hospital's first run (nothing synced before it, so the batches hold every record of an
        encounter), and only while every record this run inserted was new."""
        report = self.report
        return self._nothing_synced is True and not self.dry_run and not (report.already_present or report.reassigned)

    def _visits_from_batches(self, batch: BatchWrite) -> tuple[BatchWrite, set[str]] | None:
        """The visit records of the encounters settled by this planned batch, built from the
        records earlier batches of this run wrote (see ``EncountersInFlight``), with the
        encounters they are for; None when there are none yet."""
        if not self._builds_visits_from_batches() or batch.removals or batch.patches:
            self._in_flight.drop()
            return None
        settled = self._in_flight.add(batch)
        return self._build_visits(settled) if settled else None

    def _build_visits(self, uuids: list[str]) -> tuple[BatchWrite, set[str]]:
        """What the rebuild path would write for these encounters, from the records in memory."""
        records = self._in_flight.take(uuids)
        encounters = self.source.encounters(uuids)
        self._load_doctors(list(encounters.values()))
        return visits_planner.plan(uuids, encounters, records, self._context({}, reconciling=False)), set(uuids)

    def _build_pending_visits(self) -> None:
        """At the end of a feed's new rows: build the encounters still in flight (the feed's
        last ones are settled now), unless this run no longer builds from batches."""
        pending = self._in_flight.pending()
        if not pending or not self._builds_visits_from_batches():
            self._in_flight.drop()
            return
        for chunk in _chunks(pending, ENCOUNTERS_BUILT_AT_ONCE):
            batch, built = self._build_visits(chunk)
            if batch:
                self.store.records.apply(batch, self.clock())
            # Still listed with the checkpoint: the end of the run clears the list, rebuilding none of them.
            self._visits_built |= built

    def _write_and_advance(
        self,
        feed: Feed,
        rows: Sequence[Any],
        plan: Plan,
        state: Checkpoint,
        visits: tuple[BatchWrite, set[str]] | None = None,
    ) -> Checkpoint:
        """Write a batch of new rows (and the ``visits`` built from earlier batches), then move the
        checkpoint, which also keeps the encounters the batch made due and no longer those whose
        visit it wrote: one command for all, and a crash in between re-reads the batch and
        rebuilds the encounters still listed."""
        with tracing.on_behalf_of(self.hospital.id):
            encounters = self._write_batch(feed, rows, plan, phase="new", keep_encounters=False)
            # Touched again after its visit was built from batches: the rebuild path reads it back.
            self._visits_built -= encounters
            built: set[str] = set()
            if visits is not None and self._builds_visits_from_batches():
                batch, built = visits
                if batch:
                    self.store.records.apply(batch, self.clock())
                self._visits_built |= built
            state = cp_logic.advance(state, [feed.pk(r) for r in rows], self.clock())
            kept: dict[str, Any] = {}
            if encounters or built & self._encounters_due:
                self._encounters_due |= encounters
                self._encounters_due -= built
                if len(self._encounters_due) > ENCOUNTERS_KEPT_WITH_CHECKPOINT:
                    self.store.encounters.mark_due(self.hospital.id, self._encounters_due)
                    self._encounters_due = set()
                kept[ENCOUNTERS_DUE_FIELD] = sorted(self._encounters_due)
            self._save(feed, state, kept)
        return state

    def _read_changes(self, feed: Feed, state: Checkpoint, since: datetime | None) -> Checkpoint:
        """Rows changed (voided, edited in place, stopped) since the watermark minus a look-back.

        The watermark moves once every page is written: rows come in id order, not time order.
        """
        latest: datetime | None = None
        after = 0
        limit = self.settings.sync.batch_size
        while rows := feed.changed(since, after, limit):
            self._process(feed, rows, phase="changes")
            moments = [m for m in map(feed.changed_at, rows) if m is not None]
            latest = max([*moments, latest] if latest else moments, default=latest)
            after = feed.pk(rows[-1])
            if len(rows) < limit:
                break  # a short page is the last: no statement for an empty one
        moved = state
        if latest is not None and latest != state.void_watermark:
            moved = cp_logic.advance_voids(state, latest, not_after=self._source_now)
        # Kept in the same save: the next run leaves the window unread while its digest stays.
        moved = cp_logic.remember_changes(moved, self._digests.get(feed.name), self._void_lookback)
        if moved != state:
            state = moved
            self._save(feed, state)
        return state

    def _land_parked(self, syncstatus: Mapping[str, Any]) -> None:
        """Re-decide the persons whose rows may belong elsewhere now, land those whose patient is
        known, and move records off patients that no longer match them: persons given a national
        ID in OpenMRS since the last run, and the persons concerned by the patients registered,
        corrected or deleted in Patient Passport since then (see ``_passport_changes``). Every
        parked person, and the rows parked for their own data, once per
        ``reconcile.full_pass_hours`` (a national ID corrected in place, a duplicate patient
        removed). So a run costs what changed, not what is parked.
        """
        check = dict(syncstatus.get("parkedCheck") or {})
        now = self.clock()
        full_at = check.get("fullAt")
        full = full_at is None or now - _aware(full_at) >= timedelta(hours=self.settings.reconcile.full_pass_hours)
        involved = self._passport_changes(check, now)
        if full:
            persons = self.store.parked.person_ids(self.hospital.id)
            check.update(fullAt=now)
        else:
            persons = self._persons_to_redecide(check, involved)
        check["identifierMax"] = self._identifier_max
        feeds = self.feeds()
        for chunk in _chunks(sorted(persons), self.settings.sync.batch_size):
            ready = [pid for pid, match in self.matcher.match(chunk, fresh=True).items() if match.patient_id]
            if ready:
                for feed in feeds:
                    self._land(feed, self.store.parked.ids(self.hospital.id, feed.name, person_ids=ready))
        if full:
            # Rows parked for their own data (a missing concept, an invalid value), in case it was fixed.
            # One equality lookup per reason: an index serves it on every server (SecantusDB scans $in).
            for reason in RETRIED_BY_FULL_PASS:
                self._land(feeds[0], self.store.parked.ids(self.hospital.id, "obs", reason=reason))
        if involved:
            # Both directions: what the landing above left (records on a patient that no longer
            # holds their number, or no longer exists) is compared with the Passport and moved.
            self._redecide(involved)
        if check != syncstatus.get("parkedCheck"):
            self._save_fields({"parkedCheck": check})

    def _persons_to_redecide(self, check: dict[str, Any], involved: set[int]) -> set[int]:
        """Parked persons given a national ID in OpenMRS since the last run, or concerned by a
        change in Patient Passport (``involved``)."""
        persons = set(involved)
        identifier_max = int(check.get("identifierMax") or 0)
        if self._identifier_max > identifier_max:
            persons |= self.source.persons_with_identifiers_after(identifier_max, self.type_ids)
        return self.store.parked.persons_among(self.hospital.id, persons) if persons else set()

    def _passport_changes(self, check: dict[str, Any], now: datetime) -> set[int]:
        """The persons concerned by what the app changed since the last run: the OpenMRS holders of
        the numbers of the patients registered or corrected (found by their ``updatedAt``, from a
        watermark kept in ``check`` minus a look-back), and the persons whose records are on those
        patients or on patients deleted since (``_deleted_patients``)."""
        persons = self._deleted_patients(check, now)
        stored = check.get("changedSince") or check.get("patientsSince")  # the latter: an earlier version's
        check.pop("patientsSince", None)
        check.pop("patientsHandled", None)
        if stored is None:
            # The first run decided every row from the patients as they were when it started: the
            # changes saved before then are handled, those saved since are the next run's.
            started = self.report.started_at or now
            found = self.store.patients.changed_since(changes.read_from(started))
            check.update(changedSince=started, changedHandled=changes.saved_before(found, started))
            return persons
        watermark = _aware(stored)
        found = self.store.patients.changed_since(changes.read_from(watermark))
        handled = dict(check.get("changedHandled") or {})
        new = changes.to_handle(found, handled)
        # A chunk at a time: an app-wide update can save every patient at once.
        for chunk in _chunks(new, self.settings.sync.batch_size):
            numbers = changes.numbers_of(chunk)
            holders = self.source.holders(numbers, self.type_ids) if numbers else {}
            on_patients = self.store.records.persons_on(self.hospital.id, [c.patient_id for c in chunk])
            persons |= changes.persons_to_redecide(holders, on_patients)
        moved = changes.advance(watermark, found, now)
        if moved != watermark or "changedSince" not in check:
            check["changedSince"] = moved
        kept = changes.still_returned(handled, new, moved)
        if kept != handled:
            check["changedHandled"] = kept
        return persons

    def _deleted_patients(self, check: dict[str, Any], now: datetime) -> set[int]:
        """The persons whose records are on patients deleted in the app. The patients the
        hospital's records point to are compared with ``patients`` a part at a time, by ``_id``
        range, paced so the whole comparison ends once per ``reconcile.full_pass_hours``; a run
        with no part due asks nothing."""
        sweep = dict(check.get("sweep") or {})
        if not sweep:
            sweep = {"startedAt": now, "done": 0}
        full_pass = timedelta(hours=self.settings.reconcile.full_pass_hours)
        due = due_position(changes.SWEEP_STEPS, _aware(sweep["startedAt"]), now, full_pass)
        done = int(sweep["done"])
        persons: set[int] = set()
        if due > done:
            if "low" not in sweep:
                # The first part due fixes the sweep's bounds; patients registered later are the next sweep's.
                low, high = self.store.records.patient_bounds(self.hospital.id) or ("", "")
                sweep.update(low=low, high=high)
            span = changes.sweep_span(str(sweep["low"]), str(sweep["high"]), done, due)
            if span is not None and (referenced := self.store.records.patients_between(self.hospital.id, *span)):
                gone = sorted(changes.dangling(referenced, self.store.patients.ids_between(*span)))
                for chunk in _chunks(gone, self.settings.sync.batch_size):
                    persons |= self.store.records.persons_on(self.hospital.id, chunk)
            sweep["done"] = due
        if due >= changes.SWEEP_STEPS:
            check.pop("sweep", None)  # the next run starts the next sweep
        elif sweep != check.get("sweep"):
            check["sweep"] = sweep
        return persons

    def _redecide(self, persons: set[int]) -> None:
        """Compare where these persons' rows are with where they go now, and repair what differs
        (as reconciliation does for a person whose identifiers changed)."""
        reconciler = Reconciler(self)
        for chunk in _chunks(sorted(persons), self.settings.sync.batch_size):
            reconciler.redecide(set(chunk))
        found = reconciler.found
        if found.drifted:
            log.info(
                "%s: patients changed in Patient Passport: %d record(s) moved, %d restored, %d removed, %d re-parked",
                self.hospital.name,
                found.moved,
                found.restored,
                found.removed,
                found.reparked,
            )
        self.report.reassigned += found.moved

    def _land(self, feed: Feed, pks: list[int]) -> None:
        fresh = {pk for pk in pks if (feed.name, pk) not in self._parked_now}
        for chunk in _chunks(sorted(fresh), self.settings.sync.batch_size):
            self._process(feed, feed.by_pks(chunk), phase="parked")

    def _rerender(self, syncstatus: Mapping[str, Any]) -> None:
        """Rewrite, once, the records an older rendering wrote: re-read their rows by primary key
        and write what this rendering makes of them (OpenMRS-owned fields only), a bounded number
        of batches per run; the pass resumes where it stopped and is recorded as done."""
        if syncstatus.get("renderVersion") == RENDER_VERSION:
            return
        if self._nothing_synced:
            # Everything there was written by this run, with this rendering.
            self._save_fields({"renderVersion": RENDER_VERSION, "renderAfter": None})
            return
        feeds = {feed.name: feed for feed in self.feeds()}
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
                # A condition's row of its own is rewritten with its origin row.
                source = provenance.get("ownRowOf") or provenance.get("source")
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

    def _remove_links(self, syncstatus: Mapping[str, Any]) -> None:
        """Take out, once, the ``patients.medicalHistory`` links earlier versions wrote, unless
        links are configured: the hospital's records a range of persons at a time, a bounded number
        of ranges per run, resuming where the last run stopped (``medicalHistoryLinksAfter``, the
        next person), then recorded as done (``medicalHistoryLinksRemoved``). With links
        configured, a done mark is cleared, so turning them off again removes them again."""
        if self.dry_run:
            return
        done = bool(syncstatus.get(LINKS_REMOVED))
        if self.store.patients.links:
            if done:
                self._save_fields({LINKS_REMOVED: False, LINKS_REMOVED_AFTER: None})
            return
        if done:
            return
        if self._nothing_synced:
            # Everything there was written by this run, which wrote no link.
            self._save_fields({LINKS_REMOVED: True, LINKS_REMOVED_AFTER: None})
            return
        highest = self.store.patients.highest_person(self.hospital.id)
        low = int(syncstatus.get(LINKS_REMOVED_AFTER) or 0)
        for _ in range(LINK_REMOVAL_RANGES_PER_RUN):
            if highest is None or low > highest:
                self._save_fields({LINKS_REMOVED: True, LINKS_REMOVED_AFTER: None})
                return
            high = low + LINK_REMOVAL_PERSONS_PER_RANGE
            self.store.patients.remove_links(self.hospital.id, low, high)
            low = high
            self._save_fields({LINKS_REMOVED_AFTER: low})
            self.lease.renew()

    def _save_fields(self, fields: Mapping[str, Any]) -> None:
        self.store.checkpoints.save(self.hospital.id, fields, self.clock())

    def _rebuild_encounters(self) -> None:
        """Rebuild the visit record and medication lists of every encounter whose records changed.

        The encounters come from ``openmrs_sync_encounters``, written with each batch, so a crash
        between a batch and this step is repaired by the next run.
        """
        limit = self.settings.sync.batch_size
        for chunk in _chunks(sorted(self._encounters_due - self._visits_built), limit):
            self._rebuild(chunk)
        if self._encounters_due:
            self._save_fields({ENCOUNTERS_DUE_FIELD: []})
            self._encounters_due = set()
        while uuids := self.store.encounters.due(self.hospital.id, limit):
            self._rebuild(uuids)
            self.store.encounters.done(self.hospital.id, uuids)
            if len(uuids) < limit:
                return

    def _rebuild(self, uuids: list[str]) -> None:
        encounters = self.source.encounters(uuids)
        records = self.store.encounters.records(self.hospital.id, uuids)
        self._load_doctors(list(encounters.values()))
        batch = visits_planner.plan(uuids, encounters, records, self._context({}, reconciling=False))
        if batch:
            self.store.records.apply(batch, self.clock())
        self.lease.renew()

    # -- one batch -----------------------------------------------------------------------------------
    def _process(self, feed: Feed, rows: Sequence[Any], *, phase: str) -> None:
        """Plan one batch and write it; returns after MongoDB acknowledged it."""
        self._write_batch(feed, rows, self._plan_batch(feed, rows, phase=phase), phase=phase)

    def _plan_batch(self, feed: Feed, rows: Sequence[Any], *, phase: str, untouched_above: int | None = None) -> Plan:
        plan = self._plan(feed, rows, untouched_above=untouched_above)
        if phase == RERENDER:
            # Existing records are rewritten field by field, not inserted.
            plan.batch.upserts.extend(plan.batch.records)
            plan.batch.records.clear()
        self.parked_persons.update(p["personId"] for p in plan.batch.parks)
        return plan

    def _write_batch(
        self, feed: Feed, rows: Sequence[Any], plan: Plan, *, phase: str, keep_encounters: bool = True
    ) -> set[str]:
        """Write one planned batch and count it; returns after MongoDB acknowledged it, with the
        encounters it touched (remembered as due unless ``keep_encounters`` is false)."""
        batch = plan.batch
        encounters: set[str] = set()
        report = self.report
        report.read += len(rows)
        report.batches += 1
        report.skipped += plan.skipped
        report.parked += len(batch.parks)
        if batch:
            self.cover(feed, rows, new_rows=phase == "new")
            outcome = self.store.records.apply(
                batch, self.clock(), hospital_id=self.hospital.id, keep_encounters=keep_encounters
            )
            encounters = outcome.encounters
            report.written += outcome.written
            report.updated += outcome.updated
            report.already_present += outcome.already_present
            report.removed += outcome.removed
            report.reassigned += outcome.reassigned
            report.unparked += plan.landed if phase == "parked" else 0
            report.rerendered += outcome.updated if phase == RERENDER else 0
        self.observer.batch_done(report, phase)
        self.lease.renew()
        return encounters  # none in a dry run: its sink finds none

    def _plan(
        self, feed: Feed, rows: Sequence[Any], *, reconciling: bool = False, untouched_above: int | None = None
    ) -> Plan:
        """Look up what the planner needs for ``rows``, then plan them."""
        live = [r for r in rows if not r.voided]
        parked_before = reconciling or self._had_parked_rows()

        def context(matches: Mapping[int, PersonMatch]) -> PlanContext:
            return self._context(matches, reconciling, parked_before, untouched_above)

        if isinstance(feed, ObservationFeed):
            self._load_concepts(obs_planner.concepts_of(rows))
            groups = obs_planner.groups_touched(rows, context({}))
            members = self.source.live_members(groups.keys()) if groups else []
            self._load_concepts(obs_planner.concepts_of(members))
            matches = self._load_people([*live, *members])
            plan = obs_planner.plan(rows, groups, members, context(matches))
        else:
            self._load_concepts(clinical_planner.concepts_of(rows))
            matches = self._load_people(live)
            plan = clinical_planner.plan(rows, context(matches))
        for problem in plan.problems:
            log.warning(
                "%s: %s %d %s; not synced, parked (%s)",
                self.hospital.name, problem.source, problem.pk, problem.detail, problem.reason,
            )  # fmt: skip
        self._parked_now |= plan.parked
        return plan

    def _context(
        self,
        matches: Mapping[int, PersonMatch],
        reconciling: bool,
        parked_before: bool = False,
        untouched_above: int | None = None,
    ) -> PlanContext:
        return PlanContext(
            hospital_id=self.hospital.id,
            hospital_name=self.hospital.name,
            tz=self.tz,
            now=self.clock(),
            options=self.settings.sync,
            facts=self.facts,
            matches=matches,
            parked_persons=self.parked_persons,
            parked_before=parked_before,
            reconciling=reconciling,
            booleans=self._booleans,
            untouched_above=untouched_above,
        )

    # -- lookups, cached for the run -------------------------------------------------------------------
    def _had_parked_rows(self) -> bool:
        """Whether the hospital had parked rows when the run began (asked once per run). If so, any
        landing row may have a parked copy and releases it by key in the batch's write, which costs
        no read, whatever is parked."""
        if self._parked_before is None:
            self._parked_before = self.store.parked.any(self.hospital.id)
        return self._parked_before

    def _load_concepts(self, concept_ids: set[int]) -> None:
        missing = concept_ids - self.facts.concept_names.keys()
        if missing:
            self.facts.concept_names.update(self.source.concept_names(missing))

    def _load_people(self, rows: Sequence[Any]) -> dict[int, PersonMatch]:
        """The doctors of ``rows`` and where each of their persons goes."""
        self._load_doctors(rows)
        return self.matcher.match({r.person_id for r in rows})

    def _load_doctors(self, rows: Sequence[Any]) -> None:
        """The providers of ``rows`` and their Passport users, and (once, when first needed) the
        hospital's placeholder doctor for rows without a provider: one lookup for all of them."""
        facts = self.facts
        provider_ids = {r.provider_id for r in rows if r.provider_id is not None}
        missing = provider_ids - facts.providers.keys()
        if missing:
            facts.providers.update(self.source.providers(missing))
        unknown = [
            facts.providers[p]
            for p in provider_ids
            if p in facts.providers and facts.providers[p].uuid not in facts.doctor_users
        ]
        fallback = None if facts.fallback_user_id else fallback_doctor(self.hospital.name)
        if fallback is not None:
            unknown.append(fallback)
        if unknown and self._refs is not None:
            oid = self._refs.hospital_oid
            users = self.store.placeholders.doctor_users(self.hospital, oid, unknown, self.clock())
            if fallback is not None:
                facts.fallback_user_id, facts.fallback_doctor_name = users.pop(fallback.uuid), fallback.display_name
            facts.doctor_users.update(users)


def _aware(value: datetime) -> datetime:
    """MongoDB hands datetimes back naive (UTC)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _chunks(values: Sequence[_T], size: int) -> Iterable[list[_T]]:
    for start in range(0, len(values), size):
        yield list(values[start : start + size])
