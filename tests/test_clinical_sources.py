"""Diagnoses, conditions, allergies and drug orders, on Platform 2.2-, 2.4- and 2.6-shaped schemas:
synced, edited, voided and re-synced without duplicates."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import pytest
from bson import ObjectId

from passport_sync.source.openmrs import OpenMRSSource
from tests.conftest import hospital_entry, make_settings, register_patient
from tests.helpers import run_sync, synced, with_links

NID = "1199780012345678"
VERSIONS = ["2.2", "2.4", "2.6"]


class Ward:
    """An OpenMRS database with one registered patient and the concepts clinical rows need."""

    def __init__(self, openmrs: Any) -> None:
        b = openmrs.build
        self.db = openmrs
        self.b = b
        self.person = b.patient(national_id=NID)
        self.provider = b.provider("Grace", "Mukamana")
        self.location = b.location("Ward A")
        self.encounter = b.encounter(self.person, location_id=self.location, provider_ids=[self.provider])
        self.malaria = b.concept("Malaria", datatype="N/A", concept_class="Diagnosis")
        self.asthma = b.concept("Asthma", datatype="N/A", concept_class="Diagnosis")
        self.penicillin = b.concept("Penicillin", datatype="N/A", concept_class="Drug")
        self.severe = b.concept("Severe", datatype="N/A", concept_class="Misc")
        self.mild = b.concept("Mild", datatype="N/A", concept_class="Misc")
        self.amoxicillin = b.concept("Amoxicillin", datatype="N/A", concept_class="Drug")
        self.tablet = b.concept("Tablet", datatype="N/A", concept_class="Misc")
        self.drug = b.drug("Amoxicillin 500 mg capsule", self.amoxicillin)

    def columns(self, table: str) -> set[str]:
        rows = self.db.execute(
            "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s",
            (table,),
        )
        return {r[0] for r in rows}


@pytest.fixture(params=VERSIONS)
def ward(request: pytest.FixtureRequest, make_openmrs: Any) -> Ward:
    return Ward(make_openmrs(request.param))


@pytest.fixture
def settings(ward: Ward, mongo_uri: str, mongo_db_name: str) -> Any:
    return make_settings(mongo_uri, mongo_db_name, [hospital_entry(ward.db.name)])


def records(passport: Any, source: str) -> list[dict[str, Any]]:
    return list(passport.medicalrecords.find({"openmrsData.source": source}).sort("openmrsData.sourceId", 1))


def assert_no_duplicates(passport: Any) -> None:
    keys = Counter(
        (d["openmrsData"]["source"], d["openmrsData"]["uuid"])
        for d in passport.medicalrecords.find(synced({}), {"openmrsData": 1})
    )
    assert set(keys.values()) == {1}


def test_diagnoses_sync_edit_void_and_resync(ward: Ward, passport: Any, settings: Any) -> None:
    settings = with_links(settings)  # and the voided diagnosis leaves the patient's medicalHistory
    patient_id = register_patient(passport, NID)
    primary = ward.b.encounter_diagnosis(ward.encounter, diagnosis_coded=ward.malaria, certainty="PROVISIONAL", rank=1)
    ward.b.encounter_diagnosis(ward.encounter, diagnosis_non_coded="Chest pain, unclear", rank=2)
    report = run_sync(settings)[0]
    assert report.outcome == "ok", report.errors

    first, second = records(passport, "diagnosis")
    assert first["type"] == "condition" and first["patientId"] == patient_id
    assert first["data"]["diagnosis"] == "Malaria (provisional)"
    assert first["data"]["details"] == "Provisional primary diagnosis"
    assert first["data"]["doctor"] == "Grace Mukamana"
    assert first["openmrsData"]["rank"] == 1 and first["openmrsData"]["certainty"] == "PROVISIONAL"
    assert second["data"]["diagnosis"] == "Chest pain, unclear"
    assert second["data"]["details"] == "Confirmed secondary diagnosis"

    # The doctor confirms the diagnosis in OpenMRS (an update in place), and a doctor in the app
    # adds a medication to the synced record.
    passport.medicalrecords.update_one({"_id": first["_id"]}, {"$push": {"data.medications": {"name": "ACT"}}})
    ward.db.execute(
        "UPDATE encounter_diagnosis SET certainty = 'CONFIRMED', date_changed = %s, changed_by = 1"
        " WHERE diagnosis_id = %s",
        (datetime(2025, 11, 7, 9, 0), primary),
    )
    assert run_sync(settings)[0].updated == 1
    confirmed = passport.medicalrecords.find_one({"_id": first["_id"]})
    assert confirmed["data"]["details"] == "Confirmed primary diagnosis"
    assert confirmed["data"]["medications"] == [{"name": "ACT"}]

    ward.db.execute(
        "UPDATE encounter_diagnosis SET voided = 1, date_voided = %s, voided_by = 1, void_reason = 'entered in error'"
        " WHERE diagnosis_id = %s",
        (datetime(2025, 11, 7, 10, 0), primary),
    )
    assert run_sync(settings)[0].removed == 1
    assert [d["data"]["diagnosis"] for d in records(passport, "diagnosis")] == ["Chest pain, unclear"]
    patient = passport.patients.find_one({"_id": ObjectId(patient_id)})
    every = [d["_id"] for d in passport.medicalrecords.find({"patientId": patient_id})]  # the visit record too
    assert sorted(patient["medicalHistory"]) == sorted(every) and second["_id"] in every and len(every) == 2

    passport.syncstatus.delete_many({})
    run_sync(settings)
    assert len(records(passport, "diagnosis")) == 1
    assert_no_duplicates(passport)


def test_edited_condition_replaces_the_old_one(ward: Ward, passport: Any, settings: Any) -> None:
    register_patient(passport, NID)
    onset = datetime(2024, 3, 1)
    first = ward.b.condition(ward.person, condition_coded=ward.asthma, clinical_status="ACTIVE", onset_date=onset)
    run_sync(settings)
    (record,) = records(passport, "condition")
    assert record["data"]["diagnosis"] == "Asthma"
    assert record["data"]["status"] == "Active"
    assert record["data"]["diagnosedDate"] == "2024-03-01T00:00:00.000"  # the day, for every reader

    # OpenMRS edits a condition by voiding it and saving a new version pointing back at it.
    ward.db.execute(
        "UPDATE conditions SET voided = 1, date_voided = %s, voided_by = 1 WHERE condition_id = %s",
        (datetime(2025, 11, 8), first),
    )
    ward.b.condition(
        ward.person,
        condition_coded=ward.asthma,
        clinical_status="INACTIVE",
        onset_date=onset,
        end_date=datetime(2025, 11, 1),
        previous_version=first,
    )
    report = run_sync(settings)[0]
    assert report.removed == 1
    (current,) = records(passport, "condition")
    assert current["data"]["status"] == "Inactive"
    assert current["data"]["endDate"] == "2025-11-01T00:00:00.000"
    assert current["openmrsData"]["previousVersionUuid"] == record["openmrsData"]["uuid"]
    passport.syncstatus.delete_many({})
    run_sync(settings)
    assert len(records(passport, "condition")) == 1
    assert_no_duplicates(passport)


def test_allergies_keep_the_patients_allergy_list_in_step(ward: Ward, passport: Any, settings: Any) -> None:
    patient_id = register_patient(passport, NID)
    passport.patients.update_one({"_id": ObjectId(patient_id)}, {"$set": {"allergies": ["Peanuts"]}})
    allergy = ward.b.allergy(ward.person, ward.penicillin, severity_concept_id=ward.severe, comments="rash in 2019")
    run_sync(settings)
    (record,) = records(passport, "allergy")
    assert record["data"]["diagnosis"] == "Allergy: Penicillin"
    assert record["data"]["details"] == "Penicillin (severe)"
    # The card shows notes instead of details: the notes carry the allergy too.
    assert record["data"]["notes"] == "Penicillin (severe). rash in 2019"
    allergies = passport.patients.find_one({"_id": ObjectId(patient_id)})["allergies"]
    assert allergies == ["Peanuts", "Penicillin (severe)"]

    ward.db.execute(
        "UPDATE allergy SET severity_concept_id = %s, date_changed = %s, changed_by = 1 WHERE allergy_id = %s",
        (ward.mild, datetime(2025, 11, 9), allergy),
    )
    run_sync(settings)
    allergies = passport.patients.find_one({"_id": ObjectId(patient_id)})["allergies"]
    assert allergies == ["Peanuts", "Penicillin (mild)"]

    ward.db.execute(
        "UPDATE allergy SET voided = 1, date_voided = %s, voided_by = 1 WHERE allergy_id = %s",
        (datetime(2025, 11, 10), allergy),
    )
    assert run_sync(settings)[0].removed == 1
    assert records(passport, "allergy") == []
    assert passport.patients.find_one({"_id": ObjectId(patient_id)})["allergies"] == ["Peanuts"]


def test_drug_orders_discontinue_and_revise(ward: Ward, passport: Any, settings: Any) -> None:
    register_patient(passport, NID)
    start = datetime(2025, 11, 6, 10, 30)
    order = ward.b.drug_order(
        ward.encounter,
        ward.provider,
        drug_id=ward.drug,
        concept_id=ward.amoxicillin,
        dose=500,
        dose_units=ward.tablet,
        duration=7,
        date_activated=start,
    )
    run_sync(settings)
    (record,) = records(passport, "drug_order")
    assert record["type"] == "medication"
    assert record["data"]["medicationName"] == "Amoxicillin 500 mg capsule"
    assert record["data"]["dosage"] == "500 Tablet"
    assert record["data"]["medicationStatus"] == "Active"
    assert record["data"]["prescribedBy"] == "Grace Mukamana"

    # Discontinue: a DISCONTINUE order pointing at the first; OpenMRS stops the first.
    stop = start + timedelta(days=2)
    ward.db.execute("UPDATE orders SET date_stopped = %s WHERE order_id = %s", (stop, order))
    ward.b.drug_order(
        ward.encounter,
        ward.provider,
        drug_id=ward.drug,
        concept_id=ward.amoxicillin,
        order_action="DISCONTINUE",
        previous_order_id=order,
        date_activated=stop,
    )
    run_sync(settings)
    (stopped,) = records(passport, "drug_order")
    assert stopped["_id"] == record["_id"]
    assert stopped["data"]["medicationStatus"] == "Past"
    assert stopped["data"]["endDate"] == "2025-11-08T10:30:00.000Z"

    # Revise: a new order replaces the old one.
    revised = ward.b.drug_order(
        ward.encounter,
        ward.provider,
        drug_id=ward.drug,
        concept_id=ward.amoxicillin,
        dose=250,
        dose_units=ward.tablet,
        order_action="REVISE",
        previous_order_id=order,
        date_activated=stop,
    )
    report = run_sync(settings)[0]
    assert report.removed == 1
    (current,) = records(passport, "drug_order")
    assert current["openmrsData"]["sourceId"] == revised
    assert current["data"]["dosage"] == "250 Tablet"
    passport.syncstatus.delete_many({})
    run_sync(settings)
    assert len(records(passport, "drug_order")) == 1
    assert_no_duplicates(passport)


def test_clinical_rows_of_an_unregistered_patient_are_parked_then_land(
    ward: Ward, passport: Any, settings: Any
) -> None:
    ward.b.encounter_diagnosis(ward.encounter, diagnosis_coded=ward.malaria)
    ward.b.allergy(ward.person, ward.penicillin)
    run_sync(settings)
    parked = {p["source"] for p in passport.openmrs_sync_parked.find()}
    assert parked == {"diagnosis", "allergy"}
    assert passport.syncstatus.find_one()["sources"]["diagnosis"]["lastObsId"] > 0

    patient_id = register_patient(passport, NID)
    run_sync(settings)
    assert passport.openmrs_sync_parked.count_documents({}) == 0
    assert {d["openmrsData"]["source"] for d in passport.medicalrecords.find(synced({"patientId": patient_id}))} == {
        "diagnosis",
        "allergy",
    }
    assert passport.patients.find_one({"_id": ObjectId(patient_id)})["allergies"] == ["Penicillin"]


def test_sources_can_be_switched_off(ward: Ward, passport: Any, mongo_uri: str, mongo_db_name: str) -> None:
    register_patient(passport, NID)
    ward.b.encounter_diagnosis(ward.encounter, diagnosis_coded=ward.malaria)
    ward.b.allergy(ward.person, ward.penicillin)
    settings = make_settings(mongo_uri, mongo_db_name, [hospital_entry(ward.db.name)], sources={"diagnoses": False})
    run_sync(settings)
    assert {d["openmrsData"]["source"] for d in passport.medicalrecords.find(synced())} == {"allergy"}
    assert "diagnosis" not in passport.syncstatus.find_one().get("sources", {})


def test_test_connection_says_which_sources_a_hospital_supports(
    make_openmrs: Any, mongo_uri: str, mongo_db_name: str
) -> None:
    from passport_sync import service
    from passport_sync.source.openmrs import OpenMRSSource

    db = make_openmrs("2.2")
    db.build.patient(national_id=NID)
    db.execute("DROP TABLE allergy_reaction")
    db.execute("DROP TABLE allergy")
    settings = make_settings(mongo_uri, mongo_db_name, [hospital_entry(db.name)], sources={"conditions": False})
    (hospital,) = settings.hospitals
    with OpenMRSSource(hospital, settings.sync.retry) as source:
        result = service.check_source(hospital, settings, source)
    assert result["sources"] == ["observations", "diagnoses", "drug orders"]
    detail = {c["check"]: c["detail"] for c in result["checks"]}["sources"]
    assert detail == "observations, diagnoses, drug orders (not in this OpenMRS version: allergies)"


def ciel(concept_id: int) -> str:
    return str(concept_id).ljust(36, "A")


def test_legacy_diagnosis_obs_group_becomes_one_record(
    make_openmrs: Any, passport: Any, mongo_uri: str, mongo_db_name: str
) -> None:
    ward = Ward(make_openmrs("2.6"))
    b = ward.b
    patient_id = register_patient(passport, NID)
    concept = {
        name: b.concept(name, datatype=datatype, concept_class=cls, uuid=ciel(cid))
        for name, datatype, cls, cid in [
            ("Visit Diagnoses", "N/A", "ConvSet", 159947),
            ("Coded diagnosis", "Coded", "Question", 1284),
            ("Non-coded diagnosis", "Text", "Question", 161602),
            ("Diagnosis order", "Coded", "Question", 159946),
            ("Primary", "N/A", "Misc", 159943),
            ("Secondary", "N/A", "Misc", 159944),
            ("Diagnosis certainty", "Coded", "Question", 159394),
            ("Confirmed", "N/A", "Misc", 159392),
            ("Presumed", "N/A", "Misc", 159393),
        ]
    }
    enc = ward.encounter
    parent = b.obs(ward.person, concept["Visit Diagnoses"], encounter_id=enc)
    b.obs(ward.person, concept["Coded diagnosis"], encounter_id=enc, obs_group_id=parent, value_coded=ward.malaria)
    b.obs(
        ward.person, concept["Diagnosis order"], encounter_id=enc, obs_group_id=parent, value_coded=concept["Primary"]
    )
    certainty = b.obs(
        ward.person,
        concept["Diagnosis certainty"],
        encounter_id=enc,
        obs_group_id=parent,
        value_coded=concept["Confirmed"],
    )
    second = b.obs(ward.person, concept["Visit Diagnoses"], encounter_id=enc)
    b.obs(ward.person, concept["Non-coded diagnosis"], encounter_id=enc, obs_group_id=second, value_text="Back pain")
    b.obs(
        ward.person, concept["Diagnosis order"], encounter_id=enc, obs_group_id=second, value_coded=concept["Secondary"]
    )
    settings = make_settings(mongo_uri, mongo_db_name, [hospital_entry(ward.db.name)], batch_size=3)
    run_sync(settings)

    docs = list(passport.medicalrecords.find(synced({"patientId": patient_id})).sort("openmrsData.obsId", 1))
    assert [(d["data"]["diagnosis"], d["data"]["details"]) for d in docs] == [
        ("Malaria", "Confirmed primary diagnosis"),
        ("Back pain (provisional)", "Provisional secondary diagnosis"),
    ]
    assert docs[0]["openmrsData"]["obsId"] == parent and docs[0]["type"] == "condition"

    b.edit_obs(certainty, value_coded=concept["Presumed"], when=datetime(2025, 11, 7))
    run_sync(settings)
    first = passport.medicalrecords.find_one({"openmrsData.obsId": parent})
    assert first["data"]["details"] == "Provisional primary diagnosis"

    b.void_obs(parent, when=datetime(2025, 11, 8))
    run_sync(settings)
    assert [d["data"]["diagnosis"] for d in passport.medicalrecords.find(synced({"patientId": patient_id}))] == [
        "Back pain (provisional)"
    ]
    passport.syncstatus.delete_many({})
    run_sync(settings)
    assert passport.medicalrecords.count_documents(synced({})) == 1


def test_status_and_reset_cover_the_clinical_sources(ward: Ward, passport: Any, settings: Any) -> None:
    from passport_sync import service
    from passport_sync.sink.passport import PassportStore

    register_patient(passport, NID)
    ward.b.encounter_diagnosis(ward.encounter, diagnosis_coded=ward.malaria, date_created=datetime(2025, 1, 1))
    ward.b.encounter_diagnosis(ward.encounter, diagnosis_coded=ward.asthma, date_created=datetime(2025, 6, 1))
    run_sync(settings)
    ward.b.allergy(ward.person, ward.penicillin)
    store = PassportStore.connect(settings)
    (hospital,) = settings.hospitals
    status = service.hospital_status(settings, store, hospital)
    assert status["sources"]["diagnosis"] == {"last_id": 2, "behind": 0}
    assert status["sources"]["allergy"]["behind"] == 1
    assert status["behind"] == 1

    result = service.reset_checkpoint(settings, store, hospital, to=datetime(2025, 3, 1))
    assert result["rows_to_reread"] == 2  # the June diagnosis and the new allergy
    doc = passport.syncstatus.find_one()
    assert doc["sources"]["diagnosis"]["lastObsId"] == 1
    store.close()
    report = run_sync(settings)[0]
    assert report.written == 1 and report.already_present == 1
    assert_no_duplicates(passport)


def test_lab_orders_between_drug_orders_are_skipped_not_gaps(ward: Ward, passport: Any, settings: Any) -> None:
    register_patient(passport, NID)
    first = ward.b.drug_order(ward.encounter, ward.provider, drug_id=ward.drug, concept_id=ward.amoxicillin)
    ward.db.execute(
        "INSERT INTO orders (order_type_id, concept_id, orderer, encounter_id, patient_id, creator, date_created,"
        " voided, uuid, urgency, order_number, order_action, care_setting, date_activated)"
        " VALUES (3, %s, %s, %s, %s, 1, %s, 0, UUID(), 'ROUTINE', 'ORD-LAB', 'NEW', 1, %s)",
        (ward.malaria, ward.provider, ward.encounter, ward.person, datetime(2025, 11, 6), datetime(2025, 11, 6)),
    )
    ward.b.drug_order(ward.encounter, ward.provider, drug_id=ward.drug, concept_id=ward.amoxicillin)
    run_sync(settings)
    assert len(records(passport, "drug_order")) == 2
    assert passport.syncstatus.find_one()["sources"]["drug_order"]["gaps"] == []

    ward.db.execute(
        "UPDATE orders SET voided = 1, date_voided = %s, voided_by = 1 WHERE order_id = %s",
        (datetime(2025, 11, 9), first),
    )
    assert run_sync(settings)[0].removed == 1
    assert len(records(passport, "drug_order")) == 1


def test_a_change_windows_digest_covers_exactly_the_rows_the_change_read_returns(ward: Ward, settings: Any) -> None:
    """The digest that lets an idle run skip a change window and the read it stands for share
    their WHERE; on every schema version they must agree on the rows, or a skipped window could
    hide a change."""
    b, t0 = ward.b, datetime(2025, 11, 6, 10, 0)
    note = b.concept("Clinical note", datatype="Text", concept_class="Misc")
    obs = [b.obs(ward.person, note, value_text=f"note {i}") for i in range(3)]
    b.void_obs(obs[0], when=t0)
    b.void_obs(obs[1], when=t0 + timedelta(hours=2))
    diagnoses = [b.encounter_diagnosis(ward.encounter, diagnosis_coded=ward.malaria) for _ in range(3)]
    conditions = [b.condition(ward.person, condition_coded=ward.asthma) for _ in range(3)]
    allergy = b.allergy(ward.person, ward.penicillin)
    orders = [b.drug_order(ward.encounter, ward.provider, drug_id=ward.drug, concept_id=ward.amoxicillin) for _ in "ab"]
    void = "UPDATE {table} SET voided = 1, voided_by = 1, date_voided = %s WHERE {pk} = %s"
    for table, pk, row in (
        ("encounter_diagnosis", "diagnosis_id", diagnoses[0]),
        ("conditions", "condition_id", conditions[0]),
        ("allergy", "allergy_id", allergy),
        ("orders", "order_id", orders[0]),
    ):
        ward.db.execute(void.format(table=table, pk=pk), (t0 + timedelta(hours=1), row))
    for table, pk, row in (
        ("encounter_diagnosis", "diagnosis_id", diagnoses[1]),
        ("conditions", "condition_id", conditions[1]),
    ):
        if "date_changed" in ward.columns(table):
            ward.db.execute(f"UPDATE {table} SET date_changed = %s WHERE {pk} = %s", (t0 + timedelta(hours=3), row))
    ward.db.execute("UPDATE orders SET date_stopped = %s WHERE order_id = %s", (t0 - timedelta(hours=1), orders[1]))

    hospital = settings.hospitals[0]
    with OpenMRSSource(hospital, settings.sync.retry) as source:
        source.connect()
        tables = {table.name: table for table in source.clinical_sources()}
        for since in (None, t0 - timedelta(hours=2), t0, t0 + timedelta(minutes=90), t0 + timedelta(days=1)):
            digests = source.changes_digests(dict.fromkeys(["obs", *tables], since))
            read: dict[str, list[int]] = {"obs": [r.obs_id for r in source.voided_since(since, 0, 1000)]}
            for name, table in tables.items():
                read[name] = [r.pk for r in source.clinical_changed(table, since, 0, 1000)]
            assert {name: rows for name, (rows, _) in digests.items()} == {n: len(pks) for n, pks in read.items()}
            assert all(len(pks) == len(set(pks)) for pks in read.values())
            if since is None:
                assert len(read["obs"]) == 2 and all(read.values()), read
        assert sum(len(pks) for pks in read.values()) == 0  # a day later nothing changed
