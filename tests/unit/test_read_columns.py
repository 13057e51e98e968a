"""The one declaration of what the sync reads from OpenMRS (``queries.READ_COLUMNS``) covers every
column its statements name, so test-connection (which checks the declaration) passes only a schema
sync-all can read."""

from __future__ import annotations

import re
from datetime import datetime

from passport_sync.source import checksums, queries
from passport_sync.source.queries import READ_COLUMNS, SchemaInfo

# Only the declared columns: a column of a later OpenMRS version then renders as NULL.
DECLARED = SchemaInfo(frozenset((table, column) for table, columns in READ_COLUMNS.items() for column in columns))
_ALIAS = re.compile(r"\b(?:FROM|JOIN)\s+(\w+)\s+(?!ON\b|WHERE\b)(\w+)", re.IGNORECASE)
_REFERENCE = re.compile(r"\b([a-z]\w*)\.(\w+)\b")
_SINGLE_TABLE = re.compile(r"^\s*SELECT\s+(.*?)\s+FROM\s+(\w+)\s+WHERE\s+(.*)$", re.IGNORECASE | re.DOTALL)
_KEYWORDS = {"AND", "IN", "IS", "NOT", "NULL", "LIKE", "ORDER", "BY", "REGEXP", "LIMIT", "DESC", "ASC"}


FEEDS = ("obs", "diagnosis", "condition", "allergy", "drug_order")


def statements() -> list[str]:
    return [
        queries.obs_select(DECLARED),
        queries.identities_and_holders([1], [1])[0],
        queries.identifiers_not_plain_digits([1])[0],
        queries.identifiers_after(0, [1])[0],
        queries.concept_names([1])[0],
        queries.providers([1])[0],
        queries.encounters(["u"])[0],
        queries.identifier_types("%National%ID%", None)[0],
        queries.identifier_types(None, "u")[0],
        queries.count_obs_after(0, [(1, 2)])[0],
        queries.last_obs_id_before(datetime(2025, 1, 1))[0],
        queries.first_obs_uuid()[0],
        queries.patient_references([1], [1])[0],
        # Reconciliation's checksums name what the records show from other tables too.
        *(checksums.row_checksums(feed, DECLARED, [(1, 2)], datetime(2025, 1, 1))[0] for feed in FEEDS),
        checksums.person_checksums([1], 1, 2)[0],
    ]


def columns_named(sql: str) -> set[tuple[str, str]]:
    aliases = {alias: table for table, alias in _ALIAS.findall(sql) if table in READ_COLUMNS}
    named = {(aliases[a], c) for a, c in _REFERENCE.findall(sql) if a in aliases}
    if not aliases:
        single = _SINGLE_TABLE.match(sql)
        assert single, sql
        select, table, where = single.groups()
        text = re.sub(r"%s|\bAS\s+\w+|'[^']*'", " ", select + " " + where, flags=re.IGNORECASE)
        words = re.findall(r"\b([A-Za-z_]\w*)\b(?!\s*\()", text)
        named |= {(table, w) for w in words if w.upper() not in _KEYWORDS and not w.isupper()}
    return named


def test_every_column_a_statement_names_is_declared() -> None:
    named = set().union(*(columns_named(sql) for sql in statements()))
    assert ("obs", "value_text") in named and ("concept_name", "locale") in named  # the parse finds them
    undeclared = {f"{t}.{c}" for t, c in named if c not in READ_COLUMNS[t]}
    assert not undeclared


def test_a_missing_column_is_named() -> None:
    without = SchemaInfo(DECLARED.columns - {("obs", "value_text")})
    assert queries.missing_columns(without) == ["obs.value_text"]
    assert queries.missing_columns(DECLARED) == []
