"""Helpers of the reliability suite: running the CLI as a process, counting what MongoDB holds,
and a TCP relay that plays a MySQL server going away (the shared MariaDB is never stopped)."""

from __future__ import annotations

import os
import re
import socket
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from bson import ObjectId

from tests.conftest import OpenMRSDatabase
from tests.helpers import synced

REPO_ROOT = Path(__file__).resolve().parents[2]
HOSPITAL = "60a7c2f5e4b0c1a2d3e4f5a6"

# Environment variables the tool reads: a developer's own settings must not leak into the tests.
_TOOL_ENV = re.compile(r"^(HOSPITAL_\d+_.*|MONGODB_URI|PASSPORT_SYNC_CONFIG|OPENMRS_.*)$")


def cli(*args: str) -> list[str]:
    """The passport-sync command line, run by this interpreter from this checkout."""
    return [sys.executable, "-m", "passport_sync", *args]


def cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not _TOOL_ENV.match(k)}
    env["PYTHONPATH"] = str(REPO_ROOT)
    env.update(extra)
    return env


def config_file(
    path: Path,
    mongo_uri: str,
    hospitals: list[dict[str, Any]],
    *,
    selection_timeout_ms: int = 3000,
    retry: dict[str, float] | None = None,
    mode: int = 0o600,
    **sync: Any,
) -> Path:
    """A hospitals.yaml; ``mongo_uri`` includes the database."""
    document = {
        "mongodb": {"uri": mongo_uri, "server_selection_timeout_ms": selection_timeout_ms},
        "sync": {"retry": retry or {"attempts": 2, "initial_wait_seconds": 0.01, "max_wait_seconds": 0.05}, **sync},
        "hospitals": hospitals,
    }
    path.write_text(yaml.safe_dump(document))
    path.chmod(mode)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(condition: Callable[[], bool], timeout: float, interval: float = 0.005) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()


def checkpoint(passport: Any, hospital_id: str = HOSPITAL) -> int:
    doc = passport.syncstatus.find_one({"hospitalId": hospital_id}, {"lastObsId": 1})
    return int((doc or {}).get("lastObsId") or 0)


def obs_ids_and_uuids(openmrs: OpenMRSDatabase, person_ids: Iterable[int] | None = None) -> dict[int, str]:
    """obs_id -> uuid of the observations (of these persons) in id order."""
    sql = "SELECT obs_id, uuid FROM obs"
    params: tuple[Any, ...] = ()
    persons = sorted(set(person_ids)) if person_ids is not None else None
    if persons is not None:
        if not persons:
            return {}
        sql += f" WHERE person_id IN ({', '.join(['%s'] * len(persons))})"
        params = tuple(persons)
    return {int(i): str(u) for i, u in openmrs.execute(sql + " ORDER BY obs_id", params)}


@dataclass
class Tally:
    """What MongoDB holds for one hospital, against what it should hold."""

    expected: int
    found: int
    duplicated: int
    missing: int
    unexpected: int
    parked_expected: int
    parked_found: int
    parked_missing: int
    parked_unexpected: int
    parked_and_written: int

    @property
    def exact(self) -> bool:
        return (
            self.found == self.expected
            and not (self.duplicated or self.missing or self.unexpected)
            and not (self.parked_missing or self.parked_unexpected or self.parked_and_written)
            and self.parked_found == self.parked_expected
        )

    def figures(self) -> dict[str, int]:
        return {
            "expected": self.expected,
            "found": self.found,
            "duplicated": self.duplicated,
            "missing": self.missing,
            "unexpected": self.unexpected,
            "parked_expected": self.parked_expected,
            "parked_found": self.parked_found,
        }


def tally(
    passport: Any, expected_records: Iterable[str], expected_parked: Iterable[str] = (), hospital_id: str = HOSPITAL
) -> Tally:
    expected = set(expected_records)
    parked_expected = set(expected_parked)
    counts = Counter(
        d["openmrsData"]["uuid"]
        for d in passport.medicalrecords.find(synced({"openmrsData.hospitalId": hospital_id}), {"openmrsData.uuid": 1})
    )
    parked = Counter(d["uuid"] for d in passport.openmrs_sync_parked.find({"hospitalId": hospital_id}, {"uuid": 1}))
    return Tally(
        expected=len(expected),
        found=sum(counts.values()),
        duplicated=sum(n - 1 for n in counts.values() if n > 1),
        missing=len(expected - set(counts)),
        unexpected=len(set(counts) - expected),
        parked_expected=len(parked_expected),
        parked_found=sum(parked.values()),
        parked_missing=len(parked_expected - set(parked)),
        parked_unexpected=len(set(parked) - parked_expected),
        parked_and_written=len(set(parked) & set(counts)),
    )


