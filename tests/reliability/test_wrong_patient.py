"""Never the wrong patient: an observation is attached by national ID only, never by name, and never
to a Passport patient whose national ID differs from the OpenMRS one after normalisation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from passport_sync import parking
from passport_sync.cli import app
from tests.conftest import OpenMRSDatabase, hospital_entry, make_settings, register_patient
from tests.helpers import Clinic, run_sync, synced, write_config
from tests.reliability.support import HOSPITAL, assert_every_record_on_the_right_patient, digits_of

pytestmark = pytest.mark.reliability

runner = CliRunner()


def _records(passport: Any, patient_id: str) -> list[dict[str, Any]]:
    return list(passport.medicalrecords.find(synced({"patientId": patient_id})))


def test_an_observation_is_never_attached_by_name(
    openmrs: OpenMRSDatabase, passport: Any, mongo_uri: str, mongo_db_name: str, figures: Any
) -> None:
    clinic = Clinic(openmrs)
    # Two Passport patients called Marie Reine, and a Jean Bosco.
    marie_1 = register_patient(passport, "4100000000001", name="Marie Reine")
    marie_2 = register_patient(passport, "4100000000002", name="Marie Reine")
    jean = register_patient(passport, "4100000000009", name="Jean Bosco")
    # OpenMRS patients called Marie Reine whose national ID is not one of theirs, or missing, or invalid.
    same_name = {
        "another national ID": clinic.patient("4100000000003", given="Marie", family="Reine"),
        "no national ID": clinic.patient(None, given="Marie", family="Reine"),
        "invalid national ID": clinic.patient("41000000000O1", given="Marie", family="Reine"),
    }
    # … and OpenMRS patients whose names differ from the Passport patient holding their ID.
    by_id = {
        marie_1: clinic.patient("4100-0000-00001", given="Jean", family="Bosco"),
        jean: clinic.patient("4100000000009", given="Marie", family="Reine"),
    }
    obs = {person: clinic.visit(person) for person in [*same_name.values(), *by_id.values()]}

    settings = make_settings(mongo_uri, mongo_db_name, [hospital_entry(openmrs.name)], batch_size=50)
    for _ in range(2):  # a second run changes nothing
        assert run_sync(settings)[0].outcome == "ok"

    expected_park = {
        "another national ID": parking.NOT_IN_PASSPORT,
        "no national ID": parking.NO_NATIONAL_ID,
        "invalid national ID": parking.INVALID_NATIONAL_ID,
    }
    for case, person in same_name.items():
        for obs_id in obs[person]:
            assert passport.medicalrecords.count_documents(synced({"openmrsData.obsId": obs_id})) == 0, case
            assert passport.openmrs_sync_parked.find_one({"obsId": obs_id})["reason"] == expected_park[case], case
    for patient_id, person in by_id.items():
        assert sorted(r["openmrsData"]["obsId"] for r in _records(passport, patient_id)) == sorted(obs[person])
    assert _records(passport, marie_2) == []
    checked = assert_every_record_on_the_right_patient(passport, openmrs, HOSPITAL)
    assert checked == 4
    figures.record(
        "test_wrong_patient",
        "same names, different or missing national IDs",
        injected=len(same_name) * 2,
        expected=4,
        found=checked,
        duplicated=0,
        missing=0,
        outcome="none attached by name",
    )


# (OpenMRS identifier, a Passport patient's national ID that looks alike but is another number)
NEAR_MISSES = [
    ("04200000000101", "4200000000101"),  # a leading zero more
    ("4200000000201", "04200000000201"),  # a leading zero less
    ("4200000000301", "4200000000302"),  # one digit changed
    ("4200000000401", "4200000000410"),  # two digits swapped
    ("4200000000501", "42000000005011"),  # one digit more
    ("42000000006011", "4200000000601"),  # one digit less
    ("٤٢٠٠٠٠٠٠٠٠٧٠١", "4200000000701"),  # Arabic-Indic digits
    ("４２００００００００８０１", "4200000000801"),  # fullwidth digits
    ("⁴²⁰⁰⁰⁰⁰⁰⁰⁰⁹⁰¹", "4200000000901"),  # superscript digits (str.isdigit() says yes)
    ("42000000010O1", "4200000001001"),  # letter O for zero
    ("420000000110l", "4200000001101"),  # letter l for one
    ("+4200000001201", "4200000001201"),  # a plus sign
    ("4200\u20130000\u201301301", "4200000001301"),  # en dashes
    ("4200000001401#", "4200000001401"),  # a trailing symbol
]
# Separators a clerk types: the same number, attached.
SAME_NUMBER = [("4200 0000 02001", "4200000002001"), ("4200-000.002/101", "4200000002101")]


def test_an_observation_is_never_attached_when_the_national_ids_differ_after_normalisation(
    openmrs: OpenMRSDatabase, passport: Any, mongo_uri: str, mongo_db_name: str, tmp_path: Path, figures: Any
) -> None:
    clinic = Clinic(openmrs)
    near = []
    for raw, other in NEAR_MISSES:
        assert digits_of(raw) != other
        near.append((raw, other, register_patient(passport, other), clinic.visit(clinic.patient(raw))))
    same = []
    for raw, digits in SAME_NUMBER:
        assert digits_of(raw) == digits
        same.append((raw, register_patient(passport, digits), clinic.visit(clinic.patient(raw))))

    config = write_config(
        tmp_path / "hospitals.yaml", mongo_uri, mongo_db_name, [hospital_entry(openmrs.name)], batch_size=50
    )
    result = runner.invoke(app, ["sync-all", "--config", str(config), "--json"], env={})
    assert result.exit_code == 0, result.output
    # sync-patient with the look-alike number (its SQL compares with the column's collation, which
    # equates other scripts' digits with ASCII ones) must not pull the other person's observations.
    for _, other, _, _ in near:
        result = runner.invoke(app, ["sync-patient", other, "--config", str(config), "--json"], env={})
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["hospitals"][0]["written"] == 0, other

    for raw, _, patient_id, obs in near:
        assert _records(passport, patient_id) == [], raw
        for obs_id in obs:
            assert passport.medicalrecords.count_documents(synced({"openmrsData.obsId": obs_id})) == 0, raw
            assert passport.openmrs_sync_parked.count_documents({"obsId": obs_id}) == 1, raw
    for raw, patient_id, obs in same:
        assert sorted(r["openmrsData"]["obsId"] for r in _records(passport, patient_id)) == sorted(obs), raw
    checked = assert_every_record_on_the_right_patient(passport, openmrs, HOSPITAL)
    assert checked == 2 * len(SAME_NUMBER)
    figures.record(
        "test_wrong_patient",
        "look-alike national IDs (sync-all and sync-patient)",
        injected=len(NEAR_MISSES),
        expected=2 * len(SAME_NUMBER),
        found=checked,
        duplicated=0,
        missing=0,
        parked_expected=2 * len(NEAR_MISSES),
        parked_found=passport.openmrs_sync_parked.count_documents({}),
        outcome="none attached to a look-alike",
    )
