"""A tracer hook in the two adapters: every MySQL statement and every MongoDB command is reported,
with what it was for, to whoever listens (the benchmark, tests counting round trips).

With no listener, a report costs one list check. Listeners are process-wide, so a read-ahead
thread or a ``--workers`` thread is traced too; each call says which hospital and thread sent it.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

MYSQL = "mysql"
MONGODB = "mongodb"


@dataclass(frozen=True, slots=True)
class Call:
    """One round trip: which system, for whom, why, and how long it took."""

    system: str
    purpose: str
    hospital: str
    seconds: float
    thread: str


Listener = Callable[[Call], None]

_listeners: list[Listener] = []
_listeners_lock = threading.Lock()
_local = threading.local()


def report(system: str, purpose: str, seconds: float, hospital: str = "") -> None:
    """Called by the adapters after each round trip."""
    if not _listeners:
        return
    call = Call(system, purpose, hospital or current_hospital(), seconds, threading.current_thread().name)
    for listener in list(_listeners):
        listener(call)


@contextmanager
def traced(listener: Listener) -> Iterator[Listener]:
    """Report every round trip to ``listener`` while the block runs."""
    with _listeners_lock:
        _listeners.append(listener)
    try:
        yield listener
    finally:
        with _listeners_lock:
            _listeners.remove(listener)


@contextmanager
def on_behalf_of(hospital_id: str) -> Iterator[None]:
    """Name the hospital whose work this thread is doing: MongoDB commands carry no hospital."""
    previous = getattr(_local, "hospital", "")
    _local.hospital = hospital_id
    try:
        yield
    finally:
        _local.hospital = previous


def current_hospital() -> str:
    return str(getattr(_local, "hospital", ""))


@dataclass
class CallCounter:
    """A listener that counts round trips and sums their time, by system, purpose and hospital."""

    calls: Counter[tuple[str, str]] = field(default_factory=Counter)
    seconds: dict[tuple[str, str], float] = field(default_factory=dict)
    by_hospital: Counter[tuple[str, str]] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __call__(self, call: Call) -> None:
        key = (call.system, call.purpose)
        with self._lock:
            self.calls[key] += 1
            self.seconds[key] = self.seconds.get(key, 0.0) + call.seconds
            self.by_hospital[(call.system, call.hospital)] += 1

    def total(self, system: str) -> int:
        return sum(n for (s, _), n in self.calls.items() if s == system)

    def of_hospital(self, system: str, hospital: str) -> int:
        return self.by_hospital[(system, hospital)]

    def purposes(self, system: str) -> dict[str, int]:
        return {p: n for (s, p), n in self.calls.most_common() if s == system}
