"""Rendering for people: Rich tables on a terminal, plain lines otherwise; progress observers.

Only this module and the CLI import Rich. JSON output is built in the CLI from plain data.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TextIO

from rich.console import Console
from rich.status import Status
from rich.table import Table
from rich.text import Text

from passport_sync.models import HospitalReport

log = logging.getLogger("passport_sync")

SUMMARY_COLUMNS = (
    ("hospital", "Hospital"),
    ("outcome", "Outcome"),
    ("read", "Read"),
    ("written", "Written"),
    ("already_present", "Present"),
    ("removed", "Removed"),
    ("rerendered", "Re-rendered"),
    ("parked", "Parked"),
    ("error_count", "Errors"),
    ("duration", "Seconds"),
)


class LoggingObserver:
    """Progress as log lines on stderr: one line per batch and per hospital, counts only."""

    def hospital_started(self, hospital_id: str, hospital_name: str) -> None:
        log.info("%s: sync started", hospital_name)

    def batch_done(self, report: HospitalReport, phase: str) -> None:
        log.info(
            "%s: %s batch %d: read %d, written %d, removed %d, parked %d",
            report.hospital_name,
            phase,
            report.batches,
            report.read,
            report.written,
            report.removed,
            report.parked,
        )

    def hospital_done(self, report: HospitalReport) -> None:
        # "locked": another run holds the hospital and syncs it; nothing is wrong, --quiet stays silent.
        level = logging.INFO if report.outcome in ("ok", "locked") else logging.ERROR
        log.log(
            level,
            "%s: %s in %.1fs: read %d, written %d, already present %d, removed %d, parked %d, errors %d",
            report.hospital_name,
            report.outcome,
            report.duration_seconds,
            report.read,
            report.written,
            report.already_present,
            report.removed,
            report.parked,
            report.error_count,
        )
        if report.rerendered:
            log.info("%s: %d records rewritten with the current rendering", report.hospital_name, report.rerendered)


class TerminalProgressObserver(LoggingObserver):
    """On a terminal: one live status line per hospital being synced, instead of a log line per
    batch. Thread-safe: sync-all --workers reports from several hospitals at once."""

    def __init__(self, console: Console) -> None:
        self._console = console
        self._lock = threading.Lock()
        self._lines: dict[str, str] = {}  # hospital id -> its progress, in start order
        self._status: Status | None = None

    def hospital_started(self, hospital_id: str, hospital_name: str) -> None:
        super().hospital_started(hospital_id, hospital_name)
        with self._lock:
            self._lines[hospital_id] = f"{hospital_name}: connecting"
            self._show()

    def batch_done(self, report: HospitalReport, phase: str) -> None:
        with self._lock:
            if report.hospital_id in self._lines:
                self._lines[report.hospital_id] = (
                    f"{report.hospital_name}: {phase}: read {report.read:,}, written {report.written:,}, "
                    f"removed {report.removed:,}, parked {report.parked:,}"
                )
                self._show()

    def hospital_done(self, report: HospitalReport) -> None:
        with self._lock:
            self._lines.pop(report.hospital_id, None)
            self._show()
        super().hospital_done(report)

    def _show(self) -> None:
        """Called with the lock held."""
        if not self._lines:
            if self._status is not None:
                self._status.stop()
                self._status = None
            return
        text = "\n".join(self._lines.values())
        if self._status is None:
            self._status = self._console.status(text)
            self._status.start()
        else:
            self._status.update(text)


def progress_observer(console: Console, *, quiet: bool = False) -> LoggingObserver:
    """Live progress when stderr is a terminal; log lines otherwise (cron mail, journald), which
    --quiet filters down to warnings and errors."""
    return TerminalProgressObserver(console) if console.is_terminal and not quiet else LoggingObserver()


def is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _summary_row(report: HospitalReport) -> dict[str, str]:
    return {
        "hospital": report.hospital_name,
        "outcome": report.outcome + (" (dry run)" if report.dry_run else ""),
        "read": str(report.read),
        "written": str(report.written),
        "already_present": str(report.already_present),
        "removed": str(report.removed),
        "rerendered": str(report.rerendered),
        "parked": str(report.parked),
        "error_count": str(report.error_count),
        "duration": f"{report.duration_seconds:.1f}",
    }


# Control characters (C0, DEL, C1: ESC starts a terminal's escape sequences) in values from OpenMRS
# or the configuration: shown as visible escapes, never sent to the terminal.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def printable(value: Any) -> str:
    """``value`` as text a terminal shows as it is: control characters become ``\\x1b`` and the like."""
    return _CONTROL.sub(lambda m: repr(m.group(0))[1:-1], str(value))


def render_table(
    title: str, columns: Sequence[tuple[str, str]], rows: Iterable[Mapping[str, Any]], out: TextIO
) -> None:
    """A Rich table on a terminal; tab-free aligned plain text otherwise (cron mail, journald)."""
    rows = [{key: printable(row.get(key, "")) for key, _ in columns} for row in rows]
    if is_terminal(out):
        table = Table(title=title)
        for _, header in columns:
            table.add_column(header)
        for row in rows:
            # Text, not markup: "[red]" in an OpenMRS value is shown as typed.
            table.add_row(*(Text(row[key]) for key, _ in columns))
        console = Console(file=out)
        # The width the table wants, not clamped to the terminal's.
        if console.measure(table, options=console.options.update_width(1_000_000)).maximum <= console.width:
            console.print(table)
            return
        # Too wide for this terminal (80 columns): Rich would cut headers and values (a uuid to
        # copy) with "…"; the plain lines below lose nothing, the terminal wraps them.
    widths = [max([len(h)] + [len(str(r.get(k, ""))) for r in rows]) for k, h in columns]
    print(title, file=out)
    print("  ".join(h.ljust(w) for (_, h), w in zip(columns, widths, strict=True)).rstrip(), file=out)
    for row in rows:
        print(
            "  ".join(str(row.get(k, "")).ljust(w) for (k, _), w in zip(columns, widths, strict=True)).rstrip(),
            file=out,
        )


def render_sync_summary(reports: Sequence[HospitalReport], out: TextIO | None = None, *, title: str = "") -> None:
    out = out or sys.stdout
    dry = any(r.dry_run for r in reports)
    title = title or ("passport-sync: what a sync would write (dry run)" if dry else "passport-sync: sync summary")
    render_table(title, SUMMARY_COLUMNS, (_summary_row(r) for r in reports), out)
    for report in reports:
        for error in report.errors:
            print(f"{report.hospital_name}: error: {error}", file=out)


def _status_lines(s: Mapping[str, Any]) -> list[tuple[str, str]]:
    last = s.get("last_run")
    if last:
        errors = last.get("error_count")
        ran = f"{last.get('at') or '?'}  {last.get('outcome') or '?'}, written {last.get('written') or 0}"
        ran += f", errors {errors}" if errors is not None else ""
    else:
        ran = "never"
    checkpoint = s["checkpoint"]
    behind = str(s["behind"]) if s["behind"] is not None else "unknown (OpenMRS unreachable)"
    return [
        ("last run", ran),
        ("checkpoint", f"obs_id {checkpoint['last_obs_id']}, saved {checkpoint.get('saved_at') or 'never'}"),
        ("records", str(s["records"])),
        ("parked", str(s["parked"])),
        ("behind", behind),
        ("full pass", _last_pass(s)),
        ("locked by", s["locked_by"] or "-"),
    ]


def render_status(statuses: Sequence[Mapping[str, Any]], out: TextIO | None = None) -> None:
    """One block per hospital, one fact per line: readable at 80 columns, in mail and journald."""
    out = out or sys.stdout
    print("passport-sync: status", file=out)
    for s in statuses:
        disabled = "" if s.get("enabled", True) else ", disabled"
        print(f"{s['hospital_name']} ({s['hospital_id']}{disabled})", file=out)
        for label, value in _status_lines(s):
            print(f"  {label:<11} {value}", file=out)
    for s in statuses:
        if s.get("parked_by_reason"):
            reasons = ", ".join(f"{reason} {count}" for reason, count in s["parked_by_reason"].items())
            print(f"{s['hospital_name']}: parked: {reasons}", file=out)
        last = s.get("last_run") or {}
        for error in last.get("errors") or []:
            print(f"{s['hospital_name']}: last run: error: {error}", file=out)
        if s.get("behind_error"):
            print(f"{s['hospital_name']}: cannot count what is behind: {s['behind_error']}", file=out)


def _last_pass(status: Mapping[str, Any]) -> str:
    last = (status.get("reconcile") or {}).get("last_full_pass")
    if not last:
        return "never"
    return f"{last['ended_at']} ({last['findings'].get('drifted', 0)} repaired)"


RECONCILE_COLUMNS = (
    ("hospital", "Hospital"),
    ("outcome", "Outcome"),
    ("ranges_checked", "Ranges"),
    ("ranges_differing", "Differing"),
    ("rows_read", "Rows read"),
    ("moved", "Moved"),
    ("restored", "Restored"),
    ("removed", "Removed"),
    ("updated", "Updated"),
    ("reparked", "Re-parked"),
    ("duration", "Seconds"),
)


def render_reconcile(reports: Sequence[HospitalReport], out: TextIO | None = None) -> None:
    """Per hospital: what a reconciliation pass checked, what had drifted and what it repaired."""
    out = out or sys.stdout
    dry = any(r.dry_run for r in reports)
    title = "passport-sync: reconciliation" + (" (dry run: what it would repair)" if dry else "")
    rows = [
        {
            "hospital": r.hospital_name,
            "outcome": r.outcome,
            **(r.reconcile or {}),
            "duration": f"{r.duration_seconds:.1f}",
        }
        for r in reports
    ]
    render_table(title, RECONCILE_COLUMNS, rows, out)
    for report in reports:
        for error in report.errors:
            print(f"{report.hospital_name}: error: {error}", file=out)


CHECK_COLUMNS = (("target", "Target"), ("check", "Check"), ("result", "Result"), ("detail", "Detail"))


def render_checks(results: Sequence[Mapping[str, Any]], out: TextIO | None = None) -> None:
    out = out or sys.stdout
    rows = []
    hints = []
    for result in results:
        target = result.get("hospital_name") or result.get("target", "")
        for check in result["checks"]:
            rows.append(
                {
                    "target": target,
                    "check": check["check"],
                    "result": {"ok": "OK", "warning": "WARNING", "error": "FAILED"}[check["level"]],
                    "detail": check["detail"],
                }
            )
            hint = f"{target}: {check['hint']}"
            if check.get("hint") and hint not in hints:
                hints.append(hint)
    render_table("passport-sync: connection test", CHECK_COLUMNS, rows, out)
    for hint in hints:
        print(f"hint: {hint}", file=out)
