"""A sync with its round trips counted through the tracer hook (:mod:`passport_sync.tracing`):
MySQL statements by ``OpenMRSSource`` method, MongoDB commands by store call and command, and the
time each took. Used by the benchmark's child process and the statement-bound test."""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from passport_sync import service, tracing
from passport_sync.config import Settings, load_settings
from passport_sync.sink.passport import PassportStore

READ_AHEAD = " (read-ahead)"


def _is_read_ahead(thread: str) -> bool:
    """The pipeline's reader thread: neither the main thread nor a ``--workers`` hospital thread."""
    return not thread.startswith(("MainThread", "hospital"))


@dataclass(slots=True)
class CountedSync:
    seconds: float
    mysql_statements: int
    mysql_by_hospital: dict[str, int]
    mysql_by_method: dict[str, int]
    mongo_commands: int
    mongo_by_hospital: dict[str, int]
    # "<store call>/<command>" -> commands
    mongo_by_purpose: dict[str, int]
    reports: list[dict[str, Any]]
    # Seconds of the round trips, by purpose: the reader thread's MySQL time (marked "(read-ahead)")
    # overlaps the writes, so it is kept apart.
    mysql_seconds: dict[str, float] = field(default_factory=dict)
    mongo_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def mongo_by_command(self) -> dict[str, int]:
        by_command: Counter[str] = Counter()
        for purpose, n in self.mongo_by_purpose.items():
            by_command[purpose.rsplit("/", 1)[-1]] += n
        return dict(by_command.most_common())

    def split(self) -> dict[str, float]:
        """Wall time of the run: MySQL on the main thread, MongoDB, and the rest (the sync's CPU);
        reads on the read-ahead thread overlap the others and are shown apart."""
        ahead = sum(v for k, v in self.mysql_seconds.items() if k.endswith(READ_AHEAD))
        mysql = sum(self.mysql_seconds.values()) - ahead
        mongo = sum(self.mongo_seconds.values())
        return {
            "mysql": round(mysql, 3),
            "mongodb": round(mongo, 3),
            "sync_cpu_and_rest": round(self.seconds - mysql - mongo, 3),
            "mysql_read_ahead_overlapped": round(ahead, 3),
        }


def counted_sync(settings: Settings, mode: str = "sync") -> CountedSync:
    """``service.sync_all`` (or ``service.reconcile``) over every enabled hospital, counting each
    round trip the tracer reports, from connecting to MongoDB to closing the client (its
    ``endSessions`` is a command of the run too). The store is made by ``PassportStore.connect``,
    which registers the tracer's command listener on its client."""
    counter = tracing.CallCounter()

    def listen(call: tracing.Call) -> None:
        if call.system == tracing.MYSQL and _is_read_ahead(call.thread):
            call = dataclasses.replace(call, purpose=call.purpose + READ_AHEAD)
        counter(call)

    hospitals = service.select_hospitals(settings, None)
    with tracing.traced(listen):
        store = PassportStore.connect(settings)
        try:
            started = time.perf_counter()
            if mode == "reconcile":
                reports = service.reconcile(settings, store, hospitals)
            else:
                reports = service.sync_all(settings, store, hospitals)
            seconds = time.perf_counter() - started
        finally:
            store.close()

    def seconds_of(system: str) -> dict[str, float]:
        found = {p: t for (s, p), t in counter.seconds.items() if s == system}
        return {p: round(t, 3) for p, t in sorted(found.items(), key=lambda item: -item[1])}

    return CountedSync(
        seconds=seconds,
        mysql_statements=counter.total(tracing.MYSQL),
        mysql_by_hospital={h.id: counter.of_hospital(tracing.MYSQL, h.id) for h in hospitals},
        mysql_by_method=counter.purposes(tracing.MYSQL),
        mongo_commands=counter.total(tracing.MONGODB),
        mongo_by_hospital={h.id: counter.of_hospital(tracing.MONGODB, h.id) for h in hospitals},
        mongo_by_purpose=counter.purposes(tracing.MONGODB),
        reports=[r.as_dict() for r in reports],
        mysql_seconds=seconds_of(tracing.MYSQL),
        mongo_seconds=seconds_of(tracing.MONGODB),
    )


def sync_settings(mongo_uri: str, hospitals: list[dict[str, Any]], batch_size: int, workers: int = 1) -> Settings:
    """The benchmark's settings; one worker unless told (the backfill table compares with earlier
    runs, which synced the hospitals one after the other)."""
    return load_settings(
        None,
        environ={},
        overrides={
            "mongodb": {"uri": mongo_uri, "server_selection_timeout_ms": 10_000},
            "hospitals": hospitals,
            "sync": {
                "batch_size": batch_size,
                "workers": workers,
                "retry": {"attempts": 3, "initial_wait_seconds": 0.05, "max_wait_seconds": 0.5},
            },
        },
    )


__all__ = ["READ_AHEAD", "CountedSync", "counted_sync", "sync_settings"]
