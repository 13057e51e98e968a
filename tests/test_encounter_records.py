"""Visit records and medications inside conditions, derived from encounters, stay equal to what a
fresh full sync of today's OpenMRS derives, through voids, discontinuations, revisions and the
doctors' own additions."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pymongo
import pytest

from passport_sync.mapping.visits import VISIT_SOURCE
from tests.conftest import hospital_entry, make_settings, register_patient, start_passport_backend
from tests.helpers import run_sync
from tests.test_clinical_sources import NID, Ward


class Consultation(Ward):
    """The ward's encounter with two diagnoses and a drug order given for the second."""

    def __init__(self, openmrs: Any) -> None:
        super().__init__(openmrs)
        self.when = datetime(2025, 11, 6, 10, 30)
        self.first = self.b.encounter_diagnosis(self.encounter, diagnosis_coded=self.malaria, rank=1)
        self.second = self.b.encounter_diagnosis(self.encounter, diagnosis_coded=self.asthma, rank=2)
        self.order = self.b.drug_order(
            self.encounter, self.provider, drug_id=self.drug, concept_id=self.amoxicillin, date_activated=self.when
        )
        openmrs.execute("UPDATE orders SET order_reason = %s WHERE order_id = %s", (self.asthma, self.order))


@pytest.fixture
def visit(openmrs: Any) -> Consultation:
    return Consultation(openmrs)


@pytest.fixture
def fresh_db(mongo_uri: str) -> Iterator[tuple[str, Any]]:
    name = f"pstest_{secrets.token_hex(4)}"
    client: pymongo.MongoClient[Any] = pymongo.MongoClient(mongo_uri)
    start_passport_backend(client[name])
    yield name, client[name]
    client.drop_database(name)
    client.close()


def derived_view(db: Any) -> dict[str, Any]:
    """What the page reads of the derived parts: visit data, and each condition's medications."""
    visits = {d["openmrsData"]["uuid"]: d["data"] for d in db.medicalrecords.find({"openmrsData.source": VISIT_SOURCE})}
    conditions = {
        d["data"].get("diagnosis"): [
            {k: v for k, v in m.items() if k != "_id"} for m in d["data"].get("medications", [])
        ]
        for d in db.medicalrecords.find({"type": "condition"})
    }
    return {"visits": visits, "conditions": conditions}


