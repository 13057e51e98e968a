"""The OpenMRS SQL, built as ``(sql, params)`` without touching a database.

Every statement is parameterised; identifiers never come from data. Columns that differ between
Platform versions are chosen from the set of columns ``information_schema`` reported.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

Query = tuple[str, tuple[Any, ...]]


@dataclass(frozen=True, slots=True)
class SchemaInfo:
    """Which tables and columns this OpenMRS database has (from information_schema)."""

    columns: frozenset[tuple[str, str]]

    def has(self, table: str, column: str | None = None) -> bool:
        if column is None:
            return any(t == table for t, _ in self.columns)
        return (table, column) in self.columns


SCHEMA_QUERY: Query = (
    "SELECT TABLE_NAME, COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE()",
    (),
)

# Every table and column the sync reads without first asking whether it exists (the statements
# below and in checksums.py; columns of later OpenMRS versions are read through ``_optional``, the
# clinical sources' tables are looked for one by one). ``OpenMRSSource.schema`` refuses a database
# without one of them, naming each: sync-all before it reads anything and test-connection alike,
# so the two cannot disagree.
READ_COLUMNS: dict[str, tuple[str, ...]] = {
    "obs": (
        "obs_id", "uuid", "person_id", "concept_id", "obs_datetime", "date_created", "voided", "date_voided",
        "void_reason", "encounter_id", "location_id", "obs_group_id", "previous_version", "value_coded",
        "value_coded_name_id", "value_drug", "value_numeric", "value_modifier", "value_text", "value_datetime",
        "value_complex", "comments",
    ),
    "person": ("person_id", "uuid"),
    "concept": ("concept_id", "uuid", "datatype_id", "class_id"),
    "concept_name": (
        "concept_name_id", "concept_id", "name", "locale", "concept_name_type", "locale_preferred", "voided",
    ),
    "concept_datatype": ("concept_datatype_id", "name"),
    "concept_class": ("concept_class_id", "name"),
    "concept_numeric": ("concept_id", "units", "hi_normal", "low_normal", "hi_critical", "low_critical"),
    "drug": ("drug_id", "name"),
    "patient": ("patient_id", "voided"),
    "patient_identifier": (
        "patient_identifier_id", "patient_id", "identifier", "identifier_type", "preferred", "voided",
    ),
    "patient_identifier_type": ("patient_identifier_type_id", "name", "uuid", "retired"),
    "encounter": (
        "encounter_id", "uuid", "patient_id", "encounter_type", "encounter_datetime", "location_id",
        "date_created", "voided",
    ),
    "encounter_type": ("encounter_type_id", "name"),
    "encounter_provider": ("encounter_provider_id", "encounter_id", "provider_id", "voided"),
    "provider": ("provider_id", "uuid", "name", "person_id"),
    "person_name": (
        "person_name_id", "person_id", "prefix", "given_name", "middle_name", "family_name", "preferred", "voided",
    ),
    "location": ("location_id", "name"),
}  # fmt: skip
REQUIRED_TABLES = tuple(READ_COLUMNS)


def missing_columns(schema: SchemaInfo) -> list[str]:
    """``table`` or ``table.column`` for each part of ``READ_COLUMNS`` the database lacks."""
    missing: list[str] = []
    for table, columns in READ_COLUMNS.items():
        if not schema.has(table):
            missing.append(table)
            continue
        missing.extend(f"{table}.{column}" for column in columns if not schema.has(table, column))
    return missing


def _placeholders(values: Collection[Any]) -> str:
    return ", ".join(["%s"] * len(values))


def _optional(schema: SchemaInfo, table_alias: str, table: str, column: str, alias: str | None = None) -> str:
    alias = alias or column
    if schema.has(table, column):
        return f"{table_alias}.{column} AS {alias}"
    return f"NULL AS {alias}"


@dataclass(frozen=True, slots=True)
class Selection:
    """One feed's read: its columns (``expression AS alias``) over its joins.

    Reconciliation checksums a row over exactly these expressions and ``depends_on`` (what the
    rendering reads in other statements: concept names, the provider's name, the encounter), so
    the columns a record is made of and the columns compared for drift are one declaration."""

    columns: tuple[str, ...]
    joins: str
    depends_on: tuple[str, ...] = ()

    def sql(self) -> str:
        return "\nSELECT " + ",\n       ".join(self.columns) + "\n  " + self.joins

    def digest_terms(self) -> list[str]:
        return [column_expression(c) for c in self.columns] + list(self.depends_on)


_ALIASED = re.compile(r"^(?P<expr>.*\S)\s+AS\s+`?\w+`?$", re.DOTALL)


def column_expression(column: str) -> str:
    """``expr`` of ``expr AS alias`` (the column itself when it has no alias)."""
    found = _ALIASED.match(column.strip())
    return found.group("expr") if found else column.strip()


def names_of_concepts(*concepts: str) -> str:
    """Every name row (voided too) of these concepts, as one value: a rename, a new preferred name
    or a retired name changes it, and with it the checksum of every row showing the concept."""
    return (
        "(SELECT GROUP_CONCAT(CONCAT_WS(':', n.concept_name_id, n.concept_id, n.name, n.locale,"
        " IFNULL(n.concept_name_type, '~'), n.locale_preferred, n.voided) ORDER BY n.concept_name_id SEPARATOR '|')"
        f" FROM concept_name n WHERE n.concept_id IN ({', '.join(concepts)}))"
    )


def provider_details(provider: str) -> str:
    """What a record shows of a provider (uuid, name, the person's names), as one value."""
    return (
        "(SELECT CONCAT_WS(':', p.uuid, IFNULL(p.name, '~'), IFNULL(p.person_id, '~'),"
        " (SELECT GROUP_CONCAT(CONCAT_WS(':', pn.person_name_id, IFNULL(pn.prefix, '~'), IFNULL(pn.given_name, '~'),"
        " IFNULL(pn.middle_name, '~'), IFNULL(pn.family_name, '~'), pn.preferred, pn.voided)"
        " ORDER BY pn.person_name_id) FROM person_name pn WHERE pn.person_id = p.person_id))"
        f" FROM provider p WHERE p.provider_id = {provider})"
    )


def encounter_details(encounter: str) -> list[str]:
    """What the encounter's visit record shows (date, type, place, providers, whose it is): in the
    checksum of every row of the encounter, so a change to the encounter re-reads its rows and
    rebuilds its visit record."""
    return [
        f"(SELECT CONCAT_WS(':', e2.encounter_datetime, e2.patient_id, e2.voided, IFNULL(e2.location_id, '~'),"
        " (SELECT et.name FROM encounter_type et WHERE et.encounter_type_id = e2.encounter_type),"
        " (SELECT l2.name FROM location l2 WHERE l2.location_id = e2.location_id))"
        f" FROM encounter e2 WHERE e2.encounter_id = {encounter})",
        "(SELECT GROUP_CONCAT(CONCAT_WS(':', ep.encounter_provider_id, ep.provider_id, ep.voided)"
        f" ORDER BY ep.encounter_provider_id) FROM encounter_provider ep WHERE ep.encounter_id = {encounter})",
    ]


def first_provider_of(encounter: str) -> str:
    return (
        "(SELECT ep.provider_id FROM encounter_provider ep"
        f" WHERE ep.encounter_id = {encounter} AND ep.voided = 0"
        " ORDER BY ep.encounter_provider_id LIMIT 1)"
    )


def obs_selection(schema: SchemaInfo) -> Selection:
    """The joined read of observations: one row per obs, never one per provider."""
    allow_decimal = (
        "cn.allow_decimal AS allow_decimal"
        if schema.has("concept_numeric", "allow_decimal")
        else ("cn.precise AS allow_decimal" if schema.has("concept_numeric", "precise") else "NULL AS allow_decimal")
    )
    provider = first_provider_of("o.encounter_id")
    columns = (
        "o.obs_id", "o.uuid", "o.person_id", "o.concept_id", "c.uuid AS concept_uuid",
        "cd.name AS concept_datatype", "cc.name AS concept_class",
        "o.obs_datetime", "o.date_created", "o.voided", "o.date_voided", "o.void_reason",
        "o.encounter_id", "e.uuid AS encounter_uuid",
        f"{provider} AS provider_id",
        "COALESCE(ol.name, el.name) AS location_name",
        "o.obs_group_id", "g.uuid AS group_uuid", "g.concept_id AS group_concept_id",
        "gc.uuid AS group_concept_uuid", "gcc.name AS group_concept_class", "g.voided AS group_voided",
        "o.previous_version", "pv.uuid AS previous_version_uuid", "pv.voided AS previous_version_voided",
        "o.value_coded", "o.value_coded_name_id", "vc.uuid AS value_coded_uuid", "vcc.name AS value_coded_class",
        "o.value_drug", "d.name AS drug_name",
        "o.value_numeric", "o.value_modifier", "o.value_text", "o.value_datetime", "o.value_complex",
        "o.comments", _optional(schema, "o", "obs", "status"), _optional(schema, "o", "obs", "interpretation"),
        "cn.units AS units", allow_decimal, "cn.hi_normal", "cn.low_normal", "cn.hi_critical", "cn.low_critical",
        "pe.person_id IS NOT NULL AS person_exists",
    )  # fmt: skip
    joins = """FROM obs o
  LEFT JOIN person pe ON pe.person_id = o.person_id
  LEFT JOIN concept c ON c.concept_id = o.concept_id
  LEFT JOIN concept_datatype cd ON cd.concept_datatype_id = c.datatype_id
  LEFT JOIN concept_class cc ON cc.concept_class_id = c.class_id
  LEFT JOIN encounter e ON e.encounter_id = o.encounter_id
  LEFT JOIN location ol ON ol.location_id = o.location_id
  LEFT JOIN location el ON el.location_id = e.location_id
  LEFT JOIN obs g ON g.obs_id = o.obs_group_id
  LEFT JOIN concept gc ON gc.concept_id = g.concept_id
  LEFT JOIN concept_class gcc ON gcc.concept_class_id = gc.class_id
  LEFT JOIN concept vc ON vc.concept_id = o.value_coded
  LEFT JOIN concept_class vcc ON vcc.concept_class_id = vc.class_id
  LEFT JOIN obs pv ON pv.obs_id = o.previous_version
  LEFT JOIN drug d ON d.drug_id = o.value_drug
  LEFT JOIN concept_numeric cn ON cn.concept_id = o.concept_id"""
    depends_on = (
        names_of_concepts("o.concept_id", "o.value_coded", "g.concept_id"),
        provider_details(provider),
        *encounter_details("o.encounter_id"),
    )
    return Selection(columns, joins, depends_on)


def obs_select(schema: SchemaInfo) -> str:
    return obs_selection(schema).sql()


def obs_after(schema: SchemaInfo, after_obs_id: int, limit: int) -> Query:
    """The next page of observations in id order (keyset on the primary key)."""
    return (
        f"{obs_select(schema)}\n WHERE o.obs_id > %s\n ORDER BY o.obs_id\n LIMIT %s",
        (after_obs_id, limit),
    )


def obs_in_ranges(schema: SchemaInfo, ranges: Sequence[tuple[int, int]], after_obs_id: int, limit: int) -> Query:
    """Observations whose ids fall in any of ``ranges`` (the late-commit gaps)."""
    where = " OR ".join(["o.obs_id BETWEEN %s AND %s"] * len(ranges))
    params: list[Any] = [v for r in ranges for v in r]
    return (
        f"{obs_select(schema)}\n WHERE ({where}) AND o.obs_id > %s\n ORDER BY o.obs_id\n LIMIT %s",
        (*params, after_obs_id, limit),
    )


def obs_by_ids(schema: SchemaInfo, obs_ids: Collection[int]) -> Query:
    return (
        f"{obs_select(schema)}\n WHERE o.obs_id IN ({_placeholders(obs_ids)})\n ORDER BY o.obs_id",
        tuple(sorted(obs_ids)),
    )


def live_members(schema: SchemaInfo, group_ids: Collection[int]) -> Query:
    """The non-voided members of these obs groups whose parent is not voided either."""
    return (
        f"{obs_select(schema)}\n WHERE o.obs_group_id IN ({_placeholders(group_ids)}) AND o.voided = 0"
        " AND g.voided = 0"
        "\n ORDER BY o.obs_id",
        tuple(sorted(group_ids)),
    )


def obs_of_persons(schema: SchemaInfo, person_ids: Collection[int], after_obs_id: int, limit: int) -> Query:
    return (
        f"{obs_select(schema)}\n WHERE o.person_id IN ({_placeholders(person_ids)}) AND o.obs_id > %s"
        "\n ORDER BY o.obs_id\n LIMIT %s",
        (*sorted(person_ids), after_obs_id, limit),
    )


def _voided_window(since: datetime | None) -> tuple[str, list[Any]]:
    """The WHERE of the obs change read (voids at or after ``since``), shared by the read and its
    digest so that the two cannot disagree on which rows are in the window."""
    conditions = ["o.voided <> 0", "o.date_voided IS NOT NULL"]
    params: list[Any] = []
    if since is not None:
        conditions.append("o.date_voided >= %s")
        params.append(since)
    return " AND ".join(conditions), params


def voided_since(schema: SchemaInfo, since: datetime | None, after_obs_id: int, limit: int) -> Query:
    """Voided observations with ``date_voided`` at or after ``since``, paged by obs_id."""
    where, params = _voided_window(since)
    return (
        f"{obs_select(schema)}\n WHERE {where} AND o.obs_id > %s\n ORDER BY o.obs_id\n LIMIT %s",
        (*params, after_obs_id, limit),
    )


def window_digest(table: str, columns: Sequence[str], where: str, params: Sequence[Any]) -> Query:
    """The row count and the XOR of a CRC32 over ``columns`` of the rows of ``table`` matching
    ``where``: one row, whatever the number of rows, which changes when any row enters or leaves
    the window or changes in those columns."""
    # IFNULL keeps columns apart: CONCAT_WS alone skips NULLs, so (NULL, 'a') and ('a', NULL) would agree.
    crc = "CRC32(CONCAT_WS('#', " + ", ".join(f"IFNULL({c}, '~')" for c in columns) + "))"
    return (f"SELECT COUNT(*) AS n, COALESCE(BIT_XOR({crc}), 0) AS x FROM {table} WHERE {where}", tuple(params))


def voided_digest(since: datetime | None) -> Query:
    """The digest of the rows ``voided_since(since, ...)`` pages through. Its joins are all to
    one row (or none), so ``obs`` alone has the same rows."""
    where, params = _voided_window(since)
    return window_digest("obs o", ["o.obs_id", "o.voided", "o.date_voided"], where, params)


def digests(parts: Sequence[Query]) -> Query:
    """Several window digests in one statement: one row each, numbered ``i`` in order."""
    sql = "\nUNION ALL\n".join(f"SELECT {i} AS i, w.n, w.x FROM ({q[0]}) w" for i, q in enumerate(parts))
    return sql, tuple(p for q in parts for p in q[1])


def max_date_voided() -> Query:
    return ("SELECT MAX(date_voided) FROM obs WHERE voided <> 0", ())


def last_obs_id_before(moment: datetime) -> Query:
    return ("SELECT MAX(obs_id) AS m FROM obs WHERE date_created < %s", (moment,))


def count_obs_after(after_obs_id: int, gaps: Sequence[tuple[int, int]] = ()) -> Query:
    """The observations that wait: after the checkpoint, or inside one of its late-commit gaps.
    Rows, not ids: ids an insert skipped (bulk inserts, auto_increment_increment) count nothing."""
    return (f"SELECT COUNT(*) FROM obs WHERE {pk_after_or_within('obs_id', gaps)}", (after_obs_id, *_flat(gaps)))


def scalars(parts: Sequence[Query]) -> Query:
    """Single-value queries as the columns ``n_0``, ``n_1``, … of one statement."""
    sql = "SELECT " + ", ".join(f"({q[0]}) AS n_{index}" for index, q in enumerate(parts))
    return sql, tuple(p for q in parts for p in q[1])


def pk_after_or_within(pk: str, gaps: Sequence[tuple[int, int]]) -> str:
    """``pk`` after a checkpoint (the first parameter) or in one of ``gaps`` (low, high; at most
    checkpoint.MAX_GAP_RANGES of them): primary-key ranges, so the count reads the index only
    where rows can wait."""
    return " OR ".join([f"{pk} > %s", *(f"{pk} BETWEEN %s AND %s" for _ in gaps)])


def _flat(gaps: Sequence[tuple[int, int]]) -> list[int]:
    return [bound for gap in gaps for bound in gap]


def identifier_types(name_like: str | None, uuid: str | None) -> Query:
    """Identifier types by uuid (retired or not: configured on purpose), else the non-retired
    ones whose name is like ``name_like``."""
    columns = "SELECT patient_identifier_type_id, name, uuid FROM patient_identifier_type"
    if uuid:
        return (f"{columns} WHERE uuid = %s", (uuid,))
    return (f"{columns} WHERE name LIKE %s AND retired = 0 ORDER BY patient_identifier_type_id", (name_like,))


def _national_ids(type_ids: Collection[int], condition: str, params: Sequence[Any]) -> Query:
    """(patient_id, identifier) of non-voided national-ID identifiers of non-voided patients."""
    return (
        f"""
SELECT pi.patient_id, pi.identifier
  FROM patient_identifier pi
  JOIN patient pa ON pa.patient_id = pi.patient_id AND pa.voided = 0
 WHERE pi.identifier_type IN ({_placeholders(type_ids)}) AND pi.voided = 0 AND {condition}""",
        (*type_ids, *params),
    )


def identities(person_ids: Collection[int], type_ids: Collection[int]) -> Query:
    """The raw national-ID identifiers of these persons."""
    ids = sorted(person_ids)
    return _national_ids(type_ids, f"pi.patient_id IN ({_placeholders(ids)})", ids)


# The separators a human types between digit groups that SQL strips the same way on every server
# (REGEXP_REPLACE is missing from MySQL 5.7); see mapping.national_id for the whole rule.
SQL_STRIPPED_SEPARATORS = (" ", "\t", "-", ".", "/")


def _without_separators(expression: str) -> str:
    for separator in SQL_STRIPPED_SEPARATORS:
        literal = "CHAR(9)" if separator == "\t" else f"'{separator}'"
        expression = f"REPLACE({expression}, {literal}, '')"
    return expression


def identities_and_holders(person_ids: Collection[int], type_ids: Collection[int]) -> Query:
    """In one statement: the persons' national-ID identifiers (``part`` 'own'), and every patient
    holding one of those numbers as plain digits (``part`` 'holder'), found from the persons' values
    with their separators stripped, through the identifier index. Holders who wrote a number with
    separators are read once per run (``identifiers_not_plain_digits``)."""
    own_sql, own_params = identities(person_ids, type_ids)
    return (
        f"""
SELECT 'own' AS part, o.patient_id, o.identifier FROM ({own_sql}) o
UNION ALL
SELECT 'holder' AS part, h.patient_id, h.identifier
  FROM ({own_sql}) own
  JOIN patient_identifier h ON h.identifier = {_without_separators("own.identifier")}
  JOIN patient hp ON hp.patient_id = h.patient_id AND hp.voided = 0
 WHERE h.identifier_type IN ({_placeholders(type_ids)}) AND h.voided = 0""",
        (*own_params, *own_params, *type_ids),
    )


def identifiers_equal_to(values: Collection[str], type_ids: Collection[int]) -> Query:
    """Patients holding any of these exact identifier values (uses the identifier index)."""
    ordered = sorted(values)
    return _national_ids(type_ids, f"pi.identifier IN ({_placeholders(ordered)})", ordered)


def identifiers_after(after_id: int, type_ids: Collection[int]) -> Query:
    """National-ID identifiers added after ``after_id`` (keyset on the primary key)."""
    return _national_ids(type_ids, "pi.patient_identifier_id > %s", (after_id,))


def identifiers_not_plain_digits(type_ids: Collection[int]) -> Query:
    """Identifiers written with anything but ASCII digits (separators, other scripts): these are
    the only ones whose normalised form can differ from the stored text. Read once per run."""
    return _national_ids(type_ids, "pi.identifier NOT REGEXP '^[0-9]+$'", ())


def patient_references(person_ids: Collection[int], type_ids: Collection[int]) -> Query:
    """What a data manager finds a patient by in OpenMRS, never a name: the person's uuid, its
    preferred identifier other than the national ID (the OpenMRS ID), and its national ID
    (shown only when the operator asks)."""
    others = f"pi.identifier_type NOT IN ({_placeholders(type_ids)})"
    nationals = f"pi.identifier_type IN ({_placeholders(type_ids)})"

    def first(condition: str) -> str:
        return (
            "(SELECT pi.identifier FROM patient_identifier pi"
            f" WHERE pi.patient_id = p.person_id AND pi.voided = 0 AND {condition}"
            " ORDER BY pi.preferred DESC, pi.patient_identifier_id LIMIT 1)"
        )

    ids = sorted(person_ids)
    return (
        f"SELECT p.person_id, p.uuid, {first(others)} AS openmrs_identifier, {first(nationals)} AS national_id"
        f" FROM person p WHERE p.person_id IN ({_placeholders(ids)})",
        (*type_ids, *type_ids, *ids),
    )


def concept_names(concept_ids: Collection[int]) -> Query:
    return (
        "SELECT concept_name_id, concept_id, name, locale, concept_name_type, locale_preferred"
        f" FROM concept_name WHERE concept_id IN ({_placeholders(concept_ids)}) AND voided = 0",
        tuple(sorted(concept_ids)),
    )


def providers(provider_ids: Collection[int]) -> Query:
    return (
        f"""
SELECT p.provider_id, p.uuid, p.name, pn.prefix, pn.given_name, pn.middle_name, pn.family_name
  FROM provider p
  LEFT JOIN person_name pn ON pn.person_name_id = (
        SELECT pn2.person_name_id FROM person_name pn2
         WHERE pn2.person_id = p.person_id AND pn2.voided = 0
         ORDER BY pn2.preferred DESC, pn2.person_name_id LIMIT 1)
 WHERE p.provider_id IN ({_placeholders(provider_ids)})""",
        tuple(sorted(provider_ids)),
    )


def encounters(uuids: Collection[str]) -> Query:
    """Encounters by uuid, with what their visit record shows (type, place, first provider)."""
    return (
        f"""
SELECT e.encounter_id, e.uuid, e.patient_id AS person_id, e.encounter_datetime, e.date_created, e.voided,
       et.name AS type_name, l.name AS location_name,
       (SELECT ep.provider_id FROM encounter_provider ep
         WHERE ep.encounter_id = e.encounter_id AND ep.voided = 0
         ORDER BY ep.encounter_provider_id LIMIT 1) AS provider_id
  FROM encounter e
  LEFT JOIN encounter_type et ON et.encounter_type_id = e.encounter_type
  LEFT JOIN location l ON l.location_id = e.location_id
 WHERE e.uuid IN ({_placeholders(uuids)})""",
        tuple(sorted(uuids)),
    )


# The view scripts/create-readonly-user.sql creates over ``global_property``: the rows of
# PROBED_PROPERTIES only. OpenMRS keeps secrets in that table too (mail.password, API keys), so
# the read-only user is granted the view, not the table.
PROPERTIES_VIEW = "passport_sync_global_property"


def properties_source(schema: SchemaInfo) -> str | None:
    """Where the global properties are read: the table where the user may read it, else the view,
    else nowhere (OpenMRS's defaults apply)."""
    for name in ("global_property", PROPERTIES_VIEW):
        if schema.has(name, "property") and schema.has(name, "property_value"):
            return name
    return None


def global_properties(schema: SchemaInfo) -> Query | None:
    source = properties_source(schema)
    if source is None:
        return None
    names = ", ".join(f"'{name}'" for name in PROBED_PROPERTIES)
    return (f"SELECT property, property_value FROM {source} WHERE property IN ({names})", ())


def first_obs_uuid() -> Query:
    """The uuid of the oldest observation: random per site and never changed, it tells one
    OpenMRS database from another whatever host name it is reached by."""
    return ("SELECT uuid FROM obs ORDER BY obs_id LIMIT 1", ())


def database_now() -> Query:
    return ("SELECT NOW() AS now", ())


def server_time_zone() -> Query:
    """The server's session time zone, its system zone, and its offset from UTC right now."""
    return (
        "SELECT @@session.time_zone AS tz, @@system_time_zone AS sys,"
        " TIMESTAMPDIFF(SECOND, UTC_TIMESTAMP(), NOW()) AS offset_seconds",
        (),
    )


def probe(schema: SchemaInfo, latest: Sequence[tuple[str, Query, Query]]) -> Query:
    """One statement for what a run asks before it reads: the clock, time zone, the database's
    fingerprint, the global properties it reads, and per feed its highest primary key and latest
    change (``latest``: feed name, MAX(pk) query, MAX(changed) query), so that a feed with nothing
    new costs no statement of its own. Each part is the single-row query it replaces."""

    def scalar(query: Query) -> str:
        assert not query[1], "probe parts take no parameters"
        return f"({query[0]})"

    properties = properties_source(schema)

    def prop(name: str) -> str:
        if properties is None:
            return "NULL"
        return f"(SELECT property_value FROM {properties} WHERE property = '{name}')"

    columns = [
        "NOW() AS now",
        "@@session.time_zone AS tz",
        "@@system_time_zone AS sys",
        "TIMESTAMPDIFF(SECOND, UTC_TIMESTAMP(), NOW()) AS offset_seconds",
        f"{scalar(first_obs_uuid())} AS fingerprint",
        "(SELECT MAX(patient_identifier_id) FROM patient_identifier) AS identifier_max",
        *(f"{prop(name)} AS `{name}`" for name in PROBED_PROPERTIES),
    ]
    for index, (_, max_pk, max_changed) in enumerate(latest):
        columns += [f"{scalar(max_pk)} AS pk_{index}", f"{scalar(max_changed)} AS changed_{index}"]
    return ("SELECT " + ",\n       ".join(columns), ())


PROBED_PROPERTIES = ("concept.true", "concept.false", "default_locale")
