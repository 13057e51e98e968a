"""The ``passport-sync`` command line: a thin Typer layer over ``passport_sync.service``.

Errors become exit codes here and nowhere else:

==== ===========================================================================
code meaning
==== ===========================================================================
0    every hospital synced (or every check passed)
1    at least one hospital failed (the others still synced), or a check failed
2    configuration or usage error; nothing was read or written
3    another run holds the lock of every selected hospital
4    sync-patient: the national ID matches nobody in OpenMRS nor Patient Passport
5    sync-patient: found in OpenMRS but not registered in Patient Passport (parked)
130  interrupted (Ctrl-C, or SIGTERM from systemd): locks released, checkpoints kept
==== ===========================================================================
"""

from __future__ import annotations

import csv
import json
import logging
import os
import shutil
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
import typer.core
from rich.console import Console
from rich.logging import RichHandler

from passport_sync import __version__, health, metrics, service
from passport_sync.config import RetryConfig, Settings, load_settings
from passport_sync.demo.embedded import embedded_mongodb
from passport_sync.errors import (
    ConfigError,
    LockHeld,
    NothingMatched,
    PassportSyncError,
    UsageError,
)
from passport_sync.models import HospitalReport
from passport_sync.reporting import (
    progress_observer,
    render_checks,
    render_reconcile,
    render_status,
    render_sync_summary,
    render_table,
)
from passport_sync.sink.passport import PassportStore

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_LOCKED = 3
EXIT_NOTHING_MATCHED = 4
EXIT_NOT_IN_PASSPORT = 5
EXIT_INTERRUPTED = 130

EXIT_CODES_HELP = (
    "Exit codes: 0 all synced; 1 a hospital failed (the others still synced); "
    "2 configuration or usage error; 3 another run holds the lock; "
    "4 national ID matches nobody; 5 patient not registered in Patient Passport (parked); 130 interrupted."
)

app = typer.Typer(
    name="passport-sync",
    help="Copy OpenMRS observations from hospitals' MySQL databases into the Patient Passport MongoDB.\n\n"
    + EXIT_CODES_HELP,
    no_args_is_help=True,
    # Plain click help: no "<bool>" type column, docstring paragraphs re-wrapped to the terminal.
    rich_markup_mode=None,
    pretty_exceptions_show_locals=False,  # locals hold database credentials
    context_settings={"help_option_names": ["-h", "--help"]},
)

err_console = Console(stderr=True, highlight=False)
log = logging.getLogger("passport_sync")

# The options several commands share, each declared once here. Not in the app's callback: there
# they would go before the command name (`passport-sync --json status`) and leave each command's --help.
ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        metavar="PATH",
        help="YAML file (default: $PASSPORT_SYNC_CONFIG, ./hospitals.yaml, /etc/passport-sync/hospitals.yaml).",
        show_default=False,
    ),
]
VerboseOption = Annotated[
    bool,
    typer.Option(
        "--verbose",
        "-v",
        help="Debug logs on stderr: connection details (TLS, server), each batch's obs id range and "
        "timings, tracebacks of internal errors (ids, never passwords or patient data).",
    ),
]
QuietOption = Annotated[
    bool, typer.Option("--quiet", "-q", help="Print nothing on a healthy run: only warnings and errors (for cron).")
]
JsonOption = Annotated[bool, typer.Option("--json", help="One JSON document on stdout; logs stay on stderr.")]
HospitalOption = Annotated[
    list[str] | None,
    typer.Option(
        "--hospital", "-H", metavar="ID", help="Hospital id or name; repeat for several (default: all enabled)."
    ),
]
DryRunOption = Annotated[
    bool, typer.Option("--dry-run", help="Read and map everything, write nothing (not even the checkpoint).")
]


