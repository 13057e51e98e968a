"""Insert OpenMRS rows the way OpenMRS itself writes them: every NOT NULL column filled, fresh
uuids, audit columns set, and obs edits recorded as a new row plus a voided old row.

The database comes from :func:`passport_sync.synthetic.schema.load_openmrs_schema` (re-exported
here for the tests and the demo). Only pymysql is used; nothing here is imported by the sync code.
"""

from __future__ import annotations

import uuid as uuid_module
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime
from itertools import islice
from typing import TYPE_CHECKING, Any

from passport_sync.mapping.transform import NUMERIC_DATATYPES
from passport_sync.synthetic.schema import SUPPORTED_VERSIONS, load_openmrs_schema, split_sql_statements

if TYPE_CHECKING:
    from pymysql.connections import Connection

__all__ = [
    "ADMIN_USER_ID",
    "SUPPORTED_VERSIONS",
    "UNKNOWN_ENCOUNTER_ROLE_UUID",
    "UNKNOWN_LOCATION_ID",
    "OpenMRSBuilder",
    "load_openmrs_schema",
    "split_sql_statements",
]

#: ``users.user_id`` of the shipped admin account, used as creator of every row.
ADMIN_USER_ID = 1

#: ``location.location_id`` of the shipped "Unknown Location".
UNKNOWN_LOCATION_ID = 1

#: uuid of the shipped "Unknown" encounter role.
UNKNOWN_ENCOUNTER_ROLE_UUID = "a0b03050-c99b-11e0-9572-0800200c9a66"

# Keyword name -> obs column, for every obs value a caller may set. The order is the column
# order used by obs_many's INSERT.
_OBS_FIELDS: dict[str, str] = {
    "patient_id": "person_id",
    "concept_id": "concept_id",
    "encounter_id": "encounter_id",
    "order_id": "order_id",
    "obs_datetime": "obs_datetime",
    "location_id": "location_id",
    "obs_group_id": "obs_group_id",
    "accession_number": "accession_number",
    "value_group_id": "value_group_id",
    "value_coded": "value_coded",
    "value_coded_name_id": "value_coded_name_id",
    "value_drug": "value_drug",
    "value_datetime": "value_datetime",
    "value_numeric": "value_numeric",
    "value_modifier": "value_modifier",
    "value_text": "value_text",
    "value_complex": "value_complex",
    "comments": "comments",
    "creator": "creator",
    "date_created": "date_created",
    "uuid": "uuid",
    "previous_version": "previous_version",
    "form_namespace_and_path": "form_namespace_and_path",
    "status": "status",
    "interpretation": "interpretation",
}

# Columns an edit never copies from the old obs row.
_OBS_NOT_COPIED = frozenset(
    {
        "obs_id",
        "uuid",
        "creator",
        "date_created",
        "voided",
        "voided_by",
        "date_voided",
        "void_reason",
        "previous_version",
        "status",
    }
)


def _new_uuid() -> str:
    return str(uuid_module.uuid4())


def _whole_seconds(value: datetime) -> datetime:
    """Drop microseconds: OpenMRS DATETIME columns have no fractional seconds."""
    return value.replace(microsecond=0)


