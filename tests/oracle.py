"""The reconciliation oracle: random in-place changes, then compare with a fresh full sync.

A seeded, reproducible sequence of what sites do (new observations and orders, edits, voids,
unvoids, SQL merges, identifier corrections, patients registering in the app, order revisions,
discontinuations and their voids) is interleaved with ``sync-all`` runs; then ``reconcile``. The
Passport must then equal, record for record (owner, presence, type and values), what a fresh
full sync of the final OpenMRS state into an empty Passport produces, and so must the parked rows.
"""

from __future__ import annotations

import random
import secrets
from dataclasses import dataclass, field
from typing import Any

import pymongo

from passport_sync import service
from passport_sync.config import Settings
from passport_sync.sink.passport import PassportStore
from tests.conftest import OpenMRSDatabase, hospital_entry, make_settings, register_patient, start_passport_backend
from tests.helpers import Clinic, run_sync

NUMBERS = [f"12000000000{i:02d}" for i in range(12)]


@dataclass
class World:
    clinic: Clinic
    passport: Any
    rng: random.Random
    persons: list[int] = field(default_factory=list)
    registered: set[str] = field(default_factory=set)
    voided_by_us: set[int] = field(default_factory=set)
    orders: list[int] = field(default_factory=list)
    log: list[str] = field(default_factory=list)
    # Each national ID given to one person only: a number given to a second person makes the first
    # one's records ambiguous, an in-place change that only reconciliation re-decides.
    unique_numbers: bool = False
    given: set[str] = field(default_factory=set)

    @property
    def db(self) -> OpenMRSDatabase:
        return self.clinic.db

    def live(self, sql: str, *params: Any) -> list[int]:
        return [int(r[0]) for r in self.db.execute(sql, params)]

    # -- what sites do -----------------------------------------------------------------------------
    def new_person(self) -> None:
        number = self.rng.choice([*(n for n in NUMBERS if not (self.unique_numbers and n in self.given)), None])
        if number:
            self.given.add(number)
        self.persons.append(self.clinic.patient(number))

    def register(self) -> None:
        number = self.rng.choice([n for n in NUMBERS if n not in self.registered] or [None])
        if number:
            register_patient(self.passport, number)
            self.registered.add(number)

    def visit(self) -> None:
        person = self.rng.choice(self.persons)
        self.clinic.visit(person, weights=self.rng.randint(0, 2))

    def edit(self) -> None:
        live = self.live("SELECT obs_id FROM obs WHERE voided = 0 AND value_numeric IS NOT NULL")
        if live:
            self.clinic.b.edit_obs(self.rng.choice(live), value_numeric=self.rng.randint(30, 120))

    def void(self) -> None:
        live = self.live("SELECT obs_id FROM obs WHERE voided = 0")
        if live:
            obs_id = self.rng.choice(live)
            self.clinic.b.void_obs(obs_id)
            self.voided_by_us.add(obs_id)

    def unvoid(self) -> None:
        # Only plain voids: an edited obs stays voided in OpenMRS (its new version replaces it).
        voided = sorted(self.voided_by_us)
        if voided:
            obs_id = self.rng.choice(voided)
            self.voided_by_us.discard(obs_id)
            self.db.execute(
                "UPDATE obs SET voided = 0, voided_by = NULL, date_voided = NULL, void_reason = NULL WHERE obs_id = %s",
                (obs_id,),
            )

    def sql_merge(self) -> None:
        if len(self.persons) < 2:
            return
        loser, winner = self.rng.sample(self.persons, 2)
        for table, column in (("obs", "person_id"), ("encounter", "patient_id"), ("orders", "patient_id")):
            self.db.execute(f"UPDATE {table} SET {column} = %s WHERE {column} = %s", (winner, loser))
        self.db.execute("UPDATE patient SET voided = 1, date_voided = NOW() WHERE patient_id = %s", (loser,))
        self.persons.remove(loser)

    def correct_identifier(self) -> None:
        person = self.rng.choice(self.persons)
        number = self.rng.choice(NUMBERS)
        if self.live("SELECT patient_identifier_id FROM patient_identifier WHERE patient_id = %s", person):
            self.db.execute("UPDATE patient_identifier SET identifier = %s WHERE patient_id = %s", (number, person))

    def order(self) -> None:
        person = self.rng.choice(self.persons)
        encounter = self.clinic.b.encounter(
            person, location_id=self.clinic.location, provider_ids=[self.clinic.provider]
        )
        self.orders.append(
            self.clinic.b.drug_order(encounter, self.clinic.provider, concept_id=self.clinic.diabetes, dose=1)
        )

    def follow_up_order(self) -> None:
        """A revision or a discontinuation of an active order: the previous one stops."""
        active = self.live(
            "SELECT order_id FROM orders WHERE voided = 0 AND date_stopped IS NULL AND order_action <> 'DISCONTINUE'"
        )
        if not active:
            return
        previous = self.rng.choice(active)
        person, encounter = self.db.execute(
            "SELECT patient_id, encounter_id FROM orders WHERE order_id = %s", (previous,)
        )[0]
        action = self.rng.choice(["REVISE", "DISCONTINUE"])
        new = self.clinic.b.drug_order(
            encounter,
            self.clinic.provider,
            concept_id=self.clinic.diabetes,
            dose=2,
            order_action=action,
            previous_order_id=previous,
        )
        self.db.execute("UPDATE orders SET patient_id = %s WHERE order_id = %s", (person, new))
        self.db.execute("UPDATE orders SET date_stopped = NOW() WHERE order_id = %s", (previous,))
        self.orders.append(new)

    def void_follow_up(self) -> None:
        """OrderServiceImpl.voidOrder on a revision or discontinuation: the previous order is active again."""
        follow_ups = self.live(
            "SELECT order_id FROM orders WHERE voided = 0 AND previous_order_id IS NOT NULL"
            " AND order_action IN ('REVISE', 'DISCONTINUE')"
        )
        if follow_ups:
            order_id = self.rng.choice(follow_ups)
            self.db.execute("UPDATE orders SET voided = 1, date_voided = NOW() WHERE order_id = %s", (order_id,))
            self.db.execute(
                "UPDATE orders SET date_stopped = NULL WHERE order_id = (SELECT previous_order_id FROM"
                " (SELECT previous_order_id FROM orders WHERE order_id = %s) AS o)",
                (order_id,),
            )


