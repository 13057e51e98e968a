"""``sync-all --metrics-file``: the run's figures as Prometheus metrics for node_exporter's
textfile collector, written atomically (a temporary file renamed over the old one) by the
``prometheus_client`` library, so the collector never reads half a file.

Every value is a gauge describing the latest run of each hospital (or of the whole cycle); a
hospital that failed keeps its last success timestamp, read from the audit log, so an alert on
``time() - passport_sync_last_success_timestamp_seconds`` works across failures and hosts.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path

from prometheus_client import CollectorRegistry, Gauge, write_to_textfile

from passport_sync.errors import FatalError, UsageError
from passport_sync.models import HospitalReport

OUTCOMES = ("ok", "failed", "locked", "skipped")
ROW_KINDS = (
    "read",
    "written",
    "updated",
    "already_present",
    "removed",
    "rerendered",
    "parked",
    "unparked",
)


def check_metrics_path(path: Path) -> None:
    """Refuse, before anything is synced, a path the textfile collector would ignore or we cannot write."""
    if path.suffix != ".prom":
        raise UsageError(
            f"--metrics-file {path} must end in .prom: node_exporter's textfile collector reads only *.prom",
            hint="e.g. --metrics-file /var/lib/prometheus/node-exporter/passport-sync.prom",
        )
    if not path.parent.is_dir():
        raise UsageError(
            f"--metrics-file {path}: the folder {path.parent} does not exist",
            hint="create it, or point at node_exporter's --collector.textfile.directory",
        )


def build_registry(
    reports: Sequence[HospitalReport],
    last_success: Mapping[str, datetime | None],
    cycle_started: datetime,
    cycle_finished: datetime,
) -> CollectorRegistry:
    """The metrics of one sync-all cycle. ``last_success`` maps hospital id to its newest
    successful run (None: never)."""
    registry = CollectorRegistry()

    def gauge(name: str, documentation: str, labels: Sequence[str] = ("hospital",)) -> Gauge:
        return Gauge(name, documentation, labelnames=list(labels), registry=registry)

    info = gauge("passport_sync_hospital_info", "Configured hospital: id and display name.", ("hospital", "name"))
    success = gauge(
        "passport_sync_last_success_timestamp_seconds", "When the hospital last synced successfully (Unix time)."
    )
    finished = gauge("passport_sync_last_run_timestamp_seconds", "When the hospital's latest run ended (Unix time).")
    duration = gauge("passport_sync_last_run_duration_seconds", "How long the hospital's latest run took.")
    outcome = gauge(
        "passport_sync_last_run_outcome",
        "1 for the outcome of the hospital's latest run (ok, failed, locked by another run, skipped), else 0.",
        ("hospital", "outcome"),
    )
    rows = gauge(
        "passport_sync_last_run_rows",
        "Rows the hospital's latest run read from OpenMRS, or wrote, updated, found present, removed, "
        "parked, unparked or had refused in Patient Passport.",
        ("hospital", "kind"),
    )
    errors = gauge("passport_sync_last_run_errors", "Errors in the hospital's latest run.")
    behind = gauge(
        "passport_sync_behind_rows",
        "Rows still waiting in OpenMRS after the hospital's latest successful run (absent when not counted).",
    )
    for report in reports:
        hospital = report.hospital_id
        info.labels(hospital, report.hospital_name).set(1)
        when = last_success.get(hospital)
        if when is not None:
            success.labels(hospital).set(when.timestamp())
        if report.finished_at is not None:
            finished.labels(hospital).set(report.finished_at.timestamp())
        duration.labels(hospital).set(report.duration_seconds)
        for name in OUTCOMES:
            outcome.labels(hospital, name).set(1 if report.outcome == name else 0)
        for kind in ROW_KINDS:
            rows.labels(hospital, kind).set(getattr(report, kind))
        # No run ever counted rejections: the series stays, always 0, for the dashboards that select it.
        rows.labels(hospital, "rejected").set(0)
        errors.labels(hospital).set(report.error_count)
        if report.behind is not None:
            behind.labels(hospital).set(report.behind)
    gauge("passport_sync_cycle_timestamp_seconds", "When the latest sync-all cycle ended (Unix time).", ()).set(
        cycle_finished.timestamp()
    )
    gauge("passport_sync_cycle_duration_seconds", "How long the latest sync-all cycle took.", ()).set(
        (cycle_finished - cycle_started).total_seconds()
    )
    gauge("passport_sync_cycle_hospitals", "Hospitals in the latest sync-all cycle.", ()).set(len(reports))
    return registry


def write_metrics(path: Path, registry: CollectorRegistry) -> None:
    """Write atomically: the collector sees the old file or the new one, never a mix.

    The file is readable by all (0644) whatever the service's UMask: node_exporter runs as
    another user, and the file holds no secret (hospital ids, names and counts). Called after
    the hospitals' threads ended, so changing the process umask here affects nothing else.
    """
    previous = os.umask(0o022)
    try:
        write_to_textfile(str(path), registry)
    except OSError as exc:
        raise FatalError(
            f"cannot write the metrics file {path}: {exc.strerror or exc.__class__.__name__}",
            hint="check that the passport-sync user may write to that folder",
        ) from None
    finally:
        os.umask(previous)