class OpenMRSBuilder:
    """Insert OpenMRS rows the way OpenMRS writes them.

    Every method fills all NOT NULL columns, uses ``creator = 1`` (admin), sets
    ``date_created`` to :attr:`now` unless told otherwise, generates uuid4 uuids unless one
    is given, returns the new primary key and commits.

    Works on every schema :func:`load_openmrs_schema` produces: columns that differ between
    platform versions (``dx_rank``/``rank``, ``comments``/``comment``, ``encounter_id`` on
    conditions and allergies) are looked up in ``information_schema`` of the connection's
    current database.

    Attributes:
        conn: The pymysql connection rows are written through.
        now: Fixed timestamp used for ``date_created`` and other "now" values, or None to
            use the wall clock (whole seconds) at each call. Tests may change it between
            calls to move time forward.
        creator: ``users.user_id`` written into creator, voided_by and changed_by columns.
    """

    def __init__(
        self,
        conn: Connection[Any],
        *,
        now: datetime | None = None,
        creator: int = ADMIN_USER_ID,
        commit: bool = True,
    ) -> None:
        """Wrap an open connection whose current database holds the OpenMRS tables.

        Args:
            conn: Open pymysql connection, already using the OpenMRS database.
            now: Fixed "now"; None means the wall clock at each call.
            creator: User id recorded as creator of every row.
            commit: Commit after every public method. Pass False to manage the
                transaction yourself.
        """
        self.conn = conn
        self.now = now
        self.creator = creator
        self._commit_each_call = commit
        self._columns: dict[str, frozenset[str]] = {}
        self._national_id_type_id: int | None = None
        self._encounter_type_ids: dict[str, int] = {}
        self._unknown_role_id: int | None = None
        self._boolean_concepts: tuple[int, int] | None = None

    # ------------------------------------------------------------------ helpers

    def _now(self) -> datetime:
        if self.now is not None:
            return _whole_seconds(self.now)
        # OpenMRS stores naive server-local times, so the wall clock is naive on purpose.
        return _whole_seconds(datetime.now())  # noqa: DTZ005

    def _commit(self) -> None:
        if self._commit_each_call:
            self.conn.commit()

    def _insert(self, table: str, values: Mapping[str, Any]) -> int:
        columns = ", ".join(f"`{name}`" for name in values)
        placeholders = ", ".join(["%s"] * len(values))
        with self.conn.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO `{table}` ({columns}) VALUES ({placeholders})",
                tuple(values.values()),
            )
            return int(cursor.lastrowid)

    def _fetch_one(self, sql: str, args: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        with self.conn.cursor() as cursor:
            cursor.execute(sql, tuple(args))
            row = cursor.fetchone()
        return None if row is None else tuple(row)

    def _columns_of(self, table: str) -> frozenset[str]:
        """Column names of ``table`` in the current database (cached)."""
        if table not in self._columns:
            with self.conn.cursor() as cursor:
                cursor.execute(
                    "SELECT column_name FROM information_schema.columns "
                    "WHERE table_schema = DATABASE() AND table_name = %s",
                    (table,),
                )
                self._columns[table] = frozenset(str(row[0]) for row in cursor.fetchall())
        return self._columns[table]

    def _id_by_name(self, table: str, key: str, name: str) -> int:
        row = self._fetch_one(
            f"SELECT `{key}` FROM `{table}` WHERE `name` = %s ORDER BY `retired`, `{key}` LIMIT 1",
            (name,),
        )
        if row is None:
            raise LookupError(f"no {table} named {name!r}")
        return int(row[0])

    def _datatype(self, name: str) -> tuple[int, str]:
        row = self._fetch_one(
            "SELECT concept_datatype_id, name FROM concept_datatype WHERE name = %s "
            "ORDER BY retired, concept_datatype_id LIMIT 1",
            (name,),
        )
        if row is None:
            raise LookupError(f"no concept_datatype named {name!r}")
        return int(row[0]), str(row[1])

    def _unknown_encounter_role(self) -> int:
        if self._unknown_role_id is None:
            row = self._fetch_one(
                "SELECT encounter_role_id FROM encounter_role WHERE uuid = %s OR name = 'Unknown' "
                "ORDER BY uuid = %s DESC LIMIT 1",
                (UNKNOWN_ENCOUNTER_ROLE_UUID, UNKNOWN_ENCOUNTER_ROLE_UUID),
            )
            if row is None:
                raise LookupError("the core 'Unknown' encounter role is missing")
            self._unknown_role_id = int(row[0])
        return self._unknown_role_id

    def _encounter_datetimes(self, encounter_ids: Iterable[int]) -> dict[int, datetime]:
        ids = sorted(set(encounter_ids))
        if not ids:
            return {}
        placeholders = ", ".join(["%s"] * len(ids))
        with self.conn.cursor() as cursor:
            cursor.execute(
                f"SELECT encounter_id, encounter_datetime FROM encounter WHERE encounter_id IN ({placeholders})",
                ids,
            )
            return {int(row[0]): row[1] for row in cursor.fetchall()}

    def _person(
        self,
        *,
        given: str | None,
        family: str | None,
        gender: str | None,
        birthdate: date | None,
        uuid: str | None,
        now: datetime,
    ) -> int:
        person_id = self._insert(
            "person",
            {
                "gender": gender,
                "birthdate": birthdate,
                "birthdate_estimated": 0,
                "dead": 0,
                "deathdate_estimated": 0,
                "creator": self.creator,
                "date_created": now,
                "voided": 0,
                "uuid": uuid or _new_uuid(),
            },
        )
        self._insert(
            "person_name",
            {
                "preferred": 1,
                "person_id": person_id,
                "given_name": given,
                "family_name": family,
                "creator": self.creator,
                "date_created": now,
                "voided": 0,
                "uuid": _new_uuid(),
            },
        )
        return person_id

    # ----------------------------------------------------------------- metadata

    @property
    def true_concept_id(self) -> int:
        """Concept stored in ``value_coded`` for a true Boolean obs (concept.true)."""
        return self._boolean_concept_ids()[0]

    @property
    def false_concept_id(self) -> int:
        """Concept stored in ``value_coded`` for a false Boolean obs (concept.false)."""
        return self._boolean_concept_ids()[1]

    def _boolean_concept_ids(self) -> tuple[int, int]:
        if self._boolean_concepts is None:
            found = {"concept.true": 1, "concept.false": 2}
            with self.conn.cursor() as cursor:
                cursor.execute(
                    "SELECT property, property_value FROM global_property "
                    "WHERE property IN ('concept.true', 'concept.false')"
                )
                for prop, value in cursor.fetchall():
                    if value is not None and str(value).strip().isdigit():
                        found[str(prop)] = int(str(value).strip())
            self._boolean_concepts = (found["concept.true"], found["concept.false"])
        return self._boolean_concepts

    @property
    def national_id_type_id(self) -> int:
        """The "National ID" identifier type, created on first use."""
        if self._national_id_type_id is None:
            row = self._fetch_one(
                "SELECT patient_identifier_type_id FROM patient_identifier_type "
                "WHERE name = 'National ID' ORDER BY retired, patient_identifier_type_id LIMIT 1"
            )
            self._national_id_type_id = int(row[0]) if row is not None else self.identifier_type("National ID")
        return self._national_id_type_id

    def identifier_type(
        self,
        name: str = "National ID",
        *,
        uuid: str | None = None,
        description: str | None = None,
        format: str | None = None,
    ) -> int:
        """Insert a ``patient_identifier_type`` and return its id.

        Args:
            name: Type name (at most 50 characters).
            uuid: uuid to use instead of a fresh one (e.g. a real deployment's uuid).
            description: Optional description.
            format: Optional regular expression the identifiers must match.
        """
        type_id = self._insert(
            "patient_identifier_type",
            {
                "name": name,
                "description": description,
                "format": format,
                "check_digit": 0,
                "required": 0,
                "retired": 0,
                "creator": self.creator,
                "date_created": self._now(),
                "uuid": uuid or _new_uuid(),
            },
        )
        self._commit()
        return type_id

    def location(self, name: str, *, uuid: str | None = None, parent: int | None = None) -> int:
        """Insert a ``location`` and return its id.

        Args:
            name: Location name.
            uuid: uuid to use instead of a fresh one.
            parent: Optional parent ``location_id``.
        """
        location_id = self._insert(
            "location",
            {
                "name": name,
                "parent_location": parent,
                "retired": 0,
                "creator": self.creator,
                "date_created": self._now(),
                "uuid": uuid or _new_uuid(),
            },
        )
        self._commit()
        return location_id

    def concept(
        self,
        name: str,
        *,
        datatype: str = "Text",
        concept_class: str = "Misc",
        units: str | None = None,
        hi_normal: float | None = None,
        low_normal: float | None = None,
        hi_critical: float | None = None,
        low_critical: float | None = None,
        allow_decimal: bool = True,
        names: Mapping[str, str] | None = None,
        uuid: str | None = None,
        is_set: bool = False,
    ) -> int:
        """Insert a ``concept`` with its names (and ``concept_numeric`` row) and return its id.

        Args:
            name: English name, used when ``names`` is None.
            datatype: ``concept_datatype.name``, e.g. "Numeric", "Coded", "Text", "Boolean",
                "Date", "Datetime", "Complex", "N/A".
            concept_class: ``concept_class.name``, e.g. "Test", "Diagnosis", "Misc".
            units: Units of a numeric concept (``concept_numeric.units``).
            hi_normal: Upper normal bound of a numeric concept.
            low_normal: Lower normal bound of a numeric concept.
            hi_critical: Upper critical bound of a numeric concept.
            low_critical: Lower critical bound of a numeric concept.
            allow_decimal: ``concept_numeric.allow_decimal`` of a numeric concept.
            names: Names by locale, e.g. ``{"fr": "Poids", "en_GB": "Weight"}``; each becomes
                the FULLY_SPECIFIED, locale-preferred name of its locale. ``{}`` creates a
                concept with no name at all. None means ``{"en": name}``.
            uuid: uuid to use instead of a fresh one (e.g. a CIEL uuid).
            is_set: Whether the concept is a set.

        Raises:
            LookupError: If the datatype or class does not exist.
            ValueError: If numeric attributes are given for a non-numeric datatype.
        """
        now = self._now()
        datatype_id, datatype_name = self._datatype(datatype)
        class_id = self._id_by_name("concept_class", "concept_class_id", concept_class)
        numeric = datatype_name in NUMERIC_DATATYPES
        numeric_values = (units, hi_normal, low_normal, hi_critical, low_critical)
        if not numeric and any(value is not None for value in numeric_values):
            raise ValueError(f"units and ranges need a numeric datatype, not {datatype_name!r}")

        concept_id = self._insert(
            "concept",
            {
                "retired": 0,
                "datatype_id": datatype_id,
                "class_id": class_id,
                "is_set": int(is_set),
                "creator": self.creator,
                "date_created": now,
                "uuid": uuid or _new_uuid(),
            },
        )
        for locale, text in ({"en": name} if names is None else names).items():
            self._insert(
                "concept_name",
                {
                    "concept_id": concept_id,
                    "name": text,
                    "locale": locale,
                    "locale_preferred": 1,
                    "concept_name_type": "FULLY_SPECIFIED",
                    "creator": self.creator,
                    "date_created": now,
                    "voided": 0,
                    "uuid": _new_uuid(),
                },
            )
        if numeric:
            self._insert(
                "concept_numeric",
                {
                    "concept_id": concept_id,
                    "hi_normal": hi_normal,
                    "low_normal": low_normal,
                    "hi_critical": hi_critical,
                    "low_critical": low_critical,
                    "units": units,
                    "allow_decimal": int(allow_decimal),
                },
            )
        self._commit()
        return concept_id

    def drug(
        self,
        name: str,
        concept_id: int,
        *,
        strength: str | None = None,
        uuid: str | None = None,
    ) -> int:
        """Insert a ``drug`` formulation of ``concept_id`` and return its id.

        Args:
            name: Drug name, e.g. "Paracetamol 500 mg tablet".
            concept_id: The drug's concept (``drug.concept_id``).
            strength: Optional strength text.
            uuid: uuid to use instead of a fresh one.
        """
        drug_id = self._insert(
            "drug",
            {
                "concept_id": concept_id,
                "name": name,
                "combination": 0,
                "strength": strength,
                "retired": 0,
                "creator": self.creator,
                "date_created": self._now(),
                "uuid": uuid or _new_uuid(),
            },
        )
        self._commit()
        return drug_id

    # ------------------------------------------------------------------- people

    def patient(
        self,
        *,
        national_id: str | None = None,
        given: str | None = "Test",
        family: str | None = "Patient",
        gender: str | None = "F",
        birthdate: date | None = date(1980, 1, 1),
        identifier_type_id: int | None = None,
        extra_identifiers: Sequence[tuple[int, str]] = (),
        uuid: str | None = None,
    ) -> int:
        """Insert a person, its preferred name and a patient row; return the person_id.

        Args:
            national_id: If given, a preferred ``patient_identifier`` of type
                ``identifier_type_id`` (default: the "National ID" type, created on first use).
            given: Given name.
            family: Family name.
            gender: ``person.gender`` ("F", "M", ...).
            birthdate: ``person.birthdate``.
            identifier_type_id: Identifier type for ``national_id``.
            extra_identifiers: More identifiers as ``(identifier_type_id, identifier)``
                pairs, stored with ``preferred = 0``.
            uuid: ``person.uuid`` to use instead of a fresh one.

        Returns:
            The new ``person_id``, which is also the ``patient_id``.
        """
        now = self._now()
        person_id = self._person(given=given, family=family, gender=gender, birthdate=birthdate, uuid=uuid, now=now)
        self._insert(
            "patient",
            {
                "patient_id": person_id,
                "creator": self.creator,
                "date_created": now,
                "voided": 0,
                "allergy_status": "Unknown",
            },
        )
        identifiers: list[tuple[int, str, int]] = []
        if national_id is not None:
            type_id = identifier_type_id if identifier_type_id is not None else self.national_id_type_id
            identifiers.append((type_id, national_id, 1))
        identifiers.extend((type_id, value, 0) for type_id, value in extra_identifiers)
        for type_id, value, preferred in identifiers:
            self._insert(
                "patient_identifier",
                {
                    "patient_id": person_id,
                    "identifier": value,
                    "identifier_type": type_id,
                    "preferred": preferred,
                    "location_id": None,
                    "creator": self.creator,
                    "date_created": now,
                    "voided": 0,
                    "uuid": _new_uuid(),
                },
            )
        self._commit()
        return person_id

    def provider(
        self,
        given: str = "Jane",
        family: str = "Doe",
        *,
        with_person: bool = True,
        name: str | None = None,
        identifier: str | None = None,
        uuid: str | None = None,
    ) -> int:
        """Insert a ``provider`` (and by default its person and name); return provider_id.

        Args:
            given: Given name of the provider's person.
            family: Family name of the provider's person.
            with_person: False creates a provider with ``person_id`` NULL that is known only
                by ``provider.name`` (default: "given family").
            name: ``provider.name``; left NULL for providers with a person unless given.
            identifier: ``provider.identifier``.
            uuid: ``provider.uuid`` to use instead of a fresh one.
        """
        now = self._now()
        person_id: int | None = None
        if with_person:
            person_id = self._person(given=given, family=family, gender=None, birthdate=None, uuid=None, now=now)
        elif name is None:
            name = f"{given} {family}"
        provider_id = self._insert(
            "provider",
            {
                "person_id": person_id,
                "name": name,
                "identifier": identifier,
                "retired": 0,
                "creator": self.creator,
                "date_created": now,
                "uuid": uuid or _new_uuid(),
            },
        )
        self._commit()
        return provider_id

    # --------------------------------------------------------------- encounters

    def encounter_type(self, name: str, *, uuid: str | None = None) -> int:
        """Return the id of the encounter type called ``name``, inserting it if missing."""
        if name not in self._encounter_type_ids:
            row = self._fetch_one("SELECT encounter_type_id FROM encounter_type WHERE name = %s", (name,))
            if row is not None:
                self._encounter_type_ids[name] = int(row[0])
            else:
                self._encounter_type_ids[name] = self._insert(
                    "encounter_type",
                    {
                        "name": name,
                        "retired": 0,
                        "creator": self.creator,
                        "date_created": self._now(),
                        "uuid": uuid or _new_uuid(),
                    },
                )
                self._commit()
        return self._encounter_type_ids[name]

    def encounter(
        self,
        patient_id: int,
        *,
        location_id: int | None = None,
        provider_ids: Sequence[int] = (),
        when: datetime | None = None,
        encounter_type: str = "Consultation",
        visit_id: int | None = None,
        date_created: datetime | None = None,
        uuid: str | None = None,
    ) -> int:
        """Insert an ``encounter`` with its ``encounter_provider`` rows; return encounter_id.

        Args:
            patient_id: The patient.
            location_id: Optional location.
            provider_ids: Providers, each linked with the core "Unknown" encounter role.
            when: ``encounter_datetime``; default now.
            encounter_type: Encounter type name, created on first use.
            visit_id: Optional visit.
            date_created: Default now.
            uuid: uuid to use instead of a fresh one.
        """
        now = self._now()
        created = _whole_seconds(date_created) if date_created is not None else now
        type_id = self.encounter_type(encounter_type)
        encounter_id = self._insert(
            "encounter",
            {
                "encounter_type": type_id,
                "patient_id": patient_id,
                "location_id": location_id,
                "encounter_datetime": _whole_seconds(when) if when is not None else now,
                "visit_id": visit_id,
                "creator": self.creator,
                "date_created": created,
                "voided": 0,
                "uuid": uuid or _new_uuid(),
            },
        )
        if provider_ids:
            role_id = self._unknown_encounter_role()
            for provider_id in provider_ids:
                self._insert(
                    "encounter_provider",
                    {
                        "encounter_id": encounter_id,
                        "provider_id": provider_id,
                        "encounter_role_id": role_id,
                        "creator": self.creator,
                        "date_created": created,
                        "voided": 0,
                        "uuid": _new_uuid(),
                    },
                )
        self._commit()
        return encounter_id

    # ---------------------------------------------------------------------- obs

    def _obs_values(
        self, fields: Mapping[str, Any], encounter_times: Mapping[int, datetime], now: datetime
    ) -> dict[str, Any]:
        """Turn obs keyword values into a complete obs column -> value mapping."""
        unknown = set(fields) - set(_OBS_FIELDS)
        if unknown:
            raise TypeError(f"unknown obs field(s): {', '.join(sorted(unknown))}")
        for required in ("patient_id", "concept_id"):
            if fields.get(required) is None:
                raise TypeError(f"obs needs {required}")
        values = {column: fields.get(key) for key, column in _OBS_FIELDS.items()}
        if values["obs_datetime"] is None:
            encounter_id = values["encounter_id"]
            if encounter_id is None:
                values["obs_datetime"] = now
            elif encounter_id in encounter_times:
                values["obs_datetime"] = encounter_times[encounter_id]
            else:
                raise LookupError(f"no encounter {encounter_id}")
        if values["creator"] is None:
            values["creator"] = self.creator
        if values["date_created"] is None:
            values["date_created"] = now
        if values["uuid"] is None:
            values["uuid"] = _new_uuid()
        if values["status"] is None:
            values["status"] = "FINAL"
        for column in ("obs_datetime", "date_created", "value_datetime"):
            moment = values[column]
            if isinstance(moment, datetime):
                values[column] = _whole_seconds(moment)
        values["voided"] = 0
        return values

    def obs(
        self,
        patient_id: int,
        concept_id: int,
        *,
        encounter_id: int | None = None,
        obs_group_id: int | None = None,
        location_id: int | None = None,
        obs_datetime: datetime | None = None,
        date_created: datetime | None = None,
        value_coded: int | None = None,
        value_coded_name_id: int | None = None,
        value_drug: int | None = None,
        value_numeric: float | None = None,
        value_modifier: str | None = None,
        value_text: str | None = None,
        value_datetime: datetime | date | None = None,
        value_complex: str | None = None,
        comments: str | None = None,
        previous_version: int | None = None,
        order_id: int | None = None,
        interpretation: str | None = None,
        status: str = "FINAL",
        uuid: str | None = None,
    ) -> int:
        """Insert one ``obs`` row and return its obs_id.

        ``obs_datetime`` defaults to the encounter's ``encounter_datetime`` when
        ``encounter_id`` is given, otherwise to now. The builder does not validate values
        against the concept's datatype, so deliberately odd rows can be made.

        Args:
            patient_id: Written to ``obs.person_id``.
            concept_id: The question concept.
            encounter_id: Optional encounter (real databases also have obs without one).
            obs_group_id: Parent obs of a group member.
            location_id: Optional location.
            obs_datetime: When the observation was made.
            date_created: When the row was entered; default now.
            value_coded: Coded answer (for Boolean concepts: :attr:`true_concept_id` or
                :attr:`false_concept_id`).
            value_coded_name_id: The ``concept_name`` picked for the coded answer.
            value_drug: ``drug_id`` when the coded answer is a drug formulation.
            value_numeric: Numeric answer.
            value_modifier: "<", ">" etc. for Structured Numeric.
            value_text: Text answer.
            value_datetime: Date, Time or Datetime answer.
            value_complex: Complex answer reference, e.g. "image.png|image/png".
            comments: ``obs.comments``.
            previous_version: obs_id this row replaces.
            order_id: Optional order.
            interpretation: e.g. "NORMAL", "HIGH".
            status: "FINAL", "PRELIMINARY" or "AMENDED".
            uuid: uuid to use instead of a fresh one.
        """
        fields = {
            "patient_id": patient_id,
            "concept_id": concept_id,
            "encounter_id": encounter_id,
            "obs_group_id": obs_group_id,
            "location_id": location_id,
            "obs_datetime": obs_datetime,
            "date_created": date_created,
            "value_coded": value_coded,
            "value_coded_name_id": value_coded_name_id,
            "value_drug": value_drug,
            "value_numeric": value_numeric,
            "value_modifier": value_modifier,
            "value_text": value_text,
            "value_datetime": value_datetime,
            "value_complex": value_complex,
            "comments": comments,
            "previous_version": previous_version,
            "order_id": order_id,
            "interpretation": interpretation,
            "status": status,
            "uuid": uuid,
        }
        encounter_times = (
            self._encounter_datetimes([encounter_id]) if encounter_id is not None and obs_datetime is None else {}
        )
        obs_id = self._insert("obs", self._obs_values(fields, encounter_times, self._now()))
        self._commit()
        return obs_id

    def obs_many(self, rows: Iterable[Mapping[str, Any]], *, batch_size: int = 5_000) -> None:
        """Bulk-insert obs rows with ``executemany`` (for large benchmark data sets).

        Each row is a mapping with the keyword names of :meth:`obs` (``patient_id`` and
        ``concept_id`` required; ``creator`` may also be given). Rows are sent in batches of
        ``batch_size``; pymysql turns each batch into multi-row INSERT statements.

        Raises:
            TypeError: If a row has an unknown key or lacks patient_id / concept_id.
        """
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        for batch in _batches(rows, batch_size):
            now = self._now()
            encounter_times = self._encounter_datetimes(
                row["encounter_id"]
                for row in batch
                if row.get("encounter_id") is not None and row.get("obs_datetime") is None
            )
            complete = [self._obs_values(row, encounter_times, now) for row in batch]
            # Send only the columns some row of the batch fills: escaping every NULL column
            # in pure-Python pymysql costs more than the insert itself.
            columns = [
                column
                for column in (*_OBS_FIELDS.values(), "voided")
                if any(values[column] is not None for values in complete)
            ]
            sql = (
                "INSERT INTO `obs` ("
                + ", ".join(f"`{column}`" for column in columns)
                + ") VALUES ("
                + ", ".join(["%s"] * len(columns))
                + ")"
            )
            args = [tuple(values[column] for column in columns) for values in complete]
            with self.conn.cursor() as cursor:
                cursor.executemany(sql, args)
        self._commit()

    def _obs_row(self, obs_id: int) -> dict[str, Any]:
        with self.conn.cursor() as cursor:
            cursor.execute("SELECT * FROM obs WHERE obs_id = %s", (obs_id,))
            row = cursor.fetchone()
            if row is None:
                raise LookupError(f"no obs {obs_id}")
            names = [str(column[0]) for column in cursor.description]
        return dict(zip(names, row, strict=True))

    def _member_ids(self, obs_id: int) -> list[int]:
        with self.conn.cursor() as cursor:
            cursor.execute(
                "SELECT obs_id FROM obs WHERE obs_group_id = %s AND voided = 0 ORDER BY obs_id",
                (obs_id,),
            )
            return [int(row[0]) for row in cursor.fetchall()]

    def _void_one(self, obs_id: int, reason: str, when: datetime) -> None:
        with self.conn.cursor() as cursor:
            cursor.execute(
                "UPDATE obs SET voided = 1, voided_by = %s, date_voided = %s, void_reason = %s WHERE obs_id = %s",
                (self.creator, when, reason, obs_id),
            )

    def void_obs(
        self,
        obs_id: int,
        *,
        reason: str = "deleted",
        when: datetime | None = None,
        include_members: bool = True,
    ) -> None:
        """Void an obs the way ObsService.voidObs does.

        Sets ``voided = 1``, ``voided_by``, ``date_voided`` and ``void_reason``. Like
        OpenMRS, voiding a group parent also voids its (non-voided) members, recursively.

        Args:
            obs_id: The obs to void.
            reason: ``void_reason``.
            when: ``date_voided``; default now.
            include_members: Pass False to void only this row (inconsistent data on purpose).

        Raises:
            LookupError: If the obs does not exist.
        """
        self._obs_row(obs_id)
        moment = _whole_seconds(when) if when is not None else self._now()
        pending = [obs_id]
        while pending:
            current = pending.pop()
            if include_members:
                pending.extend(self._member_ids(current))
            self._void_one(current, reason, moment)
        self._commit()

    def edit_obs(
        self,
        obs_id: int,
        *,
        reason: str = "edited",
        when: datetime | None = None,
        **new_values: Any,
    ) -> int:
        """Edit an obs with OpenMRS semantics and return the obs_id of the new row.

        OpenMRS never updates an obs in place. This copies the old row into a new one with
        ``new_values`` applied (keys as in :meth:`obs`), ``previous_version`` = old id,
        ``creator`` = the builder's creator, ``date_created`` = ``when`` and status FINAL
        turned into AMENDED (other statuses are kept unless ``status`` is passed). The old
        row is voided with ``void_reason = reason`` and ``date_voided = when``. Editing a
        group parent copies its non-voided members too, each new member pointing at its old
        row through ``previous_version``.

        Raises:
            LookupError: If the obs does not exist.
            ValueError: If the obs is already voided.
            TypeError: For an unknown field in ``new_values``.
        """
        unknown = set(new_values) - set(_OBS_FIELDS)
        if unknown:
            raise TypeError(f"unknown obs field(s): {', '.join(sorted(unknown))}")
        moment = _whole_seconds(when) if when is not None else self._now()
        new_id = self._copy_obs(obs_id, reason, moment, new_values, new_parent=None)
        self._commit()
        return new_id

    def _copy_obs(
        self,
        obs_id: int,
        reason: str,
        when: datetime,
        new_values: Mapping[str, Any],
        new_parent: int | None,
    ) -> int:
        old = self._obs_row(obs_id)
        if old["voided"]:
            raise ValueError(f"obs {obs_id} is voided and cannot be edited")
        values = {column: value for column, value in old.items() if column not in _OBS_NOT_COPIED}
        values.update(
            {
                "creator": self.creator,
                "date_created": when,
                "voided": 0,
                "uuid": _new_uuid(),
                "previous_version": obs_id,
                "status": "AMENDED" if old["status"] == "FINAL" else old["status"],
            }
        )
        if new_parent is not None:
            values["obs_group_id"] = new_parent
        for key, value in new_values.items():
            column = _OBS_FIELDS[key]
            values[column] = _whole_seconds(value) if isinstance(value, datetime) else value
        new_id = self._insert("obs", values)
        for member_id in self._member_ids(obs_id):
            self._copy_obs(member_id, reason, when, {}, new_parent=new_id)
        self._void_one(obs_id, reason, when)
        return new_id

    # -------------------------------------------------- conditions and diagnoses

    def condition(
        self,
        patient_id: int,
        *,
        condition_coded: int | None = None,
        condition_non_coded: str | None = None,
        condition_coded_name: int | None = None,
        clinical_status: str = "ACTIVE",
        verification_status: str | None = "CONFIRMED",
        onset_date: datetime | None = None,
        end_date: datetime | None = None,
        additional_detail: str | None = None,
        encounter_id: int | None = None,
        previous_version: int | None = None,
        date_created: datetime | None = None,
        uuid: str | None = None,
    ) -> int:
        """Insert a ``conditions`` row and return its condition_id.

        Raises:
            ValueError: If ``encounter_id`` is given on a schema older than 2.4.
        """
        values: dict[str, Any] = {
            "patient_id": patient_id,
            "condition_coded": condition_coded,
            "condition_non_coded": condition_non_coded,
            "condition_coded_name": condition_coded_name,
            "clinical_status": clinical_status,
            "verification_status": verification_status,
            "onset_date": onset_date,
            "end_date": end_date,
            "additional_detail": additional_detail,
            "previous_version": previous_version,
            "creator": self.creator,
            "date_created": date_created or self._now(),
            "voided": 0,
            "uuid": uuid or _new_uuid(),
        }
        if encounter_id is not None:
            if "encounter_id" not in self._columns_of("conditions"):
                raise ValueError("conditions.encounter_id does not exist before Platform 2.4")
            values["encounter_id"] = encounter_id
        condition_id = self._insert("conditions", values)
        self._commit()
        return condition_id

    def encounter_diagnosis(
        self,
        encounter_id: int,
        *,
        diagnosis_coded: int | None = None,
        diagnosis_non_coded: str | None = None,
        diagnosis_coded_name: int | None = None,
        certainty: str = "CONFIRMED",
        rank: int = 1,
        condition_id: int | None = None,
        patient_id: int | None = None,
        date_created: datetime | None = None,
        uuid: str | None = None,
    ) -> int:
        """Insert an ``encounter_diagnosis`` row and return its diagnosis_id.

        Writes ``rank`` into ``dx_rank`` (2.5+) or ``rank`` (2.2 to 2.4), whichever exists.
        ``patient_id`` defaults to the encounter's patient.
        """
        if patient_id is None:
            row = self._fetch_one("SELECT patient_id FROM encounter WHERE encounter_id = %s", (encounter_id,))
            if row is None:
                raise LookupError(f"no encounter {encounter_id}")
            patient_id = int(row[0])
        rank_column = "dx_rank" if "dx_rank" in self._columns_of("encounter_diagnosis") else "rank"
        diagnosis_id = self._insert(
            "encounter_diagnosis",
            {
                "diagnosis_coded": diagnosis_coded,
                "diagnosis_non_coded": diagnosis_non_coded,
                "diagnosis_coded_name": diagnosis_coded_name,
                "encounter_id": encounter_id,
                "patient_id": patient_id,
                "condition_id": condition_id,
                "certainty": certainty,
                rank_column: rank,
                "creator": self.creator,
                "date_created": date_created or self._now(),
                "voided": 0,
                "uuid": uuid or _new_uuid(),
            },
        )
        self._commit()
        return diagnosis_id

    def allergy(
        self,
        patient_id: int,
        coded_allergen: int,
        *,
        allergen_type: str = "DRUG",
        non_coded_allergen: str | None = None,
        severity_concept_id: int | None = None,
        comments: str | None = None,
        encounter_id: int | None = None,
        date_created: datetime | None = None,
        uuid: str | None = None,
    ) -> int:
        """Insert an ``allergy`` row and return its allergy_id.

        ``voided`` is written explicitly as 0 because the column's real default is 1.
        ``comments`` goes to ``comment`` on 2.2 schemas.

        Raises:
            ValueError: If ``encounter_id`` is given on a schema older than 2.5.
        """
        columns = self._columns_of("allergy")
        values: dict[str, Any] = {
            "patient_id": patient_id,
            "severity_concept_id": severity_concept_id,
            "coded_allergen": coded_allergen,
            "non_coded_allergen": non_coded_allergen,
            "allergen_type": allergen_type,
            ("comments" if "comments" in columns else "comment"): comments,
            "creator": self.creator,
            "date_created": date_created or self._now(),
            "voided": 0,
            "uuid": uuid or _new_uuid(),
        }
        if encounter_id is not None:
            if "encounter_id" not in columns:
                raise ValueError("allergy.encounter_id does not exist before Platform 2.5")
            values["encounter_id"] = encounter_id
        allergy_id = self._insert("allergy", values)
        self._commit()
        return allergy_id

    # ------------------------------------------------------------------- orders

    def drug_order(
        self,
        encounter_id: int,
        orderer: int,
        *,
        drug_id: int | None = None,
        concept_id: int | None = None,
        dose: float | None = None,
        dose_units: int | None = None,
        route: int | None = None,
        frequency: int | None = None,
        quantity: float | None = None,
        quantity_units: int | None = None,
        duration: int | None = None,
        duration_units: int | None = None,
        as_needed: bool = False,
        dosing_type: str = "org.openmrs.SimpleDosingInstructions",
        dosing_instructions: str | None = None,
        drug_non_coded: str | None = None,
        instructions: str | None = None,
        date_activated: datetime | None = None,
        auto_expire_date: datetime | None = None,
        date_stopped: datetime | None = None,
        order_action: str = "NEW",
        urgency: str = "ROUTINE",
        previous_order_id: int | None = None,
        order_type_id: int = 2,
        care_setting: int = 1,
        uuid: str | None = None,
    ) -> int:
        """Insert an ``orders`` row plus its ``drug_order`` row; return the order_id.

        The patient is taken from the encounter and ``concept_id`` from the drug when not
        given. ``order_type_id`` 2 ("Drug Order") and ``care_setting`` 1 ("Outpatient") are
        the ids OpenMRS ships; those tables are not part of the fixture, so they have no
        foreign key here. ``order_number`` is "ORD-<order_id>" like OpenMRS's default
        generator.

        Raises:
            ValueError: If neither ``drug_id`` nor ``concept_id`` is given.
        """
        if concept_id is None:
            if drug_id is None:
                raise ValueError("drug_order needs drug_id or concept_id")
            row = self._fetch_one("SELECT concept_id FROM drug WHERE drug_id = %s", (drug_id,))
            if row is None:
                raise LookupError(f"no drug {drug_id}")
            concept_id = int(row[0])
        encounter = self._fetch_one(
            "SELECT patient_id, encounter_datetime FROM encounter WHERE encounter_id = %s",
            (encounter_id,),
        )
        if encounter is None:
            raise LookupError(f"no encounter {encounter_id}")
        now = self._now()
        order_id = self._insert(
            "orders",
            {
                "order_type_id": order_type_id,
                "concept_id": concept_id,
                "orderer": orderer,
                "encounter_id": encounter_id,
                "instructions": instructions,
                "date_activated": date_activated or encounter[1],
                "auto_expire_date": auto_expire_date,
                "date_stopped": date_stopped,
                "creator": self.creator,
                "date_created": now,
                "voided": 0,
                "patient_id": int(encounter[0]),
                "uuid": uuid or _new_uuid(),
                "urgency": urgency,
                "order_number": "ORD-pending",
                "previous_order_id": previous_order_id,
                "order_action": order_action,
                "care_setting": care_setting,
            },
        )
        with self.conn.cursor() as cursor:
            cursor.execute(
                "UPDATE orders SET order_number = %s WHERE order_id = %s",
                (f"ORD-{order_id}", order_id),
            )
        self._insert(
            "drug_order",
            {
                "order_id": order_id,
                "drug_inventory_id": drug_id,
                "dose": dose,
                "dose_units": dose_units,
                "route": route,
                "frequency": frequency,
                "quantity": quantity,
                "quantity_units": quantity_units,
                "duration": duration,
                "duration_units": duration_units,
                "as_needed": int(as_needed),
                "dosing_type": dosing_type,
                "dosing_instructions": dosing_instructions,
                "dispense_as_written": 0,
                "drug_non_coded": drug_non_coded,
            },
        )
        self._commit()
        return order_id


def _batches(rows: Iterable[Mapping[str, Any]], size: int) -> Iterator[list[Mapping[str, Any]]]:
    iterator = iter(rows)
    while batch := list(islice(iterator, size)):
        yield batch
