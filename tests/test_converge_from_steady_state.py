"""From a steady state (sync-all, then a reconciliation pass), each change OpenMRS makes in place
or beside the row converges through sync-all and its regular reconciliation slices alone:
``reconcile --full`` is never run. Each case is a change sync-all follows, then its undo in place
(no trace sync-all follows), or a change to a table the record shows but is not read from; the
Passport must then equal a fresh full sync of today's OpenMRS, record for record."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

from passport_sync.source.openmrs import OpenMRSSource
from tests.conftest import hospital_entry, make_settings, register_patient
from tests.helpers import run_sync
from tests.oracle import _pass_hours, _reconcile, _small_ranges, fresh_differences
from tests.test_clinical_sources import NID, Ward

OLD = datetime(2025, 1, 1)


class Site:
    """A ward with a visit (two observations, a diagnosis, a drug order), synced and reconciled."""

    def __init__(self, openmrs: Any, passport: Any, mongo_uri: str) -> None:
        self.ward = Ward(openmrs)
        self.db = openmrs
        self.passport = passport
        self.mongo_uri = mongo_uri
        b = self.ward.b
        register_patient(passport, NID)
        self.weight = b.concept("Weight (kg)", datatype="Numeric", concept_class="Test", units="kg")
        self.second_encounter = b.encounter(self.ward.person, location_id=self.ward.location)
        self.obs = b.obs(self.ward.person, self.weight, encounter_id=self.ward.encounter, value_numeric=70)
        self.moving = b.obs(self.ward.person, self.weight, encounter_id=self.second_encounter, value_numeric=71)
        self.impression = b.concept("Clinical impression", datatype="Text", concept_class="Misc")
        b.obs(self.ward.person, self.impression, encounter_id=self.ward.encounter, value_text="Uncomplicated malaria")
        self.diagnosis = b.encounter_diagnosis(self.ward.encounter, diagnosis_coded=self.ward.malaria)
        # Someone registered without a national ID: their observation waits, parked.
        self.unnamed = b.patient(national_id=None)
        b.obs(self.unnamed, self.weight, value_numeric=55)
        self.order = b.drug_order(self.ward.encounter, self.ward.provider, drug_id=self.ward.drug, dose=1)
        self.settings = _small_ranges(
            make_settings(mongo_uri, passport.name, [hospital_entry(openmrs.name)], batch_size=7)
        )

    def steady(self) -> None:
        run_sync(self.settings)
        _reconcile(self.settings)

    def follow(self) -> None:
        """sync-all as a site runs it between changes: its slice of the day's pass is next to nothing."""
        report = run_sync(self.settings)[0]
        assert report.outcome == "ok", report.errors

    def sync(self) -> None:
        """sync-all with a pass as good as instant (full_pass_hours near zero): each run ends the
        pass under way or starts the next."""
        report = run_sync(_pass_hours(self.settings, 1e-6))[0]
        assert report.outcome == "ok", report.errors
        assert report.reconcile, "the run took no reconciliation slice"

    def converge(self) -> None:
        """sync-all until one whole pass has run after the last change (never ``reconcile --full``):
        the pass under way ends, the next starts (its first slice is empty), and it ends."""
        for _ in range(3):
            self.sync()

    def differences(self) -> list[str]:
        return fresh_differences(self.passport, self.db, self.mongo_uri, self.settings)

    def follow_up(self, action: str) -> int:
        """A revision or discontinuation of the order, as OrderService saves it (the previous stops)."""
        new = self.ward.b.drug_order(
            self.ward.encounter,
            self.ward.provider,
            drug_id=self.ward.drug,
            dose=2,
            order_action=action,
            previous_order_id=self.order,
        )
        self.db.execute("UPDATE orders SET date_stopped = NOW() WHERE order_id = %s", (self.order,))
        return new

    def void_follow_up(self, order_id: int) -> None:
        """OrderServiceImpl.voidOrder: the previous order is active again, with no change time."""
        self.db.execute("UPDATE orders SET voided = 1, date_voided = NOW() WHERE order_id = %s", (order_id,))
        self.db.execute("UPDATE orders SET date_stopped = NULL WHERE order_id = %s", (self.order,))


def void_then_unvoid(site: Site) -> None:
    site.ward.b.void_obs(site.obs)
    site.follow()
    site.db.execute(
        "UPDATE obs SET voided = 0, voided_by = NULL, date_voided = NULL, void_reason = NULL WHERE obs_id = %s",
        (site.obs,),
    )


def future_dated_void_undone(site: Site) -> None:
    site.db.execute(
        "UPDATE obs SET voided = 1, voided_by = 1, date_voided = NOW() + INTERVAL 1 YEAR WHERE obs_id = %s",
        (site.obs,),
    )
    site.follow()
    site.db.execute("UPDATE obs SET voided = 0, date_voided = NULL WHERE obs_id = %s", (site.obs,))


