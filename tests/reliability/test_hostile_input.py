"""Hostile and broken input: odd national IDs, identifiers shared between patients, dangling
references, huge and badly encoded text, NULL dates, unnamed concepts, broken YAML files.

For a broken observation the run goes on: nothing is written for it, the other observations of
the same batch are synced, and the problem is named by hospital and obs id.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from passport_sync import parking, service
from passport_sync.cli import app
from passport_sync.sink.passport import PassportStore
from tests.conftest import OpenMRSDatabase, hospital_entry, make_settings, register_patient, untouched
from tests.helpers import Clinic, run_sync, synced, write_config
from tests.reliability.support import HOSPITAL, assert_every_record_on_the_right_patient, config_file

pytestmark = pytest.mark.reliability

runner = CliRunner()
ATTACHED = "attached"


@pytest.fixture
def clinic(openmrs: OpenMRSDatabase) -> Clinic:
    return Clinic(openmrs)


@pytest.fixture
def settings(openmrs: OpenMRSDatabase, mongo_uri: str, mongo_db_name: str) -> Any:
    return make_settings(mongo_uri, mongo_db_name, [hospital_entry(openmrs.name)], batch_size=50)


HOSPITAL_ID = "60a7c2f5e4b0c1a2d3e4f5a6"  # hospital_entry's default: the hospital under test


def records_of(passport: Any, obs_id: int, hospital_id: str = HOSPITAL_ID) -> list[dict[str, Any]]:
    return list(
        passport.medicalrecords.find(synced({"openmrsData.obsId": obs_id, "openmrsData.hospitalId": hospital_id}))
    )


def parked_reason(passport: Any, obs_id: int) -> str | None:
    doc = passport.openmrs_sync_parked.find_one({"obsId": obs_id})
    return doc["reason"] if doc else None


def problem_messages(caplog: pytest.LogCaptureFixture, obs_id: int, hospital: str = "Central Hospital") -> list[str]:
    """WARNING or worse log lines naming the hospital and this obs id."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.WARNING and hospital in r.getMessage() and f"obs {obs_id}" in r.getMessage()
    ]


def good_neighbours(clinic: Clinic, passport: Any, national_id: str = "1999999999999") -> tuple[str, list[int]]:
    """A registered patient with two observations: they share the batch with the broken rows."""
    person = clinic.patient(national_id)
    patient_id = register_patient(passport, national_id)
    return patient_id, [
        clinic.b.obs(person, clinic.note, value_text="neighbour before"),
        clinic.b.obs(person, clinic.weight, value_numeric=70),
    ]


def assert_neighbours_synced(passport: Any, patient_id: str, obs_ids: list[int]) -> None:
    for obs_id in obs_ids:
        assert [r["patientId"] for r in records_of(passport, obs_id)] == [patient_id], obs_id


# -- national IDs --------------------------------------------------------------------------------------------
# (OpenMRS identifier, nationalId registered in Passport or None, expected: ATTACHED or a park reason)
NATIONAL_IDS = [
    ("1234 5678 9012", "123456789012", ATTACHED),
    ("2234-5678-9012", "223456789012", ATTACHED),
    ("3234.5678/9012", "323456789012", ATTACHED),
    ("  4234567890123\t", "4234567890123", ATTACHED),
    ("5234\u00a05678\u20039012", "523456789012", ATTACHED),  # no-break and em spaces are spaces
    ("0062345678901", "0062345678901", ATTACHED),  # leading zeros are part of the ID
    ("0072345678901", "72345678901", parking.NOT_IN_PASSPORT),  # … so without them it is another ID
    ("8234567890'; DROP TABLE obs; --", "8234567890", parking.INVALID_NATIONAL_ID),
    ('9234567890" OR "1"="1', "9234567890", parking.INVALID_NATIONAL_ID),
    ("10234567%", None, parking.INVALID_NATIONAL_ID),
    ("1123456789_", None, parking.INVALID_NATIONAL_ID),
    ("١٠٢٠٣٠٤٠٥٠٦", "10203040506", parking.INVALID_NATIONAL_ID),  # Arabic-Indic digits
    ("１１２２３３４４５５６", "11223344556", parking.INVALID_NATIONAL_ID),  # fullwidth digits
    ("1324\u20135678\u20139012", "132456789012", parking.INVALID_NATIONAL_ID),  # en dashes are not dashes
    ("14O2345678901", "1402345678901", parking.INVALID_NATIONAL_ID),  # a letter O, not a zero
    ("152345678", "152345678", parking.INVALID_NATIONAL_ID),  # 9 digits
    ("16234567890123456", "16234567890123456", parking.INVALID_NATIONAL_ID),  # 17 digits
    ("", None, parking.INVALID_NATIONAL_ID),
]


