#!/usr/bin/env python3
"""passport-sync benchmark: backfill N synthetic OpenMRS observations into a MongoDB wire server.

One command on a fresh machine (it creates .venv and installs passport-sync with the ``demo``
extra if needed, and starts the local MariaDB if nothing answers on the default URL)::

    python3 scripts/bench.py                 # N = 200,000
    python3 scripts/bench.py --n 50000 --json bench-results/bench-50000.json

What one run does:

1. generates ``--hospitals`` OpenMRS databases in MariaDB holding N observations together
   (encounters of 5-20 obs of one patient, provider and location; numeric vitals with units and
   ranges, coded diagnoses, text notes, obs groups, drugs, booleans and dates; some voided, some
   edited), and registers ~90% of the ``--patients`` people in Patient Passport;
2. starts the SecantusDB MongoDB wire server as a separate process (unless ``--mongodb-uri``);
3. runs ``sync-all`` (``service.sync_all`` over every hospital) in a child process, counting the
   MySQL statements and the MongoDB commands through the tracer hook (``passport_sync.tracing``,
   by purpose) and reading the child's peak RSS;
4. measures the limit in the same servers: (a) every page of the sync's own obs query read with
   raw pymysql and nothing else, (b) the documents the sync wrote inserted with a plain
   ``insert_many`` (1000 per call, unordered) into a collection with the same indexes;
5. adds 100 observations to the first hospital and times an incremental ``sync-all``, with the
   EXPLAIN of its obs and void queries;
6. runs ``reconcile`` three times, each in a fresh process: the first pass (no checksums kept:
   every row compared with the Passport), a pass with no drift (what a full pass costs; it must
   read no row), and a pass after one patient of hospital 1 was merged into another by SQL (it
   should read about that patient's rows);
7. prints one table and writes the same as JSON (default ``bench-results/bench-<N>.json``).

The fleet benchmark (``--fleet M``) measures many small hospitals instead: M OpenMRS databases
of ``--fleet-obs`` observations, each reached through its own local TCP proxy (asyncio, in this
process) that delays every chunk by half of ``--rtt-ms`` in each direction; after a backfill, for
each ``--workers`` value, an idle ``sync-all`` cycle and one with 5 new observations per
hospital, each in a fresh child process. It prints cycle seconds, MySQL statements and MongoDB
commands per hospital and peak RSS (the JSON also has the per-hospital counts by purpose)::

    python3 scripts/bench.py --fleet 40 --fleet-obs 200 --workers 1 4 16 --rtt-ms 50

``--profile PATH`` runs the backfill child under cProfile (its times are then inflated; use it
for "where does the time go", not for the table).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import json
import os
import platform
import pstats
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

try:
    import pymongo
    import pymysql
    import pymysql.cursors

    from passport_sync import checkpoint as cp_logic
    from passport_sync.config import Settings
    from passport_sync.errors import UsageError
    from passport_sync.sink.gateway import RECORDS
    from passport_sync.source import queries
    from passport_sync.synthetic.counting import counted_sync, sync_settings
    from passport_sync.synthetic.hospital import GenerationStats, SyntheticHospital, create_hospitals, reopened
    from passport_sync.synthetic.mongodb import embedded_server, server_command
    from passport_sync.synthetic.mysql import DEFAULT_MYSQL_URL, MySQLTarget, parse_mysql_url
    from passport_sync.synthetic.population import SEED, Population, make_population
    from passport_sync.synthetic.proxy import LatencyProxies
    from passport_sync.synthetic.registration import register_population
except ModuleNotFoundError:  # a fresh machine: make .venv, install, and start again inside it
    _repo = Path(__file__).resolve().parents[1]
    _venv_python = _repo / ".venv" / "bin" / "python"
    if Path(sys.executable).resolve() == _venv_python.resolve():
        raise
    if not _venv_python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(_repo / ".venv")], check=True)
    subprocess.run(
        [str(_venv_python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-e", f"{_repo}[demo]"],
        check=True,
    )
    os.execv(str(_venv_python), [str(_venv_python), str(Path(__file__).resolve()), *sys.argv[1:]])

REPO = Path(__file__).resolve().parents[1]
INCREMENTAL_OBS = 100

# Targets of the issue (measured here, never asserted in timed tests).
TARGET_RATIO = 0.8
TARGET_MYSQL_PER_1000 = 5
TARGET_MONGO_PER_1000 = 8
TARGET_RSS_MB = 300
TARGET_INCREMENTAL_SECONDS = 2.0


def _git_commit() -> str:
    """The commit of the code measured, with "+dirty" when passport_sync/ has local changes."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "passport_sync"], cwd=REPO, capture_output=True, text=True
        )
    except OSError:
        return "unknown"
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "") if head.returncode == 0 else "unknown"


