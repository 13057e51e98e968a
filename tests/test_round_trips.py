"""Round trips per hospital run, counted by the tracer hook in the adapters (issue: national scale).

An idle run (nothing new in OpenMRS) must cost at most 8 MySQL statements and 8 MongoDB commands
whatever the history, and what a run reads must not grow with the rows parked in earlier runs.
Right after a void, an edit or a registration in the Passport, inside the look-back windows, an
idle run costs no more: one statement for the change windows' digests, and nothing re-read.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from bson import ObjectId

from passport_sync import tracing
from passport_sync.config import Settings
from passport_sync.models import HospitalReport
from tests.conftest import hospital_entry, make_settings, register_patient
from tests.helpers import Clinic, run_sync

HOSPITAL = "h-round-trips"
IDLE_MYSQL = 8
IDLE_MONGODB = 8
# Inside the change look-back: the schema, the national-ID type, the probe, the windows' digests.
IDLE_IN_WINDOW_MYSQL = 4
CHANGE_READS = {"voided_since", "clinical_changed"}


def _registered_an_hour_ago(passport: Any, national_id: str, seconds: int = 0) -> None:
    """A Passport patient registered (and last saved) well before the run, outside its look-back
    for changed patients; ``seconds`` earlier still."""
    patient_id = ObjectId(register_patient(passport, national_id))
    doc = passport.patients.find_one({"_id": patient_id})
    passport.patients.delete_one({"_id": patient_id})
    registered = datetime.now(UTC) - timedelta(hours=1, seconds=seconds)
    # That second, and a fresh id's other bytes: unique however slowly the calls come.
    patient_id = ObjectId(ObjectId.from_datetime(registered).binary[:4] + ObjectId().binary[4:])
    doc.update(_id=patient_id, createdAt=registered, updatedAt=registered)
    passport.patients.insert_one(doc)


def _traced_run(settings: Settings) -> tuple[HospitalReport, tracing.CallCounter]:
    counter = tracing.CallCounter()
    with tracing.traced(counter):
        [report] = run_sync(settings)
    assert report.outcome == "ok", report.errors
    return report, counter


def _settings(openmrs: Any, mongo_uri: str, mongo_db_name: str) -> Settings:
    return make_settings(mongo_uri, mongo_db_name, [hospital_entry(openmrs.name, hospital_id=HOSPITAL)])


def test_an_idle_run_costs_at_most_8_statements_and_8_commands(
    clinic: Clinic, openmrs: Any, passport: Any, mongo_uri: str, mongo_db_name: str
) -> None:
    known = clinic.patient("1199780012345678")
    _registered_an_hour_ago(passport, "1199780012345678")
    clinic.visit(known, weights=3)
    unknown = clinic.patient("1199780012345679")  # not in the Passport: its rows are parked
    clinic.visit(unknown, weights=2)
    clinic.b.condition(known, condition_non_coded="Asthma")  # a clinical feed with a row too
    settings = _settings(openmrs, mongo_uri, mongo_db_name)
    first, _ = _traced_run(settings)
    assert first.written >= 3 and first.parked >= 2

    idle, counter = _traced_run(settings)
    assert (idle.read, idle.written, idle.parked) == (0, 0, 0)
    mysql = counter.of_hospital(tracing.MYSQL, HOSPITAL)
    mongodb = counter.of_hospital(tracing.MONGODB, HOSPITAL)
    assert mysql <= IDLE_MYSQL, counter.purposes(tracing.MYSQL)
    assert mongodb <= IDLE_MONGODB, counter.purposes(tracing.MONGODB)
    # No feed is read, and no read-ahead connection opened, when its head has not moved.
    assert not {"obs_after", "voided_since", "clinical_after", "clinical_changed"} & set(
        counter.purposes(tracing.MYSQL)
    )


def test_parked_history_is_not_read_again_by_each_run_but_new_patients_still_land(
    clinic: Clinic, openmrs: Any, passport: Any, mongo_uri: str, mongo_db_name: str
) -> None:
    waiting = [clinic.patient(f"12000000000{i:02d}") for i in range(30)]
    for person in waiting:
        clinic.visit(person, weights=2)
    settings = _settings(openmrs, mongo_uri, mongo_db_name)
    first, _ = _traced_run(settings)
    parked = passport.openmrs_sync_parked.count_documents({})
    assert first.parked == parked >= 60
    person_7 = passport.openmrs_sync_parked.count_documents({"personId": waiting[7]})

    _, idle = _traced_run(settings)
    purposes = set(idle.purposes(tracing.MYSQL)) | set(idle.purposes(tracing.MONGODB))
    assert "identities" not in purposes  # no parked person re-decided
    assert not {p for p in purposes if "parked" in p}, purposes

    # A patient registers in Patient Passport: the next run lands exactly that patient's rows.
    register_patient(passport, "1200000000007")
    landed, counter = _traced_run(settings)
    assert landed.unparked == landed.written == person_7 >= 2
    assert landed.read == person_7  # the rows of the one person re-decided, not the thirty parked
    assert passport.openmrs_sync_parked.count_documents({}) == parked - person_7


def test_a_national_id_given_in_openmrs_lands_the_persons_parked_rows_at_the_next_run(
    clinic: Clinic, openmrs: Any, passport: Any, mongo_uri: str, mongo_db_name: str
) -> None:
    national_id_type = clinic.b.national_id_type_id
    nameless = clinic.patient(None)
    clinic.visit(nameless, weights=2)
    _registered_an_hour_ago(passport, "130000000001")  # not a new patient: only OpenMRS changes
    settings = _settings(openmrs, mongo_uri, mongo_db_name)
    first, _ = _traced_run(settings)
    assert first.parked >= 2

    openmrs.execute(
        "INSERT INTO patient_identifier (patient_id, identifier, identifier_type, preferred, location_id, creator,"
        " date_created, voided, uuid) VALUES (%s, %s, %s, 1, NULL, 1, NOW(), 0, UUID())",
        (nameless, "1300-0000-0001", national_id_type),
    )
    landed, counter = _traced_run(settings)
    assert landed.unparked == landed.written == first.parked
    assert passport.openmrs_sync_parked.count_documents({}) == 0
    assert counter.purposes(tracing.MYSQL).get("persons_with_identifiers_after") == 1


def _an_hour_later(clinic: Clinic) -> datetime:
    return clinic.when + timedelta(hours=1)


def test_an_idle_run_right_after_a_void_and_an_edit_rereads_nothing(
    clinic: Clinic, openmrs: Any, passport: Any, mongo_uri: str, mongo_db_name: str
) -> None:
    known = clinic.patient("1199780012345678")
    _registered_an_hour_ago(passport, "1199780012345678")
    _, first_weight, _ = clinic.visit(known, weights=2)
    asthma = clinic.b.condition(known, condition_non_coded="Asthma")
    settings = _settings(openmrs, mongo_uri, mongo_db_name)
    _traced_run(settings)

    clinic.b.void_obs(first_weight, when=_an_hour_later(clinic))
    openmrs.execute(
        "UPDATE conditions SET clinical_status = 'INACTIVE', date_changed = %s, changed_by = 1 WHERE condition_id = %s",
        (_an_hour_later(clinic) - timedelta(minutes=20), asthma),
    )
    changed, counter = _traced_run(settings)
    assert (changed.removed, changed.updated) == (1, 1)
    # One page each, and a short page is the last: no statement asks for an empty one.
    assert {k: counter.purposes(tracing.MYSQL).get(k) for k in CHANGE_READS} == {
        "voided_since": 1,
        "clinical_changed": 1,
    }

    # Both changes are inside the 60-minute look-back of the next run, which finds them unchanged.
    idle, counter = _traced_run(settings)
    assert (idle.read, idle.written, idle.updated, idle.removed) == (0, 0, 0, 0)
    mysql = counter.purposes(tracing.MYSQL)
    assert counter.of_hospital(tracing.MYSQL, HOSPITAL) <= IDLE_IN_WINDOW_MYSQL, mysql
    assert counter.of_hospital(tracing.MONGODB, HOSPITAL) <= IDLE_MONGODB, counter.purposes(tracing.MONGODB)
    assert mysql.get("changes_digests") == 1
    assert not CHANGE_READS & set(mysql), mysql


def test_a_change_committed_late_inside_the_look_back_is_still_read(
    clinic: Clinic, openmrs: Any, passport: Any, mongo_uri: str, mongo_db_name: str
) -> None:
    """What the look-back is for: a void or an edit whose transaction commits after a run read past
    its timestamp. The window's digest changes, so the next run reads it."""
    known = clinic.patient("1199780012345678")
    _registered_an_hour_ago(passport, "1199780012345678")
    first, late, _ = clinic.visit(known, weights=2)
    edited_twice = clinic.b.condition(known, condition_non_coded="Asthma")
    voided_late = clinic.b.condition(known, condition_non_coded="Hypertension")
    latest = clinic.b.condition(known, condition_non_coded="Gout")
    settings = _settings(openmrs, mongo_uri, mongo_db_name)
    _traced_run(settings)

    watermark = _an_hour_later(clinic)
    edit = "UPDATE conditions SET clinical_status = %s, date_changed = %s, changed_by = 1 WHERE condition_id = %s"
    clinic.b.void_obs(first, when=watermark)
    openmrs.execute(edit, ("INACTIVE", watermark - timedelta(minutes=30), edited_twice))
    openmrs.execute(edit, ("INACTIVE", watermark, latest))
    changed, _ = _traced_run(settings)
    assert (changed.removed, changed.updated) == (1, 2)
    idle, counter = _traced_run(settings)
    assert idle.read == 0 and not CHANGE_READS & set(counter.purposes(tracing.MYSQL))

    # Committed after that run, each with a timestamp before the watermark it moved past: a void,
    # and a second edit of a row already in the window (the same rows, one changed).
    clinic.b.void_obs(late, when=watermark - timedelta(minutes=10))
    openmrs.execute(edit, ("ACTIVE", watermark - timedelta(minutes=5), edited_twice))
    caught, _ = _traced_run(settings)
    assert (caught.removed, caught.updated) == (1, 1), caught
    assert not passport.medicalrecords.find_one({"openmrsData.obsId": late})
    record = passport.medicalrecords.find_one({"openmrsData.source": "condition", "openmrsData.sourceId": edited_twice})
    assert record["data"]["status"] == "Active", record["data"]

    openmrs.execute(
        "UPDATE conditions SET voided = 1, voided_by = 1, void_reason = 'wrong patient', date_voided = %s"
        " WHERE condition_id = %s",
        (watermark - timedelta(minutes=15), voided_late),
    )
    caught, _ = _traced_run(settings)
    assert caught.removed == 1, caught
    assert not passport.medicalrecords.find_one(
        {"openmrsData.source": "condition", "openmrsData.sourceId": voided_late}
    )

    # And once read, the window is left unread again.
    idle, counter = _traced_run(settings)
    assert idle.read == 0 and not CHANGE_READS & set(counter.purposes(tracing.MYSQL))