def test_national_id_variants_attach_or_park_exactly(
    clinic: Clinic, passport: Any, settings: Any, openmrs: OpenMRSDatabase, figures: Any
) -> None:
    cases = []
    for raw, registered, expected in NATIONAL_IDS:
        person = clinic.patient(raw)
        patient_id = register_patient(passport, registered) if registered else None
        obs = [clinic.b.obs(person, clinic.note, value_text=f"note {i}") for i in range(2)]
        cases.append((raw, patient_id, expected, obs))
    no_id = clinic.patient(None)
    no_id_obs = clinic.b.obs(no_id, clinic.note, value_text="no identifier at all")

    report = run_sync(settings)[0]
    assert report.outcome == "ok", report.errors
    for raw, patient_id, expected, obs in cases:
        for obs_id in obs:
            records = records_of(passport, obs_id)
            if expected == ATTACHED:
                assert [r["patientId"] for r in records] == [patient_id], raw
                assert parked_reason(passport, obs_id) is None, raw
            else:
                assert records == [], raw
                assert parked_reason(passport, obs_id) == expected, raw
    assert parked_reason(passport, no_id_obs) == parking.NO_NATIONAL_ID
    assert openmrs.execute("SELECT COUNT(*) FROM obs")[0][0] == 2 * len(cases) + 1  # the table is still there
    assert_every_record_on_the_right_patient(passport, openmrs, HOSPITAL)

    store = PassportStore.connect(settings)
    try:
        status = service.hospital_status(settings, store, settings.hospitals[0])
    finally:
        store.close()
    assert status["parked_by_reason"] == {
        parking.INVALID_NATIONAL_ID: 22,
        parking.NO_NATIONAL_ID: 1,
        parking.NOT_IN_PASSPORT: 2,
    }
    attached = [c for c in cases if c[2] == ATTACHED]
    figures.record(
        "test_hostile_input",
        "national ID variants (separators, zeros, SQL metacharacters, other scripts' digits)",
        injected=len(NATIONAL_IDS),
        expected=2 * len(attached),
        found=passport.medicalrecords.count_documents(synced({})),
        duplicated=0,
        missing=0,
        parked_expected=2 * (len(cases) - len(attached)) + 1,
        parked_found=passport.openmrs_sync_parked.count_documents({}),
        outcome="attached or parked exactly",
    )


def test_sync_patient_refuses_hostile_national_id_arguments(
    clinic: Clinic, passport: Any, openmrs: OpenMRSDatabase, mongo_uri: str, mongo_db_name: str, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "hospitals.yaml", mongo_uri, mongo_db_name, [hospital_entry(openmrs.name)])
    person = clinic.patient("2234-5678-9012")
    register_patient(passport, "223456789012")
    clinic.b.obs(person, clinic.note, value_text="x")
    for hostile in ("1'; DROP TABLE obs; --", "١٠٢٠٣٠٤٠٥٠٦", "12345%", "2234567890_2", "+223456789012", ""):
        result = runner.invoke(app, ["sync-patient", hostile, "--config", str(config)], env={})
        assert result.exit_code == 2, (hostile, result.output)
        assert "the national ID must be 10 to 16 digits" in result.stderr
    assert passport.medicalrecords.count_documents(synced({})) == 0
    assert openmrs.execute("SELECT COUNT(*) FROM obs")[0][0] == 1
    # The same separators as in OpenMRS are accepted on the command line.
    result = runner.invoke(app, ["sync-patient", "2234 5678-9012", "--config", str(config)], env={})
    assert result.exit_code == 0, result.output
    assert passport.medicalrecords.count_documents(synced({})) == 1