def _child(spec_path: str) -> None:
    """The sync in its own process: its RSS and CPU are not mixed with the generator's. Its
    statements and commands are counted through the tracer hook (``passport_sync.tracing``)."""
    spec = json.loads(Path(spec_path).read_text())
    settings = sync_settings(spec["mongo_uri"], spec["hospitals"], spec["batch_size"], spec.get("workers", 1))
    profiler = cProfile.Profile() if spec.get("profile") else None
    if profiler:
        profiler.enable()
    result = counted_sync(settings, spec.get("mode", "sync"))
    if profiler:
        profiler.disable()
        profiler.dump_stats(spec["profile"])
    out = {
        "seconds": result.seconds,
        "mysql_statements": result.mysql_statements,
        "mysql_by_hospital": result.mysql_by_hospital,
        "mysql_by_method": result.mysql_by_method,
        "mysql_seconds_by_method": result.mysql_seconds,
        "mongo_seconds_by_operation": result.mongo_seconds,
        "seconds_split": result.split(),
        "mongo_commands": result.mongo_commands,
        "mongo_by_hospital": result.mongo_by_hospital,
        "mongo_by_command": result.mongo_by_command,
        # The tracer names the store call, not the collection: "<store call>/<command>".
        "mongo_by_collection": result.mongo_by_purpose,
        "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "reports": result.reports,
    }
    Path(spec["out"]).write_text(json.dumps(out, default=str))


# =====================================================================================
# The benchmark
# =====================================================================================


class MongoServer:
    """The embedded MongoDB in a separate process (its CPU and RSS are not the sync's), or a given URI."""

    def __init__(self, uri: str | None, *, keep: bool = False) -> None:
        self.given = uri
        self.keep = keep
        self.uri = (uri or "").rstrip("/")
        self.version = "external"
        self.stack = contextlib.ExitStack()
        self.storage: str | None = None

    def __enter__(self) -> MongoServer:
        if self.given is None:
            self.storage = tempfile.mkdtemp(prefix="passport-bench-mongo-")
            data = Path(self.storage) / "data"
            data.mkdir()
            self.uri = self.stack.enter_context(embedded_server(data, separate_process=True))
        client: pymongo.MongoClient[Any] = pymongo.MongoClient(self.uri, serverSelectionTimeoutMS=60_000)
        try:
            self.version = str(client.server_info().get("version"))
        except pymongo.errors.PyMongoError:
            self.__exit__()
            raise SystemExit(f"the MongoDB server at {self.uri} does not answer") from None
        finally:
            client.close()
        if self.storage:
            from importlib.metadata import version

            self.version = f"SecantusDB {version('secantusdb')} (reports MongoDB {self.version})"
        return self

    def __exit__(self, *exc: object) -> None:
        self.stack.close()
        if self.storage and self.keep:
            command = " ".join(server_command(Path(self.storage) / "data"))
            _progress(f"MongoDB data kept in {self.storage}/data; serve it again with {command}")
        elif self.storage:
            shutil.rmtree(self.storage, ignore_errors=True)


def _global_questions(mysql: MySQLTarget) -> int:
    conn = mysql.connect()
    try:
        with conn.cursor() as cursor:
            cursor.execute("SHOW GLOBAL STATUS LIKE 'Questions'")
            return int(cursor.fetchone()[1])
    finally:
        conn.close()


def run_child(spec: dict[str, Any], mysql: MySQLTarget) -> dict[str, Any]:
    """Run one sync-all in a fresh process; its own counters, time, peak RSS, and wall time."""
    with tempfile.TemporaryDirectory(prefix="passport-bench-") as tmp:
        spec_path, out_path = Path(tmp) / "spec.json", Path(tmp) / "out.json"
        spec_path.write_text(json.dumps({**spec, "out": str(out_path)}))
        before = _global_questions(mysql)
        started = time.perf_counter()
        subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", str(spec_path)], check=True)
        wall = time.perf_counter() - started
        # Minus the one SHOW GLOBAL STATUS of `before` itself; other clients would add to it.
        questions = _global_questions(mysql) - before - 1
        result: dict[str, Any] = json.loads(out_path.read_text())
    result["process_seconds"] = wall
    result["mysql_questions_global_delta"] = questions
    return result


def _rows_read(run: dict[str, Any]) -> int:
    return sum((r.get("reconcile") or {}).get("rows_read", 0) for r in run["reports"])


def _repaired(run: dict[str, Any], kind: str) -> int:
    return sum((r.get("reconcile") or {}).get(kind, 0) for r in run["reports"])