def discontinuation_voided(site: Site) -> None:
    stop = site.follow_up("DISCONTINUE")
    site.follow()
    site.void_follow_up(stop)


def revision_voided(site: Site) -> None:
    revision = site.follow_up("REVISE")
    site.follow()
    site.void_follow_up(revision)


def middle_of_a_chain_voided(site: Site) -> None:
    middle = site.follow_up("REVISE")
    site.ward.b.drug_order(
        site.ward.encounter,
        site.ward.provider,
        drug_id=site.ward.drug,
        dose=3,
        order_action="REVISE",
        previous_order_id=middle,
    )
    site.db.execute("UPDATE orders SET date_stopped = NOW() WHERE order_id = %s", (middle,))
    site.follow()
    site.db.execute("UPDATE orders SET voided = 1, date_voided = %s WHERE order_id = %s", (OLD, middle))


def patient_voided_then_unvoided(site: Site) -> None:
    site.db.execute("UPDATE patient SET voided = 1, date_voided = NOW() WHERE patient_id = %s", (site.ward.person,))
    site.follow()
    site.db.execute("UPDATE patient SET voided = 0, date_voided = NULL WHERE patient_id = %s", (site.ward.person,))


def concept_renamed(site: Site) -> None:
    site.db.execute("UPDATE concept_name SET name = 'Malaria, confirmed' WHERE concept_id = %s", (site.ward.malaria,))


def concept_reclassified(site: Site) -> None:
    # A free-text question reclassed as Diagnosis: its answers become the patient's conditions.
    (diagnosis,) = site.db.execute("SELECT concept_class_id FROM concept_class WHERE name = 'Diagnosis'")[0]
    site.db.execute("UPDATE concept SET class_id = %s WHERE concept_id = %s", (diagnosis, site.impression))


def encounter_date_changed(site: Site) -> None:
    # An encounter of observations only: no record of its own shows the date, its visit record does.
    site.db.execute(
        "UPDATE encounter SET encounter_datetime = encounter_datetime - INTERVAL 2 DAY WHERE encounter_id = %s",
        (site.second_encounter,),
    )


def encounter_provider_changed(site: Site) -> None:
    other = site.ward.b.provider("Eric", "Habimana")
    site.db.execute(
        "UPDATE encounter_provider SET provider_id = %s WHERE encounter_id = %s", (other, site.ward.encounter)
    )


def row_moved_to_another_encounter(site: Site) -> None:
    # The second encounter is left empty: its visit record must go.
    site.db.execute("UPDATE obs SET encounter_id = %s WHERE obs_id = %s", (site.ward.encounter, site.moving))


def group_parent_voided_by_sql(site: Site) -> None:
    vitals = site.ward.b.concept("Vitals", datatype="N/A", concept_class="ConvSet", is_set=True)
    parent = site.ward.b.obs(site.ward.person, vitals, encounter_id=site.ward.encounter)
    site.ward.b.obs(
        site.ward.person, site.weight, encounter_id=site.ward.encounter, obs_group_id=parent, value_numeric=9
    )
    site.follow()
    site.db.execute("UPDATE obs SET voided = 1 WHERE obs_id = %s", (parent,))


def order_reason_changed(site: Site) -> None:
    site.db.execute("UPDATE orders SET order_reason = %s WHERE order_id = %s", (site.ward.asthma, site.order))


def row_purged(site: Site) -> None:
    site.db.execute("DELETE FROM obs WHERE obs_id = %s", (site.obs,))


def national_id_added_then_deleted(site: Site) -> None:
    """A national ID typed onto the wrong person, the person's rows land, and the row is deleted
    again (a data clean-up): the person's identity is back to what the pass kept."""
    number = "1199780099990000"
    register_patient(site.passport, number)
    site.db.execute(
        "INSERT INTO patient_identifier (patient_id, identifier, identifier_type, preferred, location_id, creator,"
        " date_created, voided, uuid) VALUES (%s, %s, %s, 1, NULL, 1, NOW(), 0, UUID())",
        (site.unnamed, number, site.ward.b.national_id_type_id),
    )
    site.follow()
    site.db.execute("DELETE FROM patient_identifier WHERE patient_id = %s", (site.unnamed,))


def new_rows_under_a_national_id_then_deleted(site: Site) -> None:
    """A person with no rows is given a national ID, new rows land under it, the identifier is
    deleted again: the rows must not stay on the patient holding that number."""
    number = "1199780099991111"
    register_patient(site.passport, number)
    newcomer = site.ward.b.patient(national_id=number)
    site.follow()
    site.ward.b.obs(newcomer, site.weight, value_numeric=64)
    site.follow()
    site.db.execute("DELETE FROM patient_identifier WHERE patient_id = %s", (newcomer,))