def test_sync_patient_finds_the_identifiers_sync_all_attaches(
    clinic: Clinic, passport: Any, openmrs: OpenMRSDatabase, mongo_uri: str, mongo_db_name: str, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "hospitals.yaml", mongo_uri, mongo_db_name, [hospital_entry(openmrs.name)])
    person = clinic.patient("5234\u00a05678\t9012")
    patient_id = register_patient(passport, "523456789012")
    obs = clinic.b.obs(person, clinic.note, value_text="x")
    result = runner.invoke(app, ["sync-patient", "523456789012", "--config", str(config), "--json"], env={})
    assert result.exit_code == 0, result.output
    assert [r["patientId"] for r in records_of(passport, obs)] == [patient_id]


def test_identifier_shared_by_two_openmrs_patients_is_parked_for_both(
    clinic: Clinic, passport: Any, settings: Any
) -> None:
    first = clinic.patient("3100000000017", given="Alice")
    second = clinic.patient("3100000000017", given="Bob")
    register_patient(passport, "3100000000017")
    parked = [
        clinic.b.obs(first, clinic.note, value_text="Alice's"),
        clinic.b.obs(second, clinic.note, value_text="Bob's"),
    ]
    neighbour, neighbour_obs = good_neighbours(clinic, passport)

    report = run_sync(settings)[0]
    assert report.outcome == "ok"
    for obs_id in parked:
        assert records_of(passport, obs_id) == []
        assert parked_reason(passport, obs_id) == parking.SHARED_NATIONAL_ID
    assert_neighbours_synced(passport, neighbour, neighbour_obs)


def test_identifier_shared_after_normalisation_is_parked_for_both(clinic: Clinic, passport: Any, settings: Any) -> None:
    first = clinic.patient("3200-0000-001", given="Alice")
    second = clinic.patient("32000000001", given="Bob")
    register_patient(passport, "32000000001")
    obs = [
        clinic.b.obs(first, clinic.note, value_text="Alice's"),
        clinic.b.obs(second, clinic.note, value_text="Bob's"),
    ]

    report = run_sync(settings)[0]
    assert report.outcome == "ok"
    for obs_id in obs:
        assert records_of(passport, obs_id) == [], "given to a patient although two OpenMRS patients hold the ID"
        assert parked_reason(passport, obs_id) == parking.SHARED_NATIONAL_ID


@pytest.mark.parametrize("separator", ["-", "\u00a0"], ids=["dash", "no-break space"])
def test_an_identifier_written_with_separators_is_shared_with_a_plain_holder_synced_earlier(
    clinic: Clinic, passport: Any, settings: Any, separator: str
) -> None:
    """The plain holder is found from the number as written: with the separators SQL strips (a
    dash) in the same statement, with any other (a no-break space) by a second one."""
    earlier = clinic.patient("32000000002", given="Alice")
    register_patient(passport, "32000000002")
    clinic.b.obs(earlier, clinic.note, value_text="Alice's")
    assert run_sync(settings)[0].outcome == "ok"

    later = clinic.patient(separator.join(["3200", "0000", "002"]), given="Bob")
    obs_id = clinic.b.obs(later, clinic.note, value_text="Bob's")
    report = run_sync(settings)[0]
    assert report.outcome == "ok"
    assert records_of(passport, obs_id) == []
    assert parked_reason(passport, obs_id) == parking.SHARED_NATIONAL_ID


def test_national_id_matching_two_passport_patients_is_parked_as_ambiguous(
    clinic: Clinic, passport: Any, settings: Any
) -> None:
    person = clinic.patient("3300000000001")
    register_patient(passport, "3300000000001", name="Marie Reine")
    register_patient(passport, "3300000000001", name="Marie Reine")
    obs = clinic.visit(person)
    neighbour, neighbour_obs = good_neighbours(clinic, passport)

    report = run_sync(settings)[0]
    assert report.outcome == "ok"
    for obs_id in obs:
        assert records_of(passport, obs_id) == []
        assert parked_reason(passport, obs_id) == parking.AMBIGUOUS_PASSPORT_PATIENT
    assert_neighbours_synced(passport, neighbour, neighbour_obs)