def measure_reconcile(spec: dict[str, Any], mysql: MySQLTarget, database: str, db: Any) -> dict[str, Any]:
    """Three ``reconcile`` passes, each in a fresh process: the first (nothing kept yet: every row
    compared with the Passport), one with no drift, and one after one patient of hospital 1 was
    merged into another by SQL (the site's merge script: obs, encounters, orders move in place)."""
    runs: dict[str, Any] = {}
    _progress("reconcile: first full pass (no checksums kept yet: every row compared with the Passport)")
    runs["first"] = run_child({**spec, "mode": "reconcile"}, mysql)
    _progress("reconcile: a full pass with no drift")
    runs["idle"] = run_child({**spec, "mode": "reconcile"}, mysql)
    hospital = {"openmrsData.hospitalId": "bench_h1", "openmrsData.source": "obs"}
    loser = db[RECORDS].find_one(hospital, {"openmrsData.personId": 1})["openmrsData"]["personId"]
    winner = db[RECORDS].find_one({**hospital, "openmrsData.personId": {"$ne": loser}}, {"openmrsData.personId": 1})
    winner = winner["openmrsData"]["personId"]
    conn = mysql.connect(database)
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT COUNT(*) FROM obs WHERE person_id = %s", (loser,))
            patient_rows = int(cursor.fetchone()[0])
            for table, column in (("obs", "person_id"), ("encounter", "patient_id"), ("orders", "patient_id")):
                cursor.execute(f"UPDATE {table} SET {column} = %s WHERE {column} = %s", (winner, loser))
        conn.commit()
    finally:
        conn.close()
    _progress(f"reconcile: after one patient ({patient_rows} observations) was merged into another by SQL")
    runs["merge"] = run_child({**spec, "mode": "reconcile"}, mysql)
    runs["merge"]["patient_rows"] = patient_rows
    return runs


def measure_read_limit(mysql: MySQLTarget, databases: Sequence[str], batch_size: int) -> tuple[float, int]:
    """(a): every page of the sync's obs query, raw pymysql, DictCursor, fetchall, nothing else."""
    seconds, rows_read = 0.0, 0
    for database in databases:
        conn = mysql.connect(database, cursorclass=pymysql.cursors.DictCursor)
        try:
            with conn.cursor() as cursor:
                cursor.execute(*queries.SCHEMA_QUERY)
                schema = queries.SchemaInfo(frozenset((r["TABLE_NAME"], r["COLUMN_NAME"]) for r in cursor.fetchall()))
            after = 0
            while True:
                sql, params = queries.obs_after(schema, after, batch_size)
                started = time.perf_counter()
                with conn.cursor() as cursor:
                    cursor.execute(sql, params)
                    rows = cursor.fetchall()
                seconds += time.perf_counter() - started
                if not rows:
                    break
                rows_read += len(rows)
                after = rows[-1]["obs_id"]
        finally:
            conn.close()
    return seconds, rows_read


def measure_write_limit(db: Any, batch_size: int) -> tuple[float, int]:
    """(b): the documents the sync wrote, inserted with plain insert_many into a collection with the
    same indexes. Only the insert_many calls are timed."""
    db.drop_collection("limit_copy")
    target = db["limit_copy"]
    for name, info in db[RECORDS].index_information().items():
        if name == "_id_":
            continue
        options = {
            k: v for k, v in info.items() if k in ("unique", "sparse", "partialFilterExpression", "expireAfterSeconds")
        }
        target.create_index(info["key"], name=name, **options)
    seconds, written = 0.0, 0
    batch: list[dict[str, Any]] = []

    def insert() -> None:
        nonlocal seconds, written
        started = time.perf_counter()
        target.insert_many(batch, ordered=False)
        seconds += time.perf_counter() - started
        written += len(batch)
        batch.clear()

    for doc in db[RECORDS].find({}, batch_size=batch_size):
        batch.append(doc)
        if len(batch) >= batch_size:
            insert()
    if batch:
        insert()
    db.drop_collection("limit_copy")
    return seconds, written


