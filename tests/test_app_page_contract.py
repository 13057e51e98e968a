"""The app's page reading rules (tests/page_rules.py) applied to what the demo syncs: every synced
diagnosis, medication and abnormal test of every demo patient is visible where the page looks."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pymongo
import pytest
from bson import ObjectId

from tests.page_rules import condition_name, read_page
from tests.test_demo import demo


@pytest.fixture(scope="module")
def synced_demo(mongo_uri: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    import secrets

    from tests.conftest import mysql_connect
    from tests.test_demo import databases

    prefix = f"pstest_demo_{secrets.token_hex(3)}"
    name = f"pstest_{secrets.token_hex(4)}"
    client: pymongo.MongoClient[Any] = pymongo.MongoClient(mongo_uri)
    try:
        result = demo(prefix, tmp_path_factory.mktemp("demo"), "--mongodb-uri", f"{mongo_uri}/{name}")
        assert result.exit_code == 0, result.stdout
        yield client[name]
    finally:
        client.drop_database(name)
        client.close()
        conn = mysql_connect()
        with conn.cursor() as cursor:
            for database in databases(prefix):
                cursor.execute(f"DROP DATABASE IF EXISTS `{database}`")
        conn.close()


def _pages(db: Any) -> list[tuple[str, list[dict[str, Any]], Any]]:
    records = list(db.medicalrecords.find())
    patients = sorted({r["patientId"] for r in records})
    return [(pid, [r for r in records if r["patientId"] == pid], read_page(records, pid)) for pid in patients]


def test_every_synced_diagnosis_is_on_a_row_of_the_page(synced_demo: Any) -> None:
    checked = 0
    for patient_id, records, page in _pages(synced_demo):
        text = page.diagnosis_text()
        for record in records:
            if record["type"] == "condition":
                assert condition_name(record) in text, (patient_id, condition_name(record), page.rows)
                checked += 1
    assert checked == 45  # the demo's diagnoses and conditions (its findings are test cards)


def test_every_synced_medication_is_inside_a_condition(synced_demo: Any) -> None:
    checked = 0
    for patient_id, records, page in _pages(synced_demo):
        for record in records:
            if record["type"] == "medication":
                assert record["data"]["medicationName"] in page.medications, (patient_id, page.medications)
                checked += 1
    assert checked == 34  # drug orders and medication observations


def test_every_abnormal_test_shows_as_abnormal_and_every_image_has_a_source(synced_demo: Any) -> None:
    abnormal = 0
    for _, records, page in _pages(synced_demo):
        shown = dict(page.tests)
        for record in records:
            status = record["data"].get("testStatus")
            if record["type"] == "test" and status in ("Abnormal", "Critical"):
                assert shown[record["data"]["testName"]] in ("ABNORMAL", "CRITICAL") or any(
                    name == record["data"]["testName"] and s == status.upper() for name, s in page.tests
                )
                abnormal += 1
        assert all(page.image_sources)
    assert abnormal == 46


def test_visits_carry_date_hospital_doctor_reason_and_point_at_real_users(synced_demo: Any) -> None:
    visits = list(synced_demo.medicalrecords.find({"type": "visit", "openmrsData.source": "encounter"}))
    assert visits
    users = {d["_id"] for d in synced_demo.users.find({}, {"_id": 1})}
    for visit in visits:
        data = visit["data"]
        assert data["date"] and data["hospital"] and data["doctor"] and data["reason"]
        assert ObjectId(visit["createdBy"]) in users
    assert synced_demo.patients.count_documents({"status": "active"}) == synced_demo.patients.count_documents({})
    entries = list(synced_demo.auditlogs.find({"action": "openmrs_auto_sync"}))
    assert entries and all(e["user"] in users and e["performedBy"] in users for e in entries)
    # The seed's monitoring queries, unchanged.
    assert list(synced_demo.auditlogs.find({"action": "openmrs_auto_sync", "changes.errorCount": {"$gt": 0}})) == []
    assert list(synced_demo.medicalrecords.aggregate([{"$group": {"_id": "$data.hospital", "count": {"$sum": 1}}}]))
