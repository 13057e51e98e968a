"""The fleet benchmark's latency proxy (passport_sync.synthetic.proxy) forwards MySQL faithfully: the fleet
figures are only worth something if every statement through it gets the right answer."""

from __future__ import annotations

import pymysql

from passport_sync.synthetic.proxy import LatencyProxies
from tests.conftest import MYSQL


def test_the_latency_proxy_forwards_whole_results_in_both_directions() -> None:
    with LatencyProxies(MYSQL["host"], MYSQL["port"], delay=0.005) as proxies:
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
