"""What the demo and the tables print: values from OpenMRS reach the terminal as text, labels once,
and the next commands as this shell can run them."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

from passport_sync import cli
from passport_sync.demo.run import DemoResult, _value
from passport_sync.reporting import printable, render_table


def test_a_label_the_details_already_start_with_is_shown_once() -> None:
    diagnosis = {"type": "diagnosis", "data": {"name": "Diagnosis", "details": "Diagnosis: Hypertension"}}
    assert _value(diagnosis) == "Diagnosis: Hypertension"
    weight = {"type": "test", "data": {"name": "Weight (kg)", "details": "70 kg", "testStatus": "Normal"}}
    assert _value(weight) == "Weight (kg): 70 kg"


def test_control_characters_and_escapes_never_reach_the_terminal() -> None:
    hostile = "Malaria\x1b[2J\x1b]0;owned\x07\r\nnext\x9b31m [red]x[/red]"
    assert printable(hostile) == "Malaria\\x1b[2J\\x1b]0;owned\\x07\\r\\nnext\\x9b31m [red]x[/red]"
    for terminal in (False, True):
        out = io.StringIO()
        out.isatty = lambda: terminal  # type: ignore[method-assign]
        render_table("history", (("value", "Value"),), [{"value": hostile}], out)
        text = out.getvalue()
        # (On a terminal, Rich styles the title and header with escapes of its own.)
        assert not any(seq in text for seq in ("\x1b[2J", "\x1b]0;", "\x07", "\r", "\x9b")), repr(text)
        assert "Malaria\\x1b[2J\\x1b]0;owned" in text
        assert "[red]x[/red]" in text  # as typed, not Rich markup


def test_the_next_commands_name_the_program_as_this_shell_finds_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    program = tmp_path / ".venv" / "bin" / "passport-sync"
    program.parent.mkdir(parents=True)
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", [str(program), "demo"])
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # the demo script installs it in .venv/bin only
    assert cli.invoked_program() == ".venv/bin/passport-sync"
    monkeypatch.setenv("PATH", f"{program.parent}:/usr/bin:/bin")
    assert cli.invoked_program() == "passport-sync"

    result = DemoResult(
        "demo", "mysql://root@127.0.0.1:3306", [], True, "patientpassport_demo", "-", None,
        tmp_path / "hospitals.yaml", 0, [], [], {}, "", "", [], [], program=".venv/bin/passport-sync",
    )  # fmt: skip
    steps = result.next_steps()
    assert steps[1] == f"  .venv/bin/passport-sync status --config {tmp_path / 'hospitals.yaml'}"
    assert all("passport-sync " not in line.replace(".venv/bin/passport-sync ", "") for line in steps)


def test_a_table_too_wide_for_the_terminal_is_printed_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    from passport_sync.reporting import CHECK_COLUMNS, SUMMARY_COLUMNS

    monkeypatch.setenv("COLUMNS", "80")
    uuid = "8d79403a-c2cc-11de-8d13-0010c6dffd0f"
    out = io.StringIO()
    out.isatty = lambda: True  # type: ignore[method-assign]
    summary = {"hospital": "Central Hospital", "outcome": "ok", "read": "12345", "written": "12000"}
    render_table("passport-sync: sync summary", SUMMARY_COLUMNS, [summary], out)
    detail = f'"National ID" (id 3, uuid {uuid})'
    render_table(
        "passport-sync: connection test", CHECK_COLUMNS, [{"check": "national ID type", "detail": detail}], out
    )
    text = out.getvalue()
    assert uuid in text and "…" not in text
    for header in ("Hospital", "Outcome", "Present", "Re-rendered", "Seconds"):
        assert header in text
    narrow = io.StringIO()
    narrow.isatty = lambda: True  # type: ignore[method-assign]
    render_table("t", (("a", "A"),), [{"a": "fits"}], narrow)
    assert "┃" in narrow.getvalue()  # a table that fits stays a table
