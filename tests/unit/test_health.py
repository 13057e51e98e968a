"""The check verdict as pure logic: which state wins, what the status line says."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from passport_sync import health
from passport_sync.health import HospitalFacts, Limits

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
LIMITS = Limits(max_age=timedelta(minutes=30), max_behind=100)


def facts(name: str, **kwargs: Any) -> HospitalFacts:
    base: dict[str, Any] = {
        "last_run_at": NOW - timedelta(minutes=2),
        "last_run_outcome": "ok",
        "last_success_at": NOW - timedelta(minutes=2),
        "behind": 0,
    }
    base.update(kwargs)
    return HospitalFacts(name.lower(), name, **base)


def test_the_worst_known_state_wins_and_not_knowing_ranks_below_a_known_problem() -> None:
    unsure = facts("Unsure", behind=None, behind_error="timed out")
    behind = facts("Behind", behind=101)
    stale = facts("Stale", last_success_at=NOW - timedelta(minutes=31))
    assert health.judge([facts("Fine"), unsure], LIMITS, NOW).state == health.UNKNOWN
    assert health.judge([facts("Fine"), unsure, behind], LIMITS, NOW).state == health.WARNING
    verdict = health.judge([unsure, behind, stale], LIMITS, NOW)
    assert verdict.state == health.CRITICAL
    assert verdict.summary == "1 of 3 critical (Stale); 1 of 3 warning (Behind); 1 of 3 unknown (Unsure)"
    assert [line.split(":")[0] for line in verdict.lines()[1:]] == ["CRITICAL", "WARNING", "UNKNOWN"]


def test_limits_are_inclusive_and_a_failed_last_run_is_critical_even_when_recent() -> None:
    at_limits = facts("Edge", behind=100, last_success_at=NOW - timedelta(minutes=30))
    assert health.judge_hospital(at_limits, LIMITS, NOW).state == health.OK
    failed = facts("Failed", last_run_outcome="failed", last_run_errors=["x" * 500])
    verdict = health.judge_hospital(failed, LIMITS, NOW)
    assert verdict.state == health.CRITICAL
    assert verdict.problems[0] == "last run failed at 2026-11-25T11:58:00Z: " + "x" * 200


def test_errors_in_an_ok_run_and_data_problems_warn_while_waiting_patients_do_not() -> None:
    assert health.judge_hospital(facts("A", last_run_error_count=2), LIMITS, NOW).state == health.WARNING
    assert health.judge_hospital(facts("B", data_problems={"missing_concept": 1}), LIMITS, NOW).state == (
        health.WARNING
    )
    assert health.judge_hospital(facts("C", data_problems={"missing_concept": 0}), LIMITS, NOW).state == health.OK


def test_the_status_line_names_at_most_three_hospitals_and_carries_perfdata() -> None:
    stale = [facts(f"H{i}", last_success_at=None) for i in range(5)]
    verdict = health.judge(stale, LIMITS, NOW)
    assert verdict.status_line.startswith("PASSPORT-SYNC CRITICAL - 5 of 5 critical (H0, H1, H2, …) | ")
    assert "'h0 behind'=0;100;;0;" in verdict.status_line
    assert health.judge([], LIMITS, NOW).status_line == "PASSPORT-SYNC UNKNOWN - no hospital to check"
