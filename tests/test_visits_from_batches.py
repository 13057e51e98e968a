"""Visit records built from the batches of a hospital's first run, with no read-back, equal the
ones the rebuild path builds by reading the encounters' records back; and the MongoDB commands
that saves, counted by the tracer hook (counts, never times).

The same OpenMRS data (the benchmark's generator: encounters of 5-20 observations with groups,
coded diagnoses, drugs, voids and edits) is synced into two Passport databases: once as sync-all
does it, once with building from batches switched off, so that every encounter goes through the
rebuild path. Batches of 100 rows, so that encounters span batches; visits built 5 encounters at
a time (builds in the middle of the feed and at its end), and as many at a time as sync-all does
(one build at the end of this small feed: the commands compare one for one with the rebuild's).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pymongo
import pytest

from passport_sync import pipeline
from passport_sync.config import Settings
from passport_sync.mapping.visits import DERIVED_SOURCES
from passport_sync.synthetic.counting import counted_sync
from passport_sync.synthetic.hospital import SyntheticHospital
from passport_sync.synthetic.population import make_population
from passport_sync.synthetic.registration import register_population
from tests.conftest import hospital_entry, make_settings

OBSERVATIONS = 1500
PATIENTS = 60
# Fields set from the clock of the run that wrote them.
CLOCK_FIELDS = ("createdAt", "updatedAt")
READ_BACK = "reading records of encounters"


@pytest.fixture
def rebuilt_db(mongo_uri: str) -> Iterator[tuple[str, Any]]:
    """A second Passport database, for the sync through the rebuild path."""
    client: pymongo.MongoClient[Any] = pymongo.MongoClient(mongo_uri)
    name = f"pstest_{secrets.token_hex(4)}"
    try:
        yield name, client[name]
    finally:
        client.drop_database(name)
        client.close()


def _comparable(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k not in CLOCK_FIELDS}


def _derived_and_conditions(db: Any) -> dict[Any, dict[str, Any]]:
    """Every visit and prescription record, and every condition (its medication list)."""
    query = {"$or": [{"openmrsData.source": {"$in": list(DERIVED_SOURCES)}}, {"type": "condition"}]}
    return {d["_id"]: _comparable(d) for d in db.medicalrecords.find(query)}


def _purposes(counted: Any) -> dict[str, int]:
    found: dict[str, int] = {}
    for purpose, n in counted.mongo_by_purpose.items():
        found[purpose.split("/")[0]] = found.get(purpose.split("/")[0], 0) + n
    return found


@pytest.mark.parametrize("build_at", [5, pipeline.ENCOUNTERS_BUILT_AT_ONCE])
def test_visit_records_built_from_the_batches_equal_the_rebuilt_ones_and_save_the_read_back(
    build_at: int,
    openmrs: Any,
    passport: Any,
    mongo_uri: str,
    mongo_db_name: str,
    rebuilt_db: tuple[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    population = make_population(PATIENTS, seed=11)
    hospital = SyntheticHospital(openmrs.conn, population, index=0, hospitals=1, seed=11)
    hospital.setup()
    generated = hospital.add_obs(OBSERVATIONS)
    assert generated.groups and generated.kinds["drug"] and generated.edited
    rebuilt_name, rebuilt = rebuilt_db
    register_population(passport, population)
    register_population(rebuilt, population)
    for doc in passport.patients.find():  # the same patients (ids) in both
        rebuilt.patients.replace_one({"nationalId": doc["nationalId"]}, doc)
    monkeypatch.setattr(pipeline, "ENCOUNTERS_BUILT_AT_ONCE", build_at)

    def sync(db_name: str) -> Any:
        settings: Settings = make_settings(mongo_uri, db_name, [hospital_entry(openmrs.name)], batch_size=100)
        counted = counted_sync(settings)
        [report] = counted.reports
        assert report["outcome"] == "ok", report["errors"]
        return counted

    from_batches = sync(mongo_db_name)
    monkeypatch.setattr(pipeline.HospitalSync, "_builds_visits_from_batches", lambda self: False)
    through_rebuild = sync(rebuilt_name)

    built, expected = _derived_and_conditions(passport), _derived_and_conditions(rebuilt)
    visits = [d for d in expected.values() if d["type"] == "visit"]
    assert len(visits) >= generated.encounters * 0.8
    assert any(d["data"].get("medications") for d in expected.values())  # medication lists too
    assert built.keys() == expected.keys()
    differing = [rid for rid in expected if built[rid] != expected[rid]]
    assert not differing, (len(differing), built[differing[0]], expected[differing[0]])
    # Everything else the same too: the same records, the same patients.
    assert passport.medicalrecords.count_documents({}) == rebuilt.medicalrecords.count_documents({})

    # No encounter's records are read back. Built at most as many at a time as the rebuild path
    # takes (a batch's worth), the visits cost no more writes of any kind: the commands saved are
    # the reads, and a write per chunk of the rebuild's beyond the first.
    batches, rebuild = _purposes(from_batches), _purposes(through_rebuild)
    assert READ_BACK not in batches, batches
    assert rebuild[READ_BACK] >= len(visits) / 100
    if build_at >= len(visits):
        saved = through_rebuild.mongo_commands - from_batches.mongo_commands
        diff = {k: rebuild.get(k, 0) - batches.get(k, 0) for k in rebuild.keys() | batches.keys()}
        assert all(n >= 0 for n in diff.values()), diff
        assert saved >= rebuild[READ_BACK] > 0, diff
        assert from_batches.mysql_statements <= through_rebuild.mysql_statements