# -- dangling references -------------------------------------------------------------------------------------
def _without_foreign_keys(openmrs: OpenMRSDatabase, insert: Any) -> int:
    openmrs.execute("SET FOREIGN_KEY_CHECKS = 0")
    try:
        return int(insert())
    finally:
        openmrs.execute("SET FOREIGN_KEY_CHECKS = 1")


def test_obs_of_a_missing_concept_is_parked_and_named(
    clinic: Clinic, passport: Any, settings: Any, openmrs: OpenMRSDatabase, caplog: pytest.LogCaptureFixture
) -> None:
    neighbour, neighbour_obs = good_neighbours(clinic, passport)
    person = openmrs.execute("SELECT patient_id FROM patient")[0][0]
    broken = _without_foreign_keys(openmrs, lambda: clinic.b.obs(person, 999999, value_text="concept gone"))
    neighbour_obs.append(clinic.b.obs(person, clinic.note, value_text="neighbour after"))

    with caplog.at_level(logging.WARNING, logger="passport_sync"):
        report = run_sync(settings)[0]
    assert report.outcome == "ok"
    assert records_of(passport, broken) == []
    assert parked_reason(passport, broken) == parking.MISSING_CONCEPT
    assert problem_messages(caplog, broken) != []
    assert "concept 999999, which does not exist" in problem_messages(caplog, broken)[0]
    assert_neighbours_synced(passport, neighbour, neighbour_obs)


def test_a_broken_observation_is_counted_and_reported_once_per_run(
    clinic: Clinic, passport: Any, settings: Any, openmrs: OpenMRSDatabase, caplog: pytest.LogCaptureFixture
) -> None:
    good_neighbours(clinic, passport)
    person = openmrs.execute("SELECT patient_id FROM patient")[0][0]
    broken = _without_foreign_keys(openmrs, lambda: clinic.b.obs(person, 999999, value_text="concept gone"))
    with caplog.at_level(logging.WARNING, logger="passport_sync"):
        report = run_sync(settings)[0]
    assert passport.openmrs_sync_parked.count_documents({}) == 1
    assert report.parked == 1
    assert len(problem_messages(caplog, broken)) == 1


def test_obs_of_a_missing_person_is_parked_and_written_nowhere(
    clinic: Clinic, passport: Any, settings: Any, openmrs: OpenMRSDatabase
) -> None:
    neighbour, neighbour_obs = good_neighbours(clinic, passport)
    broken = _without_foreign_keys(openmrs, lambda: clinic.b.obs(888888, clinic.note, value_text="person gone"))
    report = run_sync(settings)[0]
    assert report.outcome == "ok"
    assert records_of(passport, broken) == []
    assert parked_reason(passport, broken) == parking.NO_NATIONAL_ID
    assert_neighbours_synced(passport, neighbour, neighbour_obs)


def test_observations_parked_for_a_data_problem_are_named_by_hospital_and_obs_id(
    clinic: Clinic, passport: Any, settings: Any, openmrs: OpenMRSDatabase, caplog: pytest.LogCaptureFixture
) -> None:
    shared = [clinic.patient("3400000000001"), clinic.patient("3400000000001")]
    ambiguous = clinic.patient("3500000000001")
    register_patient(passport, "3500000000001")
    register_patient(passport, "3500000000001")
    invalid = clinic.patient("36000000O0001")
    problems = [clinic.b.obs(p, clinic.note, value_text="x") for p in (*shared, ambiguous, invalid)]
    problems.append(_without_foreign_keys(openmrs, lambda: clinic.b.obs(888888, clinic.note, value_text="x")))
    with caplog.at_level(logging.WARNING, logger="passport_sync"):
        run_sync(settings)
    assert {obs_id: bool(problem_messages(caplog, obs_id)) for obs_id in problems} == dict.fromkeys(problems, True)