class _UTCFormatter(logging.Formatter):
    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        return datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def configure_logging(*, verbose: bool, quiet: bool, settings: Settings | None = None) -> None:
    """One line per event on stderr. DEBUG with --verbose or OPENMRS_DETAILED_LOGS=true."""
    detailed = bool(settings and settings.sync.detailed_logs)
    level = logging.DEBUG if (verbose or detailed) else logging.WARNING if quiet else logging.INFO
    handler: logging.Handler
    if err_console.is_terminal:
        # Shares the console with the live progress line, so the two never garble each other.
        handler = RichHandler(console=err_console, show_path=False, markup=False, rich_tracebacks=False)
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(_UTCFormatter("%(asctime)s %(levelname)s %(message)s"))
    root = logging.getLogger("passport_sync")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
    # The drivers' own loggers stay quiet: they could print connection strings.
    for noisy in ("pymongo", "tenacity"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def fail(message: str, code: int, hint: str = "") -> NoReturn:
    err_console.print(f"error: {message}", markup=False, soft_wrap=True)
    if hint:
        err_console.print(f"hint: {hint}", markup=False, soft_wrap=True)
    raise typer.Exit(code)


def _exit_code_of(exc: PassportSyncError) -> int:
    if isinstance(exc, ConfigError | UsageError):
        return EXIT_USAGE
    if isinstance(exc, NothingMatched):
        return EXIT_NOTHING_MATCHED
    if isinstance(exc, LockHeld):
        return EXIT_LOCKED
    return EXIT_FAILED


@contextmanager
def errors_to_exit_codes(json_command: str | None = None) -> Iterator[None]:
    """The one place where our exceptions become messages and exit codes.

    ``json_command``: the command runs with --json, so a failure still prints its one JSON
    document on stdout, the error inside, for the script reading it.
    """
    try:
        yield
    except PassportSyncError as exc:
        code = _exit_code_of(exc)
        if json_command:
            error: dict[str, Any] = {"message": str(exc), "hint": exc.hint}
            if isinstance(exc, ConfigError):
                error = {"message": "invalid configuration", "problems": exc.problems, "hint": ""}
            emit_json({"command": json_command, "exit_code": code, "error": error})
        if isinstance(exc, ConfigError):
            err_console.print("error: invalid configuration", markup=False)
            for problem in exc.problems:
                err_console.print(f"  - {problem}", markup=False, soft_wrap=True)
            raise typer.Exit(code) from None
        fail(str(exc), code, exc.hint)
    except KeyboardInterrupt:
        # The hospital being synced has already released its lock and kept its last checkpoint
        # (the pipeline's finally blocks ran while the interrupt came up).
        err_console.print(
            "interrupted: locks released; the next run resumes from the last saved checkpoint", markup=False
        )
        if json_command:
            emit_json({"command": json_command, "exit_code": EXIT_INTERRUPTED, "error": {"message": "interrupted"}})
        if _hospital_threads_alive():
            # A worker thread blocked in a driver call would hold the exit until its timeouts pass.
            # Its lock is released; what it wrote is idempotent and its checkpoint is a saved one.
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(EXIT_INTERRUPTED)
        raise typer.Exit(EXIT_INTERRUPTED) from None


def load(config: Path | None, *, verbose: bool, quiet: bool) -> Settings:
    configure_logging(verbose=verbose, quiet=quiet)
    warnings: list[str] = []
    settings = load_settings(config, warnings=warnings)
    configure_logging(verbose=verbose, quiet=quiet, settings=settings)
    for warning in warnings:
        log.warning("%s", warning)
    return settings


def stdin_is_terminal() -> bool:
    return sys.stdin.isatty()


def emit_json(document: Any) -> None:
    sys.stdout.write(json.dumps(document, indent=2, default=str, sort_keys=False) + "\n")


def show(json_output: bool, document: Mapping[str, Any], render: Callable[[], object] | None) -> None:
    """The one place a command's result reaches stdout: its JSON document with --json, else
    ``render`` (a Rich table or plain lines, for people). ``render`` None: nothing for people
    (--quiet on a healthy run, so cron mails only problems)."""
    if json_output:
        emit_json(document)
    elif render is not None:
        render()


def sync_exit_code(reports: Sequence[HospitalReport]) -> int:
    if any(r.outcome == "failed" for r in reports):
        return EXIT_FAILED
    if reports and all(r.outcome == "locked" for r in reports):
        return EXIT_LOCKED
    return EXIT_OK


@contextmanager
def open_store(settings: Settings) -> Iterator[PassportStore]:
    """The Patient Passport store for one command; with the demo's configuration
    (``mongodb.embedded_data_dir``), also its embedded MongoDB, until the command ends."""
    with embedded_mongodb(settings) as effective:
        store = PassportStore.connect(effective)
        try:
            yield store
        finally:
            store.close()


def _with_store(settings: Settings, work: Callable[[PassportStore], int]) -> int:
    with open_store(settings) as store:
        try:
            return work(store)
        except KeyboardInterrupt:
            # Hospitals synced on worker threads cannot be interrupted in the middle of a driver
            # call: let go of their locks now, so other hosts and the next run need not wait.
            with suppress(PassportSyncError):
                store.locks.release_of_this_process()
            raise


def _hospital_threads_alive() -> bool:
    return any(t.name.startswith("hospital") and t.is_alive() for t in threading.enumerate())


@app.command("sync-all")
def sync_all(
    hospital: HospitalOption = None,
    dry_run: DryRunOption = False,
    json_output: JsonOption = False,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            "-w",
            metavar="N",
            min=1,
            max=64,
            help="Hospitals synced at once, each on its own connections (default: sync.workers, 4).",
            show_default=False,
        ),
    ] = None,
    metrics_file: Annotated[
        Path | None,
        typer.Option(
            "--metrics-file",
            metavar="PATH",
            help="Also write Prometheus metrics to this *.prom file for node_exporter's textfile collector "
            "(atomically).",
            show_default=False,
        ),
    ] = None,
    config: ConfigOption = None,
    verbose: VerboseOption = False,
    quiet: QuietOption = False,
) -> None:
    """Sync new, edited and voided observations of every enabled hospital, several at once.

    Example: passport-sync sync-all --config /etc/passport-sync/hospitals.yaml
    """
    with errors_to_exit_codes("sync-all" if json_output else None):
        settings = load(config, verbose=verbose, quiet=quiet)
        hospitals = service.select_hospitals(settings, hospital)
        if metrics_file is not None:
            if dry_run:
                raise UsageError("--metrics-file and --dry-run do not go together: a dry run writes nothing")
            metrics.check_metrics_path(metrics_file)

        def work(store: PassportStore) -> int:
            started = datetime.now(UTC)
            reports = service.sync_all(
                settings,
                store,
                hospitals,
                observer=progress_observer(err_console, quiet=quiet),
                dry_run=dry_run,
                workers=workers,
                count_behind=metrics_file is not None,
            )
            code = sync_exit_code(reports)
            if metrics_file is not None:
                registry = metrics.build_registry(
                    reports, service.last_successes(store, reports), started, datetime.now(UTC)
                )
                try:
                    metrics.write_metrics(metrics_file, registry)
                except PassportSyncError as exc:
                    log.error("%s (hint: %s)", exc, exc.hint)
                    code = code or EXIT_FAILED
            show(
                json_output,
                {
                    "command": "sync-all",
                    "dry_run": dry_run,
                    "exit_code": code,
                    "hospitals": [r.as_dict() for r in reports],
                },
                # Exit 3 (another run holds every hospital) is benign: nothing for cron to mail.
                None if quiet and code in (EXIT_OK, EXIT_LOCKED) else partial(render_sync_summary, reports),
            )
            return code

        code = _with_store(settings, work)
    raise typer.Exit(code)


