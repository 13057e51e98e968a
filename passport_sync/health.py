"""The verdict of ``passport-sync check``, in the monitoring-plugin convention (Nagios, Icinga,
Zabbix, systemd ``OnFailure=``): 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN; one status line first,
then one line per hospital that is not OK.

Pure logic: facts gathered by ``service.health_facts`` in, a ``Verdict`` out. The lines hold
hospital names, counts, times and our own error messages (which never carry patient identities).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3
STATE_NAMES = {OK: "OK", WARNING: "WARNING", CRITICAL: "CRITICAL", UNKNOWN: "UNKNOWN"}
# Which state wins when hospitals differ: a known problem outranks not knowing.
_SEVERITY = {OK: 0, UNKNOWN: 1, WARNING: 2, CRITICAL: 3}
SERVICE = "PASSPORT-SYNC"
# Hospitals named in the status line; the details list every one.
_NAMED_IN_STATUS = 3
_ERROR_CHARS = 200


@dataclass(frozen=True, slots=True)
class Limits:
    max_age: timedelta
    max_behind: int


@dataclass(frozen=True, slots=True)
class HospitalFacts:
    """What MongoDB and OpenMRS say about one hospital's syncing."""

    hospital_id: str
    hospital_name: str
    last_run_at: datetime | None = None
    last_run_outcome: str | None = None
    last_run_errors: Sequence[str] = ()
    last_run_error_count: int = 0
    last_success_at: datetime | None = None
    behind: int | None = None
    # Set when the rows behind were to be counted in OpenMRS now and could not be.
    behind_error: str | None = None
    # When ``behind`` was counted (by the last run, or now).
    behind_measured_at: datetime | None = None
    # Parked rows waiting for someone to fix data in OpenMRS, by reason.
    data_problems: Mapping[str, int] = field(default_factory=dict)
    # Records written for the hospital, rows parked in all, and those parked waiting for their
    # patient (not registered, no national ID): None when not known.
    records: int | None = None
    parked: int | None = None
    parked_waiting_for_patients: int | None = None


@dataclass(frozen=True, slots=True)
class HospitalVerdict:
    hospital_id: str
    hospital_name: str
    state: int
    problems: tuple[str, ...]
    age_seconds: float | None
    behind: int | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "hospital_id": self.hospital_id,
            "hospital_name": self.hospital_name,
            "state": STATE_NAMES[self.state],
            "problems": list(self.problems),
            "last_success_age_seconds": None if self.age_seconds is None else round(self.age_seconds),
            "behind": self.behind,
        }


@dataclass(frozen=True, slots=True)
class Verdict:
    state: int
    summary: str
    hospitals: tuple[HospitalVerdict, ...] = ()
    limits: Limits | None = None

    @property
    def status_line(self) -> str:
        line = f"{SERVICE} {STATE_NAMES[self.state]} - {self.summary}"
        perfdata = self._perfdata()
        return f"{line} | {perfdata}" if perfdata else line

    def lines(self) -> list[str]:
        """The status line, then one line per hospital that is not OK, then the OK ones."""
        ordered = sorted(self.hospitals, key=lambda h: -_SEVERITY[h.state])
        details = []
        for h in ordered:
            what = "; ".join(h.problems) if h.problems else _ok_detail(h)
            details.append(f"{STATE_NAMES[h.state]}: {h.hospital_name} ({h.hospital_id}): {what}")
        return [self.status_line, *details]

    def _perfdata(self) -> str:
        if self.limits is None:
            return ""
        parts = []
        max_age = round(self.limits.max_age.total_seconds())
        for h in self.hospitals:
            if h.age_seconds is not None:
                parts.append(f"'{h.hospital_id} age'={round(h.age_seconds)}s;;{max_age};0;")
            if h.behind is not None:
                parts.append(f"'{h.hospital_id} behind'={h.behind};{self.limits.max_behind};;0;")
        return " ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        return {
            "state": STATE_NAMES[self.state],
            "exit_code": self.state,
            "summary": self.summary,
            "hospitals": [h.as_dict() for h in self.hospitals],
        }


def unknown(reason: str) -> Verdict:
    """The verdict when the check cannot tell (MongoDB unreachable, nothing configured)."""
    return Verdict(UNKNOWN, reason)