def test_obs_of_a_missing_encounter_is_named_and_not_written(
    clinic: Clinic, passport: Any, settings: Any, openmrs: OpenMRSDatabase, caplog: pytest.LogCaptureFixture
) -> None:
    neighbour, neighbour_obs = good_neighbours(clinic, passport)
    person = openmrs.execute("SELECT patient_id FROM patient")[0][0]
    broken = _without_foreign_keys(
        openmrs,
        lambda: clinic.b.obs(person, clinic.note, encounter_id=777777, obs_datetime=clinic.when, value_text="x"),
    )
    with caplog.at_level(logging.WARNING, logger="passport_sync"):
        report = run_sync(settings)[0]
    assert report.outcome == "ok"
    assert_neighbours_synced(passport, neighbour, neighbour_obs)
    assert records_of(passport, broken) == []
    assert problem_messages(caplog, broken) != []


# -- text ----------------------------------------------------------------------------------------------------
def test_65535_byte_text_values_are_written_whole(
    clinic: Clinic, passport: Any, settings: Any, openmrs: OpenMRSDatabase
) -> None:
    patient_id, neighbour_obs = good_neighbours(clinic, passport)
    person = openmrs.execute("SELECT patient_id FROM patient")[0][0]
    texts = ["a" * 65535, "é" * 32767 + "a", "😀" * 16383 + "abc"]  # each exactly 65,535 bytes of UTF-8
    assert {len(t.encode()) for t in texts} == {65535}
    obs = [clinic.b.obs(person, clinic.note, value_text=t) for t in texts]
    assert [len(v) for (v,) in openmrs.execute("SELECT value_text FROM obs WHERE obs_id >= %s", (obs[0],))] == [
        len(t) for t in texts
    ]
    report = run_sync(settings)[0]
    assert report.outcome == "ok"
    for obs_id, text in zip(obs, texts, strict=True):
        (record,) = records_of(passport, obs_id)
        assert record["data"]["details"] == text
        assert record["patientId"] == patient_id
    assert_neighbours_synced(passport, patient_id, neighbour_obs)


def test_latin1_text_columns_arrive_as_unicode(
    clinic: Clinic, passport: Any, settings: Any, openmrs: OpenMRSDatabase
) -> None:
    # A database created long ago with latin1 tables: the server converts to the sync's utf8mb4.
    openmrs.execute(
        "ALTER TABLE obs MODIFY value_text TEXT CHARACTER SET latin1, MODIFY comments VARCHAR(255) CHARACTER SET latin1"
    )
    patient_id, neighbour_obs = good_neighbours(clinic, passport)
    person = openmrs.execute("SELECT patient_id FROM patient")[0][0]
    obs = clinic.b.obs(person, clinic.note, value_text="Café crème, naïve façade: 37°C ±0.5 £5 ÿ", comments="Señor")
    assert openmrs.execute("SELECT HEX(value_text) FROM obs WHERE obs_id = %s", (obs,))[0][0].startswith("436166E9")
    report = run_sync(settings)[0]
    assert report.outcome == "ok"
    (record,) = records_of(passport, obs)
    assert record["data"]["details"] == "Café crème, naïve façade: 37°C ±0.5 £5 ÿ"
    assert record["data"]["notes"] == "Señor"
    assert_neighbours_synced(passport, patient_id, neighbour_obs)


def test_text_that_is_not_utf8_is_named_and_not_written(
    clinic: Clinic, passport: Any, settings: Any, openmrs: OpenMRSDatabase, caplog: pytest.LogCaptureFixture
) -> None:
    openmrs.execute("ALTER TABLE obs MODIFY value_text MEDIUMBLOB")
    patient_id, neighbour_obs = good_neighbours(clinic, passport)
    person = openmrs.execute("SELECT patient_id FROM patient")[0][0]
    valid = clinic.b.obs(person, clinic.note, value_text="x")
    openmrs.execute("UPDATE obs SET value_text = %s WHERE obs_id = %s", ("Café".encode(), valid))
    broken = clinic.b.obs(person, clinic.note, value_text="x")
    openmrs.execute("UPDATE obs SET value_text = %s WHERE obs_id = %s", (b"A\xc3(\xff\xfeB", broken))
    with caplog.at_level(logging.WARNING, logger="passport_sync"):
        report = run_sync(settings)[0]
    assert report.outcome == "ok"
    assert_neighbours_synced(passport, patient_id, neighbour_obs)
    assert [r["data"]["details"] for r in records_of(passport, valid)] == ["Café"]
    assert records_of(passport, broken) == []
    assert problem_messages(caplog, broken) != []


