"""The OpenMRS feeds: observations, and each clinical source (diagnoses, conditions, allergies,
drug orders). A feed is a stream of rows in primary-key order with its own checkpoint, and knows
how to read its rows every way the pipeline asks for them."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import TYPE_CHECKING, Any

from passport_sync.mapping.clinical import ClinicalRow
from passport_sync.models import ObsRow
from passport_sync.source.clinical import ClinicalSource

if TYPE_CHECKING:
    from passport_sync.ports import OpenMRSReader, Ranges


class ObservationFeed:
    """The ``obs`` table; changes are voids (an edit is a new row that voids the old one)."""

    name = "obs"

    def __init__(self, source: OpenMRSReader) -> None:
        self.source = source

    def after(self, reader: OpenMRSReader, after: int, limit: int) -> list[ObsRow]:
        """The next page after ``after``, through ``reader`` (the read-ahead has its own)."""
        return reader.obs_after(after, limit)

    def in_ranges(self, ranges: Ranges, after: int, limit: int) -> list[ObsRow]:
        return self.source.obs_in_ranges(ranges, after, limit)

    def changed(self, since: datetime | None, after: int, limit: int) -> list[ObsRow]:
        return self.source.voided_since(since, after, limit)

    def by_pks(self, pks: Collection[int]) -> list[ObsRow]:
        return self.source.obs_by_ids(pks)

    def of_persons(self, person_ids: Collection[int], after: int, limit: int) -> list[ObsRow]:
        return self.source.obs_of_persons(person_ids, after, limit)

    @staticmethod
    def pk(row: Any) -> int:
        return int(row.obs_id)

    @staticmethod
    def keys_written(row: Any) -> tuple[int, ...]:
        """The primary keys whose records (or parked copies) a batch with ``row`` may write: its
        own, and its group's (a group that is one record is keyed by the group's row)."""
        return (int(row.obs_id), int(row.obs_group_id or 0))

    @staticmethod
    def changed_at(row: Any) -> datetime | None:
        moment: datetime | None = row.date_voided
        return moment


class ClinicalFeed:
    """One clinical table; changes are voids, edits in place and stopped orders (``changed_at``)."""

    def __init__(self, source: OpenMRSReader, table: ClinicalSource) -> None:
        self.source = source
        self.table = table
        self.name = table.name

    def after(self, reader: OpenMRSReader, after: int, limit: int) -> list[ClinicalRow]:
        return reader.clinical_after(self.table, after, limit)

    def in_ranges(self, ranges: Ranges, after: int, limit: int) -> list[ClinicalRow]:
        return self.source.clinical_in_ranges(self.table, ranges, after, limit)

    def changed(self, since: datetime | None, after: int, limit: int) -> list[ClinicalRow]:
        return self.source.clinical_changed(self.table, since, after, limit)

    def by_pks(self, pks: Collection[int]) -> list[ClinicalRow]:
        return self.source.clinical_by_pks(self.table, pks)

    def of_persons(self, person_ids: Collection[int], after: int, limit: int) -> list[ClinicalRow]:
        return self.source.clinical_of_persons(self.table, person_ids, after, limit)

    @staticmethod
    def pk(row: Any) -> int:
        return int(row.pk)

    @staticmethod
    def keys_written(row: Any) -> tuple[int, ...]:
        return (int(row.pk),)

    @staticmethod
    def changed_at(row: Any) -> datetime | None:
        moment: datetime | None = row.changed_at
        return moment


Feed = ObservationFeed | ClinicalFeed
