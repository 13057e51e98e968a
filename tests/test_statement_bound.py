"""The statement-count bound of the benchmark (scripts/bench.py), checked on a few thousand
observations: at most 5 MySQL statements and 8 MongoDB commands per 1000 observations synced.

Counts only, never times, through the tracer hook. The data comes from the benchmark's own
generator (passport_sync.synthetic: encounters of 5-20 obs, vitals, diagnoses, notes, groups,
drugs, voids, edits, ~10% of patients not in Patient Passport).
"""

from __future__ import annotations

from typing import Any

from passport_sync.synthetic.counting import counted_sync
from passport_sync.synthetic.hospital import SyntheticHospital
from passport_sync.synthetic.population import UNREGISTERED_SHARE, make_population
from passport_sync.synthetic.registration import register_population
from tests.conftest import hospital_entry, make_settings

OBSERVATIONS = 3000
PATIENTS = 400
MYSQL_PER_1000 = 5
# Per batch of new rows: patient lookup, insert, links, parking, and the checkpoint (which also keeps
# the encounters the batch made due); nothing is read or deleted for rows above the touched mark.
# Per run: the visit records (read a hundred encounters at a time, write, medication lists, links),
# which grow with the encounters a run touches.
MONGO_PER_1000 = 8


def test_each_1000_observations_cost_at_most_5_statements_and_8_commands(
    openmrs: Any, passport: Any, mongo_uri: str, mongo_db_name: str
) -> None:
    """The cost that grows with N: statements per 1000 observations, measured as the difference
    between a run that syncs 3000 new observations and one that syncs 1000. A run also has a fixed
    cost per hospital (lock, checkpoint, schema, probe, the change windows' digest and read, audit
    log), which is what a tiny backfill mostly measures; both runs pay it, so it cancels out. (A run
    with nothing new is no baseline: it skips the change read that every run with voids pays.)"""
    population = make_population(PATIENTS, seed=7)
    hospital = SyntheticHospital(openmrs.conn, population, index=0, hospitals=1, seed=7)
    hospital.setup()
    register_population(passport, population)
    settings = make_settings(mongo_uri, mongo_db_name, [hospital_entry(openmrs.name)], batch_size=1000)

    def counted() -> tuple[Any, int, int]:
        result = counted_sync(settings)
        [report] = result.reports
        assert report["outcome"] == "ok", report["errors"]
        return report, result.mysql_statements, result.mongo_commands

    first = hospital.add_obs(OBSERVATIONS)
    assert first.voided and first.edited and first.groups
    counted()  # the first run also creates indexes, placeholders and checkpoints
    fewer = hospital.add_obs(OBSERVATIONS // 3)
    assert fewer.voided and fewer.rows == OBSERVATIONS // 3
    _, mysql_fewer, mongo_fewer = counted()
    generated = hospital.add_obs(OBSERVATIONS)
    assert generated.rows == OBSERVATIONS
    report, mysql_busy, mongo_busy = counted()
    assert report["written"] > 0.8 * OBSERVATIONS * (1 - UNREGISTERED_SHARE) - generated.voided
    assert report["parked"] > 0

    added = OBSERVATIONS - fewer.rows
    mysql_per_1000 = (mysql_busy - mysql_fewer) * 1000 / added
    mongo_per_1000 = (mongo_busy - mongo_fewer) * 1000 / added
    assert mysql_per_1000 <= MYSQL_PER_1000, (mysql_busy, mysql_fewer)
    assert mongo_per_1000 <= MONGO_PER_1000, (mongo_busy, mongo_fewer)
