"""An edited observation whose original is unvoided later: every path shows what OpenMRS shows.

OpenMRS edits an obs by writing a new row (``previous_version`` = the old one) and voiding the old
row in the same transaction. ``ObsServiceImpl.unvoidObs`` later clears the old row's void in place:
both rows are live again and OpenMRS lists both. The Passport shows both too, whichever way it
meets them: sync-all and reconciliation, ``sync-patient``, a checkpoint reset, a fresh full sync.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from passport_sync import service
from passport_sync.config import Settings
from passport_sync.sink.passport import PassportStore
from tests.conftest import hospital_entry, make_settings, register_patient
from tests.helpers import Clinic, run_sync, synced
from tests.oracle import differences, fresh_full_sync
from tests.test_reconcile import reconcile

HOSPITAL = "60a7c2f5e4b0c1a2d3e4f5a6"
NID = "4444444444444"


def visible(passport: Any) -> dict[int, float | str]:
    """obs id -> the result the patient sees, of every synced observation record."""
    return {
        d["openmrsData"]["obsId"]: d["data"].get("result") or d["data"].get("diagnosis")
        for d in passport.medicalrecords.find(synced({"openmrsData.source": "obs"}))
    }


def fresh_full_sync_differences(passport: Any, mongo_uri: str, openmrs: Any) -> list[str]:
    """How a fresh full sync of the same OpenMRS into an empty Passport differs from ``passport``,
    then (the last line) the observations the fresh sync shows."""
    with fresh_full_sync(passport, openmrs, mongo_uri) as fresh:
        return [*differences(passport, fresh, HOSPITAL), f"fresh: {sorted(visible(fresh))}"]


def sync_patient(settings: Settings) -> None:
    store = PassportStore.connect(settings)
    try:
        result = service.sync_patient(settings, store, settings.enabled_hospitals(), NID)
    finally:
        store.close()
    assert result.reports[0].outcome == "ok", result.reports[0].errors


def test_an_edited_obs_whose_original_is_unvoided_shows_beside_its_new_version_on_every_path(
    openmrs: Any, passport: Any, mongo_uri: str, mongo_db_name: str
) -> None:
    clinic = Clinic(openmrs)
    person = clinic.patient(NID)
    register_patient(passport, NID)
    diagnosis, weight = clinic.visit(person)
    settings = make_settings(mongo_uri, mongo_db_name, [hospital_entry(openmrs.name)])
    run_sync(settings)

    edited = clinic.b.edit_obs(weight, value_numeric=81.0, reason="typo", when=clinic.when + timedelta(days=1))
    run_sync(settings)
    assert set(visible(passport)) == {diagnosis, edited}
    (trail,) = passport.openmrs_sync_removed.find()
    assert trail["reason"] == "replaced" and trail["record"]["openmrsData"]["obsId"] == weight

    # A clerk restores the original (ObsServiceImpl.unvoidObs): both rows are live in OpenMRS.
    openmrs.execute(
        "UPDATE obs SET voided = 0, voided_by = NULL, date_voided = NULL, void_reason = NULL WHERE obs_id = %s",
        (weight,),
    )
    both = {
        diagnosis: visible(passport)[diagnosis],
        weight: "60 kg (normal 30-150 kg)",
        edited: "81 kg (amended; normal 30-150 kg)",  # a new version of a result is an amended one
    }
    # The incremental path: sync-all, then reconciliation finds the unvoid (no trace to follow).
    run_sync(settings)
    reconcile(settings)
    assert visible(passport) == both
    assert fresh_full_sync_differences(passport, mongo_uri, openmrs) == [f"fresh: {sorted(both)}"]

    # Both rows read again together: the new version does not take the live original away.
    sync_patient(settings)
    assert visible(passport) == both
    passport.syncstatus.delete_many({})  # a checkpoint reset: sync-all re-reads everything
    run_sync(settings)
    assert visible(passport) == both
    assert fresh_full_sync_differences(passport, mongo_uri, openmrs) == [f"fresh: {sorted(both)}"]

    # Voided again: the original goes, the edit stays.
    clinic.b.void_obs(weight, reason="restored by mistake", when=clinic.when + timedelta(days=2))
    run_sync(settings)
    assert set(visible(passport)) == {diagnosis, edited}
    assert fresh_full_sync_differences(passport, mongo_uri, openmrs) == [f"fresh: {sorted({diagnosis, edited})}"]
