"""Round trips of an idle run of one hospital (nothing new in OpenMRS), counted by the tracer."""

from __future__ import annotations

from typing import Any

from passport_sync import tracing
from tests.conftest import hospital_entry, make_settings, register_patient
from tests.helpers import run_sync


def test_idle_run_round_trips(clinic: Any, openmrs: Any, passport: Any, mongo_uri: str, mongo_db_name: str) -> None:
    person = clinic.patient("1199780012345678")
    register_patient(passport, "1199780012345678")
    clinic.visit(person, weights=3)
    clinic.patient("1199780012345679")  # a patient not in the Passport: parked rows
    settings = make_settings(mongo_uri, mongo_db_name, [hospital_entry(openmrs.name, hospital_id="h-idle")])
    [first] = run_sync(settings)
    assert first.outcome == "ok"
    counter = tracing.CallCounter()
    with tracing.traced(counter):
        [idle] = run_sync(settings)
    assert idle.outcome == "ok"
    print("MYSQL", counter.of_hospital(tracing.MYSQL, "h-idle"), counter.purposes(tracing.MYSQL))
    print("MONGO", counter.of_hospital(tracing.MONGODB, "h-idle"), counter.purposes(tracing.MONGODB))
    assert False
