"""Changes made in the Patient Passport app are re-decided by sync-all alone.

Each scenario starts from a steady state (sync-all, then a reconciliation pass), makes one change
in the app (a national ID corrected, a patient deleted and perhaps registered again, a patient
registered with an old ``_id``), runs sync-all only (with the regular reconciliation slice it
takes), and compares the Passport with a fresh full sync of the same OpenMRS into the same
patients: records, visit records, parked rows, ``medicalHistory`` links and allergy lists. The
slice repairs nothing in any of them: no ``reconcile --full`` is needed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from bson import ObjectId

from passport_sync import service
from passport_sync.config import Settings
from passport_sync.models import HospitalReport
from passport_sync.parking import NOT_IN_PASSPORT
from passport_sync.pipeline import HospitalSync
from passport_sync.sink.passport import PassportStore
from tests.conftest import OpenMRSDatabase, hospital_entry, make_settings, register_patient
from tests.helpers import Clinic, run_sync, synced
from tests.oracle import PASSPORT_OPERATIONS, TRACED_OPERATIONS, differences, fresh_full_sync, run_oracle

HOSPITAL = "60a7c2f5e4b0c1a2d3e4f5a6"
MINE, OTHERS, THIRD = "1200000000011", "1200000000022", "1200000000033"
# What each person's care shows on a passport: observations, a drug order, an allergy, and the
# visit record and "Medications prescribed" derived from the encounters.
# The allergy is recorded outside any encounter, so it has a visit row of its own ("own_row").
CARE = {"obs", "drug_order", "allergy", "own_row", "encounter", "encounter_prescription"}


class Site:
    """An OpenMRS clinic whose persons each have a visit (observations and its visit record), a
    drug order (a medication and the visit's "Medications prescribed") and an allergy."""

    def __init__(self, openmrs: OpenMRSDatabase) -> None:
        self.clinic = Clinic(openmrs)
        self.openmrs = openmrs
        self.allergens: dict[int, int] = {}

    def person(self, national_id: str, allergen: str) -> int:
        clinic = self.clinic
        person = clinic.patient(national_id)
        clinic.visit(person, weights=1)
        encounter = clinic.b.encounter(person, location_id=clinic.location, provider_ids=[clinic.provider])
        clinic.b.drug_order(encounter, clinic.provider, concept_id=clinic.diabetes, dose=1)
        self.allergens[person] = clinic.b.concept(allergen, datatype="N/A", concept_class="Drug")
        clinic.b.allergy(person, self.allergens[person])
        return person


@pytest.fixture
def site(openmrs: OpenMRSDatabase) -> Site:
    return Site(openmrs)


@pytest.fixture
def settings(openmrs: OpenMRSDatabase, mongo_uri: str, mongo_db_name: str) -> Settings:
    return make_settings(mongo_uri, mongo_db_name, [hospital_entry(openmrs.name)], batch_size=50)


# -- what the app does ---------------------------------------------------------------------------------
def correct_national_id(passport: Any, patient_id: str, national_id: str) -> None:
    """The app saves a corrected national ID (its models set ``updatedAt`` on every save)."""
    passport.patients.update_one(
        {"_id": ObjectId(patient_id)}, {"$set": {"nationalId": national_id, "updatedAt": datetime.now(UTC)}}
    )


def delete_patient(passport: Any, patient_id: str) -> None:
    patient = passport.patients.find_one_and_delete({"_id": ObjectId(patient_id)})
    passport.users.delete_one({"_id": patient["user"]})


# -- runs --------------------------------------------------------------------------------------------
def steady_state(settings: Settings) -> None:
    assert run_sync(settings)[0].outcome == "ok"
    store = PassportStore.connect(settings)
    try:
        [report] = service.reconcile(settings, store, settings.enabled_hospitals())
    finally:
        store.close()
    assert report.outcome == "ok", report.errors


def sync_all(settings: Settings, clock: Callable[[], datetime] | None = None) -> HospitalReport:
    """sync-all alone, as the timer runs it (``clock``: a run later than now)."""
    if clock is None:
        [report] = run_sync(settings)
    else:
        store = PassportStore.connect(settings)
        [hospital] = settings.enabled_hospitals()
        try:
            with service.default_source(hospital, settings) as source:
                report = HospitalSync(hospital, settings, source, store, clock=clock).run_incremental()
        finally:
            store.close()
    assert report.outcome == "ok", report.errors
    # The regular reconciliation slice found nothing to repair: the run's own re-decision did it.
    assert (report.reconcile or {}).get("drifted", 0) == 0, report.reconcile
    return report


def fresh_differences(
    passport: Any, mongo_uri: str, openmrs: OpenMRSDatabase, own: Mapping[str, list[str]]
) -> list[str]:
    """What the Passport holds that a fresh full sync of today's OpenMRS into today's patients does
    not (and the reverse), allergy lists included; ``own``: the allergies patients entered themselves."""
    with fresh_full_sync(passport, openmrs, mongo_uri, own, batch_size=50) as fresh:
        problems = differences(passport, fresh, HOSPITAL)
        for patient in passport.patients.find():
            want = fresh.patients.find_one({"_id": patient["_id"]})
            if sorted(patient.get("allergies") or []) != sorted(want.get("allergies") or []):
                problems.append(
                    f"patient {patient['_id']}: allergies {patient.get('allergies')} vs {want['allergies']}"
                )
        synced_allergies = {d["_id"]: sorted(d["texts"]) for d in passport.openmrs_sync_allergies.find() if d["texts"]}
        fresh_allergies = {d["_id"]: sorted(d["texts"]) for d in fresh.openmrs_sync_allergies.find() if d["texts"]}
        if synced_allergies != fresh_allergies:
            problems.append(f"synced allergy lists differ: {synced_allergies} vs {fresh_allergies}")
        return problems


def persons_on(passport: Any, patient_id: str) -> set[int]:
    return {d["openmrsData"]["personId"] for d in passport.medicalrecords.find(synced({"patientId": patient_id}))}


def kinds_on(passport: Any, patient_id: str) -> set[str]:
    return {d["openmrsData"]["source"] for d in passport.medicalrecords.find({"patientId": patient_id})}


def parked_persons(passport: Any) -> dict[int, str]:
    return {d["personId"]: d["reason"] for d in passport.openmrs_sync_parked.find()}


def allergies(passport: Any, patient_id: str) -> list[str]:
    return sorted(passport.patients.find_one({"_id": ObjectId(patient_id)})["allergies"])


# -- (a) a typo that was someone else's number, corrected in the app ---------------------------------
def test_a_national_id_corrected_in_the_app_moves_the_other_persons_care_off_and_lands_the_patients_own(
    site: Site, passport: Any, settings: Settings, mongo_uri: str, openmrs: OpenMRSDatabase
) -> None:
    mine = site.person(MINE, "Penicillin")
    others = site.person(OTHERS, "Sulfa")
    # Registered with someone else's number by a typo: that person's care shows on this passport.
    patient = register_patient(passport, OTHERS)
    # A second pair: once the typo is corrected, the other person registers too.
    mine_2, others_2 = site.person("1200000000044", "Latex"), site.person("1200000000055", "Aspirin")
    patient_2 = register_patient(passport, "1200000000055")
    steady_state(settings)
    assert persons_on(passport, patient) == {others} and persons_on(passport, patient_2) == {others_2}
    assert allergies(passport, patient) == ["Sulfa"]
    assert parked_persons(passport) == {mine: NOT_IN_PASSPORT, mine_2: NOT_IN_PASSPORT}

    correct_national_id(passport, patient, MINE)
    correct_national_id(passport, patient_2, "1200000000044")
    other_patient = register_patient(passport, "1200000000055")
    report = sync_all(settings)

    assert persons_on(passport, patient) == {mine} and persons_on(passport, patient_2) == {mine_2}
    assert persons_on(passport, other_patient) == {others_2}  # landed on the patient holding the number now
    assert kinds_on(passport, patient) == CARE
    assert allergies(passport, patient) == ["Penicillin"] and allergies(passport, other_patient) == ["Aspirin"]
    assert parked_persons(passport) == {others: NOT_IN_PASSPORT}
    assert report.reassigned > 0
    assert fresh_differences(passport, mongo_uri, openmrs, {}) == []


def test_sync_patient_for_the_other_number_moves_the_records_off_the_corrected_patient(
    site: Site, passport: Any, settings: Settings, mongo_uri: str, openmrs: OpenMRSDatabase
) -> None:
    mine = site.person(MINE, "Penicillin")
    others = site.person(OTHERS, "Sulfa")
    patient = register_patient(passport, OTHERS)
    steady_state(settings)
    assert persons_on(passport, patient) == {others}

    correct_national_id(passport, patient, MINE)
    store = PassportStore.connect(settings)
    try:
        moved = service.sync_patient(settings, store, settings.enabled_hospitals(), OTHERS)
        assert persons_on(passport, patient) == set()  # moved off, not only parked again
        assert parked_persons(passport) == {mine: NOT_IN_PASSPORT, others: NOT_IN_PASSPORT}
        assert allergies(passport, patient) == []
        assert moved.reports[0].outcome == "ok"
        landed = service.sync_patient(settings, store, settings.enabled_hospitals(), MINE)
        assert landed.reports[0].written > 0
    finally:
        store.close()
    assert persons_on(passport, patient) == {mine} and allergies(passport, patient) == ["Penicillin"]
    assert fresh_differences(passport, mongo_uri, openmrs, {}) == []


# -- (b) a patient deleted in the app, and perhaps registered again ---------------------------------
def test_a_patient_deleted_and_registered_again_gets_the_whole_history_back(
    site: Site, passport: Any, settings: Settings, mongo_uri: str, openmrs: OpenMRSDatabase
) -> None:
    person = site.person(MINE, "Penicillin")
    first = register_patient(passport, MINE)
    steady_state(settings)
    assert persons_on(passport, first) == {person}

    delete_patient(passport, first)
    again = register_patient(passport, MINE)
    sync_all(settings)

    assert passport.medicalrecords.count_documents({"patientId": first}) == 0
    assert persons_on(passport, again) == {person} and allergies(passport, again) == ["Penicillin"]
    assert kinds_on(passport, again) == CARE
    assert fresh_differences(passport, mongo_uri, openmrs, {}) == []


def test_records_of_a_patient_deleted_in_the_app_are_parked_again_within_a_full_pass_period(
    site: Site, passport: Any, settings: Settings, mongo_uri: str, openmrs: OpenMRSDatabase
) -> None:
    person = site.person(MINE, "Penicillin")
    kept = site.person(OTHERS, "Sulfa")
    deleted, other = register_patient(passport, MINE), register_patient(passport, OTHERS)
    steady_state(settings)
    delete_patient(passport, deleted)

    # Deleted patients are found by a sweep paced over reconcile.full_pass_hours: a run now has
    # no part of it due, a run a period later has all of it.
    sync_all(settings)
    assert passport.medicalrecords.count_documents({"patientId": deleted}) > 0
    period = timedelta(hours=settings.reconcile.full_pass_hours)
    sync_all(settings, clock=lambda: datetime.now(UTC) + period)

    assert passport.medicalrecords.count_documents({"patientId": deleted}) == 0
    assert parked_persons(passport) == {person: NOT_IN_PASSPORT}
    assert persons_on(passport, other) == {kept}
    assert fresh_differences(passport, mongo_uri, openmrs, {}) == []


# -- (c) a patient registered at any time -------------------------------------------------------------
def test_a_patient_saved_with_an_id_made_hours_before_lands_the_persons_rows(
    site: Site, passport: Any, settings: Settings, mongo_uri: str, openmrs: OpenMRSDatabase
) -> None:
    person = site.person(MINE, "Penicillin")
    steady_state(settings)
    assert parked_persons(passport) == {person: NOT_IN_PASSPORT}

    # The app made the document (and its _id) hours before it saved it: a registration form kept
    # offline, a save retried. Only its updatedAt says when it reached the Passport.
    patient = ObjectId(register_patient(passport, MINE))
    doc = passport.patients.find_one_and_delete({"_id": patient})
    doc["_id"] = ObjectId.from_datetime(datetime.now(UTC) - timedelta(hours=3))
    passport.patients.insert_one(doc)
    sync_all(settings)

    assert persons_on(passport, str(doc["_id"])) == {person}
    assert parked_persons(passport) == {}
    assert fresh_differences(passport, mongo_uri, openmrs, {}) == []


# -- (d) a national ID changed on a patient whose records are ours ----------------------------------
def test_a_national_id_changed_on_a_patient_moves_its_records_off_and_keeps_the_patients_own_allergies(
    site: Site, passport: Any, settings: Settings, mongo_uri: str, openmrs: OpenMRSDatabase
) -> None:
    person = site.person(MINE, "Penicillin")
    waiting = site.person(THIRD, "Latex")
    patient = register_patient(passport, MINE)
    passport.patients.update_one({"_id": ObjectId(patient)}, {"$set": {"allergies": ["Peanuts"]}})
    steady_state(settings)
    assert persons_on(passport, patient) == {person}
    assert allergies(passport, patient) == ["Peanuts", "Penicillin"]

    correct_national_id(passport, patient, THIRD)
    sync_all(settings)

    assert persons_on(passport, patient) == {waiting}
    assert allergies(passport, patient) == ["Latex", "Peanuts"]  # the patient's own entry stays
    assert parked_persons(passport) == {person: NOT_IN_PASSPORT}
    assert fresh_differences(passport, mongo_uri, openmrs, {patient: ["Peanuts"]}) == []

    # A second correction, to a number no OpenMRS person holds: everything moves off.
    correct_national_id(passport, patient, "1299999999999")
    sync_all(settings)
    assert persons_on(passport, patient) == set() and kinds_on(passport, patient) == set()
    assert allergies(passport, patient) == ["Peanuts"]
    assert parked_persons(passport) == {person: NOT_IN_PASSPORT, waiting: NOT_IN_PASSPORT}
    assert fresh_differences(passport, mongo_uri, openmrs, {patient: ["Peanuts"]}) == []


# -- any order ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [31, 32, 33])
def test_registrations_corrections_and_registrations_again_in_any_order_converge_through_sync_all_alone(
    seed: int, openmrs: OpenMRSDatabase, mongo_uri: str
) -> None:
    """The oracle's traced changes and the app's, interleaved with sync-all runs, without any
    reconciliation (not even sync-all's slices): the Passport equals a fresh full sync."""
    operations = (*TRACED_OPERATIONS, *PASSPORT_OPERATIONS)
    assert run_oracle(seed, openmrs, mongo_uri, operations=operations, reconcile=False) == []