def explain_incremental(
    mysql: MySQLTarget, database: str, checkpoint_doc: dict[str, Any] | None, settings: Settings
) -> dict[str, Any]:
    """EXPLAIN of the incremental run's obs page (after the checkpoint) and void read (from the
    watermark minus the look-back)."""
    state = cp_logic.stored_checkpoint("obs", checkpoint_doc)
    since = cp_logic.void_read_from(state, timedelta(minutes=settings.sync.void_lookback_minutes))
    conn = mysql.connect(database, cursorclass=pymysql.cursors.DictCursor)
    try:
        with conn.cursor() as cursor:
            cursor.execute(*queries.SCHEMA_QUERY)
            schema = queries.SchemaInfo(frozenset((r["TABLE_NAME"], r["COLUMN_NAME"]) for r in cursor.fetchall()))
        plans = {}
        for name, (sql, params) in (
            ("obs_after", queries.obs_after(schema, state.last_obs_id, settings.sync.batch_size)),
            ("voided_since", queries.voided_since(schema, since, 0, settings.sync.batch_size)),
        ):
            with conn.cursor() as cursor:
                cursor.execute("EXPLAIN " + sql, params)
                plans[name] = {
                    "params": [str(p) for p in params],
                    "plan": [dict(row) for row in cursor.fetchall()],
                }
        return plans
    finally:
        conn.close()


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "unknown"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu,
        "memory": mem,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def _fmt_row(values: Sequence[str], widths: Sequence[int]) -> str:
    return "  ".join(v.rjust(w) for v, w in zip(values, widths, strict=True))


TABLE_COLUMNS = (
    ("N", "n"),
    ("sync s", "sync_seconds"),
    ("obs/s", "obs_per_second"),
    ("limit s (a+b)", "limit_seconds"),
    ("limit/sync", "ratio"),
    ("peak RSS MB", "peak_rss_mb"),
    ("MySQL st/1k", "mysql_per_1000"),
    ("Mongo cmd/1k", "mongo_per_1000"),
    ("incr +100 s", "incremental_seconds"),
    ("incr MySQL st", "incremental_mysql"),
    ("incr Mongo cmd", "incremental_mongo"),
    ("next incr s", "next_incremental_seconds"),
    ("recon s (idle)", "reconcile_idle_seconds"),
    ("idle/sync", "reconcile_idle_share"),
    ("recon st", "reconcile_idle_mysql"),
    ("merge rows read/obs", "reconcile_merge_rows_read"),
)


def table_row(summary: dict[str, Any]) -> list[str]:
    s = summary
    return [
        f"{s['n']:,}",
        f"{s['sync_seconds']:.1f}",
        f"{s['obs_per_second']:,.0f}",
        f"{s['limit_seconds']:.1f} ({s['read_seconds']:.1f}+{s['write_seconds']:.1f})",
        f"{s['ratio']:.2f}",
        f"{s['peak_rss_mb']:.0f}",
        f"{s['mysql_per_1000']:.2f}",
        f"{s['mongo_per_1000']:.2f}",
        f"{s['incremental_seconds']:.2f}",
        f"{s['incremental_mysql']}",
        f"{s['incremental_mongo']}",
        f"{s['next_incremental_seconds']:.2f}",
        # Blank without the reconcile passes (--no-reconcile).
        f"{s['reconcile_idle_seconds']:.2f}" if "reconcile_idle_seconds" in s else "",
        f"{s['reconcile_idle_share']:.3f}" if "reconcile_idle_share" in s else "",
        f"{s.get('reconcile_idle_mysql', '')}",
        f"{s['reconcile_merge_rows_read']}/{s['merged_patient_rows']}" if "merged_patient_rows" in s else "",
    ]


def render_table(summaries: Sequence[dict[str, Any]]) -> str:
    header = [c[0] for c in TABLE_COLUMNS]
    rows = [table_row(s) for s in summaries]
    widths = [max(len(header[i]), *(len(r[i]) for r in rows)) for i in range(len(header))]
    lines = [_fmt_row(header, widths), "  ".join("-" * w for w in widths)]
    lines.extend(_fmt_row(r, widths) for r in rows)
    return "\n".join(lines)


def reconcile_summary(reconciles: dict[str, Any], backfill_seconds: float) -> dict[str, Any]:
    """The reconcile passes' figures for the summary."""
    return {
        "reconcile_first_seconds": reconciles["first"]["seconds"],
        "reconcile_idle_seconds": reconciles["idle"]["seconds"],
        "reconcile_idle_share": reconciles["idle"]["seconds"] / backfill_seconds,
        "reconcile_idle_mysql": reconciles["idle"]["mysql_statements"],
        "reconcile_idle_rows_read": _rows_read(reconciles["idle"]),
        "reconcile_merge_seconds": reconciles["merge"]["seconds"],
        "reconcile_merge_rows_read": _rows_read(reconciles["merge"]),
        "reconcile_merge_moved": _repaired(reconciles["merge"], "moved"),
        "merged_patient_rows": reconciles["merge"]["patient_rows"],
    }


def _drop_databases(mysql: MySQLTarget, databases: Sequence[str]) -> None:
    conn = mysql.connect()
    try:
        with conn.cursor() as cursor:
            for name in databases:
                cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
    finally:
        conn.close()


