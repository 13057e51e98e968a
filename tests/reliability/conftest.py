"""Fixtures of the reliability suite: the figures file every fault test writes its counts into.

The figures (faults injected, records expected / found / duplicated) of the last run go to
``$PASSPORT_SYNC_RELIABILITY_FIGURES`` when set, else to ``reliability-figures.json`` in pytest's
base temporary directory. ``python -m tests.reliability.report PATH`` prints them as the table of
``docs/reliability.md``.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

FIGURES_ENV = "PASSPORT_SYNC_RELIABILITY_FIGURES"


class Figures:
    """Rows of (fault, times injected, records expected / found / duplicated / missing, outcome)."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.started = time.monotonic()

    def record(
        self,
        test: str,
        fault: str,
        *,
        injected: int,
        expected: int,
        found: int,
        duplicated: int,
        missing: int,
        unexpected: int = 0,
        parked_expected: int = 0,
        parked_found: int = 0,
        outcome: str,
        **details: Any,
    ) -> None:
        self.rows.append(
            {
                "test": test,
                "fault": fault,
                "injected": injected,
                "expected": expected,
                "found": found,
                "duplicated": duplicated,
                "missing": missing,
                "unexpected": unexpected,
                "parked_expected": parked_expected,
                "parked_found": parked_found,
                "outcome": outcome,
                "details": details,
            }
        )

    def document(self) -> dict[str, Any]:
        return {
            "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "host": {"python": platform.python_version(), "cpus": os.cpu_count()},
            "seconds": round(time.monotonic() - self.started, 1),
            "rows": self.rows,
        }


@pytest.fixture(scope="session")
def figures(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Figures]:
    collected = Figures()
    yield collected
    target = os.environ.get(FIGURES_ENV)
    path = Path(target) if target else tmp_path_factory.getbasetemp() / "reliability-figures.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(collected.document(), indent=2, default=str) + "\n", encoding="utf-8")


@pytest.fixture(autouse=True)
def _fresh_tool_logging() -> Iterator[None]:
    """The CLI points the ``passport_sync`` logger at the stderr it saw (CliRunner's, closed after
    the call) and stops propagation: each test starts with a plain logger, so caplog sees the
    tool's messages whichever CLI test ran before, and the logger is restored afterwards."""
    logger = logging.getLogger("passport_sync")
    saved = (list(logger.handlers), logger.propagate, logger.level)
    logger.handlers[:], logger.propagate, logger.level = [], True, logging.NOTSET
    yield
    logger.handlers[:], logger.propagate, logger.level = saved[0], saved[1], saved[2]


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    """A list for the processes a test starts: any still running when the test ends (a failed
    assertion) is killed, so no sync outlives its test."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
