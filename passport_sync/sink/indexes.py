"""Which MongoDB indexes the sync relies on, and how they coexist with the app's own.

The Patient Passport app (Mongoose ``autoIndex``) builds its indexes when its backend starts.
MongoDB refuses a second index on the same key or under the same name with other options
(codes 85/86), in either order: so this tool never creates an index on a key or under a name
the app uses. It reads the indexes that exist, reuses one that serves its queries (the app's
unique ``nationalId_1`` serves the patient lookup), and creates only indexes of its own, named
``passport_sync_*``, on key patterns the app never uses.

Pure logic: ``plan`` takes the indexes as ``index_information()`` lists them, the sink runs it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

Key = tuple[tuple[str, int], ...]
IndexInfo = Mapping[str, Mapping[str, Any]]  # name -> {"key": [(field, direction)], "unique": …}


@dataclass(frozen=True, slots=True)
class AppIndex:
    """An index the app builds at startup (reference: its Mongoose models)."""

    collection: str
    key: Key
    unique: bool = False
    sparse: bool = False

    @property
    def name(self) -> str:
        # Mongoose lets MongoDB name it: field_direction joined by underscores.
        return "_".join(f"{f}_{d}" for f, d in self.key)


@dataclass(frozen=True, slots=True)
class Need:
    """An index one of the sync's queries relies on.

    ``name`` is set when the tool creates it itself; ``None`` means the key belongs to the app
    and is only ever reused (its absence makes the lookup scan, it is never created by us).
    """

    collection: str
    key: Key
    purpose: str
    name: str | None = None
    unique: bool = False
    sparse: bool = False


# From section "The app's own indexes": the ones on collections this tool reads or writes.
APP_INDEXES = (
    AppIndex("patients", (("user", 1),), unique=True),
    AppIndex("patients", (("nationalId", 1),), unique=True),
    AppIndex("patients", (("openmrsUuid", 1),), sparse=True),
    AppIndex("patients", (("status", 1),)),
    AppIndex("patients", (("assignedDoctors", 1),)),
    AppIndex("doctors", (("user", 1),), unique=True),
    AppIndex("doctors", (("licenseNumber", 1),), unique=True),
    AppIndex("doctors", (("openmrsProviderUuid", 1),), sparse=True),
    AppIndex("doctors", (("hospital", 1),)),
    AppIndex("doctors", (("specialization", 1),)),
    AppIndex("doctors", (("isActive", 1),)),
    AppIndex("medicalrecords", (("patientId", 1), ("type", 1))),
    AppIndex("medicalrecords", (("patientId", 1), ("createdAt", -1))),
    AppIndex("medicalrecords", (("createdBy", 1),)),
    AppIndex("medicalrecords", (("syncDate", -1),)),
    AppIndex("medicalrecords", (("openmrsData.obsId", 1),), sparse=True),
    AppIndex("users", (("email", 1),), unique=True),
    AppIndex("hospitals", (("user", 1),)),
    AppIndex("hospitals", (("licenseNumber", 1),), unique=True),
    AppIndex("hospitals", (("hospitalId", 1),), unique=True, sparse=True),
)

SOURCE_KEY_INDEX = "passport_sync_source_key"

NEEDS = (
    Need(
        "medicalrecords",
        (("openmrsData.hospitalId", 1), ("openmrsData.source", 1), ("openmrsData.uuid", 1)),
        "one record per OpenMRS row (a second copy is impossible)",
        name=SOURCE_KEY_INDEX,
        unique=True,
        # Sparse: records the app itself creates have no openmrsData and stay out of it.
        sparse=True,
    ),
    Need(
        "medicalrecords",
        (("openmrsData.source", 1), ("patientId", 1)),
        "a patient's synced allergies",
        name="passport_sync_source_patient",
    ),
    Need(
        "medicalrecords",
        (("openmrsData.hospitalId", 1), ("openmrsData.personId", 1)),
        "reconciliation: a re-decided person's records",
        name="passport_sync_source_person",
        sparse=True,
    ),
    Need(
        "medicalrecords",
        (("openmrsData.hospitalId", 1), ("openmrsData.renderVersion", 1), ("_id", 1)),
        "records rendered by an earlier version",
        name="passport_sync_render_version",
    ),
    Need(
        "medicalrecords",
        (("openmrsData.hospitalId", 1), ("openmrsData.encounterUuid", 1)),
        "the records of an encounter (its visit record is rebuilt from them)",
        name="passport_sync_encounter",
    ),
    Need(
        "openmrs_sync_encounters",
        (("hospitalId", 1),),
        "encounters whose visit record is due",
        name="passport_sync_encounters_due",
    ),
    Need(
        "openmrs_sync_parked",
        (("hospitalId", 1), ("personId", 1)),
        "parked rows by person",
        name="passport_sync_parked_person",
    ),
    Need(
        "openmrs_sync_parked",
        (("hospitalId", 1), ("reason", 1)),
        "parked rows by reason",
        name="passport_sync_parked_reason",
    ),
    # The app's SyncStatus model declares no index: this key is ours.
    Need("syncstatus", (("hospitalId", 1),), "a hospital's checkpoint", name="passport_sync_hospital"),
    # A key the app never uses (only the sync writes ``changes.hospital_id``): equality on the
    # hospital and action, then newest first, so a hospital's last run is the first key. The
    # outcome comes last: the last successful run is found on the index keys alone, however long
    # the streak of failed runs before it (no document is read for them).
    Need(
        "auditlogs",
        (("changes.hospital_id", 1), ("action", 1), ("createdAt", -1), ("changes.outcome", 1)),
        "a hospital's last run summaries",
        name="passport_sync_run_summary",
    ),
    # The app's models keep ``updatedAt`` (Mongoose timestamps) but index no key on it: ours.
    Need(
        "patients",
        (("updatedAt", 1),),
        "patients registered, corrected or deleted in the app since the last run",
        name="passport_sync_patients_changed",
    ),
    # Keys the app owns: reused when the app has built them, never created here.
    Need("patients", (("nationalId", 1),), "patients by national ID"),
    Need("doctors", (("openmrsProviderUuid", 1),), "doctors by OpenMRS provider"),
)


def key_of(info: Mapping[str, Any]) -> Key:
    return tuple((str(f), int(d)) if isinstance(d, int | float) else (str(f), 0) for f, d in info.get("key", []))


def serves(info: Mapping[str, Any], need: Need) -> bool:
    """True when an existing index answers the need's queries (and enforces its uniqueness)."""
    if info.get("partialFilterExpression"):
        return False
    key = key_of(info)
    if need.unique:
        return key == need.key and bool(info.get("unique"))
    return key[: len(need.key)] == need.key