def assert_medical_history_consistent(passport: Any, *, links: bool = False) -> None:
    """With ``links`` (``sync.medical_history_links``), each patient's medicalHistory lists each of
    their records exactly once, and nothing else; without, it lists none of them."""
    by_patient: dict[str, set[ObjectId]] = {}
    for record in passport.medicalrecords.find({}, {"patientId": 1}):
        by_patient.setdefault(record["patientId"], set()).add(record["_id"])
    for patient in passport.patients.find({}, {"medicalHistory": 1}):
        history = patient.get("medicalHistory", [])
        assert len(history) == len(set(history)), f"duplicate medicalHistory entries on {patient['_id']}"
        expected = by_patient.get(str(patient["_id"]), set()) if links else set()
        assert set(history) == expected, f"medicalHistory of {patient['_id']}"


# -- national IDs, as the README defines them (independent of the tool's own code) ---------------------------
def digits_of(raw: str | None) -> str | None:
    """Digits-only national ID: whitespace, dashes, dots and slashes are ignored; anything else is invalid."""
    if raw is None:
        return None
    kept = "".join(ch for ch in raw if not (ch.isspace() or ch in "-./"))
    return kept if re.fullmatch(r"[0-9]{10,16}", kept, flags=re.ASCII) else None


def assert_every_record_on_the_right_patient(passport: Any, openmrs: OpenMRSDatabase, hospital_id: str) -> int:
    """Every record sits on the Passport patient whose nationalId equals the one national ID of the
    observation's OpenMRS person, that ID belongs to no other OpenMRS patient and to no other
    Passport patient. Returns how many records were checked."""
    identifiers: dict[int, set[str | None]] = {}
    for person_id, identifier in openmrs.execute(
        "SELECT pi.patient_id, pi.identifier FROM patient_identifier pi"
        " JOIN patient_identifier_type t ON t.patient_identifier_type_id = pi.identifier_type"
        " WHERE t.name LIKE '%%National%%ID%%' AND pi.voided = 0"
    ):
        identifiers.setdefault(int(person_id), set()).add(digits_of(str(identifier)))
    holders = Counter(d for ids in identifiers.values() for d in ids if d)
    passport_ids = {str(p["_id"]): p.get("nationalId") for p in passport.patients.find({}, {"nationalId": 1})}
    passport_holders = Counter(passport_ids.values())
    checked = 0
    for record in passport.medicalrecords.find(synced({"openmrsData.hospitalId": hospital_id})):
        person = int(record["openmrsData"]["personId"])
        national_id = passport_ids.get(record["patientId"])
        ids = identifiers.get(person, set())
        where = f"obs {record['openmrsData']['obsId']} of person {person} on patient {record['patientId']}"
        assert ids == {national_id}, f"{where}: OpenMRS IDs {ids} vs Passport {national_id!r}"
        assert holders[national_id] == 1, f"{where}: {holders[national_id]} OpenMRS patients hold that ID"
        assert passport_holders[national_id] == 1, f"{where}: {passport_holders[national_id]} Passport patients"
        checked += 1
    return checked


# -- a MySQL server that stops and restarts ------------------------------------------------------------------
class TcpProxy:
    """A TCP relay in front of the MariaDB server. ``stop()`` drops every relayed connection and
    closes the port (clients see "lost connection", then "connection refused"), ``start()`` opens the
    same port again: to the client, a MySQL server that stopped and restarted."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self.connections = 0
        self.outages = 0
        self._listener: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True, name="tcp-proxy").start()

    def stop(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            sockets, self._sockets = self._sockets, set()
            self.outages += 1
        if listener is not None:
            _close(listener)
        for sock in sockets:
            _close(sock)

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                _close(client)
                continue
            with self._lock:
                if self._listener is not listener:  # stopped meanwhile
                    _close(client)
                    _close(upstream)
                    return
                self._sockets |= {client, upstream}
                self.connections += 1
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                _close(sock)
            with self._lock:
                self._sockets -= {src, dst}


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
