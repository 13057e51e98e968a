"""Reconciliation (anti-entropy): find and repair what OpenMRS changed in place.

The incremental sync follows new ids and change timestamps; OpenMRS also changes rows without
either (merges moving orders or obs to another patient, unvoids, a previous order restored when
its revision is voided, an order expiring, an identifier corrected by SQL). Reconciliation works
the way replicas are checked (pt-table-checksum, Merkle-tree repair):

1. each source's primary-key space is cut into ranges, and MySQL computes a checksum per range
   over the columns that decide the Passport record; persons get one over their national-ID
   identifiers;
2. the checksums are compared with those kept from the last pass (``openmrs_sync_checksums``);
   a range without a kept checksum (the first pass, ``--full``) counts as differing, so the
   first pass compares every row with the Passport instead of trusting it;
3. inside a differing range, per-row checksums (kept packed beside the range's) tell which rows
   changed; only those rows are re-read, mapped as a fresh sync would map them and compared with
   what the Passport holds: a record on the wrong patient is moved, a missing one
   restored, one that should not exist removed, a changed one updated, one whose patient is now
   ambiguous re-parked. A person whose identifiers changed is re-decided, and only if the
   Passport disagrees with the decision are that person's rows re-read;
4. the new checksums are kept, computed *before* the rows were read, so a change made during the
   pass shows as a difference next time rather than being missed.

``sync-all`` runs a slice of a pass each run, paced so a full pass ends within
``reconcile.full_pass_hours``; ``passport-sync reconcile`` runs a whole pass at once.
"""

from __future__ import annotations

import logging
import math
import struct
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from bson import ObjectId

from passport_sync import unverified
from passport_sync.mapping.national_id import normalise_national_id
from passport_sync.mapping.transform import record_id
from passport_sync.mapping.visits import OWN_ROW_SOURCE
from passport_sync.matching import PersonMatch
from passport_sync.parking import RETRIED_BY_FULL_PASS, SHARED_NATIONAL_ID
from passport_sync.sink.records import unchanged_record
from passport_sync.source.checksums import IDENTITIES
from passport_sync.writes import BatchWrite

if TYPE_CHECKING:
    from passport_sync.feeds import Feed
    from passport_sync.pipeline import HospitalSync

log = logging.getLogger("passport_sync")

# Ranges per checksum statement: bounds the statement's result and the kept checksums read at once.
RANGES_PER_STATEMENT = 200
# Persons per re-read statement (an IN list).
PERSONS_PER_READ = 500
# sync-all aims to end a pass within this share of full_pass_hours, leaving room for run intervals.
PACE_SHARE = 0.9


@dataclass(slots=True)
class Findings:
    """What a pass (or a slice of one) checked, what had drifted and what it repaired."""

    ranges_checked: int = 0
    ranges_differing: int = 0
    persons_checked: int = 0
    persons_redecided: int = 0
    row_checksums: int = 0
    rows_read: int = 0
    moved: int = 0
    restored: int = 0
    removed: int = 0
    updated: int = 0
    reparked: int = 0

    @property
    def drifted(self) -> int:
        return self.moved + self.restored + self.removed + self.updated + self.reparked

    def add(self, other: Findings) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def as_dict(self) -> dict[str, int]:
        return {**asdict(self), "drifted": self.drifted}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | None) -> Findings:
        names = {f.name for f in fields(cls)}
        return cls(**{k: int(v) for k, v in (values or {}).items() if k in names})


def drift(
    hospital_id: str, planned: BatchWrite, existing: Mapping[ObjectId, Mapping[str, Any]]
) -> tuple[BatchWrite, Findings]:
    """The writes that make the Passport equal to ``planned`` (what a fresh sync would write),
    given what it holds now (``existing``), and what each of them repairs. Pure."""
    found = Findings()
    repair = BatchWrite(parks=list(planned.parks), unparks=list(planned.unparks))
    for doc in [*planned.records, *planned.upserts]:
        old = existing.get(doc["_id"])
        # A record's row of its own is repaired with it, and not counted apart (it is derived).
        counted = 0 if (doc.get("openmrsData") or {}).get("source") == OWN_ROW_SOURCE else 1
        if old is None:
            found.restored += counted
        elif old.get("patientId") != doc["patientId"]:
            found.moved += counted
        elif not unchanged_record(old, doc):
            found.updated += counted
        else:
            continue
        repair.upserts.append(doc)
    removing = set()
    for rid, info in planned.removals:
        if rid in existing and rid not in removing:
            removing.add(rid)
            repair.removals.append((rid, info))
            found.removed += 0 if info.get("ownRow") else 1
    for park in planned.parks:
        rid = record_id(hospital_id, park["source"], park["uuid"])
        if rid in existing and rid not in removing:
            # Its patient is ambiguous or unknown now: the record must not stay on a guess.
            removing.add(rid)
            repair.removals.append((rid, {"reason": "parked", "parkReason": park["reason"]}))
            found.reparked += 1
    for rid, patch in planned.patches:
        old = existing.get(rid)
        data = (old or {}).get("data") or {}
        if old is not None and any(data.get(key.removeprefix("data.")) != value for key, value in patch.items()):
            repair.patches.append((rid, patch))
            found.updated += 1
    return repair, found