@dataclass(slots=True)
class Finding:
    """What ``test-connection`` reports about one index."""

    collection: str
    subject: str
    level: str  # ok | warning | error
    detail: str
    hint: str = ""


@dataclass(slots=True)
class Plan:
    create: dict[str, list[Need]] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)


def plan(existing: Mapping[str, IndexInfo]) -> Plan:
    """What to create, and what to report, given the indexes per collection."""
    result = Plan()
    for need in NEEDS:
        indexes = existing.get(need.collection, {})
        subject = f"{need.collection} {', '.join(f for f, _ in need.key)}"
        serving = sorted(name for name, info in indexes.items() if serves(info, need))
        if serving:
            result.findings.append(Finding(need.collection, subject, "ok", f"{need.purpose}: {serving[0]}"))
        elif need.name is not None and need.name in indexes:
            result.findings.append(
                Finding(
                    need.collection,
                    subject,
                    "error",
                    f"{need.name} exists with another key or options",
                    f'drop it (db.{need.collection}.dropIndex("{need.name}")); the next sync-all rebuilds it',
                )
            )
        elif need.name is not None:
            result.create.setdefault(need.collection, []).append(need)
            result.findings.append(
                Finding(need.collection, subject, "warning", f"{need.name} missing", "the first sync-all creates it")
            )
        else:
            result.findings.append(
                Finding(
                    need.collection,
                    subject,
                    "warning",
                    f"no index: {need.purpose} scan the collection",
                    "start the Patient Passport backend once: it builds its own index on this key",
                )
            )
    result.findings.extend(app_conflicts(existing))
    return result


def app_conflicts(existing: Mapping[str, IndexInfo]) -> list[Finding]:
    """Indexes that stop the app from building one of its own (same name or key, other options)."""
    found = []
    for app in APP_INDEXES:
        for name, info in existing.get(app.collection, {}).items():
            same_name = name == app.name
            if not same_name and key_of(info) != app.key:
                continue
            if (
                same_name
                and key_of(info) == app.key
                and bool(info.get("unique")) == app.unique
                and bool(info.get("sparse")) == app.sparse
            ):
                continue
            wanted = ", ".join(k for k, on in (("unique", app.unique), ("sparse", app.sparse)) if on) or "plain"
            found.append(
                Finding(
                    app.collection,
                    f"{app.collection} {name}",
                    "error",
                    f"blocks the app's own index {app.name} ({wanted}): MongoDB refuses to build it beside this one",
                    f'drop it (db.{app.collection}.dropIndex("{name}")) and restart the Patient Passport backend'
                    + ("; remove duplicate values first" if app.unique else ""),
                )
            )
    return found


def create_options(need: Need) -> dict[str, Any]:
    options: dict[str, Any] = {"name": need.name}
    if need.unique:
        options["unique"] = True
    if need.sparse:
        options["sparse"] = True
    return options
