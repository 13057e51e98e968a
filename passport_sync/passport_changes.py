"""Changes made on the Passport side: patients registered, corrected or deleted in the app.

Where a person's rows go is decided from the Passport patients holding their national ID at that
moment. When the app changes that answer (a patient registers, a ``nationalId`` is corrected, a
patient is deleted and perhaps registered again), the decision is made again for every person
involved, in both directions: rows that match a patient now land on it, and records on a patient
that no longer holds their number, or no longer exists, move off it (to the patient holding the
number now, or back to the parked rows).

Pure: the sink finds the patients the app changed (by their ``updatedAt``, which the app's models
set on every save) and the patients the hospital's records point to; this module decides which
changes are new, how the watermark moves, which persons to re-decide, and which part of the
patients the records point to is checked for deleted ones in a run.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from passport_sync.mapping.national_id import normalise_national_id

# Each run reads the patients changed since the watermark minus this much: an app server whose
# clock is behind ours, or a save that commits after the run read past its ``updatedAt``, is
# still seen. Changes returned again inside the look-back are recognised and not handled twice.
LOOKBACK = timedelta(minutes=10)
# At most this many handled changes are kept (the newest): a burst of saves (an app-wide update)
# must not outgrow the checkpoint document. One forgotten is only handled again.
HANDLED_KEPT = 20_000
# The check for deleted patients is cut into this many parts of the patients the hospital's
# records point to, paced over ``reconcile.full_pass_hours`` like the reconciliation itself.
SWEEP_STEPS = 24


@dataclass(frozen=True, slots=True)
class PatientChange:
    """A Passport patient as the app last saved it."""

    patient_id: str
    national_id: str | None  # as the app stores it
    updated_at: datetime


def stamp(moment: datetime) -> str:
    """A save's ``updatedAt`` as kept among the handled changes: UTC to the millisecond, as
    MongoDB keeps it, so the same save read twice gives the same stamp."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.isoformat(timespec="milliseconds")


def read_from(watermark: datetime) -> datetime:
    """Where the lookup of changed patients starts for a run."""
    return watermark - LOOKBACK


def to_handle(found: Iterable[PatientChange], handled: Mapping[str, str]) -> list[PatientChange]:
    """The changes among ``found`` no earlier run handled: the look-back returns the last runs'
    changes again, with the ``updatedAt`` they were handled at."""
    return [change for change in found if handled.get(change.patient_id) != stamp(change.updated_at)]


def advance(watermark: datetime, found: Iterable[PatientChange], now: datetime) -> datetime:
    """The latest ``updatedAt`` seen, never past ``now`` (our clock): a save dated in the future
    by a clock running ahead does not move the watermark past saves still to come."""
    latest = max((_aware(c.updated_at) for c in found), default=watermark)
    return max(watermark, min(latest, now))


def still_returned(handled: Mapping[str, str], changes: Iterable[PatientChange], watermark: datetime) -> dict[str, str]:
    """The handled changes, with ``changes``, that the next lookup (from ``watermark`` minus the
    look-back) can return again: older ones are forgotten, so the map stays small."""
    floor = stamp(read_from(watermark))
    merged = {**handled, **{c.patient_id: stamp(c.updated_at) for c in changes}}
    kept = sorted(((at, pid) for pid, at in merged.items() if at >= floor), reverse=True)[:HANDLED_KEPT]
    return {pid: at for at, pid in kept}


def saved_before(found: Iterable[PatientChange], moment: datetime) -> dict[str, str]:
    """The changes saved before ``moment`` (a first run, which decided every row from the patients
    as they were when it started), kept as handled."""
    return {c.patient_id: stamp(c.updated_at) for c in found if _aware(c.updated_at) < _aware(moment)}


def numbers_of(changes: Iterable[PatientChange]) -> set[str]:
    """The national IDs the changed patients hold now (usable ones: others match no one)."""
    return {n for c in changes if c.national_id and (n := normalise_national_id(c.national_id))}


def persons_to_redecide(holders: Mapping[str, Collection[int]], on_patients: Iterable[int]) -> set[int]:
    """Whom a change in the app concerns: the OpenMRS holders of the numbers the changed patients
    hold now (their rows may land there), and the persons whose records are on those patients or
    on deleted ones (their rows may have to move off)."""
    persons = set(on_patients)
    for held in holders.values():
        persons |= set(held)
    return persons


def sweep_span(low: str, high: str, done: int, due: int, steps: int = SWEEP_STEPS) -> tuple[str, str] | None:
    """The patient ids (24 hex digits, both ends included) between ``low`` and ``high`` that
    parts ``done`` to ``due`` of a sweep cover, or None when there is nothing to check."""
    if due <= done or not (_is_hex(low) and _is_hex(high)) or high < low:
        return None
    start, end = int(low, 16), int(high, 16)
    width = end - start + 1

    def point(part: int) -> int:
        return start + width * min(part, steps) // steps

    first, last = point(done), point(due) - 1
    return (f"{first:024x}", f"{last:024x}") if first <= last else None


def dangling(referenced: Iterable[str], existing: Collection[str]) -> set[str]:
    """The patients records point to that no longer exist."""
    return {pid for pid in referenced if pid not in existing}


def _is_hex(value: str) -> bool:
    return len(value) == 24 and all(c in "0123456789abcdef" for c in value)


def _aware(value: datetime) -> datetime:
    """MongoDB hands datetimes back naive (UTC)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value
