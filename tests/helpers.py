"""Small helpers shared by the integration tests (fixtures live in conftest.py)."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from passport_sync import service
from passport_sync.config import Settings
from passport_sync.models import HospitalReport
from passport_sync.sink.passport import PassportStore
from tests.conftest import OpenMRSDatabase


def run_sync(settings: Settings, **kwargs: Any) -> list[HospitalReport]:
    store = PassportStore.connect(settings)
    try:
        return service.sync_all(settings, store, settings.enabled_hospitals(), **kwargs)
    finally:
        store.close()


def obs_uuids(passport: Any, hospital_id: str | None = None) -> Counter[str]:
    """How many records each OpenMRS obs uuid has (a value above 1 is a duplicate)."""
    query: dict[str, Any] = {"openmrsData.source": "obs"}
    if hospital_id:
        query["openmrsData.hospitalId"] = hospital_id
    return Counter(d["openmrsData"]["uuid"] for d in passport.medicalrecords.find(query, {"openmrsData.uuid": 1}))


def live_obs_uuids(openmrs: OpenMRSDatabase, person_ids: list[int] | None = None) -> set[str]:
    """uuids of the observations a patient should see: non-voided, carrying a value."""
    sql = (
        "SELECT uuid FROM obs WHERE voided = 0 AND (value_coded IS NOT NULL OR value_numeric IS NOT NULL"
        " OR value_text IS NOT NULL OR value_datetime IS NOT NULL OR value_drug IS NOT NULL"
        " OR value_complex IS NOT NULL)"
    )
    params: tuple[Any, ...] = ()
    if person_ids:
        sql += f" AND person_id IN ({', '.join(['%s'] * len(person_ids))})"
        params = tuple(person_ids)
    return {row[0] for row in openmrs.execute(sql, params)}


def with_links(settings: Settings) -> Settings:
    """The same settings with ``sync.medical_history_links`` on (off by default)."""
    return settings.model_copy(update={"sync": settings.sync.model_copy(update={"medical_history_links": True})})


def write_config(path: Path, mongo_uri: str, mongo_db: str, hospitals: list[dict[str, Any]], **sync: Any) -> Path:
    document = {
        "mongodb": {"uri": f"{mongo_uri}/{mongo_db}", "server_selection_timeout_ms": 3000},
        "sync": {"retry": {"attempts": 2, "initial_wait_seconds": 0.01, "max_wait_seconds": 0.05}, **sync},
        "hospitals": hospitals,
    }
    path.write_text(yaml.safe_dump(document))
    path.chmod(0o600)
    return path


class Clinic:
    """A small OpenMRS clinic: concepts, a provider, a location, and helpers to record care."""

    def __init__(self, openmrs: OpenMRSDatabase) -> None:
        b = openmrs.build
        self.db = openmrs
        self.b = b
        self.location = b.location("Outpatient Clinic")
        self.provider = b.provider("John", "Doe")
        self.diagnosis = b.concept("Diagnosis", datatype="Coded", concept_class="Diagnosis")
        self.diabetes = b.concept("Diabetes Type 2", datatype="N/A", concept_class="Diagnosis")
        self.weight = b.concept(
            "Weight (kg)", datatype="Numeric", concept_class="Test", units="kg", hi_normal=150, low_normal=30
        )
        self.note = b.concept("Clinical note", datatype="Text", concept_class="Misc")
        self.when = datetime(2025, 11, 6, 10, 30)

    def patient(self, national_id: str | None, **kwargs: Any) -> int:
        return self.b.patient(national_id=national_id, **kwargs)

    def visit(self, person_id: int, weights: int = 1, **obs_kwargs: Any) -> list[int]:
        """An encounter with a diagnosis and ``weights`` weight observations; returns obs ids."""
        encounter = self.b.encounter(person_id, location_id=self.location, provider_ids=[self.provider])
        ids = [self.b.obs(person_id, self.diagnosis, encounter_id=encounter, value_coded=self.diabetes, **obs_kwargs)]
        for i in range(weights):
            ids.append(self.b.obs(person_id, self.weight, encounter_id=encounter, value_numeric=60 + i, **obs_kwargs))
        return ids

    def many(self, person_ids: list[int], count: int) -> None:
        """``count`` numeric observations spread over ``person_ids``, inserted in bulk."""
        rows = [
            {
                "patient_id": person_ids[i % len(person_ids)],
                "concept_id": self.weight,
                "value_numeric": 50 + i % 40,
                "obs_datetime": self.when + timedelta(minutes=i),
            }
            for i in range(count)
        ]
        self.b.obs_many(rows)


def synced(query: dict[str, Any] | None = None) -> dict[str, Any]:
    """``query`` restricted to records of single OpenMRS rows (not the visit and prescription
    records derived from encounters)."""
    from passport_sync.mapping.visits import DERIVED_SOURCES

    return {**(query or {}), "openmrsData.source": {"$nin": list(DERIVED_SOURCES)}}