def _mysql_target(url: str) -> MySQLTarget:
    """--mysql-url; ``user@host:port`` without the scheme is taken too."""
    try:
        return parse_mysql_url(url if "://" in url else f"mysql://{url}")
    except UsageError as exc:
        raise SystemExit(f"{exc} ({exc.hint})") from None


def _ensure_mysql(mysql: MySQLTarget, url_given: bool) -> None:
    try:
        mysql.connect().close()
        return
    except pymysql.MySQLError:
        if url_given:
            raise
    subprocess.run(["bash", str(REPO / "scripts" / "ensure-mariadb.sh")], check=True)


def _progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def generate(
    mysql: MySQLTarget, databases: Sequence[str], population: Population, n: int, seed: int
) -> tuple[list[SyntheticHospital], GenerationStats]:
    """The OpenMRS databases, N observations split over them; the generators and their totals."""
    started = time.perf_counter()
    shares = [n // len(databases) + (1 if index < n % len(databases) else 0) for index in range(len(databases))]
    hospitals = create_hospitals(mysql, databases, population, shares, seed)
    total = GenerationStats()
    for hospital in hospitals:
        total.add(hospital.stats)
    total.seconds = time.perf_counter() - started
    return hospitals, total


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=200_000, help="observations to generate (default 200000)")
    parser.add_argument("--hospitals", type=int, default=3, help="hospitals (OpenMRS databases), default 3")
    parser.add_argument("--patients", type=int, default=3000, help="people in the synthetic population, default 3000")
    parser.add_argument("--batch-size", type=int, default=1000, help="sync.batch_size, default 1000")
    parser.add_argument("--mongodb-uri", help="a MongoDB server to use (default: start SecantusDB in a process)")
    parser.add_argument("--mysql-url", help=f"MariaDB/MySQL server (default {DEFAULT_MYSQL_URL})")
    parser.add_argument("--json", type=Path, help="where to write the results (default bench-results/bench-<N>.json)")
    parser.add_argument("--prefix", default="passport_bench", help="database name prefix (default passport_bench)")
    parser.add_argument("--seed", type=int, default=SEED, help="random seed (fixed by default)")
    parser.add_argument("--keep", action="store_true", help="keep the MySQL and MongoDB databases afterwards")
    parser.add_argument(
        "--no-reconcile", action="store_true", help="skip the three reconcile passes (for large N: the first is long)"
    )
    parser.add_argument("--profile", type=Path, help="run the backfill under cProfile and write the stats here")
    parser.add_argument("--fleet", type=int, metavar="M", help="the fleet benchmark instead: M small hospitals")
    parser.add_argument("--fleet-obs", type=int, default=300, help="observations per fleet hospital, default 300")
    parser.add_argument("--rtt-ms", type=int, default=50, help="fleet: round trip added by each proxy, default 50")
    parser.add_argument(
        "--workers", type=int, nargs="+", default=[1, 4, 16], help="fleet: sync-all --workers values, default 1 4 16"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child)
        return 0
    if args.fleet is not None:
        if args.fleet < 1 or args.fleet_obs < 1 or min(args.workers) < 1:
            parser.error("--fleet, --fleet-obs and --workers must be positive")
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
        fleet_mysql = _mysql_target(args.mysql_url or DEFAULT_MYSQL_URL)
        _ensure_mysql(fleet_mysql, args.mysql_url is not None)
        return run_fleet(args, fleet_mysql)
    if args.n < 1 or args.hospitals < 1 or args.patients < args.hospitals:
        parser.error("--n, --hospitals must be positive and --patients at least --hospitals")

    # A SIGTERM (timeout, kill) still stops the MongoDB server and drops the databases.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    load_at_start = os.getloadavg()
    code_version = _git_commit()
    mysql = _mysql_target(args.mysql_url or DEFAULT_MYSQL_URL)
    _ensure_mysql(mysql, args.mysql_url is not None)
    databases = [f"{args.prefix}_openmrs_{i + 1}" for i in range(args.hospitals)]
    mongo_db_name = f"{args.prefix}_passport"
    json_path = args.json or REPO / "bench-results" / f"bench-{args.n}.json"

    with MongoServer(args.mongodb_uri, keep=args.keep) as mongo:
        client: pymongo.MongoClient[Any] = pymongo.MongoClient(mongo.uri, tz_aware=False)
        client.drop_database(mongo_db_name)
        db = client[mongo_db_name]
        _drop_databases(mysql, databases)
        try:
            _progress(f"generating {args.n:,} observations in {args.hospitals} OpenMRS databases")
            population = make_population(args.patients, args.seed)
            registered = register_population(db, population)
            generators, gen_stats = generate(mysql, databases, population, args.n, args.seed)
            _progress(f"generated in {gen_stats.seconds:.1f} s: {gen_stats.as_dict()}")
            hospitals = [
                {
                    "id": f"bench_h{i + 1}",
                    "name": f"Bench Hospital {i + 1}",
                    "db": {
                        "host": mysql.host,
                        "port": mysql.port,
                        "name": database,
                        "user": mysql.user,
                        "password": mysql.password,
                    },
                }
                for i, database in enumerate(databases)
            ]
            spec = {"mongo_uri": f"{mongo.uri}/{mongo_db_name}", "hospitals": hospitals, "batch_size": args.batch_size}
            settings = sync_settings(spec["mongo_uri"], hospitals, args.batch_size)

            _progress("backfill: sync-all in a child process")
            backfill = run_child({**spec, "profile": str(args.profile) if args.profile else None}, mysql)
            _progress(f"backfill took {backfill['seconds']:.1f} s")
            records = db[RECORDS].count_documents({})
            parked = db["openmrs_sync_parked"].count_documents({})

            _progress("limit (a): raw reads of the sync's obs pages")
            read_seconds, rows_read = measure_read_limit(mysql, databases, args.batch_size)
            _progress("limit (b): plain insert_many of the written documents")
            write_seconds, docs_written = measure_write_limit(db, 1000)

            # Two incremental runs, as cron would run them: the first one right after the backfill
            # (the table), and the next one (steady state).
            increments = []
            for label in ("incremental", "next incremental"):
                checkpoint = db["syncstatus"].find_one({"hospitalId": "bench_h1"}, {"_id": 0})
                explain = explain_incremental(mysql, databases[0], checkpoint, settings)
                _progress(f"{label}: {INCREMENTAL_OBS} new observations in hospital 1, then sync-all")
                with reopened(mysql, databases[0], generators[0]) as generator:
                    added = generator.add_obs(INCREMENTAL_OBS, gap=timedelta(hours=12))
                run = run_child(spec, mysql)
                run.update(new_obs=added.rows, obs_checkpoint_before=checkpoint, explain=explain)
                increments.append(run)
            incremental, repeat = increments

            reconciles = {} if args.no_reconcile else measure_reconcile(spec, mysql, databases[0], db)
        finally:
            if not args.keep:
                client.drop_database(mongo_db_name)
                _drop_databases(mysql, databases)
            client.close()

    n = gen_stats.rows
    limit_seconds = read_seconds + write_seconds
    summary = {
        "n": n,
        "sync_seconds": backfill["seconds"],
        "obs_per_second": n / backfill["seconds"],
        "read_seconds": read_seconds,
        "write_seconds": write_seconds,
        "limit_seconds": limit_seconds,
        "ratio": limit_seconds / backfill["seconds"],
        "peak_rss_mb": backfill["peak_rss_kb"] / 1024,
        "mysql_per_1000": backfill["mysql_statements"] * 1000 / n,
        "mongo_per_1000": backfill["mongo_commands"] * 1000 / n,
        "incremental_seconds": incremental["seconds"],
        "incremental_mysql": incremental["mysql_statements"],
        "incremental_mongo": incremental["mongo_commands"],
        "next_incremental_seconds": repeat["seconds"],
    }
    if reconciles:
        summary |= reconcile_summary(reconciles, backfill["seconds"])
    targets = {
        f"ratio_at_least_{TARGET_RATIO}": summary["ratio"] >= TARGET_RATIO,
        "mysql_per_1000_at_most_5": summary["mysql_per_1000"] <= TARGET_MYSQL_PER_1000,
        f"mongo_per_1000_at_most_{TARGET_MONGO_PER_1000}": summary["mongo_per_1000"] <= TARGET_MONGO_PER_1000,
        "peak_rss_under_300_mb": summary["peak_rss_mb"] < TARGET_RSS_MB,
        "incremental_under_2_s": summary["incremental_seconds"] < TARGET_INCREMENTAL_SECONDS,
        "incremental_queries_use_indexes": all(
            row.get("type") != "ALL" for run in increments for plan in run["explain"].values() for row in plan["plan"]
        ),
    }
    if reconciles:
        targets |= {
            "reconcile_idle_at_most_10pct_of_backfill": summary["reconcile_idle_share"] <= 0.10,
            "reconcile_idle_reads_no_row": summary["reconcile_idle_rows_read"] == 0,
            "reconcile_merge_reads_the_patients_rows": summary["reconcile_merge_rows_read"]
            <= summary["merged_patient_rows"] * 1.1 + 10,
        }
    result = {
        "summary": summary,
        "targets": targets,
        "parameters": {
            "n": args.n,
            "hospitals": args.hospitals,
            "patients": args.patients,
            "registered_in_passport": registered,
            "batch_size": args.batch_size,
            "seed": args.seed,
            "profiled": bool(args.profile),
        },
        "generation": gen_stats.as_dict(),
        "backfill": {
            **{k: v for k, v in backfill.items() if k != "reports"},
            "records_written": records,
            "parked": parked,
            "mysql_statements_per_1000": summary["mysql_per_1000"],
            "mongo_commands_per_1000": summary["mongo_per_1000"],
            "reports": backfill["reports"],
        },
        "limit": {
            "read_seconds": read_seconds,
            "rows_read": rows_read,
            "write_seconds": write_seconds,
            "documents_written": docs_written,
            "seconds": limit_seconds,
            "ratio_limit_over_sync": summary["ratio"],
        },
        "incremental": incremental,
        "next_incremental": repeat,
        "reconcile": reconciles,
        "servers": {"mysql": _mysql_version(mysql), "mongodb": mongo.version},
        "passport_sync_commit": code_version,
        "machine": {
            **machine(),
            # Other work on the machine (tests, other benchmarks) shows here and skews the times.
            "load_average_at_start": load_at_start,
            "load_average_at_end": os.getloadavg(),
        },
    }
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(result, indent=2, default=str))

    print(render_table([summary]))
    print()
    print(
        f"backfill: {records:,} records written, {parked:,} parked; process wall {backfill['process_seconds']:.1f} s;"
        f" MySQL statements {backfill['mysql_statements']} {backfill['mysql_by_method']} (global Questions delta"
        f" {backfill['mysql_questions_global_delta']}); MongoDB commands {backfill['mongo_commands']}"
        f" {backfill['mongo_by_command']}; time split {backfill['seconds_split']}"
    )
    for label, run in (("incremental", incremental), ("next incremental", repeat)):
        print(
            f"{label} (+{run['new_obs']}): sync_all {run['seconds']:.2f} s, process wall"
            f" {run['process_seconds']:.2f} s; rows read {sum(r['read'] for r in run['reports'])};"
            f" MySQL {run['mysql_statements']} {run['mysql_by_method']}"
            f" (global delta {run['mysql_questions_global_delta']}); MongoDB {run['mongo_commands']}"
            f" {run['mongo_by_collection']}"
        )
        for name, plan in run["explain"].items():
            print(f"  EXPLAIN {name} {plan['params']}:")
            for row in plan["plan"]:
                print(
                    "    "
                    + "  ".join(
                        f"{k}={row.get(k)}" for k in ("id", "select_type", "table", "type", "key", "rows", "Extra")
                    )
                )
    for label, run in reconciles.items():
        found = {k: _repaired(run, k) for k in ("ranges_checked", "ranges_differing", "row_checksums", "moved")}
        print(
            f"reconcile ({label}): {run['seconds']:.2f} s, process wall {run['process_seconds']:.2f} s;"
            f" rows read {_rows_read(run)}; {found}; MySQL {run['mysql_statements']} {run['mysql_by_method']};"
            f" MongoDB {run['mongo_commands']} {run['mongo_by_collection']}"
        )
    print("targets: " + ", ".join(f"{k}={'met' if v else 'NOT met'}" for k, v in targets.items()))
    print(f"results: {json_path}")
    if args.profile:
        print(f"profile: {args.profile} (times above are inflated by cProfile)")
        pstats.Stats(str(args.profile)).sort_stats("tottime").print_stats(25)
    return 0