OPERATIONS = (
    ("new_person", 2),
    ("register", 2),
    ("visit", 6),
    ("edit", 2),
    ("void", 2),
    ("unvoid", 2),
    ("sql_merge", 1),
    ("correct_identifier", 2),
    ("order", 3),
    ("follow_up_order", 2),
    ("void_follow_up", 1),
)
# What leaves a trace sync-all follows on its own (new rows, void and change times, registrations
# in the Passport): no in-place change that only reconciliation finds.
IN_PLACE = {"unvoid", "sql_merge", "correct_identifier", "void_follow_up"}
TRACED_OPERATIONS = tuple((name, weight) for name, weight in OPERATIONS if name not in IN_PLACE)


def snapshot(db: Any, hospital_id: str) -> tuple[dict[Any, tuple[Any, ...]], dict[str, str]]:
    """Records (owner, type, data) and parked rows (reason) of one hospital."""
    records = {
        d["_id"]: (d["patientId"], d["type"], d["data"])
        for d in db.medicalrecords.find({"openmrsData.hospitalId": hospital_id})
    }
    parked = {d["_id"]: d["reason"] for d in db.openmrs_sync_parked.find({"hospitalId": hospital_id})}
    return records, parked


def differences(live: Any, fresh: Any, hospital_id: str) -> list[str]:
    """What the reconciled Passport holds that a fresh full sync does not (and the reverse)."""
    live_records, live_parked = snapshot(live, hospital_id)
    fresh_records, fresh_parked = snapshot(fresh, hospital_id)
    problems = []
    for rid in sorted(live_records.keys() | fresh_records.keys()):
        if rid not in fresh_records:
            problems.append(f"record {rid} should not exist: {live_records[rid][:2]}")
        elif rid not in live_records:
            problems.append(f"record {rid} is missing: {fresh_records[rid][:2]}")
        else:
            owner, kind, data = live_records[rid]
            want_owner, want_kind, want_data = fresh_records[rid]
            # No doctor adds anything here, so every data field is the sync's and must match exactly.
            if (owner, kind, data) != (want_owner, want_kind, want_data):
                problems.append(f"record {rid} differs: {(owner, kind)} vs {(want_owner, want_kind)}")
    if live_parked != fresh_parked:
        problems.append(f"parked rows differ: {sorted(live_parked.items())} vs {sorted(fresh_parked.items())}")
    for patient in live.patients.find():
        linked = set(patient.get("medicalHistory", []))
        held = {rid for rid, (owner, _, _) in live_records.items() if owner == str(patient["_id"])}
        if linked != held:
            problems.append(f"patient {patient['_id']}: medicalHistory does not match the records it owns")
    return problems


