"""Keys written since reconciliation last compared them with OpenMRS. Pure.

Reconciliation keeps, per row (and per person), the checksum of the OpenMRS state it compared with
the Passport; a later pass re-reads a row only where OpenMRS now differs from that. So the kept
checksum must describe what the Passport reflects. Every other writer (sync-all, sync-patient,
landing parked rows, re-rendering) writes what OpenMRS says *now*, which the kept checksum no
longer describes: a change followed by an in-place undo would bring OpenMRS back to the kept
checksum while the Passport still shows the change. So each writer marks the keys it writes as
unverified (stored with the checkpoint, before or with the write), and the next pass re-reads every
unverified key in the ranges it checks, keeps the checksum of what it compared, and clears them.

Marks are kept as sorted, disjoint intervals of primary keys. A long list
is shortened by joining the intervals closest to each other: that only ever marks more keys,
which costs re-reads, never a missed repair.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Mapping
from typing import Any

Interval = tuple[int, int]

# Intervals kept per feed; beyond this the closest ones are joined.
MAX_INTERVALS = 500
FIELD = "unverified"


def add(intervals: Iterable[Interval], more: Iterable[Interval]) -> list[Interval]:
    """The union of both, as sorted disjoint intervals (adjacent ones joined), at most
    ``MAX_INTERVALS`` long."""
    merged: list[Interval] = []
    for low, high in sorted([*intervals, *more]):
        if merged and low <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], high))
        else:
            merged.append((low, high))
    while len(merged) > MAX_INTERVALS:
        # Join the pair with the smallest gap between them.
        at = min(range(len(merged) - 1), key=lambda i: merged[i + 1][0] - merged[i][1])
        merged[at : at + 2] = [(merged[at][0], merged[at + 1][1])]
    return merged


def of_keys(keys: Iterable[int]) -> list[Interval]:
    return add([], ((k, k) for k in keys))


def covers(intervals: Iterable[Interval], keys: Iterable[int]) -> bool:
    """True when every key is inside one of ``intervals`` (sorted and disjoint, as ``add`` keeps
    them): a binary search a key, since every batch a run writes asks this."""
    spans = list(intervals)
    return all(contains(spans, key) for key in keys)


def within(intervals: Iterable[Interval], low: int, high: int) -> list[Interval]:
    """The parts of ``intervals`` inside ``low..high``."""
    return [(max(a, low), min(b, high)) for a, b in intervals if a <= high and b >= low]


def remove(intervals: Iterable[Interval], low: int, high: int) -> list[Interval]:
    """``intervals`` without ``low..high``."""
    kept: list[Interval] = []
    for a, b in intervals:
        if b < low or a > high:
            kept.append((a, b))
            continue
        if a < low:
            kept.append((a, low - 1))
        if b > high:
            kept.append((high + 1, b))
    return kept


def contains(intervals: Iterable[Interval], key: int) -> bool:
    """Whether ``key`` is inside one of ``intervals`` (sorted and disjoint)."""
    spans = intervals if isinstance(intervals, list) else list(intervals)
    at = bisect_right(spans, (key, key)) - 1
    # The interval starting at or before the key, or one starting at the key itself.
    return any(0 <= i < len(spans) and spans[i][0] <= key <= spans[i][1] for i in (at, at + 1))


def ranges_touched(intervals: Iterable[Interval], range_size: int, first: int, last: int) -> set[int]:
    """The indexes, among ranges ``first..last``, of the ranges holding an unverified key."""
    touched: set[int] = set()
    for low, high in within(intervals, first * range_size + 1, (last + 1) * range_size):
        touched.update(range((low - 1) // range_size, (high - 1) // range_size + 1))
    return touched


def load(syncstatus: Mapping[str, Any]) -> dict[str, list[Interval]]:
    """The marks stored with the checkpoint (``syncstatus.unverified.<feed>``)."""
    stored = syncstatus.get(FIELD) or {}
    return {
        str(name): [(int(a), int(b)) for a, b in spans] for name, spans in stored.items() if isinstance(spans, list)
    }


def stored(name: str, intervals: Iterable[Interval]) -> dict[str, Any]:
    """The checkpoint field that keeps one feed's marks."""
    return {f"{FIELD}.{name}": [[a, b] for a, b in intervals]}