def test_derived_records_follow_openmrs_and_keep_doctors_entries(
    visit: Consultation, passport: Any, mongo_uri: str, mongo_db_name: str, fresh_db: tuple[str, Any]
) -> None:
    settings = make_settings(mongo_uri, mongo_db_name, [hospital_entry(visit.db.name)])
    register_patient(passport, NID)
    run_sync(settings)

    (record,) = passport.medicalrecords.find({"openmrsData.source": VISIT_SOURCE})
    assert record["type"] == "visit"
    assert record["data"]["diagnosis"] == "Malaria; Asthma"  # primary first
    assert record["data"]["reason"] == "Consultation"
    assert record["data"]["hospital"] == "Central Hospital" and record["data"]["doctor"] == "Grace Mukamana"
    assert record["data"]["date"] == record["data"]["visitDate"]
    view = derived_view(passport)
    assert view["conditions"]["Malaria"] == []
    (entry,) = view["conditions"]["Asthma"]  # the order's reason
    assert entry["name"] == "Amoxicillin 500 mg capsule" and entry["medicationStatus"] == "Active"

    # A doctor adds a medication in the app (Mongoose gives each entry an _id and saves the list).
    pneumonia = passport.medicalrecords.find_one({"data.diagnosis": "Asthma"})
    doctors = {"_id": "x1", "name": "Paracetamol", "dosage": "1 g"}
    saved = [{**m, "_id": f"s{i}"} for i, m in enumerate(pneumonia["data"]["medications"])] + [doctors]
    passport.medicalrecords.update_one({"_id": pneumonia["_id"]}, {"$set": {"data.medications": saved}})

    # OpenMRS changes: the order's diagnosis is voided, the order is discontinued.
    visit.db.execute(
        "UPDATE encounter_diagnosis SET voided = 1, date_voided = NOW() WHERE diagnosis_id = %s", (visit.second,)
    )
    stop = visit.when + timedelta(days=2)
    visit.db.execute("UPDATE orders SET date_stopped = %s WHERE order_id = %s", (stop, visit.order))
    visit.b.drug_order(
        visit.encounter,
        visit.provider,
        drug_id=visit.drug,
        concept_id=visit.amoxicillin,
        order_action="DISCONTINUE",
        previous_order_id=visit.order,
        date_activated=stop,
    )
    run_sync(settings)
    view = derived_view(passport)
    (record,) = passport.medicalrecords.find({"openmrsData.source": VISIT_SOURCE})
    assert record["data"]["diagnosis"] == "Malaria"
    (entry,) = view["conditions"]["Malaria"]  # its reason is gone: the primary diagnosis holds it
    assert entry["medicationStatus"] == "Past"
    assert "Asthma" not in view["conditions"]  # voided with the doctor's entry on it

    # Equal to a fresh full sync of today's OpenMRS (the doctor's entry aside).
    fresh_name, fresh = fresh_db
    register_patient(fresh, NID)
    run_sync(make_settings(mongo_uri, fresh_name, [hospital_entry(visit.db.name)]))
    assert derived_view(fresh) == view

    # The doctor's entry stays beside the sync's while its condition lives.
    visit.db.execute(
        "UPDATE encounter_diagnosis SET voided = 0, date_voided = NULL WHERE diagnosis_id = %s", (visit.second,)
    )
    visit.db.execute("UPDATE encounter_diagnosis SET date_changed = NOW() WHERE diagnosis_id = %s", (visit.second,))
    passport.medicalrecords.update_one(
        {"data.diagnosis": "Malaria"}, {"$push": {"data.medications": {"name": "ORS", "dosage": "1 sachet"}}}
    )
    run_sync(settings)
    run_sync(settings)
    view = derived_view(passport)
    assert [m["name"] for m in view["conditions"]["Asthma"]] == ["Amoxicillin 500 mg capsule"]
    assert [m["name"] for m in view["conditions"]["Malaria"]] == ["ORS"]


def test_an_encounter_with_orders_and_no_condition_gets_a_prescription_and_a_voided_encounter_loses_its_visit(
    visit: Consultation, passport: Any, mongo_uri: str, mongo_db_name: str
) -> None:
    settings = make_settings(mongo_uri, mongo_db_name, [hospital_entry(visit.db.name)])
    register_patient(passport, NID)
    for diagnosis in (visit.first, visit.second):
        visit.db.execute(
            "UPDATE encounter_diagnosis SET voided = 1, date_voided = NOW() WHERE diagnosis_id = %s", (diagnosis,)
        )
    run_sync(settings)
    (prescription,) = passport.medicalrecords.find({"openmrsData.source": "encounter_prescription"})
    assert prescription["type"] == "condition"
    assert [m["name"] for m in prescription["data"]["medications"]] == ["Amoxicillin 500 mg capsule"]
    (record,) = passport.medicalrecords.find({"openmrsData.source": VISIT_SOURCE})
    assert record["data"]["diagnosis"] == prescription["data"]["diagnosis"]
    second = run_sync(settings)[0]
    assert second.written == 0 and second.updated == 0

    # OpenMRS voids an encounter with everything in it.
    for table in ("orders", "encounter"):
        visit.db.execute(
            f"UPDATE {table} SET voided = 1, date_voided = NOW() WHERE encounter_id = %s", (visit.encounter,)
        )
    run_sync(settings)
    assert passport.medicalrecords.count_documents({}) == 0
    assert passport.openmrs_sync_encounters.count_documents({}) == 0
