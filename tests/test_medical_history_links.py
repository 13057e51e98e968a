"""``patients.medicalHistory`` links: off by default, on with ``sync.medical_history_links``, and
the links earlier versions wrote taken out once per hospital (resumable, recorded, idempotent).

Counts through the tracer hook, never times.
"""

from __future__ import annotations

from typing import Any

import pytest
from bson import ObjectId

from passport_sync import pipeline, tracing
from passport_sync.config import Settings
from passport_sync.models import HospitalReport
from tests.conftest import hospital_entry, make_settings, register_patient
from tests.helpers import Clinic, run_sync, with_links

HOSPITAL = "h-links"
NATIONAL_IDS = [f"11997800000000{i:02d}" for i in range(4)]
LINK_COMMANDS = {"linking records to patients", "reading records to unlink", "removing medicalHistory links"}


def _traced(settings: Settings) -> tuple[HospitalReport, dict[str, int]]:
    counter = tracing.CallCounter()
    with tracing.traced(counter):
        [report] = run_sync(settings)
    assert report.outcome == "ok", report.errors
    return report, {purpose.split("/")[0]: n for purpose, n in counter.purposes(tracing.MONGODB).items()}


def _owned(passport: Any) -> dict[str, set[ObjectId]]:
    owned: dict[str, set[ObjectId]] = {}
    for record in passport.medicalrecords.find({}, {"patientId": 1}):
        owned.setdefault(record["patientId"], set()).add(record["_id"])
    return owned


def _histories(passport: Any) -> dict[str, set[ObjectId]]:
    return {str(p["_id"]): set(p.get("medicalHistory") or []) for p in passport.patients.find()}


@pytest.fixture
def settings(openmrs: Any, mongo_uri: str, mongo_db_name: str) -> Settings:
    return make_settings(mongo_uri, mongo_db_name, [hospital_entry(openmrs.name, hospital_id=HOSPITAL)], batch_size=5)


@pytest.fixture
def persons(clinic: Clinic) -> list[int]:
    return [clinic.patient(national_id) for national_id in NATIONAL_IDS]


@pytest.fixture
def patients(clinic: Clinic, passport: Any, persons: list[int]) -> list[str]:
    """The Passport patients of ``persons``, each with an encounter of 4 observations."""
    ids = []
    for national_id, person in zip(NATIONAL_IDS, persons, strict=True):
        ids.append(register_patient(passport, national_id))
        clinic.visit(person, weights=3)
    return ids


def test_no_link_is_written_by_default(patients: list[str], passport: Any, settings: Settings) -> None:
    report, commands = _traced(settings)
    assert report.written > 0
    assert not LINK_COMMANDS & set(commands), commands
    assert all(history == set() for history in _histories(passport).values())
    # A first run wrote no link, so it records that there is none to remove, without looking.
    assert passport.syncstatus.find_one({"hospitalId": HOSPITAL})[pipeline.LINKS_REMOVED] is True


def test_links_configured_list_each_record_of_the_patient_once(
    patients: list[str], passport: Any, settings: Settings
) -> None:
    report, commands = _traced(with_links(settings))
    assert report.written > 0 and commands["linking records to patients"] >= 1
    owned = _owned(passport)
    assert set(owned) == set(patients)
    assert _histories(passport) == owned


def test_the_links_earlier_versions_wrote_are_removed_once_resuming_where_a_run_stopped(
    patients: list[str],
    persons: list[int],
    clinic: Clinic,
    passport: Any,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run_sync(with_links(settings))  # what an earlier version wrote
    own_entry = ObjectId()  # an entry of the app's own: never the sync's to remove
    passport.patients.update_one({"_id": ObjectId(patients[0])}, {"$push": {"medicalHistory": own_entry}})
    linked = sum(len(h) for h in _histories(passport).values())
    assert linked == passport.medicalrecords.count_documents({}) + 1
    assert persons == sorted(persons)

    # One range of persons per run, of the first two persons: the first run after the upgrade
    # stops part way and says where.
    monkeypatch.setattr(pipeline, "LINK_REMOVAL_PERSONS_PER_RANGE", persons[1] + 1)
    monkeypatch.setattr(pipeline, "LINK_REMOVAL_RANGES_PER_RUN", 1)
    _, commands = _traced(settings)
    assert commands["reading records to unlink"] == 2  # the highest person, and one range
    histories = _histories(passport)
    assert histories[patients[0]] == {own_entry} and histories[patients[1]] == set()
    assert histories[patients[2]] and histories[patients[3]]
    status = passport.syncstatus.find_one({"hospitalId": HOSPITAL})
    assert not status.get(pipeline.LINKS_REMOVED) and status[pipeline.LINKS_REMOVED_AFTER] == persons[1] + 1

    monkeypatch.setattr(pipeline, "LINK_REMOVAL_RANGES_PER_RUN", 50)
    run_sync(settings)
    assert _histories(passport) == {pid: ({own_entry} if pid == patients[0] else set()) for pid in patients}
    assert passport.syncstatus.find_one({"hospitalId": HOSPITAL})[pipeline.LINKS_REMOVED] is True

    # Recorded: the next runs ask nothing about links, even with new records to sync.
    clinic.visit(persons[1], weights=1)
    report, commands = _traced(settings)
    assert report.written > 0
    assert not LINK_COMMANDS & set(commands), commands


def test_turning_links_on_and_off_again_removes_the_links_written_meanwhile(
    patients: list[str], persons: list[int], clinic: Clinic, passport: Any, settings: Settings
) -> None:
    run_sync(settings)
    assert passport.syncstatus.find_one({"hospitalId": HOSPITAL})[pipeline.LINKS_REMOVED] is True
    clinic.visit(persons[2], weights=1)
    run_sync(with_links(settings))  # links the records it writes; the earlier ones stay unlinked
    histories = _histories(passport)
    assert len(histories[patients[2]]) == 3 and sum(map(len, histories.values())) == 3
    assert passport.syncstatus.find_one({"hospitalId": HOSPITAL})[pipeline.LINKS_REMOVED] is False
    run_sync(settings)
    assert all(history == set() for history in _histories(passport).values())
