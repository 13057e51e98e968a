"""The tracer hook in the adapters: every MySQL statement and MongoDB command of a real sync is
reported once, named after what it was for and the hospital it was for."""

from __future__ import annotations

from typing import Any

from passport_sync import tracing
from passport_sync.source.openmrs import OpenMRSSource
from tests.conftest import hospital_entry, make_settings, register_patient
from tests.helpers import run_sync


def test_each_round_trip_of_a_sync_is_reported_with_its_purpose_and_hospital(
    clinic: Any, openmrs: Any, passport: Any, mongo_uri: str, mongo_db_name: str
) -> None:
    person = clinic.patient("1199780012345678")
    register_patient(passport, "1199780012345678")
    clinic.visit(person, weights=3)
    settings = make_settings(mongo_uri, mongo_db_name, [hospital_entry(openmrs.name, hospital_id="h-traced")])
    sources: list[OpenMRSSource] = []

    def source_factory(hospital: Any, effective: Any) -> OpenMRSSource:
        source = OpenMRSSource(hospital, effective.sync.retry)
        sources.append(source)
        return source

    counter = tracing.CallCounter()
    with tracing.traced(counter):
        [report] = run_sync(settings, source_factory=source_factory)
    assert report.outcome == "ok", report.errors
    assert report.written >= 3

    statements = sum(s.statements for s in sources)
    assert counter.total(tracing.MYSQL) == statements > 0
    assert counter.of_hospital(tracing.MYSQL, "h-traced") == statements
    mysql = counter.purposes(tracing.MYSQL)
    assert mysql["obs_after"] == 1  # the page with the visit; it reaches the probed head, so no more
    assert "schema" in mysql and "identities" in mysql

    mongo = counter.purposes(tracing.MONGODB)
    # The run-wide setup (indexes) is for no hospital; the rest is this hospital's.
    assert 0 < counter.of_hospital(tracing.MONGODB, "h-traced") < counter.total(tracing.MONGODB)
    assert any("lock" in purpose for purpose in mongo), mongo
    # After the block, nothing more is counted.
    before = counter.total(tracing.MYSQL)
    run_sync(settings, source_factory=source_factory)
    assert counter.total(tracing.MYSQL) == before


def test_without_a_listener_nothing_is_kept() -> None:
    counter = tracing.CallCounter()
    tracing.report(tracing.MYSQL, "anything", 0.1, "h")
    with tracing.traced(counter):
        with tracing.on_behalf_of("h-1"):
            tracing.report(tracing.MONGODB, "find", 0.2)
        tracing.report(tracing.MYSQL, "obs_after", 0.1, "h-2")
    tracing.report(tracing.MYSQL, "obs_after", 0.1, "h-2")
    assert counter.calls == {(tracing.MONGODB, "find"): 1, (tracing.MYSQL, "obs_after"): 1}
    assert counter.of_hospital(tracing.MONGODB, "h-1") == 1
