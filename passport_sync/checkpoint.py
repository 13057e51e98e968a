"""Pure checkpoint logic: where the next run starts, and which ids may still commit late.

New observations are read in ``obs_id`` order after ``last_obs_id``. An id below it that was not
there when we read past it is a *gap*: its INSERT may belong to a transaction still open (it
will commit later with an id and a ``date_created`` below the checkpoint), or it was rolled back.
Gaps are re-read at the start of every run until they fill or until the late-commit window has
passed. Voids are read by ``date_voided`` from ``void_watermark`` minus a look-back, because a
void is an update of a row we already passed.

The look-back window holds the same rows run after run until the watermark moves. A digest of the
rows the change read would return (their count and an XOR of a checksum over each row's key, void
flag and change times) is kept with the checkpoint: while the window starts at the same moment and
its digest is the same, the window holds nothing the last read did not see, and is not read again.
A late commit, an unvoid or a second edit inside the window changes the digest.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

MAX_GAP_RANGES = 500


@dataclass(frozen=True, slots=True)
class Gap:
    """Ids ``low..high`` (inclusive) not seen yet, first noticed at ``since`` (our clock)."""

    low: int
    high: int
    since: datetime


@dataclass(frozen=True, slots=True)
class ChangesDigest:
    """The rows a change read from ``since`` returns, summarised: how many, and the XOR of their
    checksums (both computed by the database)."""

    since: datetime | None
    rows: int
    crc: int


@dataclass(frozen=True, slots=True)
class Checkpoint:
    last_obs_id: int = 0
    gaps: tuple[Gap, ...] = ()
    void_watermark: datetime | None = None
    # The digest of the change window as it was when the window was last read.
    changes_digest: ChangesDigest | None = None

    @property
    def gap_ids(self) -> int:
        return sum(g.high - g.low + 1 for g in self.gaps)

    @property
    def gap_ranges(self) -> tuple[tuple[int, int], ...]:
        """The gaps as (low, high) id ranges: where a row may still commit late."""
        return tuple((g.low, g.high) for g in self.gaps)


def advance(cp: Checkpoint, seen_ids: Sequence[int], now: datetime) -> Checkpoint:
    """The checkpoint after a batch of rows with ``seen_ids`` (ascending, all > last_obs_id)
    has been acknowledged by MongoDB."""
    if not seen_ids:
        return cp
    new_gaps = list(cp.gaps)
    previous = cp.last_obs_id
    for obs_id in seen_ids:
        if obs_id <= previous:
            raise ValueError(f"obs ids must ascend past the checkpoint: {obs_id} after {previous}")
        # Any id passed unseen is a gap, whatever auto_increment_increment says: with several
        # writers (Galera, multi-primary replication) another node's insert may take that id
        # and commit later. The ids below the first one a feed ever reads too: a transaction open
        # during the first read may commit one of them after it.
        if obs_id - previous > 1:
            new_gaps.append(Gap(previous + 1, obs_id - 1, now))
        previous = obs_id
    return replace(cp, last_obs_id=previous, gaps=_cap(tuple(new_gaps)))


def fill_gaps(cp: Checkpoint, found_ids: Iterable[int], now: datetime, *, window: timedelta) -> Checkpoint:
    """Remove the ids found (and synced) from the gaps, and forget gaps older than ``window``."""
    found = sorted(set(found_ids))
    remaining: list[Gap] = []
    for gap in cp.gaps:
        if now - gap.since > window:
            continue
        low = gap.low
        for obs_id in found:
            if obs_id < low or obs_id > gap.high:
                continue
            if obs_id > low:
                remaining.append(Gap(low, obs_id - 1, gap.since))
            low = obs_id + 1
        if low <= gap.high:
            remaining.append(Gap(low, gap.high, gap.since))
    return replace(cp, gaps=tuple(remaining))


def _cap(gaps: tuple[Gap, ...]) -> tuple[Gap, ...]:
    """Merge the closest neighbouring gaps until at most MAX_GAP_RANGES remain.

    A merged range also covers ids already synced; re-reading them is harmless because
    writes are idempotent.
    """
    merged = sorted(gaps, key=lambda g: g.low)
    while len(merged) > MAX_GAP_RANGES:
        distances = [merged[i + 1].low - merged[i].high for i in range(len(merged) - 1)]
        i = distances.index(min(distances))
        a, b = merged[i], merged[i + 1]
        merged[i : i + 2] = [Gap(a.low, b.high, min(a.since, b.since))]
    return tuple(merged)


def void_read_from(cp: Checkpoint, lookback: timedelta) -> datetime | None:
    """Read voids with ``date_voided`` at or after this (None: every void)."""
    if cp.void_watermark is None:
        return None
    return cp.void_watermark - lookback


def changes_due(max_changed: datetime | None, since: datetime | None) -> bool:
    """Whether anything changed at or after ``since`` (``max_changed``: the feed's latest change)."""
    return max_changed is not None and (since is None or max_changed >= since)


def next_void_read_from(
    cp: Checkpoint, max_changed: datetime | None, lookback: timedelta, *, not_after: datetime | None = None
) -> datetime | None:
    """Where the change read will start once the changes up to ``max_changed`` are read: the window
    a digest taken before this run's read describes for the next run (see ``remember_changes``)."""
    return void_read_from(advance_voids(cp, max_changed, not_after=not_after), lookback)


def changes_unchanged(cp: Checkpoint, since: datetime | None, digest: ChangesDigest | None) -> bool:
    """Whether the change window from ``since`` can be left unread: ``digest`` (taken now) is the
    one kept when the same window was last read, so no row in it was added, voided, unvoided or
    changed since."""
    kept = cp.changes_digest
    if digest is None or kept is None:
        return False
    return (
        _same_moment(digest.since, since)
        and _same_moment(kept.since, since)
        and (kept.rows, kept.crc) == (digest.rows, digest.crc)
    )


def remember_changes(cp: Checkpoint, digest: ChangesDigest | None, lookback: timedelta) -> Checkpoint:
    """The checkpoint after its change window was read: ``digest`` (taken before the read) is kept
    when it describes the window the next run reads; any other is dropped, so the next run reads."""
    since = void_read_from(cp, lookback)
    keep = digest if digest is not None and _same_moment(digest.since, since) else None
    return cp if keep == cp.changes_digest else replace(cp, changes_digest=keep)


def _same_moment(a: datetime | None, b: datetime | None) -> bool:
    # MongoDB keeps milliseconds: a moment read back from the checkpoint is compared at that precision.
    if a is None or b is None:
        return a is b
    return _milliseconds(a) == _milliseconds(b)


def _milliseconds(value: datetime) -> datetime:
    return _naive(value).replace(microsecond=value.microsecond // 1000 * 1000)


def advance_voids(cp: Checkpoint, max_date_voided: datetime | None, *, not_after: datetime | None = None) -> Checkpoint:
    """Move the change watermark to the latest change seen, but never past ``not_after`` (the
    database's clock when the changes were read): a ``date_voided`` in the future (a skewed
    application-server clock, a data fix) would otherwise hide every later change."""
    if max_date_voided is None:
        return cp
    if not_after is not None and max_date_voided > not_after:
        max_date_voided = not_after
    if cp.void_watermark is not None and max_date_voided <= cp.void_watermark:
        return cp
    return replace(cp, void_watermark=max_date_voided)


def move_back(cp: Checkpoint, last_id_before: int, moment: datetime) -> Checkpoint:
    """The checkpoint reset to the rows created at ``moment`` (``last_id_before``: the last id
    created before it), never later than it already is: moving forward would skip rows."""
    watermark = cp.void_watermark
    if watermark is not None and _naive(watermark) > _naive(moment):
        watermark = moment
    # The digest goes too: a reset re-reads the change window whatever it holds.
    return replace(cp, last_obs_id=min(cp.last_obs_id, last_id_before), void_watermark=watermark, changes_digest=None)


def _naive(value: datetime) -> datetime:
    # MySQL DATETIMEs and MongoDB's dates are both naive; an aware value is compared by its wall time.
    return value.replace(tzinfo=None)


def to_document(cp: Checkpoint) -> dict[str, Any]:
    return {
        "lastObsId": cp.last_obs_id,
        "gaps": [[g.low, g.high, g.since] for g in cp.gaps],
        "voidWatermark": cp.void_watermark,
        "changesDigest": _digest_document(cp.changes_digest),
    }


def _digest_document(digest: ChangesDigest | None) -> dict[str, Any] | None:
    if digest is None:
        return None
    return {"since": digest.since, "rows": digest.rows, "crc": digest.crc}


def _digest_from(doc: Any) -> ChangesDigest | None:
    if not isinstance(doc, Mapping):
        return None
    try:
        return ChangesDigest(doc.get("since"), int(doc["rows"]), int(doc["crc"]))
    except (KeyError, TypeError, ValueError):
        return None  # unreadable: the window is read again, which is always safe


def from_document(doc: Mapping[str, Any] | None) -> Checkpoint:
    if not doc:
        return Checkpoint()
    gaps = tuple(Gap(int(lo), int(hi), _aware(since)) for lo, hi, since in doc.get("gaps") or ())
    return Checkpoint(
        last_obs_id=int(doc.get("lastObsId") or 0),
        gaps=gaps,
        void_watermark=doc.get("voidWatermark"),
        changes_digest=_digest_from(doc.get("changesDigest")),
    )


def stored_fields(feed: str, cp: Checkpoint) -> dict[str, Any]:
    """The ``syncstatus`` fields of one feed: observations at the top, a clinical source (for
    which ``last_obs_id`` holds the last primary key and ``void_watermark`` the last change)
    under ``sources.<name>``."""
    fields = to_document(cp)
    return fields if feed == "obs" else {f"sources.{feed}": fields}


def stored_checkpoint(feed: str, syncstatus: Mapping[str, Any] | None) -> Checkpoint:
    if feed == "obs":
        return from_document(syncstatus)
    return from_document(((syncstatus or {}).get("sources") or {}).get(feed))


def is_stored(feed: str, syncstatus: Mapping[str, Any] | None) -> bool:
    """Whether this feed has run before (its checkpoint exists, even an empty one)."""
    if not syncstatus:
        return False
    if feed == "obs":
        return "lastObsId" in syncstatus
    return feed in (syncstatus.get("sources") or {})


def _aware(value: datetime) -> datetime:
    # MongoDB returns naive UTC datetimes; gap times are compared with an aware clock.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