@app.command("reconcile")
def reconcile(
    hospital: HospitalOption = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Compare and report what drifted; write nothing (the audit).")
    ] = False,
    full: Annotated[
        bool,
        typer.Option("--full", help="Compare every row with the Passport, not only ranges that changed."),
    ] = False,
    json_output: JsonOption = False,
    config: ConfigOption = None,
    verbose: VerboseOption = False,
    quiet: QuietOption = False,
) -> None:
    """A full reconciliation pass now: repair what OpenMRS changed in place (merges, corrected
    identifiers, unvoids, restored or expired orders).

    Checksums of primary-key ranges are compared with the last pass; only ranges that differ are
    re-read. Takes each hospital's lock. sync-all also reconciles a slice on every run.

    Example: passport-sync reconcile --hospital central --dry-run
    """
    with errors_to_exit_codes("reconcile" if json_output else None):
        settings = load(config, verbose=verbose, quiet=quiet)
        hospitals = service.select_hospitals(settings, hospital)

        def work(store: PassportStore) -> int:
            reports = service.reconcile(
                settings,
                store,
                hospitals,
                observer=progress_observer(err_console, quiet=quiet),
                dry_run=dry_run,
                compare_all=full,
            )
            code = sync_exit_code(reports)
            show(
                json_output,
                {
                    "command": "reconcile",
                    "dry_run": dry_run,
                    "full": full,
                    "exit_code": code,
                    "hospitals": [r.as_dict() for r in reports],
                },
                partial(render_reconcile, reports),
            )
            return code

        code = _with_store(settings, work)
    raise typer.Exit(code)


