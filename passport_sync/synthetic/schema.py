"""The OpenMRS schema fixture: a throwaway database with the OpenMRS tables passport-sync reads
(Platform 2.6 by default, or the 2.2 / 2.4 variants) and the reference rows OpenMRS ships with.

The SQL is read from this package with :mod:`importlib.resources`; only pymysql is used. Nothing
here is imported by the sync code itself.
"""

from __future__ import annotations

import re
from importlib import resources
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pymysql.connections import Connection

__all__ = ["SUPPORTED_VERSIONS", "load_openmrs_schema", "split_sql_statements"]

#: Platform versions :func:`load_openmrs_schema` can produce.
SUPPORTED_VERSIONS: tuple[str, ...] = ("2.2", "2.4", "2.6")

_PACKAGE = "passport_sync.synthetic"
_SCHEMA_RESOURCE = "openmrs_schema.sql"
_CORE_DATA_RESOURCE = "openmrs_core_data.sql"

_DATABASE_NAME = re.compile(r"[A-Za-z0-9_]{1,64}")

# Going from the 2.6 tables back to 2.4: undo what 2.5 and 2.6 added or renamed.
_ALTER_26_TO_24: tuple[str, ...] = (
    # 2.5 renamed `rank` (reserved in MySQL 8) to `dx_rank` and added the form path.
    "ALTER TABLE `encounter_diagnosis` CHANGE COLUMN `dx_rank` `rank` INT NOT NULL",
    "ALTER TABLE `encounter_diagnosis` DROP COLUMN `form_namespace_and_path`",
    # 2.5 linked allergies to encounters.
    "ALTER TABLE `allergy` DROP FOREIGN KEY `allergy_encounter_id_fk`",
    "ALTER TABLE `allergy` DROP COLUMN `encounter_id`, DROP COLUMN `form_namespace_and_path`",
    # 2.5 added location types and the form path on orders.
    "ALTER TABLE `location` DROP FOREIGN KEY `location_type_fk`",
    "ALTER TABLE `location` DROP COLUMN `location_type_concept_id`",
    "ALTER TABLE `orders` DROP COLUMN `form_namespace_and_path`",
    # 2.6 linked identifiers to patient programs.
    "ALTER TABLE `patient_identifier` DROP COLUMN `patient_program_id`",
)

# Going from 2.4 back to 2.2: undo what 2.3 and 2.4 added or renamed.
_ALTER_24_TO_22: tuple[str, ...] = (
    # 2.3 renamed allergy.comment to comments.
    "ALTER TABLE `allergy` CHANGE COLUMN `comments` `comment` VARCHAR(1024) NULL",
    # 2.3 added conditions.date_changed, 2.4 linked conditions to encounters and forms.
    "ALTER TABLE `conditions` DROP FOREIGN KEY `conditions_encounter_id_fk`",
    (
        "ALTER TABLE `conditions` DROP COLUMN `date_changed`, DROP COLUMN `encounter_id`, "
        "DROP COLUMN `form_namespace_and_path`"
    ),
    # 2.3 added drug.dose_limit_units.
    "ALTER TABLE `drug` DROP FOREIGN KEY `drug_dose_limit_units_fk`",
    "ALTER TABLE `drug` DROP COLUMN `dose_limit_units`",
)

_VERSION_ALTERS: dict[str, tuple[str, ...]] = {
    "2.6": (),
    "2.4": _ALTER_26_TO_24,
    "2.2": _ALTER_26_TO_24 + _ALTER_24_TO_22,
}


def split_sql_statements(sql: str) -> list[str]:
    """Split a fixture script into single statements.

    The fixture files follow two rules that make this safe: a statement ends with a
    semicolon at the end of a line, and comments (whole lines starting with ``--``) and
    string literals never contain a semicolon.

    Args:
        sql: The script text.

    Returns:
        The statements, without their terminating semicolons and without comment lines.
    """
    statements: list[str] = []
    pending: list[str] = []
    for line in sql.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("--"):
            continue
        pending.append(line.rstrip())
        if stripped.endswith(";"):
            statements.append("\n".join(pending)[:-1].rstrip())
            pending = []
    if pending:
        statements.append("\n".join(pending))
    return statements


def _fixture_statements(resource: str) -> list[str]:
    text = resources.files(_PACKAGE).joinpath(resource).read_text(encoding="utf-8")
    return split_sql_statements(text)


def load_openmrs_schema(conn: Connection[Any], database: str, *, version: str = "2.6") -> None:
    """Create ``database`` (if needed), switch to it and load the OpenMRS tables and core rows.

    Existing fixture tables in the database are dropped and recreated. The connection is
    left using ``database``.

    Args:
        conn: An open pymysql connection with rights to create databases.
        database: Database name: letters, digits and underscores only.
        version: OpenMRS Platform version to imitate, one of :data:`SUPPORTED_VERSIONS`.
            "2.2" and "2.4" are produced by altering the 2.6 tables (renamed
            ``encounter_diagnosis.rank`` and ``allergy.comment``, columns added later
            removed).

    Raises:
        ValueError: For an unsupported version or an unsafe database name.
    """
    if version not in _VERSION_ALTERS:
        supported = ", ".join(SUPPORTED_VERSIONS)
        raise ValueError(f"unsupported OpenMRS version {version!r}, expected one of {supported}")
    if not _DATABASE_NAME.fullmatch(database):
        raise ValueError(f"invalid database name {database!r}: use letters, digits and _ only")

    statements = [
        *_fixture_statements(_SCHEMA_RESOURCE),
        *_fixture_statements(_CORE_DATA_RESOURCE),
        *_VERSION_ALTERS[version],
    ]
    with conn.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE IF NOT EXISTS `{database}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        conn.select_db(database)
        cursor.execute("SET FOREIGN_KEY_CHECKS = 0")
        try:
            for statement in statements:
                cursor.execute(statement)
        finally:
            cursor.execute("SET FOREIGN_KEY_CHECKS = 1")
    conn.commit()