def test_an_idle_run_right_after_a_registration_asks_nothing_again_and_the_next_one_still_lands(
    clinic: Clinic, openmrs: Any, passport: Any, mongo_uri: str, mongo_db_name: str
) -> None:
    first = clinic.patient("1200000000001")
    second = clinic.patient("1200000000002")
    clinic.visit(first, weights=2)
    clinic.visit(second, weights=2)
    settings = _settings(openmrs, mongo_uri, mongo_db_name)
    initial, _ = _traced_run(settings)
    parked_second = passport.openmrs_sync_parked.count_documents({"personId": second})
    assert initial.parked == passport.openmrs_sync_parked.count_documents({}) >= 6

    register_patient(passport, "1200000000001")
    landed, counter = _traced_run(settings)
    assert landed.unparked == landed.written >= 3
    assert "holders" in counter.purposes(tracing.MYSQL)

    # The registration is still inside the 10-minute look-back: it is not handled again.
    idle, counter = _traced_run(settings)
    assert (idle.read, idle.written, idle.unparked) == (0, 0, 0)
    assert counter.of_hospital(tracing.MONGODB, HOSPITAL) <= IDLE_MONGODB, counter.purposes(tracing.MONGODB)
    assert counter.of_hospital(tracing.MYSQL, HOSPITAL) <= IDLE_MYSQL, counter.purposes(tracing.MYSQL)
    assert "holders" not in counter.purposes(tracing.MYSQL)
    assert not {"reading parked persons", "saving the checkpoint"} & {
        purpose.split("/")[0] for purpose in counter.purposes(tracing.MONGODB)
    }

    # A second registration inside the same window lands its patient's rows.
    register_patient(passport, "1200000000002")
    landed, counter = _traced_run(settings)
    assert landed.unparked == landed.written == parked_second >= 3
    assert "holders" in counter.purposes(tracing.MYSQL)
    assert passport.openmrs_sync_parked.count_documents({}) == 0
    assert {d["patientId"] for d in passport.medicalrecords.find({"openmrsData.source": "obs"})} == {
        str(d["_id"]) for d in passport.patients.find()
    }