@app.command("sync-patient")
def sync_patient(
    national_id: Annotated[
        str, typer.Argument(metavar="NATIONAL_ID", help="The patient's national ID (10-16 digits).")
    ],
    hospital: HospitalOption = None,
    dry_run: DryRunOption = False,
    json_output: JsonOption = False,
    config: ConfigOption = None,
    verbose: VerboseOption = False,
    quiet: QuietOption = False,
) -> None:
    """Sync one patient's whole history from every enabled hospital, ignoring checkpoints.

    Idempotent: records already synced are left as they are. Also lands the patient's parked
    observations. Checkpoints do not move.

    Example: passport-sync sync-patient 1199780012345678
    """
    with errors_to_exit_codes("sync-patient" if json_output else None):
        settings = load(config, verbose=verbose, quiet=quiet)
        hospitals = service.select_hospitals(settings, hospital)

        def work(store: PassportStore) -> int:
            result = service.sync_patient(
                settings,
                store,
                hospitals,
                national_id,
                observer=progress_observer(err_console, quiet=quiet),
                dry_run=dry_run,
            )
            code = sync_exit_code(result.reports)
            if code == EXIT_OK and not result.national_id_known_to_passport:
                code = EXIT_NOT_IN_PASSPORT

            def render() -> None:
                render_sync_summary(result.reports, title="passport-sync: patient sync")
                if code == EXIT_NOT_IN_PASSPORT:
                    print(
                        "The patient is not registered in Patient Passport: their observations are parked "
                        "and land on the first run after they register."
                    )

            show(
                json_output,
                {
                    "command": "sync-patient",
                    "dry_run": dry_run,
                    "exit_code": code,
                    "registered_in_passport": result.national_id_known_to_passport,
                    "openmrs_patients_matched": result.persons_matched,
                    "hospitals": [r.as_dict() for r in result.reports],
                },
                None if quiet and code == EXIT_OK else render,
            )
            return code

        code = _with_store(settings, work)
    raise typer.Exit(code)


