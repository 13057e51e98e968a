"""The fleet benchmark's latency proxy (scripts/bench.py) forwards MySQL faithfully: the fleet
figures are only worth something if every statement through it gets the right answer."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pymysql

from tests.conftest import MYSQL

BENCH = Path(__file__).resolve().parents[1] / "scripts" / "bench.py"


def load_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("passport_sync_bench_proxy", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    return module


def test_the_latency_proxy_forwards_whole_results_in_both_directions() -> None:
    bench = load_bench()
    with bench.LatencyProxies(MYSQL["host"], MYSQL["port"], delay=0.005) as proxies:
        port = proxies.open()
        conns = [
            pymysql.connect(host="127.0.0.1", port=port, user=MYSQL["user"], password=MYSQL["password"])
            for _ in range(2)
        ]
        try:
            for index, conn in enumerate(conns):
                with conn.cursor() as cursor:
                    # A result far larger than one chunk, and a statement longer than one too.
                    cursor.execute("SELECT REPEAT(%s, 300000) AS big, %s AS marker", ("ab", "x" * 70000 + str(index)))
                    big, marker = cursor.fetchone()
                    assert big == "ab" * 300000
                    assert marker == "x" * 70000 + str(index)
        finally:
            for conn in conns:
                conn.close()
