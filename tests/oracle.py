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
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pymongo

from passport_sync import service
from passport_sync.config import Settings
from passport_sync.errors import NothingMatched
from passport_sync.sink.passport import PassportStore
from passport_sync.sink.records import Records
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
    unvoided: set[int] = field(default_factory=set)
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
            self.unvoided.add(obs_id)
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

    # -- in-place undos and changes outside the row (no trace sync-all follows) --------------------
    def revoid(self) -> None:
        """An unvoid undone: voided again with the first void's date, as a restore of a backup does."""
        unvoided = [o for o in self.live("SELECT obs_id FROM obs WHERE voided = 0") if o in self.unvoided]
        if unvoided:
            obs_id = self.rng.choice(unvoided)
            self.db.execute(
                "UPDATE obs SET voided = 1, voided_by = 1, date_voided = %s WHERE obs_id = %s",
                (datetime(2025, 1, 1), obs_id),
            )

    def rename_concept(self) -> None:
        concept = self.rng.choice([self.clinic.diabetes, self.clinic.weight, self.clinic.diagnosis])
        self.db.execute(
            "UPDATE concept_name SET name = CONCAT(name, %s) WHERE concept_id = %s AND voided = 0",
            (f" r{self.rng.randint(0, 9)}", concept),
        )

    def move_encounter(self) -> None:
        encounters = self.live("SELECT encounter_id FROM encounter WHERE voided = 0")
        if encounters:
            self.db.execute(
                "UPDATE encounter SET encounter_datetime = encounter_datetime - INTERVAL %s DAY"
                " WHERE encounter_id = %s",
                (self.rng.randint(1, 3), self.rng.choice(encounters)),
            )

    def move_obs_to_other_encounter(self) -> None:
        """A row entered under the wrong visit, moved by SQL: the old encounter may be left empty."""
        rows = self.db.execute(
            "SELECT o.obs_id, e2.encounter_id FROM obs o JOIN encounter e2 ON e2.patient_id = o.person_id"
            " AND e2.encounter_id <> o.encounter_id WHERE o.voided = 0"
        )
        if rows:
            obs_id, encounter = self.rng.choice(rows)
            self.db.execute("UPDATE obs SET encounter_id = %s WHERE obs_id = %s", (encounter, obs_id))

    def purge_obs(self) -> None:
        """An observation deleted (OpenMRS's purge, a data clean-up), not voided."""
        leaves = self.live(
            "SELECT o.obs_id FROM obs o WHERE NOT EXISTS (SELECT 1 FROM obs c WHERE c.obs_group_id = o.obs_id"
            " OR c.previous_version = o.obs_id)"
        )
        if leaves:
            obs_id = self.rng.choice(leaves)
            self.db.execute("DELETE FROM obs WHERE obs_id = %s", (obs_id,))
            self.voided_by_us.discard(obs_id)

    def reopen_order(self) -> None:
        """A discontinuation voided: the order it stopped is active again (date_stopped cleared)."""
        self.void_follow_up()

    # -- what patients and staff do in the app ---------------------------------------------------------
    def correct_in_app(self) -> None:
        """A registered patient's national ID corrected in the app to a number not registered yet
        (the app's models set ``updatedAt`` on every save)."""
        free = [n for n in NUMBERS if n not in self.registered]
        if self.registered and free:
            old, new = self.rng.choice(sorted(self.registered)), self.rng.choice(free)
            self.passport.patients.update_one(
                {"nationalId": old}, {"$set": {"nationalId": new, "updatedAt": datetime.now(UTC)}}
            )
            self.registered.discard(old)
            self.registered.add(new)

    def register_again(self) -> None:
        """A patient deleted in the app and registered again (a new ``_id``)."""
        if self.registered:
            number = self.rng.choice(sorted(self.registered))
            self.passport.patients.delete_one({"nationalId": number})
            register_patient(self.passport, number)

    def delete_in_app(self) -> None:
        """A patient deleted in the app, not registered again: their records must go back to parked."""
        if self.registered:
            number = self.rng.choice(sorted(self.registered))
            self.passport.patients.delete_one({"nationalId": number})
            self.registered.discard(number)


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
# What the app changes (registrations are in OPERATIONS): sync-all re-decides them on its own.
PASSPORT_OPERATIONS = (("correct_in_app", 2), ("register_again", 1))


