"""Print the figures of the last reliability run as the Markdown table of docs/reliability.md.

PASSPORT_SYNC_RELIABILITY_FIGURES=/tmp/figures.json .venv/bin/pytest tests/reliability -q
.venv/bin/python -m tests.reliability.report /tmp/figures.json
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from tests.reliability.conftest import FIGURES_ENV

HEADER = (
    "| fault injected | times | records expected | found | duplicated | missing | parked expected / found | outcome |",
    "|---|---:|---:|---:|---:|---:|---:|---|",
)


def row(figures: dict[str, Any]) -> str:
    parked = f"{figures['parked_expected']} / {figures['parked_found']}"
    missing = figures["missing"] + figures.get("unexpected", 0)
    return (
        f"| {figures['fault']} | {figures['injected']} | {figures['expected']} | {figures['found']} "
        f"| {figures['duplicated']} | {missing} | {parked} | {figures['outcome']} |"
    )


def render(document: dict[str, Any]) -> str:
    lines = [
        f"Run of {document['generated_at']} ({document['seconds']} s, Python {document['host']['python']}, "
        f"{document['host']['cpus']} CPUs):",
        "",
        *HEADER,
        *(row(r) for r in document["rows"]),
    ]
    exact = all(r["duplicated"] == 0 and r["missing"] == 0 and r.get("unexpected", 0) == 0 for r in document["rows"])
    lines += ["", "Nothing lost and nothing duplicated in every row." if exact else "SOME ROWS LOST OR DUPLICATED."]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    path = Path(argv[1] if len(argv) > 1 else os.environ.get(FIGURES_ENV, "reliability-figures.json"))
    print(render(json.loads(path.read_text(encoding="utf-8"))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