def test_new_persons_cost_one_statement_for_their_identifiers_and_the_holders_of_them(
    clinic: Clinic, openmrs: Any, passport: Any, mongo_uri: str, mongo_db_name: str
) -> None:
    settings = _settings(openmrs, mongo_uri, mongo_db_name)
    clinic.visit(clinic.patient("1199780012345699"))
    _traced_run(settings)  # the first run also re-decides every parked person once
    for n in range(5):
        number = f"11997800123456{n:02d}"
        # Typed with spaces between digit groups, as a fifth of real identifiers are.
        person = clinic.patient(" ".join([number[:1], number[1:5], number[5:]]) if n == 2 else number)
        if n % 2:
            _registered_an_hour_ago(passport, number, seconds=n)
        clinic.visit(person)
    report, counter = _traced_run(settings)
    assert report.written > 0 and report.parked > 0
    # One for the batch's persons and the holders of their numbers; one again for the parked ones
    # among them, re-decided because they were given a national ID since the last run; one per run
    # for the numbers written with separators. (Two statements each were two more.)
    assert counter.purposes(tracing.MYSQL)["identities"] == 3, counter.purposes(tracing.MYSQL)


def test_patients_saved_just_before_the_first_run_are_not_decided_again_by_the_next(
    clinic: Clinic, openmrs: Any, passport: Any, mongo_uri: str, mongo_db_name: str
) -> None:
    clinic.visit(clinic.patient("1200000000001"), weights=2)
    register_patient(passport, "1200000000001")  # saved now: inside the next run's look-back
    settings = _settings(openmrs, mongo_uri, mongo_db_name)
    first, _ = _traced_run(settings)
    assert first.written >= 3 and first.parked == 0

    idle, counter = _traced_run(settings)
    assert (idle.read, idle.written, idle.reassigned) == (0, 0, 0)
    assert "holders" not in counter.purposes(tracing.MYSQL)
    assert counter.of_hospital(tracing.MONGODB, HOSPITAL) <= IDLE_MONGODB, counter.purposes(tracing.MONGODB)
