"""Each hospital's times are read in its own time zone, never silently in UTC.

The "database server's zone" cases make the server really answer in another zone: the source's
connections set their session ``time_zone``, as a server configured for Kigali would answer.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pymysql
import pytest

from passport_sync import service
from passport_sync.config import HospitalConfig, Settings, load_settings
from passport_sync.errors import ConfigError
from passport_sync.sink.passport import PassportStore
from passport_sync.source.openmrs import OpenMRSSource, server_zone
from tests.conftest import OpenMRSDatabase, hospital_entry, make_settings, register_patient

NATIONAL_ID = "1199780012345678"
EVENING = datetime(2025, 11, 6, 23, 30)  # 21:30 UTC in Kigali; 04:30 UTC the next day at -05:00


def _server_in(zone: str) -> service.SourceFactory:
    """Sources whose server answers in ``zone`` (its NOW() and @@time_zone)."""

    def connect(**kwargs: Any) -> Any:
        return pymysql.connect(init_command=f"SET time_zone = '{zone}'", **kwargs)

    def factory(hospital: HospitalConfig, settings: Settings) -> OpenMRSSource:
        return OpenMRSSource(hospital, settings.sync.retry, connect=connect)

    return factory


def _chart(openmrs: OpenMRSDatabase) -> None:
    b = openmrs.build
    person = b.patient(national_id=NATIONAL_ID)
    note = b.concept("Clinical note", datatype="Text", concept_class="Misc")
    onset = b.concept("Onset of symptoms", datatype="Datetime", concept_class="Question")
    encounter = b.encounter(person, when=EVENING)
    b.obs(person, note, encounter_id=encounter, value_text="Seen in the evening")
    b.obs(person, onset, encounter_id=encounter, value_datetime=datetime(2025, 11, 6, 21, 15))


def _sync(settings: Settings, factory: service.SourceFactory = service.default_source) -> None:
    store = PassportStore.connect(settings)
    try:
        [report] = service.sync_all(settings, store, settings.enabled_hospitals(), source_factory=factory)
        assert report.outcome == "ok", report.errors
    finally:
        store.close()


def _dates(passport: Any) -> dict[str, str]:
    return {r["data"]["testName"]: r["data"]["date"] for r in passport.medicalrecords.find({"type": {"$ne": "visit"}})}


def test_a_configured_time_zone_converts_record_times_and_keeps_values_as_entered(
    openmrs: OpenMRSDatabase, passport: Any, mongo_uri: str
) -> None:
    register_patient(passport, NATIONAL_ID)
    _chart(openmrs)
    _sync(make_settings(mongo_uri, passport.name, [hospital_entry(openmrs.name, timezone="Africa/Kigali")]))
    records = {r["data"]["testName"]: r for r in passport.medicalrecords.find({"type": {"$ne": "visit"}})}
    assert records["Clinical note"]["data"]["date"] == "2025-11-06T21:30:00.000Z"
    onset = records["Onset of symptoms: 2025-11-06 21:15"]
    assert onset["data"]["result"] == "2025-11-06 21:15"  # as the clinician entered it, not shifted
    assert onset["openmrsData"]["obsDatetime"] == datetime(2025, 11, 6, 21, 30)


def test_without_a_time_zone_the_database_servers_zone_is_used(
    openmrs: OpenMRSDatabase, passport: Any, mongo_uri: str
) -> None:
    register_patient(passport, NATIONAL_ID)
    _chart(openmrs)
    _sync(make_settings(mongo_uri, passport.name, [hospital_entry(openmrs.name)]), _server_in("+02:00"))
    assert _dates(passport)["Clinical note"] == "2025-11-06T21:30:00.000Z"


def test_a_configured_time_zone_wins_over_the_servers(openmrs: OpenMRSDatabase, passport: Any, mongo_uri: str) -> None:
    register_patient(passport, NATIONAL_ID)
    _chart(openmrs)
    settings = make_settings(mongo_uri, passport.name, [hospital_entry(openmrs.name, timezone="-05:00")])
    _sync(settings, _server_in("+02:00"))
    assert _dates(passport)["Clinical note"] == "2025-11-07T04:30:00.000Z"


def test_test_connection_shows_which_time_zone_is_used(openmrs: OpenMRSDatabase, mongo_uri: str) -> None:
    settings = make_settings(mongo_uri, "pstest_unused", [hospital_entry(openmrs.name)])
    [hospital] = settings.hospitals
    with _server_in("+02:00")(hospital, settings) as source:
        result = service.check_source(hospital, settings, source)
    check = next(c for c in result["checks"] if c["check"] == "time zone")
    assert check["ok"]
    assert check["detail"].startswith("UTC+02:00 (the database server's offset")
    configured = make_settings(mongo_uri, "pstest_unused", [hospital_entry(openmrs.name, timezone="Africa/Kigali")])
    [kigali] = configured.hospitals
    with service.default_source(kigali, configured) as source:
        assert service.check_source(kigali, configured, source)["timezone"] == "Africa/Kigali (configured)"


@pytest.mark.parametrize(
    ("session", "system", "offset", "expected"),
    [
        ("SYSTEM", "CAT", 7200, timezone(timedelta(hours=2))),  # an abbreviation: the offset
        ("SYSTEM", "UTC", 0, UTC),
        ("Africa/Kigali", "UTC", 7200, ZoneInfo("Africa/Kigali")),  # a named zone: DST-correct
        ("SYSTEM", "Europe/Paris", 3600, ZoneInfo("Europe/Paris")),
        ("+05:30", "UTC", 19800, timezone(timedelta(hours=5, minutes=30))),
        ("-03:00", "UTC", -10800, timezone(timedelta(hours=-3))),
    ],
)
def test_the_servers_zone_from_what_it_reports(session: str, system: str, offset: int, expected: Any) -> None:
    assert server_zone(session, system, offset).zone == expected


KIGALI_CENTRAL = {
    "HOSPITAL_1_ID": "kch",
    "HOSPITAL_1_NAME": "Kigali Central",
    "HOSPITAL_1_DB_HOST": "db",
    "HOSPITAL_1_DB_USER": "reader",
}


def test_hospital_time_zone_from_the_environment() -> None:
    environ = {
        **KIGALI_CENTRAL,
        "HOSPITAL_1_TIMEZONE": "Africa/Kigali",
        "HOSPITAL_2_ID": "other",
        "HOSPITAL_2_NAME": "Other",
        "HOSPITAL_2_DB_HOST": "db2",
        "HOSPITAL_2_DB_USER": "reader",
    }
    kch, other = load_settings(None, environ=environ).hospitals
    assert kch.zone() == ZoneInfo("Africa/Kigali")
    assert other.timezone is None
    assert other.zone() is None  # the server's, read at run time; never silently UTC


def test_an_unknown_time_zone_is_a_configuration_error_naming_the_key() -> None:
    environ = {**KIGALI_CENTRAL, "HOSPITAL_1_TIMEZONE": "Africa/Kigalli"}
    with pytest.raises(ConfigError) as caught:
        load_settings(None, environ=environ)
    assert any(p.startswith("HOSPITAL_1_TIMEZONE: unknown time zone 'Africa/Kigalli'") for p in caught.value.problems)
