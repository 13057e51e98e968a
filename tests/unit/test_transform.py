"""transform: rendering values, test status and the app-shaped medicalrecords document."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from bson import ObjectId

from passport_sync.config import RecordType
from passport_sync.mapping import RENDER_VERSION, transform
from passport_sync.mapping.transform import RecordContext, RenderedValue, build_record, record_id, render_value
from passport_sync.models import ObsRow

# Imported under another name so pytest does not collect it as a test.
status_of = transform.test_status

KIGALI = ZoneInfo("Africa/Kigali")  # UTC+2, no DST
TRUE_ID, FALSE_ID = 1065, 1066
OBS_UUID = "3f0c9e8a-1b2c-4d5e-8f90-a1b2c3d4e5f6"
HOSPITAL = "60a7c2f5e4b0c1a2d3e4f5a6"
NOW = datetime(2025, 11, 6, 12, 0, 0, tzinfo=UTC)


def obs(**fields: Any) -> ObsRow:
    base: dict[str, Any] = {
        "obs_id": 42,
        "uuid": OBS_UUID,
        "person_id": 7,
        "concept_id": 5089,
        "concept_uuid": "5089AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "concept_datatype": "Text",
        "concept_class": "Misc",
        "obs_datetime": datetime(2025, 11, 6, 10, 30, 0),
        "date_created": datetime(2025, 11, 6, 10, 45, 0),
    }
    base.update(fields)
    return ObsRow(**base)


def render(row: ObsRow, answer_name: str | None = None) -> RenderedValue | None:
    return render_value(row, answer_name=answer_name, true_concept_id=TRUE_ID, false_concept_id=FALSE_ID)


def context(**fields: Any) -> RecordContext:
    base: dict[str, Any] = {
        "hospital_id": HOSPITAL,
        "hospital_name": "Kigali Central Hospital",
        "patient_id": "64b000000000000000000001",
        "created_by": "64b000000000000000000002",
        "doctor_name": "Dr. Jean Uwimana",
        "provider_uuid": "prov-uuid-1",
        "concept_name": "Weight (kg)",
        "answer_name": None,
        "group_concept_name": None,
        "category": "test",
        "now": NOW,
        "tz": KIGALI,
        "true_concept_id": TRUE_ID,
        "false_concept_id": FALSE_ID,
    }
    base.update(fields)
    return RecordContext(**base)


class TestRenderCoded:
    def test_text_typed_with_other_is_the_answer(self) -> None:
        other = obs(
            concept_datatype="Coded", value_coded=5622, value_coded_uuid="5622".ljust(36, "A"), value_text="Mango"
        )
        assert render(other, "Other") == RenderedValue("Mango", "coded", "coded")

    def test_text_typed_with_another_answer_follows_it(self) -> None:
        row = obs(concept_datatype="Coded", value_coded=123, value_text="since May")
        assert render(row, "Cough") == RenderedValue("Cough (since May)", "coded", "coded")

    def test_coded_uses_the_answer_name(self) -> None:
        assert render(obs(concept_datatype="Coded", value_coded=123), "Malaria") == RenderedValue(
            "Malaria", "coded", "coded"
        )

    def test_coded_without_a_name_names_the_concept_id(self) -> None:
        assert render(obs(concept_datatype="Coded", value_coded=123)) == RenderedValue("Concept 123", "coded", "coded")


class TestRenderBoolean:
    @pytest.mark.parametrize(("coded", "text"), [(TRUE_ID, "Yes"), (FALSE_ID, "No")])
    def test_coded_true_and_false_concepts(self, coded: int, text: str) -> None:
        row = obs(concept_datatype="Boolean", value_coded=coded)
        assert render(row, answer_name="True") == RenderedValue(text, "coded", "boolean")

    @pytest.mark.parametrize(("numeric", "text"), [(1.0, "Yes"), (0.0, "No")])
    def test_legacy_numeric_one_and_zero(self, numeric: float, text: str) -> None:
        row = obs(concept_datatype="Boolean", value_numeric=numeric)
        assert render(row) == RenderedValue(text, "coded", "boolean")

    def test_boolean_with_another_coded_answer_is_an_ordinary_coded_value(self) -> None:
        row = obs(concept_datatype="Boolean", value_coded=999)
        assert render(row, answer_name="Unknown") == RenderedValue("Unknown", "coded", "coded")

    def test_boolean_with_another_number_is_an_ordinary_number(self) -> None:
        row = obs(concept_datatype="Boolean", value_numeric=2.0)
        assert render(row) == RenderedValue("2", "numeric", "numeric")

    def test_true_concept_id_on_a_coded_concept_is_not_a_boolean(self) -> None:
        row = obs(concept_datatype="Coded", value_coded=TRUE_ID)
        assert render(row, answer_name="True") == RenderedValue("True", "coded", "coded")


class TestRenderDrug:
    def test_drug_name_wins_over_the_coded_answer(self) -> None:
        row = obs(concept_datatype="Coded", value_coded=71617, value_drug=12, drug_name="Paracetamol 500mg tablet")
        assert render(row, answer_name="Paracetamol") == RenderedValue("Paracetamol 500mg tablet", "coded", "drug")

    def test_drug_without_a_name_falls_back_to_the_coded_answer(self) -> None:
        row = obs(concept_datatype="Coded", value_coded=71617, value_drug=12, drug_name=None)
        assert render(row, answer_name="Paracetamol") == RenderedValue("Paracetamol", "coded", "coded")

    def test_drug_name_without_value_drug_is_ignored(self) -> None:
        row = obs(concept_datatype="Coded", value_coded=71617, drug_name="Paracetamol 500mg tablet")
        assert render(row, answer_name="Paracetamol") == RenderedValue("Paracetamol", "coded", "coded")


class TestRenderNumeric:
    @pytest.mark.parametrize(
        ("value", "allow_decimal", "text"),
        [
            (70.0, None, "70"),
            (70.0, True, "70"),
            (70.5, None, "70.5"),
            (70.5, True, "70.5"),
            (36.6, False, "36"),  # OpenMRS truncates: 72.6 shows 72
            (36.4, False, "36"),
            (-2.7, False, "-2"),
            (0.1 + 0.2, None, "0.3"),
            (-3.25, None, "-3.25"),
            (0.0, None, "0"),
            (1234567.891, True, "1234567.891"),
        ],
    )
    def test_numbers(self, value: float, allow_decimal: bool | None, text: str) -> None:
        row = obs(concept_datatype="Numeric", value_numeric=value, allow_decimal=allow_decimal)
        assert render(row) == RenderedValue(text, "numeric", "numeric")

    def test_units_are_appended_trimmed(self) -> None:
        row = obs(concept_datatype="Numeric", value_numeric=5.6, units=" mmol/L ")
        assert render(row) == RenderedValue("5.6 mmol/L", "numeric", "numeric")

    def test_blank_units_are_not_appended(self) -> None:
        row = obs(concept_datatype="Numeric", value_numeric=5.6, units="   ")
        assert render(row) == RenderedValue("5.6", "numeric", "numeric")

    def test_value_modifier_prefixes_the_number(self) -> None:
        row = obs(concept_datatype="Numeric", value_numeric=40.0, value_modifier="<", units="copies/mL")
        assert render(row) == RenderedValue("<40 copies/mL", "numeric", "numeric")

    def test_modifier_with_allow_decimal_false(self) -> None:
        row = obs(concept_datatype="Numeric", value_numeric=3.2, value_modifier=">=", allow_decimal=False)
        assert render(row) == RenderedValue(">=3", "numeric", "numeric")


class TestRenderDates:
    def test_datetime_is_shown_in_the_hospital_local_time_as_entered(self) -> None:
        row = obs(concept_datatype="Datetime", value_datetime=datetime(2025, 11, 6, 22, 30))
        assert render(row) == RenderedValue("2025-11-06 22:30", "text", "datetime")

    def test_datetime_keeps_seconds_when_entered(self) -> None:
        row = obs(concept_datatype="Datetime", value_datetime=datetime(2025, 11, 6, 10, 30, 5, 123456))
        assert render(row) == RenderedValue("2025-11-06 10:30:05", "text", "datetime")

    def test_date_is_the_calendar_date_without_conversion(self) -> None:
        row = obs(concept_datatype="Date", value_datetime=datetime(2025, 11, 6, 0, 0))
        assert render(row) == RenderedValue("2025-11-06", "text", "date")

    def test_time_is_the_local_clock_time(self) -> None:
        row = obs(concept_datatype="Time", value_datetime=datetime(1970, 1, 1, 10, 30, 15))
        assert render(row) == RenderedValue("10:30", "text", "time")


class TestRenderComplexAndText:
    def test_complex_shows_the_title_not_the_file(self) -> None:
        row = obs(concept_datatype="Complex", value_complex="chest-xray.png|chest-xray_5f2c1d.png")
        rendered = render(row)
        assert rendered == RenderedValue("chest-xray.png", "text", "complex")

    def test_complex_title_is_trimmed(self) -> None:
        row = obs(concept_datatype="Complex", value_complex="  scan.pdf  |scan_1.pdf")
        assert render(row) == RenderedValue("scan.pdf", "text", "complex")

    def test_complex_without_a_title_is_an_attachment(self) -> None:
        row = obs(concept_datatype="Complex", value_complex=" |upload_77.bin")
        assert render(row) == RenderedValue("Attachment", "text", "complex")

    def test_text(self) -> None:
        row = obs(value_text="Patient reports headache")
        assert render(row) == RenderedValue("Patient reports headache", "text", "text")

    def test_no_value_is_none(self) -> None:
        assert render(obs(concept_datatype="N/A")) is None
        assert render(obs(concept_datatype="Boolean")) is None


class TestTestStatus:
    @pytest.mark.parametrize(
        ("interpretation", "expected"),
        [
            ("NORMAL", "Normal"),
            ("NEGATIVE", "Normal"),
            ("normal", "Normal"),
            ("ABNORMAL", "Abnormal"),
            ("LOW", "Abnormal"),
            ("HIGH", "Abnormal"),
            ("POSITIVE", "Abnormal"),
            ("OFF_SCALE_LOW", "Abnormal"),
            ("OFF_SCALE_HIGH", "Abnormal"),
            ("SIGNIFICANT_CHANGE_DOWN", "Abnormal"),
            ("SIGNIFICANT_CHANGE_UP", "Abnormal"),
            ("CRITICALLY_ABNORMAL", "Critical"),
            ("CRITICALLY_LOW", "Critical"),
            ("CRITICALLY_HIGH", "Critical"),
        ],
    )
    def test_interpretation(self, interpretation: str, expected: str) -> None:
        assert status_of(obs(interpretation=interpretation, value_text="+")) == expected

    def test_interpretation_wins_over_ranges(self) -> None:
        row = obs(value_numeric=5.0, low_normal=4.0, hi_normal=6.0, interpretation="CRITICALLY_HIGH")
        assert status_of(row) == "Critical"

    def test_unknown_interpretation_falls_back_to_ranges(self) -> None:
        row = obs(value_numeric=5.0, low_normal=4.0, hi_normal=6.0, interpretation="EXPECTED")
        assert status_of(row) == "Normal"

    RANGES: dict[str, float] = {"low_critical": 2.0, "low_normal": 4.0, "hi_normal": 6.0, "hi_critical": 10.0}

    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            (1.9, "Critical"),
            (2.0, "Abnormal"),
            (3.9, "Abnormal"),
            (4.0, "Normal"),
            (5.0, "Normal"),
            (6.0, "Normal"),
            (6.1, "Abnormal"),
            (10.0, "Abnormal"),
            (10.1, "Critical"),
        ],
    )
    def test_ranges(self, value: float, expected: str) -> None:
        assert status_of(obs(value_numeric=value, **self.RANGES)) == expected

    def test_only_a_high_normal_bound(self) -> None:
        assert status_of(obs(value_numeric=5.0, hi_normal=6.0)) == "Normal"
        assert status_of(obs(value_numeric=7.0, hi_normal=6.0)) == "Abnormal"

    def test_only_a_low_normal_bound(self) -> None:
        assert status_of(obs(value_numeric=5.0, low_normal=4.0)) == "Normal"
        assert status_of(obs(value_numeric=3.0, low_normal=4.0)) == "Abnormal"

    def test_only_critical_bounds(self) -> None:
        assert status_of(obs(value_numeric=11.0, hi_critical=10.0)) == "Critical"
        assert status_of(obs(value_numeric=1.0, low_critical=2.0)) == "Critical"
        assert status_of(obs(value_numeric=5.0, low_critical=2.0, hi_critical=10.0)) is None

    def test_no_ranges_is_none(self) -> None:
        assert status_of(obs(value_numeric=5.0)) is None

    def test_non_numeric_without_interpretation_is_none(self) -> None:
        assert status_of(obs(value_text="positive", low_normal=1.0, hi_normal=2.0)) is None

    def test_value_with_modifier_is_not_judged_by_ranges(self) -> None:
        assert status_of(obs(value_numeric=40.0, value_modifier="<", low_normal=50.0, hi_normal=100.0)) is None


class TestBuildRecord:
    def test_app_shape(self) -> None:
        row = obs(concept_datatype="Numeric", value_numeric=70.0, units="kg", obs_id=42)
        record = build_record(row, context())
        assert record is not None
        assert set(record) == {
            "_id",
            "patientId",
            "type",
            "data",
            "createdBy",
            "editableBy",
            "openmrsData",
            "syncDate",
            "createdAt",
            "updatedAt",
            "__v",
        }
        assert record["_id"] == record_id(HOSPITAL, "obs", OBS_UUID)
        assert isinstance(record["_id"], ObjectId)
        assert record["patientId"] == "64b000000000000000000001"
        assert isinstance(record["patientId"], str)
        assert record["createdBy"] == "64b000000000000000000002"
        assert isinstance(record["createdBy"], str)
        assert record["editableBy"] == ["64b000000000000000000002"]
        assert record["type"] == "test"
        assert record["createdAt"] == NOW
        assert record["updatedAt"] == NOW
        assert record["__v"] == 0
        assert record["openmrsData"]["renderVersion"] == RENDER_VERSION
        assert record["data"] == {
            "name": "Weight (kg)",
            "details": "70 kg",
            "date": "2025-11-06T08:30:00.000Z",
            "doctor": "Dr. Jean Uwimana",
            "hospital": "Kigali Central Hospital",
            "testName": "Weight (kg)",
            "testDate": "2025-11-06T08:30:00.000Z",
            "result": "70 kg",
            "status": "not interpreted",
        }
        meta = record["openmrsData"]
        assert meta["hospitalId"] == HOSPITAL
        assert meta["source"] == "obs"
        assert meta["uuid"] == OBS_UUID
        assert meta["obsUuid"] == OBS_UUID
        assert meta["obsId"] == 42
        assert meta["conceptId"] == 5089
        assert meta["personId"] == 7
        assert meta["valueType"] == "numeric"
        assert meta["valueKind"] == "numeric"
        assert meta["units"] == "kg"
        assert meta["obsDatetime"] == datetime(2025, 11, 6, 8, 30, tzinfo=UTC)
        assert meta["dateCreated"] == datetime(2025, 11, 6, 8, 45, tzinfo=UTC)
        assert meta["creatorName"] == "Dr. Jean Uwimana"
        assert meta["providerUuid"] == "prov-uuid-1"
        assert "groupUuid" not in meta
        assert "previousVersionUuid" not in meta
        assert "valueComplex" not in meta

    ROWS = {
        "coded": obs(concept_datatype="Coded", value_coded=123),
        "boolean": obs(concept_datatype="Boolean", value_coded=TRUE_ID),
        "drug": obs(concept_datatype="Coded", value_coded=5, value_drug=9, drug_name="Amoxicillin 250mg"),
        "numeric": obs(concept_datatype="Numeric", value_numeric=37.5, value_modifier=">", units="C"),
        "date": obs(concept_datatype="Date", value_datetime=datetime(2025, 1, 2)),
        "time": obs(concept_datatype="Time", value_datetime=datetime(1970, 1, 1, 8, 0)),
        "datetime": obs(concept_datatype="Datetime", value_datetime=datetime(2025, 1, 2, 3, 4)),
        "complex": obs(concept_datatype="Complex", value_complex="ct.jpeg|ct_1.jpeg"),
        "text": obs(value_text="note", comments="seen in clinic"),
    }

    @pytest.mark.parametrize("category", ["condition", "medication", "test", "visit", "image"])
    @pytest.mark.parametrize("kind", sorted(ROWS))
    def test_every_data_value_is_a_string_and_value_type_is_the_apps(self, kind: str, category: RecordType) -> None:
        row = self.ROWS[kind]
        record = build_record(
            row, context(category=category, answer_name="Answer", group_concept_name="Vitals", doctor_name="Dr. A")
        )
        assert record is not None
        assert record["type"] == category
        assert record["data"], "data must not be empty"
        assert all(isinstance(v, str) for v in record["data"].values()), record["data"]
        assert record["openmrsData"]["valueType"] in {"text", "numeric", "coded"}
        assert record["openmrsData"]["valueKind"] == kind

    def test_group_parent_without_a_value_is_none(self) -> None:
        parent = obs(concept_datatype="N/A", concept_class="ConvSet", comments="vitals")
        assert not parent.has_value()
        assert build_record(parent, context(category="condition")) is None

    def test_group_member_is_described_by_its_group(self) -> None:
        row = obs(
            concept_datatype="Numeric",
            value_numeric=120.0,
            obs_group_id=41,
            group_uuid="group-uuid-41",
            group_concept_id=1114,
        )
        record = build_record(row, context(concept_name="Systolic", group_concept_name="Blood pressure"))
        assert record is not None
        assert record["data"]["description"] == "Blood pressure"
        assert record["openmrsData"]["groupUuid"] == "group-uuid-41"

    def test_ungrouped_obs_has_no_description(self) -> None:
        record = build_record(obs(value_text="x"), context(category="condition"))
        assert record is not None
        assert "description" not in record["data"]
        assert "groupUuid" not in record["openmrsData"]

    def test_comments_become_notes(self) -> None:
        record = build_record(obs(value_text="x", comments="repeat in 2 weeks"), context(category="visit"))
        assert record is not None
        assert record["data"]["notes"] == "repeat in 2 weeks"
        assert "notes" not in build_record(obs(value_text="x"), context(category="visit"))["data"]  # type: ignore[index]

    def test_previous_version_is_recorded(self) -> None:
        record = build_record(obs(value_text="x", previous_version_uuid="old-uuid"), context(category="condition"))
        assert record is not None
        assert record["openmrsData"]["previousVersionUuid"] == "old-uuid"

    def test_condition_fields(self) -> None:
        row = obs(concept_datatype="Coded", value_coded=123, value_coded_class="Diagnosis")
        record = build_record(row, context(category="condition", answer_name="Malaria"))
        assert record is not None
        data = record["data"]
        assert data["diagnosis"] == "Malaria"
        assert data["diagnosed"] == "2025-11-06T08:30:00.000Z"
        assert data["diagnosedDate"] == "2025-11-06T08:30:00.000Z"
        assert data["diagnosedBy"] == "Dr. Jean Uwimana"
        assert record["openmrsData"]["valueType"] == "coded"

    def test_medication_fields_for_a_drug(self) -> None:
        row = obs(concept_datatype="Coded", value_coded=5, value_drug=9, drug_name="Amoxicillin 250mg")
        record = build_record(row, context(category="medication", concept_name="Medication orders"))
        assert record is not None
        data = record["data"]
        assert data["medicationName"] == "Amoxicillin 250mg"
        assert data["startDate"] == "2025-11-06T08:30:00.000Z"
        assert data["prescribedBy"] == "Dr. Jean Uwimana"
        assert data["medicationStatus"] == "Active"

    def test_medication_name_of_a_numeric_obs_is_the_concept_name(self) -> None:
        row = obs(concept_datatype="Numeric", value_numeric=500.0, units="mg")
        record = build_record(row, context(category="medication", concept_name="Paracetamol dose"))
        assert record is not None
        assert record["data"]["medicationName"] == "Paracetamol dose: 500 mg"
        assert record["data"]["details"] == "500 mg"

    def test_sync_date_is_when_the_row_was_written_in_openmrs(self) -> None:
        # The app locks a record three hours after its syncDate: history arrives locked.
        record = build_record(obs(value_text="x"), context())
        assert record is not None
        assert record["syncDate"] == record["openmrsData"]["dateCreated"]
        assert record["syncDate"] != NOW

    def test_test_fields_include_status(self) -> None:
        row = obs(concept_datatype="Numeric", value_numeric=14.0, low_normal=12.0, hi_normal=16.0)
        record = build_record(row, context(category="test", concept_name="Haemoglobin"))
        assert record is not None
        assert record["data"]["testName"] == "Haemoglobin"
        assert record["data"]["result"] == "14 (normal 12-16)"
        assert record["data"]["testStatus"] == "Normal"
        assert record["data"]["status"] == "normal"

    @pytest.mark.parametrize(("value", "status"), [(20.0, "abnormal"), (40.0, "critical")])
    def test_the_status_the_page_reads_is_lower_case(self, value: float, status: str) -> None:
        row = obs(concept_datatype="Numeric", value_numeric=value, low_normal=12.0, hi_normal=16.0, hi_critical=30.0)
        record = build_record(row, context(category="test"))
        assert record is not None
        assert record["data"]["status"] == status

    def test_a_result_nobody_judged_says_so_instead_of_normal(self) -> None:
        # A temperature of 39.2 on a concept without ranges: the page would show NORMAL without a status.
        row = obs(concept_datatype="Numeric", value_numeric=39.2, units="DEG C")
        record = build_record(row, context(category="test", concept_name="Temperature (C)"))
        assert record is not None
        assert "testStatus" not in record["data"]
        assert record["data"]["status"] == "not interpreted"

    @pytest.mark.parametrize("answer", [703, 1228, 1301])
    def test_a_positive_reactive_or_detected_answer_is_abnormal(self, answer: int) -> None:
        row = obs(
            concept_datatype="Coded",
            concept_class="Test",
            value_coded=answer,
            value_coded_uuid=str(answer).ljust(36, "A"),
        )
        record = build_record(row, context(category="test", concept_name="HIV rapid test", answer_name="Positive"))
        assert record is not None
        assert record["data"]["testStatus"] == "Abnormal"
        assert record["data"]["status"] == "abnormal"
        assert record["data"]["result"] == "Positive"

    def test_a_negative_answer_is_not_called_normal_without_an_interpretation(self) -> None:
        row = obs(concept_datatype="Coded", value_coded=664, value_coded_uuid="664".ljust(36, "A"))
        record = build_record(row, context(category="test", answer_name="Negative"))
        assert record is not None
        assert record["data"]["status"] == "not interpreted"
        negative = obs(concept_datatype="Coded", value_coded=664, interpretation="NEGATIVE")
        judged = build_record(negative, context(category="test", answer_name="Negative"))
        assert judged is not None and judged["data"]["status"] == "normal"

    @pytest.mark.parametrize(("status", "shown"), [("PRELIMINARY", "preliminary"), ("AMENDED", "amended")])
    def test_a_result_that_is_not_final_says_so(self, status: str, shown: str) -> None:
        row = obs(concept_datatype="Numeric", value_numeric=14.0, low_normal=12.0, hi_normal=16.0, status=status)
        record = build_record(row, context(category="test", concept_name="Haemoglobin"))
        assert record is not None
        assert record["data"]["result"] == f"14 ({shown}; normal 12-16)"

    def test_visit_fields(self) -> None:
        record = build_record(obs(value_text="Follow-up"), context(category="visit"))
        assert record is not None
        assert record["data"]["visitDate"] == "2025-11-06T08:30:00.000Z"
        assert record["data"]["reason"] == "Follow-up"

    def test_image_fields_use_the_title_and_its_extension(self) -> None:
        row = obs(concept_datatype="Complex", value_complex="Chest X-Ray.PNG|chest_x-ray_5f2c1d.png")
        record = build_record(row, context(category="image", concept_name="Radiology image"))
        assert record is not None
        assert record["data"]["description"] == "Chest X-Ray.PNG"
        assert record["data"]["imageType"] == "png"
        assert record["data"]["details"] == "Chest X-Ray.PNG"
        assert "chest_x-ray_5f2c1d.png" not in record["data"].values()
        assert record["openmrsData"]["valueComplex"] == "Chest X-Ray.PNG|chest_x-ray_5f2c1d.png"
        assert record["openmrsData"]["valueType"] == "text"
        # The file stays in OpenMRS: the tile shows an image saying so, never an empty source.
        url = record["data"]["imageUrl"]
        assert url.startswith("data:image/svg+xml;base64,")
        shown = base64.b64decode(url.split(",", 1)[1]).decode()
        assert "Kept in OpenMRS" in shown and "Chest X-Ray.PNG" in shown
        assert "kept in OpenMRS" in record["data"]["notes"]

    def test_image_without_an_extension_has_no_image_type(self) -> None:
        row = obs(concept_datatype="Complex", value_complex="scan|scan_1")
        record = build_record(row, context(category="image"))
        assert record is not None
        assert "imageType" not in record["data"]

    def test_obs_datetime_uses_the_hospital_timezone(self) -> None:
        row = obs(value_text="x", obs_datetime=datetime(2025, 6, 1, 0, 15))
        record = build_record(row, context(category="visit", tz=ZoneInfo("America/New_York")))
        assert record is not None
        # 00:15 EDT (UTC-4) is 04:15 UTC.
        assert record["data"]["date"] == "2025-06-01T04:15:00.000Z"
        assert record["openmrsData"]["obsDatetime"] == datetime(2025, 6, 1, 4, 15, tzinfo=UTC)

    def test_record_for_the_same_row_is_the_same(self) -> None:
        row = obs(value_text="x")
        assert build_record(row, context(category="visit")) == build_record(row, context(category="visit"))


class TestRecordId:
    def test_deterministic(self) -> None:
        assert record_id(HOSPITAL, "obs", OBS_UUID) == record_id(HOSPITAL, "obs", OBS_UUID)
        # Pinned: a change of the derivation would duplicate every record already written.
        assert record_id("h1", "obs", "abc") == ObjectId("81c6e7e291a43f513b92863a")

    def test_differs_per_hospital(self) -> None:
        assert record_id("hospital-a", "obs", OBS_UUID) != record_id("hospital-b", "obs", OBS_UUID)

    def test_differs_per_uuid(self) -> None:
        other = OBS_UUID[:-1] + "7"
        assert record_id(HOSPITAL, "obs", OBS_UUID) != record_id(HOSPITAL, "obs", other)

    def test_differs_per_source(self) -> None:
        assert record_id(HOSPITAL, "obs", OBS_UUID) != record_id(HOSPITAL, "order", OBS_UUID)

    def test_uuid_is_case_insensitive(self) -> None:
        assert record_id(HOSPITAL, "obs", OBS_UUID.upper()) == record_id(HOSPITAL, "obs", OBS_UUID)

    def test_fields_cannot_be_shifted_into_each_other(self) -> None:
        assert record_id("h1", "obs", "x") != record_id("h", "1obs", "x")

    def test_build_record_id_ignores_uuid_case(self) -> None:
        lower = build_record(obs(value_text="x"), context(category="visit"))
        upper = build_record(obs(value_text="x", uuid=OBS_UUID.upper()), context(category="visit"))
        assert lower is not None and upper is not None
        assert lower["_id"] == upper["_id"]
        assert lower["_id"] != build_record(obs(value_text="x"), context(category="visit", hospital_id="other"))["_id"]  # type: ignore[index]


def test_to_utc_treats_naive_as_hospital_local_and_keeps_aware() -> None:
    assert transform.to_utc(datetime(2025, 11, 6, 10, 30), KIGALI) == datetime(2025, 11, 6, 8, 30, tzinfo=UTC)
    aware = datetime(2025, 11, 6, 10, 30, tzinfo=UTC)
    assert transform.to_utc(aware, KIGALI) == aware
    assert transform.to_utc(aware, KIGALI).utcoffset() == timedelta(0)