def wrong_target(reason: str) -> Verdict:
    """The verdict when the configured MongoDB database is not the Patient Passport (a mistyped
    name): whatever a run did there, no patient sees it."""
    return Verdict(CRITICAL, reason)


def judge_hospital(facts: HospitalFacts, limits: Limits, now: datetime) -> HospitalVerdict:
    critical: list[str] = []
    warning: list[str] = []
    unsure: list[str] = []
    age = (now - _utc(facts.last_success_at)).total_seconds() if facts.last_success_at else None
    if facts.last_run_outcome == "failed":
        first = facts.last_run_errors[0][:_ERROR_CHARS] if facts.last_run_errors else "no error recorded"
        critical.append(f"last run failed at {_when(facts.last_run_at)}: {first}")
    if facts.last_success_at is None:
        critical.append("no successful run recorded")
    elif age is not None and age > limits.max_age.total_seconds():
        critical.append(
            f"last successful run {_minutes(age)} ago at {_when(facts.last_success_at)} "
            f"(limit {_minutes(limits.max_age.total_seconds())})"
        )
    if facts.last_run_outcome == "ok" and facts.last_run_error_count:
        warning.append(f"last run had {facts.last_run_error_count} error(s)")
    if facts.behind is not None and facts.behind > limits.max_behind:
        warning.append(f"{facts.behind:,} rows behind in OpenMRS (limit {limits.max_behind:,})")
    problems = {reason: count for reason, count in facts.data_problems.items() if count}
    if problems:
        listed = ", ".join(f"{reason} {count}" for reason, count in sorted(problems.items()))
        warning.append(f"rows parked for data problems to fix in OpenMRS: {listed} (passport-sync worklist lists them)")
    if facts.records == 0 and facts.parked and facts.parked_waiting_for_patients == facts.parked:
        critical.append(
            f"no row reached a patient: all {facts.parked:,} rows synced wait for a patient registered in"
            " Patient Passport and none was written; check that mongodb.uri names the Patient Passport"
            " database and national_id_type this hospital's national ID"
        )
    if facts.behind_error is not None:
        unsure.append(f"cannot count the rows behind: {facts.behind_error[:_ERROR_CHARS]}")
    state = CRITICAL if critical else WARNING if warning else UNKNOWN if unsure else OK
    return HospitalVerdict(
        facts.hospital_id, facts.hospital_name, state, tuple(critical + warning + unsure), age, facts.behind
    )


def judge(facts: Sequence[HospitalFacts], limits: Limits, now: datetime) -> Verdict:
    """The worst hospital's state, with a one-line summary naming the hospitals in that state."""
    if not facts:
        return unknown("no hospital to check")
    verdicts = tuple(judge_hospital(f, limits, now) for f in facts)
    state = max((v.state for v in verdicts), key=_SEVERITY.__getitem__)
    if state == OK:
        summary = f"{len(verdicts)} hospital(s) synced within {_minutes(limits.max_age.total_seconds())}"
    else:
        counts = []
        for candidate in (CRITICAL, WARNING, UNKNOWN):
            named = [v.hospital_name for v in verdicts if v.state == candidate]
            if named:
                shown = ", ".join(named[:_NAMED_IN_STATUS]) + (", …" if len(named) > _NAMED_IN_STATUS else "")
                counts.append(f"{len(named)} of {len(verdicts)} {STATE_NAMES[candidate].lower()} ({shown})")
        summary = "; ".join(counts)
    return Verdict(state, summary, verdicts, limits)


def _ok_detail(verdict: HospitalVerdict) -> str:
    age = "never" if verdict.age_seconds is None else f"{_minutes(verdict.age_seconds)} ago"
    behind = "rows behind not counted yet" if verdict.behind is None else f"{verdict.behind:,} rows behind"
    return f"last successful run {age}, {behind}"


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _when(value: datetime | None) -> str:
    return _utc(value).strftime("%Y-%m-%dT%H:%M:%SZ") if value else "an unknown time"


def _minutes(seconds: float) -> str:
    minutes = seconds / 60
    return f"{minutes:.0f} min" if minutes >= 1 else f"{seconds:.0f} s"