def snapshot(db: Any, hospital_id: str) -> tuple[dict[Any, tuple[Any, ...]], dict[str, str]]:
    """Records (owner, type, data) and parked rows (reason) of one hospital."""
    records = {
        d["_id"]: (d["patientId"], d["type"], d["data"])
        for d in db.medicalrecords.find({"openmrsData.hospitalId": hospital_id})
    }
    parked = {d["_id"]: d["reason"] for d in db.openmrs_sync_parked.find({"hospitalId": hospital_id})}
    return records, parked


def differences(live: Any, fresh: Any, hospital_id: str, *, links: bool = False) -> list[str]:
    """What the reconciled Passport holds that a fresh full sync does not (and the reverse).
    Each patient's ``medicalHistory`` is compared either way: with ``links`` (the live run's
    ``sync.medical_history_links``) it lists exactly the records the patient owns; without, none."""
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
                fields = sorted(k for k in {**data, **want_data} if data.get(k) != want_data.get(k))
                changed = {k: (data.get(k), want_data.get(k)) for k in fields}
                problems.append(f"record {rid} differs: {(owner, kind)} vs {(want_owner, want_kind)}, data {changed}")
    if live_parked != fresh_parked:
        problems.append(f"parked rows differ: {sorted(live_parked.items())} vs {sorted(fresh_parked.items())}")
    for patient in live.patients.find():
        linked = set(patient.get("medicalHistory", []))
        held = {rid for rid, (owner, _, _) in live_records.items() if owner == str(patient["_id"])}
        if linked != (held if links else set()):
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
    links: bool = False,
) -> list[str]:
    """Play ``steps`` random operations with sync-all runs between them, reconcile, compare.

    Without ``reconcile``, no reconciliation runs at all (not even sync-all's slices, nor the
    daily pass over parked rows after the first run): what sync-all does incrementally alone."""
    rng = random.Random(seed)
    client: pymongo.MongoClient[Any] = pymongo.MongoClient(mongo_uri)
    live_name = f"pstest_{secrets.token_hex(4)}"
    try:
        live = client[live_name]
        start_passport_backend(live)
        world = World(Clinic(openmrs), live, rng, unique_numbers=not reconcile)
        for _ in range(6):
            world.new_person()
        settings = make_settings(
            mongo_uri, live_name, [hospital_entry(openmrs.name)], batch_size=7, medical_history_links=links
        )
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

        with fresh_full_sync(live, openmrs, mongo_uri) as fresh:
            problems = differences(live, fresh, settings.hospitals[0].id, links=links)
        if problems:
            problems.append(f"seed {seed}: operations {world.log}")
        return problems
    finally:
        client.drop_database(live_name)
        client.close()


# From a steady state: what changes OpenMRS in place, undoes in place, or changes beside the row.
STEADY_OPERATIONS = (
    *OPERATIONS,
    ("revoid", 2),
    ("rename_concept", 1),
    ("move_encounter", 1),
    ("move_obs_to_other_encounter", 1),
    ("purge_obs", 1),
    ("reopen_order", 1),
    *PASSPORT_OPERATIONS,
    ("delete_in_app", 1),
)
# What a site runs between the changes, in any order.
RUNS = ("sync_all", "sync_all", "sync_patient", "reconcile_pass", "killed_sync_all")


class Killed(BaseException):
    """The process dies: no handler of the run's sees it (its lock is released, as a later run
    would find it expired)."""


def _killed_sync_all(settings: Settings, after_writes: int) -> None:
    """sync-all killed right after its ``after_writes``-th batch write reached MongoDB, before
    whatever follows it (the checkpoint, the links' neighbours, the visit records)."""
    apply = Records.apply
    calls = [0]

    def apply_then_die(self: Records, *args: Any, **kwargs: Any) -> Any:
        outcome = apply(self, *args, **kwargs)
        calls[0] += 1
        if calls[0] > after_writes:
            raise Killed
        return outcome

    Records.apply = apply_then_die  # type: ignore[method-assign]
    try:
        run_sync(settings)
    except Killed:
        pass
    finally:
        Records.apply = apply  # type: ignore[method-assign]


