"""Range checksums for reconciliation, computed in MySQL (as pt-table-checksum does).

Each source's primary-key space is cut into fixed ranges of ``range_size`` ids (range ``i`` holds
ids ``i * size + 1`` to ``(i + 1) * size``). One statement returns, per range, the row count and
two aggregates (sum and XOR) of a CRC32 over what decides the Passport record: every column the
feed's read selects, and what its records show from other tables (concept names, the provider,
the encounter; see ``queries.Selection``), plus whether an order's expiry has passed. Only the
few result rows travel; the rows themselves stay in MySQL. Inside a range whose checksum differs
from the last pass, the per-row checksums (key and number) tell which rows changed; only those are
re-read.

Persons are checksummed the same way over their national-ID identifiers (value, voided, and the
patient's own void), so a corrected or copied identifier shows as one differing person.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from passport_sync.source.clinical import CLINICAL_SOURCES, DRUG_ORDERS, ClinicalSource
from passport_sync.source.clinical import selection as clinical_selection
from passport_sync.source.queries import PROBED_PROPERTIES, Query, SchemaInfo, obs_selection

IDENTITIES = "identity"


def _digest(columns: Sequence[str]) -> str:
    # IFNULL keeps columns apart: CONCAT_WS alone skips NULLs, so (NULL, 'a') and ('a', NULL) would agree.
    return "CRC32(CONCAT_WS('#', " + ", ".join(f"IFNULL({c}, '~')" for c in columns) + "))"


def _feed_table(feed: str, schema: SchemaInfo, now: datetime) -> tuple[str, str, list[str], list[Any]]:
    """(FROM clause, primary key, the deciding expressions, their parameters) of one source: every
    column its read selects and everything else its records show (``queries.Selection``)."""
    if feed == "obs":
        selection = obs_selection(schema)
        return selection.joins.removeprefix("FROM "), "o.obs_id", selection.digest_terms() + _settings(schema), []
    source = _clinical(feed)
    selection = clinical_selection(source, schema)
    terms = selection.digest_terms() + _settings(schema)
    params: list[Any] = []
    if source is DRUG_ORDERS:
        # Expiry writes nothing: whether it has passed is part of what the record shows.
        terms.append("o.auto_expire_date <= %s")
        params.append(now)
    return selection.joins.removeprefix("FROM "), f"{source.alias}.{source.pk}", terms, params


def _settings(schema: SchemaInfo) -> list[str]:
    """The global properties every record is rendered with (the boolean concepts, the default
    locale): one value per statement, so a change to them makes every row differ once."""
    if not schema.has("global_property"):
        return []
    names = ", ".join(f"'{name}'" for name in PROBED_PROPERTIES)
    return [
        "(SELECT GROUP_CONCAT(CONCAT_WS('=', property, property_value) ORDER BY property)"
        f" FROM global_property WHERE property IN ({names}))"
    ]


def _clinical(feed: str) -> ClinicalSource:
    for source in CLINICAL_SOURCES:
        if source.name == feed:
            return source
    raise ValueError(f"unknown source {feed!r}")


def range_checksums(feed: str, schema: SchemaInfo, range_size: int, first: int, last: int, now: datetime) -> Query:
    """Per range ``first..last`` of one source: ``r`` (range index), ``n`` and ``crc``.

    ``now`` is the hospital's wall-clock time (naive, as OpenMRS stores it) for order expiry.
    """
    table, pk, columns, params = _feed_table(feed, schema, now)
    digest = _digest(columns)
    low, high = first * range_size + 1, (last + 1) * range_size
    return (
        f"SELECT ({pk} - 1) DIV %s AS r, COUNT(*) AS n,"
        f" CONCAT(SUM({digest}), ':', BIT_XOR({digest})) AS crc"
        f" FROM {table} WHERE {pk} BETWEEN %s AND %s GROUP BY r",
        (range_size, *params, *params, low, high),
    )


def row_checksums(feed: str, schema: SchemaInfo, bounds: Sequence[tuple[int, int]], now: datetime) -> Query:
    """``k`` (primary key) and ``c`` (the row's checksum) of every row within ``bounds``: inside a
    differing range, which rows changed (small rows: the key and one number each)."""
    table, pk, columns, params = _feed_table(feed, schema, now)
    where = " OR ".join([f"{pk} BETWEEN %s AND %s"] * len(bounds))
    return (
        f"SELECT {pk} AS k, {_digest(columns)} AS c FROM {table} WHERE {where} ORDER BY {pk}",
        (*params, *(v for b in bounds for v in b)),
    )


def max_pk(feed: str) -> Query:
    """The highest primary key of a source (of ``patient`` for identities): where ranges end."""
    if feed == IDENTITIES:
        table, pk = "patient", "patient_id"
    elif feed == "obs":
        table, pk = "obs", "obs_id"
    else:
        table, pk = _clinical(feed).table, _clinical(feed).pk
    return (f"SELECT MAX({pk}) AS m FROM {table}", ())


def _identity_rows(type_ids: Collection[int]) -> tuple[str, str, tuple[Any, ...]]:
    placeholders = ", ".join(["%s"] * len(type_ids))
    digest = _digest(["pi.identifier", "pi.identifier_type", "pi.voided", "pa.voided"])
    return (
        f"FROM patient_identifier pi JOIN patient pa ON pa.patient_id = pi.patient_id"
        f" WHERE pi.identifier_type IN ({placeholders})",
        digest,
        tuple(sorted(type_ids)),
    )


def identity_checksums(type_ids: Collection[int], range_size: int, first: int, last: int) -> Query:
    """Per range of patient ids: ``r``, ``n`` and ``crc`` over their national-ID identifiers."""
    source, digest, params = _identity_rows(type_ids)
    low, high = first * range_size + 1, (last + 1) * range_size
    return (
        f"SELECT (pi.patient_id - 1) DIV %s AS r, COUNT(*) AS n,"
        f" CONCAT(SUM({digest}), ':', BIT_XOR({digest})) AS crc"
        f" {source} AND pi.patient_id BETWEEN %s AND %s GROUP BY r",
        (range_size, *params, low, high),
    )


def person_checksums(type_ids: Collection[int], low: int, high: int) -> Query:
    """Per patient with ids ``low..high``: ``p`` and ``crc`` over their national-ID identifiers."""
    source, digest, params = _identity_rows(type_ids)
    return (
        f"SELECT pi.patient_id AS p, CONCAT(SUM({digest}), ':', BIT_XOR({digest})) AS crc"
        f" {source} AND pi.patient_id BETWEEN %s AND %s GROUP BY pi.patient_id",
        (*params, low, high),
    )
