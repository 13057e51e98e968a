"""What a batch of new rows may leave out, and what it keeps with its checkpoint (issue: national
scale, at most 8 MongoDB commands per 1000 observations).

- **The touched mark.** Each feed keeps, in ``syncstatus.touched``, a primary key above which no
  row has a record or a parked copy; it is raised (and stored) before any row above it is written,
  by every writer (sync-all, sync-patient, reconcile). A new row above the mark as it stood when
  the run began has nothing to remove and no parked copy to release: no read, no delete.
- **Encounters kept with the checkpoint.** The encounters a batch of new rows makes due go into
  the same command that moves the checkpoint, and stay there until their visit records are rebuilt.

Each guarantee is shown without the backstop that would hide a broken mark: the voids below are
dated before the change watermark's look-back, so the changes read does not see them again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

import pytest

from passport_sync import service
from passport_sync.config import Settings
from passport_sync.errors import SinkError
from passport_sync.pipeline import ENCOUNTERS_DUE_FIELD, HospitalSync
from passport_sync.sink.checkpoints import Checkpoints
from passport_sync.sink.passport import PassportStore
from tests.conftest import hospital_entry, make_settings, register_patient
from tests.helpers import Clinic, run_sync

NID = "1199780012345678"
HOSPITAL = "60a7c2f5e4b0c1a2d3e4f5a6"


@pytest.fixture
def settings(openmrs: Any, mongo_uri: str, mongo_db_name: str) -> Settings:
    return make_settings(mongo_uri, mongo_db_name, [hospital_entry(openmrs.name)], batch_size=3)


def _registered_patient(clinic: Clinic, passport: Any) -> int:
    """A patient registered in the Passport, and a void dated a week after the clinic's visits: the
    change watermark stands there, so a void dated at the visits is outside every later run's
    look-back."""
    person = clinic.patient(NID)
    register_patient(passport, NID)
    [marker] = clinic.visit(person, weights=0)
    clinic.b.void_obs(marker, when=clinic.when + timedelta(days=7))
    return person


def _fail_saves(monkeypatch: pytest.MonkeyPatch, which: Callable[[Mapping[str, Any]], bool]) -> None:
    """From now on, saving these checkpoint fields fails as if MongoDB went away."""
    real_save = Checkpoints.save

    def failing_save(self: Checkpoints, hospital_id: str, fields: Mapping[str, Any], now: datetime) -> None:
        if which(fields):
            raise SinkError("MongoDB went away")
        real_save(self, hospital_id, fields, now)

    monkeypatch.setattr(Checkpoints, "save", failing_save)


def _records_of(passport: Any, obs_id: int) -> int:
    return int(passport.medicalrecords.count_documents({"openmrsData.obsId": obs_id}))


def _sync_patient(settings: Settings) -> None:
    store = PassportStore.connect(settings)
    try:
        [report] = service.sync_patient(settings, store, settings.enabled_hospitals(), NID).reports
    finally:
        store.close()
    assert report.outcome == "ok", report.errors


def test_a_row_sync_patient_wrote_ahead_of_the_checkpoint_is_removed_when_it_arrives_voided(
    clinic: Clinic, passport: Any, settings: Settings
) -> None:
    person = _registered_patient(clinic, passport)
    clinic.visit(person)
    run_sync(settings)  # the mark now stands at the head
    _, weight = clinic.visit(person)  # beyond the checkpoint
    _sync_patient(settings)  # written ahead of sync-all: the mark must cover it
    assert _records_of(passport, weight) == 1

    clinic.b.void_obs(weight, when=clinic.when)
    [report] = run_sync(settings)
    assert report.outcome == "ok", report.errors
    assert _records_of(passport, weight) == 0
    assert passport.openmrs_sync_removed.count_documents({"record.openmrsData.obsId": weight}) == 1


def test_a_batch_written_before_a_failed_checkpoint_save_is_still_inside_the_mark(
    clinic: Clinic, passport: Any, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    person = _registered_patient(clinic, passport)
    clinic.visit(person)
    run_sync(settings)
    new = clinic.visit(person, weights=2)

    _fail_saves(monkeypatch, lambda fields: "lastObsId" in fields)  # the checkpoint after the batch
    [failed] = run_sync(settings)
    assert failed.outcome == "failed"
    assert all(_records_of(passport, obs_id) == 1 for obs_id in new)  # written, checkpoint not moved
    monkeypatch.undo()

    clinic.b.void_obs(new[1], when=clinic.when)
    [report] = run_sync(settings)
    assert report.outcome == "ok", report.errors
    assert _records_of(passport, new[1]) == 0
    assert _records_of(passport, new[2]) == 1


def test_nothing_above_the_mark_is_written_while_the_mark_cannot_be_stored(
    clinic: Clinic, passport: Any, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    person = clinic.patient(NID)
    register_patient(passport, NID)
    new = clinic.visit(person, weights=2)
    _fail_saves(monkeypatch, lambda fields: any(key.startswith("touched.") for key in fields))
    [failed] = run_sync(settings)
    assert failed.outcome == "failed"
    assert not any(_records_of(passport, obs_id) for obs_id in new)
    assert passport.openmrs_sync_parked.count_documents({}) == 0


def test_after_a_checkpoint_reset_rows_are_not_taken_for_untouched(
    clinic: Clinic, passport: Any, settings: Settings
) -> None:
    person = _registered_patient(clinic, passport)
    _, weight = clinic.visit(person)
    run_sync(settings)
    assert _records_of(passport, weight) == 1

    passport.syncstatus.delete_many({})  # what reset-checkpoint does: the mark goes with it
    clinic.b.void_obs(weight, when=clinic.when)
    [report] = run_sync(settings)
    assert report.outcome == "ok", report.errors
    assert _records_of(passport, weight) == 0


@pytest.mark.parametrize("failing", ["rebuild", "built from batches"])
def test_encounters_kept_with_the_checkpoint_get_their_visit_records_after_a_failed_rebuild(
    clinic: Clinic, passport: Any, settings: Settings, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    """The rebuild path fails, or (a first run builds visit records from its batches) the write of
    the visits built from the batches does: the next run rebuilds the encounters kept listed."""
    person = clinic.patient(NID)
    register_patient(passport, NID)
    clinic.visit(person, weights=4)
    clinic.visit(person, weights=1)

    def fail(self: HospitalSync, *args: Any) -> None:
        raise SinkError("MongoDB went away")

    if failing == "rebuild":
        monkeypatch.setattr(HospitalSync, "_builds_visits_from_batches", lambda self: False)
        monkeypatch.setattr(HospitalSync, "_rebuild", fail)
    else:
        monkeypatch.setattr(HospitalSync, "_build_pending_visits", fail)
    [failed] = run_sync(settings)
    assert failed.outcome == "failed"
    status = passport.syncstatus.find_one({"hospitalId": HOSPITAL})
    assert len(status[ENCOUNTERS_DUE_FIELD]) == 2  # kept by the batches' checkpoint saves
    assert passport.openmrs_sync_encounters.count_documents({}) == 0
    assert passport.medicalrecords.count_documents({"type": "visit"}) == 0
    monkeypatch.undo()

    [report] = run_sync(settings)
    assert report.outcome == "ok", report.errors
    assert report.read == 0  # the rows are not read again: the encounters came with the checkpoint
    assert passport.medicalrecords.count_documents({"type": "visit"}) == 2
    assert passport.syncstatus.find_one({"hospitalId": HOSPITAL})[ENCOUNTERS_DUE_FIELD] == []