@app.command("status")
def status(
    hospital: HospitalOption = None,
    json_output: JsonOption = False,
    config: ConfigOption = None,
    verbose: VerboseOption = False,
    quiet: QuietOption = False,
) -> None:
    """Per enabled hospital (or each one named): checkpoint, last run, records, parked
    observations, backlog and lock.

    Exit code 0 when every hospital shown is healthy; 1 when a hospital's last run failed or its
    OpenMRS database cannot be reached (and when MongoDB cannot); 2 when no hospital is
    enabled.

    Example: passport-sync status --json
    """
    with errors_to_exit_codes("status" if json_output else None):
        settings = load(config, verbose=verbose, quiet=quiet)
        # Enabled hospitals only (unless named): a disabled one is not synced, so probing it would
        # only fail, slowly, on every call.
        hospitals = service.select_hospitals(settings, hospital, passwords=False)

        def work(store: PassportStore) -> int:
            statuses = [service.hospital_status(settings, store, h) for h in hospitals]
            code = EXIT_OK if all(service.status_healthy(s) for s in statuses) else EXIT_FAILED
            show(
                json_output,
                {"command": "status", "exit_code": code, "hospitals": statuses},
                partial(render_status, statuses),
            )
            return code

        code = _with_store(settings, work)
    raise typer.Exit(code)


class MonitoringPluginCommand(typer.core.TyperCommand):
    """A command whose every outcome is a monitoring-plugin state: a usage error (an unknown
    option, ``--max-age 0`` or ``abc``) is UNKNOWN, exit 3, with the status line first; click's
    own exit 2 would read as CRITICAL in Nagios and Icinga."""

    def make_context(self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any) -> Any:
        json_output = "--json" in args  # parsing consumes args
        try:
            return super().make_context(info_name, args, parent, **extra)
        except _CLICK_USAGE_ERROR as exc:
            verdict = health.unknown(f"usage: {exc.format_message()} (see passport-sync check --help)")
            show(json_output, {"command": "check", **verdict.as_dict()}, partial(print, verdict.status_line))
            raise typer.Exit(verdict.state) from None


# click's UsageError (an unknown option, a value of the wrong type or out of range), reached through
# typer's public BadParameter, whichever click typer carries.
_CLICK_USAGE_ERROR: Any = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")


@app.command("check", cls=MonitoringPluginCommand)
def check(
    max_age: Annotated[
        int,
        typer.Option(
            "--max-age",
            metavar="MINUTES",
            min=1,
            help="CRITICAL when a hospital's last successful run is older than this many minutes.",
        ),
    ] = 30,
    max_behind: Annotated[
        int,
        typer.Option(
            "--max-behind", metavar="ROWS", min=0, help="WARNING when more rows than this wait in a hospital's OpenMRS."
        ),
    ] = 1000,
    read_openmrs: Annotated[
        bool,
        typer.Option(
            "--openmrs",
            help="Count the rows behind in each OpenMRS database now (needs its credentials, so run it "
            "where sync-all runs). Default: MongoDB only, with the count the last run stored.",
        ),
    ] = False,
    hospital: HospitalOption = None,
    json_output: JsonOption = False,
    config: ConfigOption = None,
    verbose: VerboseOption = False,
    quiet: QuietOption = False,
) -> None:
    """Health check for Nagios, Icinga, Zabbix or systemd OnFailure=: one status line, then details.

    Reads MongoDB only (the last runs and the backlog each stored), so it needs no OpenMRS
    credential: it runs as NRPE or a check unit runs it. --openmrs counts the backlog in OpenMRS now.

    Exit codes (monitoring-plugin convention): 0 OK; 1 WARNING (rows behind beyond --max-behind, rows
    parked for data problems, errors in the last run); 2 CRITICAL (the last run failed, the last
    successful run is older than --max-age or never happened, the MongoDB database is not a Patient
    Passport, no row of a hospital reached a patient); 3 UNKNOWN (MongoDB unreachable, no hospital
    configured, invalid configuration or usage).

    Example: passport-sync check --max-age 20 --max-behind 5000
    """
    try:
        settings = load(config, verbose=verbose, quiet=quiet)
        hospitals = service.select_hospitals(settings, hospital, passwords=read_openmrs)
        # A monitoring plugin answers within its timeout: one attempt, no retries.
        settings = settings.model_copy(
            update={"sync": settings.sync.model_copy(update={"retry": RetryConfig(attempts=1)})}
        )
        with open_store(settings) as store:
            store.ping()
            wrong = store.passport_problem()
            if wrong is None:
                facts = service.for_each_hospital(
                    hospitals,
                    lambda h: service.health_facts(settings, store, h, read_openmrs=read_openmrs),
                    settings.sync.workers,
                )
        if wrong is not None:
            verdict = health.wrong_target(wrong + "; check the database name at the end of MONGODB_URI")
        else:
            limits = health.Limits(max_age=timedelta(minutes=max_age), max_behind=max_behind)
            verdict = health.judge(facts, limits, datetime.now(UTC))
    except ConfigError as exc:
        verdict = health.unknown("invalid configuration: " + "; ".join(exc.problems))
    except PassportSyncError as exc:
        verdict = health.unknown(str(exc) + (f" (hint: {exc.hint})" if exc.hint else ""))
    show(json_output, {"command": "check", **verdict.as_dict()}, partial(print, "\n".join(verdict.lines())))
    raise typer.Exit(verdict.state)