# =====================================================================================
# The fleet benchmark: many small hospitals, each behind a slow link
# =====================================================================================


FLEET_NEW_OBS = 5


def _per(counts: dict[str, int], hospitals: int) -> dict[str, float]:
    return {key: round(n / hospitals, 2) for key, n in counts.items()}


def run_fleet(args: argparse.Namespace, mysql: MySQLTarget) -> int:
    """M small hospitals behind latency proxies: a backfill, then per --workers value an idle
    cycle and a cycle with a few new observations per hospital. Prints one table."""
    count, workers_values = args.fleet, sorted(set(args.workers))
    databases = [f"{args.prefix}_fleet_{i + 1}" for i in range(count)]
    mongo_db_name = f"{args.prefix}_fleet_passport"
    delay = args.rtt_ms / 2000
    rows: list[dict[str, Any]] = []
    with (
        MongoServer(args.mongodb_uri, keep=args.keep) as mongo,
        LatencyProxies(mysql.host, mysql.port, delay) as proxies,
    ):
        client: pymongo.MongoClient[Any] = pymongo.MongoClient(mongo.uri, tz_aware=False)
        client.drop_database(mongo_db_name)
        _drop_databases(mysql, databases)
        try:
            _progress(f"fleet: {count} OpenMRS databases of {args.fleet_obs} observations")
            population = make_population(max(args.patients // 10, count * 5), args.seed)
            register_population(client[mongo_db_name], population)
            generators = create_hospitals(mysql, databases, population, [args.fleet_obs] * count, args.seed)
            hospitals = [
                {
                    "id": f"fleet_{i + 1}",
                    "name": f"Fleet Hospital {i + 1}",
                    "db": {
                        "host": "127.0.0.1",
                        "port": proxies.open(),
                        "name": database,
                        "user": mysql.user,
                        "password": mysql.password,
                    },
                }
                for i, database in enumerate(databases)
            ]
            spec = {"mongo_uri": f"{mongo.uri}/{mongo_db_name}", "hospitals": hospitals, "batch_size": args.batch_size}
            _progress(
                f"fleet: backfill through the proxies ({args.rtt_ms} ms round trip), workers {max(workers_values)}"
            )
            backfill = run_child({**spec, "workers": max(workers_values)}, mysql)
            _progress(f"fleet: backfill took {backfill['seconds']:.1f} s")
            for workers in workers_values:
                for cycle in ("idle", f"+{FLEET_NEW_OBS} obs"):
                    if cycle != "idle":
                        for generator, database in zip(generators, databases, strict=True):
                            with reopened(mysql, database, generator):
                                generator.add_obs(FLEET_NEW_OBS)
                    run = run_child({**spec, "workers": workers}, mysql)
                    failed = [r["hospital_id"] for r in run["reports"] if r["outcome"] != "ok"]
                    rows.append(
                        {
                            "hospitals": count,
                            "rtt_ms": args.rtt_ms,
                            "workers": workers,
                            "cycle": cycle,
                            "seconds": run["seconds"],
                            # Each hospital's own round trips (the tracer names the hospital of
                            # each), and what the cycle sends once for all (the index check).
                            "mysql_per_hospital": sum(run["mysql_by_hospital"].values()) / count,
                            "mongo_per_hospital": sum(run["mongo_by_hospital"].values()) / count,
                            "mongo_max_hospital": max(run["mongo_by_hospital"].values()),
                            "mongo_per_cycle": run["mongo_commands"] - sum(run["mongo_by_hospital"].values()),
                            "peak_rss_mb": run["peak_rss_kb"] / 1024,
                            "written": sum(r["written"] for r in run["reports"]),
                            "failed": failed,
                            # What an idle hospital costs, by purpose: the figures to cut.
                            "mysql_per_hospital_by_method": _per(run["mysql_by_method"], count),
                            "mongo_per_hospital_by_purpose": _per(run["mongo_by_collection"], count),
                        }
                    )
                    _progress(f"fleet: workers {workers}, {cycle}: {run['seconds']:.1f} s")
        finally:
            if not args.keep:
                client.drop_database(mongo_db_name)
                _drop_databases(mysql, databases)
            client.close()
    headers = (
        "hospitals",
        "RTT ms",
        "workers",
        "cycle",
        "cycle s",
        "MySQL st/hosp",
        "Mongo cmd/hosp",
        "(max)",
        "+ per cycle",
        "peak RSS MB",
        "written",
    )
    table = [
        (
            f"{r['hospitals']}",
            f"{r['rtt_ms']}",
            f"{r['workers']}",
            r["cycle"],
            f"{r['seconds']:.1f}",
            f"{r['mysql_per_hospital']:.1f}",
            f"{r['mongo_per_hospital']:.1f}",
            f"{r['mongo_max_hospital']}",
            f"{r['mongo_per_cycle']}",
            f"{r['peak_rss_mb']:.0f}",
            f"{r['written']}",
        )
        for r in rows
    ]
    widths = [max(len(h), *(len(row[i]) for row in table)) for i, h in enumerate(headers)]
    print(_fmt_row(headers, widths))
    for row in table:
        print(_fmt_row(row, widths))
    if any(r["failed"] for r in rows):
        print(
            "failed hospitals: "
            + "; ".join(f"workers {r['workers']} {r['cycle']}: {r['failed']}" for r in rows if r["failed"])
        )
    json_path = args.json or REPO / "bench-results" / f"fleet-{count}.json"
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(
        json.dumps({"fleet": rows, "machine": machine(), "passport_sync_commit": _git_commit()}, indent=2)
    )
    print(f"results: {json_path}")
    return 0


def _mysql_version(mysql: MySQLTarget) -> str:
    conn = mysql.connect()
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT VERSION()")
            return str(cursor.fetchone()[0])
    finally:
        conn.close()


if __name__ == "__main__":
    sys.exit(main())
