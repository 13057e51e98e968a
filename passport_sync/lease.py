"""The hospital's lease lock, held for one run: taken (waiting a while if asked), renewed before
it can expire, released at the end whatever happened."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Protocol

from passport_sync.errors import LockHeld, PassportSyncError

log = logging.getLogger("passport_sync")


class LockStore(Protocol):
    def acquire(self, hospital_id: str, owner: str, ttl: timedelta) -> None: ...
    def renew(self, hospital_id: str, owner: str, ttl: timedelta) -> None: ...
    def release(self, hospital_id: str, owner: str) -> None: ...


class Lease:
    """One hospital's lock for one run; ``renew`` is cheap to call after every batch."""

    def __init__(
        self, locks: LockStore, hospital_id: str, owner: str, ttl: timedelta, clock: Callable[[], datetime]
    ) -> None:
        self._locks = locks
        self._hospital_id = hospital_id
        self._owner = owner
        self._ttl = ttl
        self._clock = clock
        self._renewed_at: datetime | None = None

    @property
    def held(self) -> bool:
        return self._renewed_at is not None

    def acquire(self, wait: timedelta = timedelta(0)) -> None:
        """Take the lock; wait up to ``wait`` for a running sync to finish (LockHeld after)."""
        deadline = time.monotonic() + wait.total_seconds()
        while True:
            try:
                self._locks.acquire(self._hospital_id, self._owner, self._ttl)
                break
            except LockHeld:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(1.0)
        self._renewed_at = self._clock()

    def renew(self) -> None:
        """Push the expiry out once a third of the lease has passed."""
        if self._renewed_at is None:
            return
        if self._clock() - self._renewed_at >= self._ttl / 3:
            self._locks.renew(self._hospital_id, self._owner, self._ttl)
            self._renewed_at = self._clock()

    def release(self, hospital_name: str) -> None:
        if self._renewed_at is None:
            return
        self._renewed_at = None
        try:
            self._locks.release(self._hospital_id, self._owner)
        except PassportSyncError as exc:
            log.warning("%s: could not release the lock (it will expire): %s", hospital_name, exc)