def run_oracle(
    seed: int,
    openmrs: OpenMRSDatabase,
    mongo_uri: str,
    steps: int = 60,
    *,
    operations: tuple[tuple[str, int], ...] = OPERATIONS,
    reconcile: bool = True,
) -> list[str]:
    """Play ``steps`` random operations with sync-all runs between them, reconcile, compare.

    Without ``reconcile``, no reconciliation runs at all (not even sync-all's slices, nor the
    daily pass over parked rows after the first run): what sync-all does incrementally alone."""
    rng = random.Random(seed)
    client: pymongo.MongoClient[Any] = pymongo.MongoClient(mongo_uri)
    live_name, fresh_name = f"pstest_{secrets.token_hex(4)}", f"pstest_{secrets.token_hex(4)}"
    try:
        live = client[live_name]
        start_passport_backend(live)
        start_passport_backend(client[fresh_name])
        world = World(Clinic(openmrs), live, rng, unique_numbers=not reconcile)
        for _ in range(6):
            world.new_person()
        settings = make_settings(mongo_uri, live_name, [hospital_entry(openmrs.name)], batch_size=7)
        settings = _small_ranges(settings)
        if not reconcile:
            settings = settings.model_copy(
                update={"reconcile": settings.reconcile.model_copy(update={"full_pass_hours": 24 * 90})}
            )
        names = [name for name, weight in operations for _ in range(weight)]
        for step in range(steps):
            name = rng.choice(names)
            getattr(world, name)()
            world.log.append(name)
            if step % 5 == 4:
                run_sync(settings)
        run_sync(settings)
        if reconcile:
            _reconcile(settings)

        fresh = client[fresh_name]
        for patient in live.patients.find():
            fresh.patients.insert_one({**patient, "medicalHistory": [], "allergies": []})
        fresh_settings = _small_ranges(
            make_settings(mongo_uri, fresh_name, [hospital_entry(openmrs.name)], batch_size=7)
        )
        run_sync(fresh_settings)
        problems = differences(live, fresh, settings.hospitals[0].id)
        if problems:
            problems.append(f"seed {seed}: operations {world.log}")
        return problems
    finally:
        client.drop_database(live_name)
        client.drop_database(fresh_name)
        client.close()


def _small_ranges(settings: Settings) -> Settings:
    # Several ranges per source even for a small database, so range boundaries are exercised.
    return settings.model_copy(update={"reconcile": settings.reconcile.model_copy(update={"range_size": 10})})


def _reconcile(settings: Settings) -> None:
    store = PassportStore.connect(settings)
    try:
        reports = service.reconcile(settings, store, settings.enabled_hospitals())
        assert all(r.outcome == "ok" for r in reports), [r.errors for r in reports]
    finally:
        store.close()