# -- dates ---------------------------------------------------------------------------------------------------
NULL_DATES = {
    # Legacy data loaded with sql_mode='' (MySQL then stores a zero date in a NOT NULL column).
    "zero obs_datetime": ("SET SESSION sql_mode = ''", "UPDATE obs SET obs_datetime = '0000-00-00 00:00:00'"),
    # A schema whose obs_datetime / date_created allow NULL (hand-altered or very old).
    "NULL obs_datetime": ("ALTER TABLE obs MODIFY obs_datetime DATETIME NULL", "UPDATE obs SET obs_datetime = NULL"),
    "NULL date_created": ("ALTER TABLE obs MODIFY date_created DATETIME NULL", "UPDATE obs SET date_created = NULL"),
    "zero value_datetime": ("SET SESSION sql_mode = ''", "UPDATE obs SET value_datetime = '0000-00-00 00:00:00'"),
}


@pytest.mark.parametrize("case", list(NULL_DATES))
def test_null_and_zero_dates_are_named_and_the_run_goes_on(
    case: str,
    make_openmrs: Any,
    passport: Any,
    mongo_uri: str,
    mongo_db_name: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    broken_db, other_db = make_openmrs(), make_openmrs()
    clinic = Clinic(broken_db)
    patient_id, neighbour_obs = good_neighbours(clinic, passport)
    person = broken_db.execute("SELECT patient_id FROM patient")[0][0]
    date_concept = clinic.b.concept("Date of onset", datatype="Date")
    broken = clinic.b.obs(person, date_concept, value_datetime=clinic.when)
    neighbour_obs.append(clinic.b.obs(person, clinic.note, value_text="neighbour after"))
    prepare, update = NULL_DATES[case]
    broken_db.execute(prepare)
    broken_db.execute(update + " WHERE obs_id = %s", (broken,))
    other = Clinic(other_db)
    other_person = other.patient("1888888888888")
    other_patient = register_patient(passport, "1888888888888")
    other_obs = other.visit(other_person)
    settings = make_settings(
        mongo_uri,
        mongo_db_name,
        [hospital_entry(broken_db.name), hospital_entry(other_db.name, hospital_id="other", name="Other Hospital")],
        batch_size=50,
    )
    with caplog.at_level(logging.WARNING, logger="passport_sync"):
        reports = run_sync(settings)
    assert [r.outcome for r in reports] == ["ok", "ok"]
    assert records_of(passport, broken) == []
    assert problem_messages(caplog, broken) != []
    assert_neighbours_synced(passport, patient_id, neighbour_obs)
    assert passport.medicalrecords.count_documents(synced({"patientId": other_patient})) == len(other_obs)


# -- concepts without an English name ------------------------------------------------------------------------
def test_concept_without_an_english_name_uses_another_name(
    clinic: Clinic, passport: Any, settings: Any, openmrs: OpenMRSDatabase
) -> None:
    patient_id, neighbour_obs = good_neighbours(clinic, passport)
    person = openmrs.execute("SELECT patient_id FROM patient")[0][0]
    french = clinic.b.concept("unused", names={"fr": "Poids de naissance", "rw": "Ibiro"}, datatype="Text")
    nameless = clinic.b.concept("unused", names={}, datatype="Text")
    obs_fr = clinic.b.obs(person, french, value_text="3.2 kg")
    obs_none = clinic.b.obs(person, nameless, value_text="something")
    report = run_sync(settings)[0]
    assert report.outcome == "ok"
    assert [r["data"]["name"] for r in records_of(passport, obs_fr)] == ["Poids de naissance"]
    assert [r["data"]["name"] for r in records_of(passport, obs_none)] == [f"Concept {nameless}"]
    assert_neighbours_synced(passport, patient_id, neighbour_obs)


# -- the YAML file -------------------------------------------------------------------------------------------
def _invoke(config: Path, *args: str) -> Any:
    return runner.invoke(app, ["sync-all", "--config", str(config), *args], env={})


def test_malformed_yaml_is_named_by_line_and_nothing_runs(tmp_path: Path, passport: Any) -> None:
    config = tmp_path / "hospitals.yaml"
    config.write_text("hospitals:\n  - id: central\n    name: Central\n   db: {host: x\n")
    result = _invoke(config)
    assert result.exit_code == 2
    assert "error: invalid configuration" in result.stderr
    assert f"{config}: line 4, column 4" in result.stderr
    assert "fix the YAML syntax" in result.stderr


def test_unknown_keys_duplicate_keys_and_duplicate_hospital_ids_are_named(
    tmp_path: Path, openmrs: OpenMRSDatabase, mongo_uri: str, mongo_db_name: str, passport: Any
) -> None:
    unknown = config_file(
        tmp_path / "unknown.yaml",
        f"{mongo_uri}/{mongo_db_name}",
        [hospital_entry(openmrs.name, colour="blue")],
        batchsize=5,
    )
    result = _invoke(unknown)
    assert result.exit_code == 2
    assert "  - sync.batchsize: unknown key; remove it or check its spelling" in result.stderr
    assert "  - hospitals[0].colour: unknown key; remove it or check its spelling" in result.stderr

    duplicate = config_file(
        tmp_path / "duplicate.yaml",
        f"{mongo_uri}/{mongo_db_name}",
        [hospital_entry(openmrs.name, hospital_id="central"), hospital_entry(openmrs.name, hospital_id="central")],
    )
    result = _invoke(duplicate)
    assert result.exit_code == 2
    assert "hospitals[1].id: duplicate hospital id 'central' (also hospitals[0])" in result.stderr

    repeated = tmp_path / "repeated.yaml"
    repeated.write_text(duplicate.read_text().replace("  name: Central Hospital\n", "  name: A\n  name: B\n", 1))
    result = _invoke(repeated)
    assert result.exit_code == 2
    assert "duplicate key 'name'" in result.stderr
    assert untouched(passport)  # nothing was written


def test_inline_password_in_a_world_readable_file_warns_and_the_run_goes_on(
    clinic: Clinic, passport: Any, openmrs: OpenMRSDatabase, mongo_uri: str, mongo_db_name: str, tmp_path: Path
) -> None:
    person = clinic.patient("1777777777777")
    register_patient(passport, "1777777777777")
    clinic.visit(person)
    entry = hospital_entry(openmrs.name)
    entry["db"]["password"] = ""  # root's real (empty) password does not count as one
    quiet = config_file(tmp_path / "quiet.yaml", f"{mongo_uri}/{mongo_db_name}", [entry], mode=0o644)
    assert "inline database password" not in _invoke(quiet).stderr

    entry["db"]["user"] = "ps_nobody"
    entry["db"]["password"] = "an-inline-password"
    readable = config_file(tmp_path / "readable.yaml", f"{mongo_uri}/{mongo_db_name}", [entry], mode=0o644)
    result = runner.invoke(app, ["status", "--config", str(readable)], env={})
    assert result.exit_code == 1, result.output  # the run goes on; ps_nobody cannot log in to OpenMRS
    assert "cannot count what is behind" in result.stdout
    assert f"{readable} holds an inline database password and is readable by every user" in result.stderr
    assert f"run 'chmod o-rwx {readable}'" in result.stderr
    assert "an-inline-password" not in result.output + result.stderr
    private = config_file(tmp_path / "private.yaml", f"{mongo_uri}/{mongo_db_name}", [entry], mode=0o640)
    assert "readable by every user" not in runner.invoke(app, ["status", "--config", str(private)], env={}).stderr