def shared_number_corrected_away(site: Site) -> None:
    """Two OpenMRS patients hold one national ID (so their rows are parked as shared), then one
    identifier is corrected in place: the other's rows are parked for their own reason again
    (here, a number not registered in the Passport), as a fresh sync parks them."""
    number = "1199780066660000"
    first = site.ward.b.patient(national_id=number)
    site.ward.b.obs(first, site.weight, value_numeric=61)
    twin = site.ward.b.patient(national_id=number)
    site.converge()
    assert site.passport.openmrs_sync_parked.count_documents({"reason": "shared_national_id"})
    site.db.execute("UPDATE patient_identifier SET identifier = %s WHERE patient_id = %s", ("1199780077770000", twin))


def diagnosis_voided_then_unvoided(site: Site) -> None:
    site.db.execute(
        "UPDATE encounter_diagnosis SET voided = 1, date_voided = NOW() WHERE diagnosis_id = %s", (site.diagnosis,)
    )
    site.follow()
    site.db.execute(
        "UPDATE encounter_diagnosis SET voided = 0, date_voided = NULL WHERE diagnosis_id = %s", (site.diagnosis,)
    )


CASES: list[Callable[[Site], None]] = [
    void_then_unvoid,
    future_dated_void_undone,
    discontinuation_voided,
    revision_voided,
    middle_of_a_chain_voided,
    patient_voided_then_unvoided,
    concept_renamed,
    concept_reclassified,
    encounter_date_changed,
    encounter_provider_changed,
    row_moved_to_another_encounter,
    group_parent_voided_by_sql,
    order_reason_changed,
    row_purged,
    diagnosis_voided_then_unvoided,
    national_id_added_then_deleted,
    new_rows_under_a_national_id_then_deleted,
    shared_number_corrected_away,
]


@pytest.mark.parametrize("case", CASES, ids=[c.__name__ for c in CASES])
def test_converges_through_sync_all_alone(
    case: Callable[[Site], None], openmrs: Any, passport: Any, mongo_uri: str
) -> None:
    site = Site(openmrs, passport, mongo_uri)
    site.steady()
    case(site)
    site.converge()
    assert site.differences() == []


def test_a_row_changed_while_it_is_compared_is_compared_again(
    openmrs: Any, passport: Any, mongo_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The kept checksum is of the state the Passport was given: a row that changes between the
    pass's checksum and its read (and changes back later) is read again by the next pass."""
    site = Site(openmrs, passport, mongo_uri)
    site.steady()
    set_weight = "UPDATE obs SET value_numeric = %s WHERE obs_id = %s"
    site.db.execute(set_weight, (75, site.obs))  # in place: no trace sync-all follows
    read = OpenMRSSource.obs_by_ids
    changes = [80]

    def read_after_a_change(self: OpenMRSSource, obs_ids: Any) -> Any:
        if changes and site.obs in obs_ids:
            site.db.execute(set_weight, (changes.pop(), site.obs))
        return read(self, obs_ids)

    monkeypatch.setattr(OpenMRSSource, "obs_by_ids", read_after_a_change)
    site.converge()
    assert not changes, "the pass never read the changed row"
    monkeypatch.undo()
    site.db.execute(set_weight, (75, site.obs))  # back to what the pass's checksum saw
    site.converge()
    assert site.differences() == []


def test_every_rendered_input_is_in_the_row_checksum(openmrs: Any, passport: Any, mongo_uri: str) -> None:
    """What a record shows from other tables changes the checksum of its row: a concept's name,
    the provider's name, the encounter's type and the global properties the rendering reads."""
    site = Site(openmrs, passport, mongo_uri)
    now = datetime(2025, 11, 6, 12, 0)

    def checksums() -> dict[str, dict[int, int]]:
        with OpenMRSSource(site.settings.hospitals[0], site.settings.sync.retry) as source:
            return {feed: source.row_checksums(feed, [(1, 1000)], now) for feed in ("obs", "diagnosis", "drug_order")}

    changes = [
        ("UPDATE concept_name SET name = 'Plasmodium infection' WHERE concept_id = %s", (site.ward.malaria,)),
        ("UPDATE person_name SET family_name = 'Uwase' WHERE person_id = (SELECT person_id FROM provider"
         " WHERE provider_id = %s)", (site.ward.provider,)),
        ("UPDATE encounter_type SET name = 'Adult follow-up' WHERE encounter_type_id = (SELECT encounter_type"
         " FROM encounter WHERE encounter_id = %s)", (site.ward.encounter,)),
        ("INSERT INTO global_property (property, property_value, uuid) VALUES ('default_locale', 'fr', UUID())"
         " ON DUPLICATE KEY UPDATE property_value = 'fr'", ()),
    ]  # fmt: skip
    for sql, params in changes:
        before = checksums()
        site.db.execute(sql, params)
        after = checksums()
        assert before["diagnosis"] != after["diagnosis"], sql
        assert before["drug_order"] != after["drug_order"] or "concept_name" in sql, sql