def planned_ids(hospital_id: str, planned: BatchWrite) -> set[ObjectId]:
    """Every record ``planned`` writes, removes, patches or parks: what to compare it with."""
    ids = {d["_id"] for d in [*planned.records, *planned.upserts]}
    ids.update(rid for rid, _ in planned.removals)
    ids.update(rid for rid, _ in planned.patches)
    ids.update(record_id(hospital_id, p["source"], p["uuid"]) for p in planned.parks)
    return ids


def needs_redecision(match: PersonMatch, owners: Collection[str], parked_reasons: Collection[str]) -> bool:
    """True when the Passport disagrees with where a person's rows go now. Pure.

    ``owners``: the Passport patients holding the person's records; ``parked_reasons``: why rows
    of the person are parked (data problems, re-read by the full pass over parked rows, do not count).
    """
    waiting = set(parked_reasons) - set(RETRIED_BY_FULL_PASS)
    if match.patient_id is not None:
        return bool(set(owners) - {match.patient_id}) or bool(waiting)
    return bool(owners) or bool(waiting - {match.park_reason})


def ranges_of(start: int, end: int, feed_index: int, feed_count: int, range_count: int) -> tuple[int, int] | None:
    """The ranges of one source inside positions ``start..end-1`` (positions interleave the
    sources: position = range * feed_count + feed_index, so new ranges only ever append). Pure."""
    first = max(0, math.ceil((start - feed_index) / feed_count))
    last = min(range_count - 1, (end - 1 - feed_index) // feed_count)
    return (first, last) if first <= last else None


def due_position(total: int, started: datetime, now: datetime, full_pass: timedelta) -> int:
    """How far a pass started at ``started`` should be by ``now`` to end in time. Pure."""
    budget = full_pass * PACE_SHARE
    if budget <= timedelta(0) or now - started >= budget:
        return total
    return min(total, math.floor(total * max((now - started) / budget, 0.0)))


def coalesce(indexes: Iterable[int], range_size: int) -> list[tuple[int, int]]:
    """Primary-key bounds of the given ranges, adjacent ranges joined. Pure."""
    bounds: list[tuple[int, int]] = []
    for index in sorted(set(indexes)):
        low, high = index * range_size + 1, (index + 1) * range_size
        if bounds and bounds[-1][1] + 1 == low:
            bounds[-1] = (bounds[-1][0], high)
        else:
            bounds.append((low, high))
    return bounds


class Reconciler:
    """One hospital's reconciliation, inside a ``HospitalSync`` run (its lock, caches, mapping)."""

    def __init__(self, sync: HospitalSync) -> None:
        self.sync = sync
        self.store = sync.store
        self.source = sync.source
        self.hospital_id = sync.hospital.id
        self.range_size = sync.settings.reconcile.range_size
        self.found = Findings()

    # -- passes -------------------------------------------------------------------------------------
    def full_pass(self, *, compare_all: bool = False) -> Findings:
        """Every range of every source now (``reconcile``); ``compare_all`` ignores kept checksums."""
        started = self.sync.clock()
        layout = self._layout()
        self._positions(0, _total(layout), layout, compare_all=compare_all)
        if not self.sync.dry_run:
            self._pass_ended(started, "reconcile")
        return self.found

    def slice(self) -> Findings:
        """The part of the current pass due by now (``sync-all``); starts a new pass when one ends."""
        now = self.sync.clock()
        state = self.store.checkpoints.reconcile_state(self.hospital_id)
        current = state.get("pass")
        starting = not current
        if not current:
            current = {"startedAt": now, "layout": self._layout(), "cursor": 0, "findings": {}}
        layout: dict[str, int] = dict(current["layout"])
        total = _total(layout)
        full_pass = timedelta(hours=self.sync.settings.reconcile.full_pass_hours)
        started = _aware(current["startedAt"], now)
        due = due_position(total, started, now, full_pass)
        cursor = int(current["cursor"])
        if due > cursor:
            self._positions(cursor, due, layout, compare_all=False)
        findings = Findings.from_dict(current.get("findings"))
        findings.add(self.found)
        if due >= total:
            self.found = findings
            self._pass_ended(started, "sync-all")
        elif starting or due > cursor:
            # An idle run with nothing due writes nothing: its cost stays one read.
            current.update(cursor=max(due, cursor), findings=findings.as_dict())
            self.store.checkpoints.save_reconcile_state(self.hospital_id, {"pass": current})
        return self.found

    def _pass_ended(self, started: datetime, by: str) -> None:
        summary = {"startedAt": started, "endedAt": self.sync.clock(), "by": by, "findings": self.found.as_dict()}
        self.store.checkpoints.save_reconcile_state(self.hospital_id, {"pass": None, "lastFullPass": summary})
        log.info(
            "%s: reconciliation pass ended: %d range(s) differed, %d record(s) repaired",
            self.sync.hospital.name,
            self.found.ranges_differing,
            self.found.drifted,
        )

    def _layout(self) -> dict[str, int]:
        """Ranges per source now (identities first); later rows are the next pass's."""
        names = [IDENTITIES, *(feed.name for feed in self.sync.feeds())]
        return {name: math.ceil(self.source.max_pk(name) / self.range_size) for name in names}

    def _positions(self, start: int, end: int, layout: Mapping[str, int], *, compare_all: bool) -> None:
        names = list(layout)
        feeds = {feed.name: feed for feed in self.sync.feeds()}
        for index, name in enumerate(names):
            bounds = ranges_of(start, end, index, len(names), layout[name])
            if bounds is None or (name != IDENTITIES and name not in feeds):
                continue
            for first in range(bounds[0], bounds[1] + 1, RANGES_PER_STATEMENT):
                last = min(bounds[1], first + RANGES_PER_STATEMENT - 1)
                if name == IDENTITIES:
                    self._check_identities(first, last, compare_all=compare_all)
                else:
                    self._check_feed(feeds[name], first, last, compare_all=compare_all)

    # -- sources -------------------------------------------------------------------------------------
    def _differing(
        self,
        name: str,
        current: Mapping[int, tuple[int, str]],
        first: int,
        last: int,
        compare_all: bool,
        unverified_ranges: Collection[int] = (),
    ) -> tuple[list[int], dict[int, dict[str, Any]]]:
        """The ranges to look into: those whose checksum differs from the kept one, and those
        holding keys written since they were compared (``unverified_ranges``)."""
        stored = {} if compare_all else self.store.checkpoints.stored_checksums(self.hospital_id, name, first, last)
        indexes = set(current) | set(stored)
        differing = sorted(
            i
            for i in indexes | set(unverified_ranges)
            if i not in stored or current.get(i) != (stored[i].get("n"), stored[i].get("crc")) or i in unverified_ranges
        )
        self.found.ranges_checked += len(indexes)
        self.found.ranges_differing += len(differing)
        return differing, stored

    def _check_feed(self, feed: Feed, first: int, last: int, *, compare_all: bool) -> None:
        size = self.range_size
        low, high = first * size + 1, (last + 1) * size
        local_now = self.sync.clock().astimezone(self.sync.tz).replace(tzinfo=None)
        current = self.source.range_checksums(feed.name, size, first, last, local_now)
        marks = self.sync.unverified_within(feed.name, low, high)
        differing, stored = self._differing(
            feed.name, current, first, last, compare_all, unverified.ranges_touched(marks, size, first, last)
        )
        if differing:
            self._compare_rows(feed, differing, stored, marks, local_now)
        self.sync.verified(feed.name, low, high)

    def _compare_rows(
        self,
        feed: Feed,
        differing: list[int],
        stored: Mapping[int, Mapping[str, Any]],
        marks: list[unverified.Interval],
        local_now: datetime,
    ) -> None:
        """Inside the differing ranges: re-read the rows whose checksum changed or that were written
        since they were compared, repair what drifted, and keep the checksum of what was compared."""
        size = self.range_size
        by_range: dict[int, dict[int, int]] = {index: {} for index in differing}
        for pk, crc in self.source.row_checksums(feed.name, coalesce(differing, size), local_now).items():
            by_range[(pk - 1) // size][pk] = crc
        changed: list[int] = []
        since_compared: set[int] = set()
        gone: list[int] = []
        for index, rows in by_range.items():
            self.found.row_checksums += len(rows)
            before = unpack_rows(stored[index]["rows"], index * size + 1) if "rows" in stored.get(index, {}) else None
            if before is None:
                changed.extend(rows)  # nothing kept: every row compared
            else:
                again = [pk for pk, crc in rows.items() if before.get(pk) != crc or unverified.contains(marks, pk)]
                changed.extend(again)
                since_compared.update(again)
            # Rows deleted from OpenMRS (purged, not voided): those a pass had kept, and (where the
            # app's index finds their records cheaply) those written since.
            kept_before = before or {}
            gone.extend(pk for pk in kept_before if pk not in rows)
            if feed.name == "obs":
                for a, b in unverified.within(marks, index * size + 1, (index + 1) * size):
                    gone.extend(pk for pk in range(a, b + 1) if pk not in rows and pk not in kept_before)
        batch = self.sync.settings.sync.batch_size
        moved_on: set[int] = set()
        for start in range(0, len(changed), batch):
            pks = changed[start : start + batch]
            self._repair(feed, feed.by_pks(pks), since_compared)
            # A row changed again while it was compared: its new state is the next pass's to compare.
            after = self.source.row_checksums(feed.name, unverified.of_keys(pks), local_now)
            moved_on.update(pk for pk in pks if after.get(pk) != by_range[(pk - 1) // size].get(pk))
        if gone:
            self._remove_purged(feed, gone)
        kept: dict[int, dict[str, Any] | None] = {}
        for index, rows in by_range.items():
            verified = {pk: crc for pk, crc in rows.items() if pk not in moved_on}
            low = index * size + 1
            kept[index] = (
                {"n": len(verified), "crc": aggregate(verified.values()), "rows": pack_rows(verified, low)}
                if verified
                else None
            )
        self._keep(feed.name, kept)

    def _check_identities(self, first: int, last: int, *, compare_all: bool) -> None:
        type_ids = self.sync.type_ids
        current = self.source.identity_checksums(type_ids, self.range_size, first, last)
        differing, stored = self._differing(IDENTITIES, current, first, last, compare_all)
        kept: dict[int, dict[str, Any] | None] = {}
        changed: set[int] = set()
        for index in differing:
            low, high = index * self.range_size + 1, (index + 1) * self.range_size
            persons = self.source.person_checksums(type_ids, low, high) if index in current else {}
            before = {int(p): crc for p, crc in (stored.get(index, {}).get("persons") or {}).items()}
            if index not in stored:
                changed.update(persons)  # nothing kept: compare every person with the Passport
            else:
                changed.update(p for p in persons.keys() | before.keys() if persons.get(p) != before.get(p))
            n, crc = current.get(index, (0, ""))
            kept[index] = {"n": n, "crc": crc, "persons": {str(p): c for p, c in persons.items()}} if persons else None
        self._redecide(changed)
        self._keep(IDENTITIES, kept)

    def _keep(self, name: str, ranges: Mapping[int, Mapping[str, Any] | None]) -> None:
        if ranges:
            self.store.checkpoints.save_checksums(self.hospital_id, name, ranges)

    # -- repairs -------------------------------------------------------------------------------------
    def redecide(self, persons: set[int]) -> Findings:
        """Re-decide these persons now (the Passport patients they match or are on changed)."""
        self._redecide(set(persons))
        return self.found

    def _redecide(self, persons: set[int]) -> None:
        """Where these persons' rows go now; re-read the rows of those the Passport disagrees with."""
        if not persons:
            return
        type_ids = self.sync.type_ids
        # A number corrected onto someone else's makes that other patient's number shared too.
        identities = self.source.identities(persons, type_ids)
        numbers = {n for i in identities.values() for n in map(normalise_national_id, i.identifiers) if n}
        for holders in self.source.holders(numbers, type_ids).values():
            persons |= holders
        # A number the changed persons held before is not known any more: whoever was parked for
        # sharing a number with one of them may share it no longer (few persons, re-decided).
        persons |= self.store.parked.person_ids(self.hospital_id, reason=SHARED_NATIONAL_ID)
        matches = self.sync.match_persons(persons, fresh=True)
        owners = self.store.records.owners(self.hospital_id, persons)
        parked = self.store.parked.reasons(self.hospital_id, persons)
        wrong = sorted(p for p in persons if needs_redecision(matches[p], owners.get(p, ()), parked.get(p, ())))
        self.found.persons_checked += len(persons)
        self.found.persons_redecided += len(wrong)
        batch = self.sync.settings.sync.batch_size
        for feed in self.sync.feeds():
            for start in range(0, len(wrong), PERSONS_PER_READ):
                chunk = wrong[start : start + PERSONS_PER_READ]
                after = 0
                while rows := feed.of_persons(chunk, after, batch):
                    self._repair(feed, rows)
                    after = feed.pk(rows[-1])

    def _repair(self, feed: Feed, rows: Sequence[Any], changed_since: Collection[int] = ()) -> None:
        """Map rows as a fresh sync would, compare with the Passport, write only what drifted
        (``changed_since``: the keys whose kept checksum differed or that were unverified)."""
        planned = self.sync.plan_for_reconcile(feed, rows)
        existing = self.store.records.states(planned_ids(self.hospital_id, planned))
        repair, found = drift(self.hospital_id, planned, existing)
        found.rows_read = len(rows)
        self.found.add(found)
        if found.drifted:
            self._log_repairs(feed.name, found)
        if repair:
            self.sync.cover(feed, rows, verified=True)
            self.store.records.apply(repair, self.sync.clock(), hospital_id=self.hospital_id)
        # The visit records of the encounters these rows changed in: the encounter a rewritten
        # record was in (its new one is marked by the write), and the encounters of rows that
        # changed since a pass compared them (their encounter may have, with no record drifting).
        # A first comparison (nothing kept) rebuilds only what drifted: the visit records were
        # built from the same rows.
        encounters = {str(r.encounter_uuid) for r in rows if feed.pk(r) in changed_since and r.encounter_uuid}
        for doc in repair.upserts:
            if uuid := (existing.get(doc["_id"], {}).get("openmrsData") or {}).get("encounterUuid"):
                encounters.add(str(uuid))
        if encounters:
            self.store.encounters.mark_due(self.hospital_id, encounters)
        self.sync.renew_lock()

    def _remove_purged(self, feed: Feed, pks: list[int]) -> None:
        """Rows deleted from OpenMRS: a fresh sync would have no record and no parked copy of them."""
        records = self.store.records.of_rows(self.hospital_id, feed.name, pks)
        parked = self.store.parked.keys_of_rows(self.hospital_id, feed.name, pks)
        if not records and not parked:
            return
        repair = BatchWrite(unparks=parked)
        repair.removals = [(rid, {"reason": "deleted from OpenMRS"}) for ids in records.values() for rid in ids]
        found = Findings(removed=len(repair.removals))
        self.found.add(found)
        self._log_repairs(feed.name, found)
        self.store.records.apply(repair, self.sync.clock(), hospital_id=self.hospital_id)

    def _log_repairs(self, name: str, found: Findings) -> None:
        log.info(
            "%s: %s: repaired %d moved, %d restored, %d removed, %d updated, %d re-parked",
            self.sync.hospital.name,
            name,
            found.moved,
            found.restored,
            found.removed,
            found.updated,
            found.reparked,
        )


def aggregate(row_checksums: Iterable[int]) -> str:
    """A range's checksum from its rows' checksums, as MySQL computes it (sum and XOR). Pure."""
    values = list(row_checksums)
    xor = 0
    for value in values:
        xor ^= value
    return f"{sum(values)}:{xor}"


_PAIR = struct.Struct("<II")


def pack_rows(row_checksums: Mapping[int, int], low: int) -> bytes:
    """Each row's checksum, kept compactly (8 bytes a row: offset from ``low`` and CRC32). Pure."""
    return b"".join(_PAIR.pack(pk - low, crc) for pk, crc in sorted(row_checksums.items()))


def unpack_rows(packed: bytes, low: int) -> dict[int, int]:
    return {low + offset: crc for offset, crc in _PAIR.iter_unpack(bytes(packed))}


def _total(layout: Mapping[str, int]) -> int:
    return max(layout.values(), default=0) * len(layout)


def _aware(value: Any, like: datetime) -> datetime:
    """MongoDB hands datetimes back naive (UTC); compare them with our aware clock."""
    if isinstance(value, datetime) and value.tzinfo is None and like.tzinfo is not None:
        return value.replace(tzinfo=like.tzinfo)
    return value if isinstance(value, datetime) else like