@app.command("test-connection")
def check_connection(
    hospital: HospitalOption = None,
    json_output: JsonOption = False,
    config: ConfigOption = None,
    verbose: VerboseOption = False,
    quiet: QuietOption = False,
) -> None:
    """Check every hospital's OpenMRS database and the Patient Passport MongoDB.

    Exit code 0 only when everything needed works; warnings (missing recommended index, a MySQL
    user that can write) do not fail the check.

    Example: passport-sync test-connection --hospital central
    """
    with errors_to_exit_codes("test-connection" if json_output else None):
        settings = load(config, verbose=verbose, quiet=quiet)
        hospitals = service.select_hospitals(settings, hospital) if hospital else settings.hospitals
        results: list[dict[str, Any]] = []
        for h in hospitals:
            with service.default_source(h, settings) as source:
                results.append(service.check_source(h, settings, source))
        with open_store(settings) as store:
            results.append(service.check_sink(store, settings))
        code = EXIT_OK if all(r["ok"] for r in results) else EXIT_FAILED
        show(
            json_output,
            {"command": "test-connection", "ok": code == EXIT_OK, "exit_code": code, "results": results},
            partial(render_checks, results),
        )
    raise typer.Exit(code)


WORKLIST_COLUMNS = (
    ("hospital_name", "Hospital"),
    ("openmrs_identifier", "OpenMRS ID"),
    ("patient_uuid", "Patient uuid"),
    ("rows", "Rows"),
    ("since", "Waiting since"),
    ("problem", "Problem"),
    ("fix", "Fix"),
)


@app.command("worklist")
def worklist(
    hospital: HospitalOption = None,
    reason: Annotated[
        list[str] | None,
        typer.Option(
            "--reason",
            metavar="REASON",
            help="Only this parking reason; repeat for several (default: those a fix in OpenMRS lands: "
            "invalid_national_id, conflicting_national_ids, shared_national_id, ambiguous_passport_patient, "
            "missing_concept, invalid_data).",
            show_default=False,
        ),
    ] = None,
    csv_output: Annotated[bool, typer.Option("--csv", help="CSV on stdout, one row per patient and reason.")] = False,
    with_national_id: Annotated[
        bool,
        typer.Option("--with-national-id", help="Also show each patient's national ID (hidden otherwise)."),
    ] = False,
    json_output: JsonOption = False,
    config: ConfigOption = None,
    verbose: VerboseOption = False,
    quiet: QuietOption = False,
) -> None:
    """The patients whose rows wait for a fix in OpenMRS, per hospital and reason, for the data manager.

    Each patient by OpenMRS identifier and uuid (never a name; the national ID only with
    --with-national-id), the problem in plain words with its fix, the rows waiting and since when.
    The rows land on the next run after the fix (or at once with sync-patient).

    Example: passport-sync worklist --hospital central --csv > central-worklist.csv
    """
    with errors_to_exit_codes("worklist" if json_output else None):
        settings = load(config, verbose=verbose, quiet=quiet)
        hospitals = service.select_hospitals(settings, hospital)
        if csv_output and json_output:
            raise UsageError("--csv and --json do not go together: choose one")

        def work(store: PassportStore) -> int:
            rows = service.worklist(settings, store, hospitals, reasons=reason, national_ids=with_national_id)
            columns = WORKLIST_COLUMNS + ((("national_id", "National ID"),) if with_national_id else ())

            def render() -> None:
                if csv_output:
                    fields = [*service.WORKLIST_FIELDS, *(["national_id"] if with_national_id else [])]
                    writer = csv.DictWriter(sys.stdout, fieldnames=fields)
                    writer.writeheader()
                    writer.writerows(rows)
                elif rows:
                    render_table(
                        "passport-sync: worklist (rows waiting for a fix in OpenMRS)", columns, rows, sys.stdout
                    )
                elif not quiet:
                    print("Nothing waits for a fix in OpenMRS.")

            show(json_output, {"command": "worklist", "exit_code": EXIT_OK, "patients": rows}, render)
            return EXIT_OK

        code = _with_store(settings, work)
    raise typer.Exit(code)


