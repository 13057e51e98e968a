"""The Patient Passport page's reading rules, in Python, from the facts of the reference (the
app's patient page, its doctor view and its passport endpoint). Used by the contract tests: what
passport-sync writes must be visible, and read true, by these rules.

Days are the reader's: the page turns each date string into a JavaScript ``Date`` and compares and
prints days in the browser's own zone, so every reading takes the reader's zone. A string is read
as ``new Date(string)`` reads it: a date alone is midnight UTC, a date-time with ``Z`` or an offset
is that instant, a date-time without one is that time in the reader's zone; a missing date is now.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

# Readers far apart: the hospital's zone, UTC, the far west and the far east of inhabited zones.
READER_ZONES = ("Africa/Kigali", "UTC", "Pacific/Pago_Pago", "Pacific/Kiritimati")

_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_WITH_OFFSET = re.compile(r"(Z|[+-]\d{2}:?\d{2})$")


def js_date(value: Any, zone: tzinfo, now: datetime | None = None) -> datetime:
    """``new Date(value)`` for a reader in ``zone`` (an aware datetime in that zone)."""
    if value is None or value == "":
        return (now or datetime.now(UTC)).astimezone(zone)
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(zone)
    text = str(value)
    if _DATE_ONLY.match(text):
        return datetime.fromisoformat(text).replace(tzinfo=UTC).astimezone(zone)
    if _WITH_OFFSET.search(text):
        return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(zone)
    return datetime.fromisoformat(text).replace(tzinfo=zone)


def reader_day(value: Any, zone: tzinfo, now: datetime | None = None) -> date:
    """The day the page shows for ``value`` to a reader in ``zone`` (``toDateString``)."""
    return js_date(value, zone, now).date()


def _day(value: Any, zone: tzinfo) -> date:
    return reader_day(value, zone)


def condition_name(record: dict[str, Any]) -> str:
    data = record.get("data") or {}
    return str(data.get("diagnosis") or data.get("name") or "")


def condition_date(record: dict[str, Any]) -> Any:
    data = record.get("data") or {}
    return data.get("diagnosedDate") or data.get("diagnosed") or data.get("date")


def visit_date(record: dict[str, Any]) -> Any:
    data = record.get("data") or {}
    return data.get("date") or data.get("visitDate")


@dataclass
class Page:
    """What the page shows for one patient."""

    rows: list[tuple[date, str]] = field(default_factory=list)  # (day, diagnosis column)
    medications: list[str] = field(default_factory=list)
    tests: list[tuple[str, str]] = field(default_factory=list)  # (test name, status as displayed)
    image_sources: list[str] = field(default_factory=list)

    def diagnosis_text(self) -> str:
        return "\n".join(text for _, text in self.rows)


def read_page(records: list[dict[str, Any]], patient_id: str, zone: str | tzinfo = "UTC") -> Page:
    """The page for ``patient_id`` from the ``medicalrecords`` collection's documents, as a
    reader in ``zone`` sees it.

    - the endpoint queries ``{patientId: <24-hex string>}``: anything else is invisible;
    - one row per visit record, dated ``data.date || data.visitDate``; its diagnosis is
      ``data.diagnosis || data.reason || `` the names of the same day's conditions (days in the
      reader's zone);
    - conditions on a day without a visit get a row of their own ("Diagnosis Only");
    - a visit or condition without a date is dated now;
    - medications only inside conditions: ``data.medications[].name || medicationName``, and a
      condition's own ``data.medicationName``; ``type: 'medication'`` records are never shown;
    - a test's status is ``data.status`` upper-cased, ``NORMAL`` when missing;
    - an image tile's source is ``data.imageUrl || data.url``.
    """
    tz = ZoneInfo(zone) if isinstance(zone, str) else zone
    mine = [r for r in records if isinstance(r.get("patientId"), str) and r["patientId"] == patient_id]
    by_type: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in mine:
        by_type[str(record.get("type"))].append(record)
    page = Page()
    conditions_by_day: dict[date, list[dict[str, Any]]] = defaultdict(list)
    for condition in by_type["condition"]:
        conditions_by_day[_day(condition_date(condition), tz)].append(condition)
    visit_days = set()
    for visit in by_type["visit"]:
        data = visit.get("data") or {}
        day = _day(visit_date(visit), tz)
        visit_days.add(day)
        same_day = ", ".join(condition_name(c) for c in conditions_by_day.get(day, []))
        page.rows.append((day, str(data.get("diagnosis") or data.get("reason") or same_day)))
    for day, conditions in conditions_by_day.items():
        if day not in visit_days:
            page.rows.extend((day, condition_name(c)) for c in conditions)
    for condition in by_type["condition"]:
        data = condition.get("data") or {}
        for medication in data.get("medications") or []:
            page.medications.append(str(medication.get("name") or medication.get("medicationName") or ""))
        if data.get("medicationName"):
            page.medications.append(str(data["medicationName"]))
    for test in by_type["test"]:
        data = test.get("data") or {}
        page.tests.append((str(data.get("testName") or ""), str(data.get("status") or "normal").upper()))
    for image in by_type["image"]:
        data = image.get("data") or {}
        page.image_sources.append(str(data.get("imageUrl") or data.get("url") or ""))
    return page


@dataclass
class Card:
    """A "Medical Condition" card of the doctor's view."""

    title: str
    notes: str
    day: date


def read_doctor_view(records: list[dict[str, Any]], patient_id: str, zone: str | tzinfo = "UTC") -> list[Card]:
    """The doctor's view of ``patient_id``: one card per condition record, de-duplicated by
    ``openmrsData.obsId`` (the first record of a number hides the others), titled
    ``data.diagnosis``, noted ``notes || details``, dated ``diagnosedDate || date || now``."""
    tz = ZoneInfo(zone) if isinstance(zone, str) else zone
    cards: list[Card] = []
    seen: set[Any] = set()
    for record in records:
        if record.get("patientId") != patient_id or record.get("type") != "condition":
            continue
        obs_id = (record.get("openmrsData") or {}).get("obsId")
        if obs_id is not None:
            if obs_id in seen:
                continue
            seen.add(obs_id)
        data = record.get("data") or {}
        when = data.get("diagnosedDate") or data.get("date")
        cards.append(
            Card(str(data.get("diagnosis") or ""), str(data.get("notes") or data.get("details") or ""), _day(when, tz))
        )
    return cards
