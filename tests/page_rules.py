"""The Patient Passport page's reading rules, in Python, from the facts of the reference (the
app's patient page and its passport endpoint). Used by the contract tests: what passport-sync
writes must be visible by these rules. Days are compared on the ISO date (UTC) of each record.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any


def _day(value: Any) -> str:
    return str(value or "")[:10]


def condition_name(record: dict[str, Any]) -> str:
    data = record.get("data") or {}
    return str(data.get("diagnosis") or data.get("name") or "")


def condition_day(record: dict[str, Any]) -> str:
    data = record.get("data") or {}
    return _day(data.get("diagnosedDate") or data.get("diagnosed") or data.get("date"))


@dataclass
class Page:
    """What the page shows for one patient."""

    rows: list[tuple[str, str]] = field(default_factory=list)  # (day, diagnosis column)
    medications: list[str] = field(default_factory=list)
    tests: list[tuple[str, str]] = field(default_factory=list)  # (test name, status as displayed)
    image_sources: list[str] = field(default_factory=list)

    def diagnosis_text(self) -> str:
        return "\n".join(text for _, text in self.rows)


def read_page(records: list[dict[str, Any]], patient_id: str) -> Page:
    """The page for ``patient_id`` from the ``medicalrecords`` collection's documents.

    - the endpoint queries ``{patientId: <24-hex string>}``: anything else is invisible;
    - one row per visit record, dated ``data.date || data.visitDate``; its diagnosis is
      ``data.diagnosis || data.reason || `` the names of the same day's conditions;
    - conditions on a day without a visit get a row of their own ("Diagnosis Only");
    - medications only inside conditions: ``data.medications[].name || medicationName``, and a
      condition's own ``data.medicationName``; ``type: 'medication'`` records are never shown;
    - a test's status is ``data.status`` upper-cased, ``NORMAL`` when missing;
    - an image tile's source is ``data.imageUrl || data.url``.
    """
    mine = [r for r in records if isinstance(r.get("patientId"), str) and r["patientId"] == patient_id]
    by_type: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in mine:
        by_type[str(record.get("type"))].append(record)
    page = Page()
    conditions_by_day: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for condition in by_type["condition"]:
        conditions_by_day[condition_day(condition)].append(condition)
    visit_days = set()
    for visit in by_type["visit"]:
        data = visit.get("data") or {}
        day = _day(data.get("date") or data.get("visitDate"))
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