@app.command("reset-checkpoint")
def reset_checkpoint(
    hospital: Annotated[str, typer.Argument(metavar="HOSPITAL", help="Hospital id or name.")],
    to: Annotated[
        str | None,
        typer.Option(
            "--to",
            metavar="DATETIME",
            help="Re-read observations created at or after this date/time (ISO, hospital time).",
        ),
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    json_output: JsonOption = False,
    config: ConfigOption = None,
    verbose: VerboseOption = False,
    quiet: QuietOption = False,
) -> None:
    """Move a hospital's checkpoint back so the next run re-reads observations.

    Re-reading is safe: writes are idempotent, nothing is duplicated.

    Example: passport-sync reset-checkpoint central --to 2025-11-01 --yes
    """
    with errors_to_exit_codes("reset-checkpoint" if json_output else None):
        settings = load(config, verbose=verbose, quiet=quiet)
        (target,) = service.select_hospitals(settings, [hospital])[:1]
        when = None
        if to is not None:
            try:
                when = datetime.fromisoformat(to)
            except ValueError:
                raise UsageError(
                    f"--to {to!r} is not a date or date-time", hint="use e.g. 2025-11-06 or 2025-11-06T10:30"
                ) from None
            # A day of margin: the hospital's clock may be ahead of this host's by a time zone.
            if when.replace(tzinfo=None) > datetime.now(UTC).replace(tzinfo=None) + timedelta(days=1):
                raise UsageError(
                    f"--to {to} is in the future: no row was created after it, so nothing would be re-read",
                    hint="give the date from which rows should be synced again, e.g. the day a problem began",
                )
        what = f"rows created since {to}" if to else "everything"
        if not yes:
            if not stdin_is_terminal():
                raise UsageError(
                    "reset-checkpoint asks for confirmation and stdin is not a terminal",
                    hint="pass --yes to confirm from a script",
                )
            if not typer.confirm(f"Reset the checkpoint of {target.name}? The next run re-reads {what}."):
                raise UsageError(f"{target.name}: checkpoint not reset (declined)")

        def work(store: PassportStore) -> int:
            result = service.reset_checkpoint(settings, store, target, to=when)
            if result["moved"]:
                said = f"{target.name}: checkpoint reset; the next run re-reads {result['rereads']}."
            else:
                said = (
                    f"{target.name}: the checkpoint is already before {to}; nothing moved"
                    " (a checkpoint only moves back, so no row is skipped)."
                )
            show(json_output, {"command": "reset-checkpoint", **result}, partial(print, said))
            return EXIT_OK

        code = _with_store(settings, work)
    raise typer.Exit(code)


@app.command("demo")
def demo(
    mysql_url: Annotated[
        str,
        typer.Option(
            "--mysql-url",
            metavar="URL",
            help="MySQL/MariaDB server for the demo's OpenMRS databases: mysql://user:password@host:port "
            "(a user that may create and drop databases).",
        ),
    ] = "mysql://root@127.0.0.1:3306",
    mongodb_uri: Annotated[
        str | None,
        typer.Option(
            "--mongodb-uri",
            metavar="URI",
            help="MongoDB for the demo's Patient Passport (database patientpassport_demo unless the URI names "
            "one). Default: an embedded MongoDB whose data stays in --demo-dir.",
            show_default=False,
        ),
    ] = None,
    demo_dir: Annotated[
        Path,
        typer.Option("--demo-dir", metavar="DIR", help="Folder for hospitals.yaml and the embedded MongoDB's data."),
    ] = Path(".passport-sync-demo"),
    prefix: Annotated[
        str,
        typer.Option("--prefix", metavar="NAME", help="Database name prefix: <prefix>_central, _district, _regional."),
    ] = "passport_demo",
    reset: Annotated[
        bool, typer.Option("--reset", help="Drop what the demo created (only that), instead of running it.")
    ] = False,
    json_output: JsonOption = False,
    verbose: VerboseOption = False,
    quiet: QuietOption = False,
) -> None:
    """Try passport-sync on three small demo OpenMRS hospitals, synced by the real sync-all.

    Creates the OpenMRS databases and a demo Patient Passport, syncs, and shows one patient's history.

    Running it again finds nothing new. It never touches a database it did not create.

    Example: passport-sync demo --mysql-url mysql://root:secret@127.0.0.1:3306
    """
    from passport_sync.demo import run as demo_run  # only the demo needs the builder and secantus
    from passport_sync.synthetic.mysql import parse_mysql_url

    with errors_to_exit_codes("demo" if json_output else None):
        configure_logging(verbose=verbose, quiet=quiet)
        options = demo_run.DemoOptions(
            mysql=parse_mysql_url(mysql_url), mongodb_uri=mongodb_uri, demo_dir=demo_dir, prefix=prefix
        )
        if reset:
            outcome = demo_run.reset_demo(options)
            code = EXIT_OK
            show(
                json_output,
                {"command": "demo", "reset": True, "exit_code": code, **outcome.as_dict()},
                partial(demo_run.render_reset, outcome, sys.stdout),
            )
        else:
            result = demo_run.run_demo(options)
            result.program = invoked_program()
            code = sync_exit_code(result.reports)
            show(
                json_output,
                {"command": "demo", "reset": False, "exit_code": code, **result.as_dict()},
                partial(demo_run.render_demo, result, sys.stdout),
            )
    raise typer.Exit(code)


def invoked_program() -> str:
    """How to run this program again from this shell: ``passport-sync`` when PATH finds this very
    program, else the path it was started by (relative to the working directory when inside it),
    so a printed next command works as shown."""
    started = Path(sys.argv[0])
    if started.name != "passport-sync":
        return "passport-sync"  # python -m passport_sync, or a test runner
    found = shutil.which("passport-sync")
    if found and Path(found).resolve() == started.resolve():
        return "passport-sync"
    path = started.absolute()
    with suppress(ValueError):
        path = path.relative_to(Path.cwd())
    return str(path) if path.is_absolute() or "/" in str(path) else f"./{path}"


def _version_callback(value: bool) -> None:
    if value:
        print(f"passport-sync {__version__}")
        raise typer.Exit()


@app.callback()
def main_callback(
    version: Annotated[
        bool, typer.Option("--version", callback=_version_callback, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """Copy OpenMRS observations into the Patient Passport MongoDB, matched by national ID."""


def _interrupt_on_sigterm(signum: int, frame: object) -> None:
    # systemd stops a unit with SIGTERM: unwind like Ctrl-C, so locks are released at once
    # instead of blocking other hosts until their lease expires.
    raise KeyboardInterrupt


def main() -> None:
    signal.signal(signal.SIGTERM, _interrupt_on_sigterm)
    app()