def run_steady_oracle(seed: int, openmrs: OpenMRSDatabase, mongo_uri: str, steps: int = 60) -> list[str]:
    """From a steady state (sync-all, then a reconciliation pass), random changes on the OpenMRS
    side interleaved with sync-all runs (each taking its due slice of the current pass), sync-all
    runs killed after a batch write, sync-patient runs and whole passes, in any order; then
    sync-all alone until one whole pass has run after the last change (``reconcile --full``
    never). The Passport must equal a fresh full sync, record for record."""
    rng = random.Random(seed)
    client: pymongo.MongoClient[Any] = pymongo.MongoClient(mongo_uri)
    live_name = f"pstest_{secrets.token_hex(4)}"
    try:
        live = client[live_name]
        start_passport_backend(live)
        world = World(Clinic(openmrs), live, rng)
        for _ in range(6):
            world.new_person()
        for _ in range(10):
            getattr(world, rng.choice([n for n, w in OPERATIONS for _ in range(w)]))()
        settings = _small_ranges(make_settings(mongo_uri, live_name, [hospital_entry(openmrs.name)], batch_size=7))
        # A pass spread over a few seconds: each sync-all takes a slice of it, as a site's runs do.
        sliced = _pass_hours(settings, 4 / 3600)
        run_sync(settings)
        _reconcile(settings)
        names = [name for name, weight in STEADY_OPERATIONS for _ in range(weight)]
        for _ in range(steps):
            if rng.random() < 0.3:
                run = rng.choice(RUNS)
                world.log.append(run)
                if run == "sync_all":
                    run_sync(sliced)
                elif run == "sync_patient":
                    _sync_patient(sliced, rng.choice(NUMBERS))
                elif run == "killed_sync_all":
                    _killed_sync_all(sliced, rng.randint(0, 3))
                else:
                    _reconcile(sliced)
            name = rng.choice(names)
            getattr(world, name)()
            world.log.append(name)
        # The pass under way ends, the next starts (its first slice is empty) and ends: one whole
        # pass after the last change.
        whole = _pass_hours(settings, 1e-6)
        for _ in range(3):
            run_sync(whole)
        problems = fresh_differences(live, openmrs, mongo_uri, settings)
        if problems:
            problems.append(f"seed {seed}: {world.log}")
        return problems
    finally:
        client.drop_database(live_name)
        client.close()


def fresh_differences(live: Any, openmrs: OpenMRSDatabase, mongo_uri: str, settings: Settings) -> list[str]:
    """How ``live`` differs from a fresh full sync of today's OpenMRS into today's patients."""
    with fresh_full_sync(live, openmrs, mongo_uri) as fresh:
        return differences(live, fresh, settings.hospitals[0].id)


@contextmanager
def fresh_full_sync(
    live: Any,
    openmrs: OpenMRSDatabase,
    mongo_uri: str,
    own_allergies: Mapping[str, list[str]] | None = None,
    *,
    batch_size: int = 7,
) -> Iterator[Any]:
    """A fresh full sync of today's OpenMRS into a new Passport holding today's patients of
    ``live`` (with the allergies they entered themselves, ``own_allergies`` by patient id), for
    the block: what every state ``live`` reached must equal."""
    client: pymongo.MongoClient[Any] = pymongo.MongoClient(mongo_uri)
    name = f"pstest_{secrets.token_hex(4)}"
    try:
        fresh = client[name]
        start_passport_backend(fresh)
        for patient in live.patients.find():
            mine = (own_allergies or {}).get(str(patient["_id"]), [])
            fresh.patients.insert_one({**patient, "medicalHistory": [], "allergies": mine})
        settings = make_settings(mongo_uri, name, [hospital_entry(openmrs.name)], batch_size=batch_size)
        reports = run_sync(_small_ranges(settings))
        assert all(r.outcome == "ok" for r in reports), [r.errors for r in reports]
        yield fresh
    finally:
        client.drop_database(name)
        client.close()


def _pass_hours(settings: Settings, hours: float) -> Settings:
    return settings.model_copy(update={"reconcile": settings.reconcile.model_copy(update={"full_pass_hours": hours})})


def _sync_patient(settings: Settings, number: str) -> None:
    store = PassportStore.connect(settings)
    try:
        service.sync_patient(settings, store, settings.enabled_hospitals(), number)
    except NothingMatched:
        pass  # an admin typed a number nobody holds (yet): nothing to sync
    finally:
        store.close()


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
