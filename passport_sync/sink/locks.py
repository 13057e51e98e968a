"""Per-hospital leases in ``openmrs_sync_locks`` (``store.locks``): one run at a time per hospital,
across processes and hosts; a lease its holder stops renewing expires, and one left by a process
that died on this host is taken over at once."""

from __future__ import annotations

import logging
import os
import re
import secrets
import socket
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from passport_sync.errors import LockHeld
from passport_sync.sink.gateway import LOCKS, Concern

log = logging.getLogger("passport_sync")


def utcnow() -> datetime:
    return datetime.now(UTC)


class Locks(Concern):
    def acquire(self, hospital_id: str, owner: str, ttl: timedelta) -> None:
        """Take the hospital's lease, or take over one whose holder stopped renewing it."""

        def take() -> None:
            now = utcnow()
            try:
                self._db[LOCKS].find_one_and_update(
                    {"_id": hospital_id, "$or": [{"expiresAt": {"$lte": now}}, {"owner": owner}]},
                    {"$set": {"owner": owner, "expiresAt": now + ttl, "acquiredAt": now}},
                    upsert=True,
                    return_document=ReturnDocument.AFTER,
                )
            except DuplicateKeyError:
                holder = self._db[LOCKS].find_one({"_id": hospital_id}) or {}
                if _died_on_this_host(str(holder.get("owner", ""))):
                    taken = self._db[LOCKS].update_one(
                        {"_id": hospital_id, "owner": holder["owner"]},
                        {"$set": {"owner": owner, "expiresAt": now + ttl, "acquiredAt": now}},
                    )
                    if taken.matched_count == 1:
                        log.warning(
                            "hospital %s: took over the lock of a run that died (%s)", hospital_id, holder["owner"]
                        )
                        return
                raise LockHeld(
                    f"hospital {hospital_id} is being synced by {holder.get('owner', 'another run')} "
                    f"(lease until {holder.get('expiresAt')})",
                    hint="wait for that run to finish; a lease left by a killed run expires by itself",
                ) from None

        self._gw.call("taking the lock", take)

    def renew(self, hospital_id: str, owner: str, ttl: timedelta) -> None:

        def renew() -> None:
            result = self._db[LOCKS].update_one(
                {"_id": hospital_id, "owner": owner}, {"$set": {"expiresAt": utcnow() + ttl}}
            )
            if result.matched_count == 0:
                raise LockHeld(
                    f"hospital {hospital_id}: the lease was lost (expired and taken over); stopping this run",
                    hint="raise sync.lock_ttl_seconds if batches take longer than the lease",
                )

        self._gw.call("renewing the lock", renew)

    def release(self, hospital_id: str, owner: str) -> None:
        self._gw.call("releasing the lock", lambda: self._db[LOCKS].delete_one({"_id": hospital_id, "owner": owner}))

    def release_of_this_process(self) -> int:
        """Release every lease this process holds, in one attempt (on Ctrl-C, for the hospitals
        still running on worker threads); returns how many."""
        mine = {"owner": {"$regex": "^" + re.escape(_process_owner_prefix())}}
        return self._gw.once("releasing this run's locks", lambda: self._db[LOCKS].delete_many(mine).deleted_count)

    def holder(self, hospital_id: str) -> dict[str, Any] | None:
        doc: dict[str, Any] | None = self._gw.call(
            "reading the lock", lambda: self._db[LOCKS].find_one({"_id": hospital_id})
        )
        if doc and doc.get("expiresAt") and doc["expiresAt"].replace(tzinfo=UTC) > utcnow():
            return doc
        return None


def _pid_namespace() -> str:
    try:
        return os.readlink("/proc/self/ns/pid").removeprefix("pid:[").removesuffix("]")
    except OSError:
        return "-"


def _process_owner_prefix() -> str:
    return f"{socket.gethostname()}:{_pid_namespace()}:{os.getpid()}:"


def lock_owner() -> str:
    """Who holds a lease: host, pid namespace, pid and a random suffix (unique per run)."""
    return f"{_process_owner_prefix()}{secrets.token_hex(4)}"


def _died_on_this_host(owner: str) -> bool:
    """True when the lease holder ran on this host, in this pid namespace, and its process is gone.

    Then a killed run's lease is taken over at once instead of after its expiry. Any doubt
    (another host, another container, a live or unknown pid) answers False: wait for expiry.
    """
    parts = owner.split(":")
    if len(parts) != 4 or parts[0] != socket.gethostname() or parts[1] in ("-", "") or parts[1] != _pid_namespace():
        return False
    try:
        pid = int(parts[2])
    except ValueError:
        return False
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False
