"""Which existing index serves which of the sync's queries (pure planning, no database)."""

from __future__ import annotations

from typing import Any

from passport_sync.sink import indexes

SOURCE_KEY = [("openmrsData.hospitalId", 1), ("openmrsData.source", 1), ("openmrsData.uuid", 1)]


def _plan_for(collection: str, existing: dict[str, dict[str, Any]]) -> indexes.Plan:
    return indexes.plan({collection: {"_id_": {"key": [("_id", 1)]}, **existing}})


def test_a_unique_need_is_served_only_by_a_unique_index_on_exactly_its_key() -> None:
    plain = _plan_for("medicalrecords", {"legacy": {"key": SOURCE_KEY}})
    assert [n.name for n in plain.create["medicalrecords"]][0] == indexes.SOURCE_KEY_INDEX
    longer = _plan_for("medicalrecords", {"legacy": {"key": [*SOURCE_KEY, ("x", 1)], "unique": True}})
    assert indexes.SOURCE_KEY_INDEX in [n.name for n in longer.create["medicalrecords"]]
    exact = _plan_for("medicalrecords", {"legacy": {"key": SOURCE_KEY, "unique": True}})
    assert indexes.SOURCE_KEY_INDEX not in [n.name for n in exact.create.get("medicalrecords", [])]


def test_a_lookup_is_served_by_any_index_starting_with_its_key_but_not_a_partial_one() -> None:
    compound = _plan_for("patients", {"nid_user": {"key": [("nationalId", 1), ("user", 1)]}})
    assert [f.level for f in compound.findings if f.subject == "patients nationalId"] == ["ok"]
    partial = _plan_for(
        "patients", {"nid": {"key": [("nationalId", 1)], "partialFilterExpression": {"status": "active"}}}
    )
    assert [f.level for f in partial.findings if f.subject == "patients nationalId"] == ["warning"]
    # An app key is never created by the tool: on patients, only our own key on updatedAt is.
    assert [n.key for n in partial.create["patients"]] == [(("updatedAt", 1),)]


def test_our_own_name_on_another_key_is_an_error_with_the_fix() -> None:
    wrong = _plan_for("syncstatus", {"passport_sync_hospital": {"key": [("lastSyncTime", 1)]}})
    finding = next(f for f in wrong.findings if f.subject == "syncstatus hospitalId")
    assert finding.level == "error" and 'dropIndex("passport_sync_hospital")' in finding.hint
    assert "syncstatus" not in wrong.create


def test_the_apps_own_index_is_no_conflict_but_the_same_key_under_other_options_is() -> None:
    app_built = indexes.app_conflicts({"patients": {"nationalId_1": {"key": [("nationalId", 1)], "unique": True}}})
    assert app_built == []
    other_name = indexes.app_conflicts({"patients": {"by_nid": {"key": [("nationalId", 1)], "unique": True}}})
    assert [f.subject for f in other_name] == ["patients by_nid"]
    not_sparse = indexes.app_conflicts({"doctors": {"openmrsProviderUuid_1": {"key": [("openmrsProviderUuid", 1)]}}})
    assert "sparse" in not_sparse[0].detail
