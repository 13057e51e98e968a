"""Creating the sync's own indexes and reporting on every index it relies on (``store.indexes``).

What to create is decided by the pure ``indexes.plan``; this module reads and writes.
"""

from __future__ import annotations

import logging
from typing import Any

from pymongo import IndexModel

from passport_sync.sink import indexes
from passport_sync.sink.gateway import Concern

log = logging.getLogger("passport_sync")


class Indexes(Concern):
    def _existing(self) -> dict[str, dict[str, Any]]:
        names = sorted({n.collection for n in indexes.NEEDS} | {a.collection for a in indexes.APP_INDEXES})
        return self._gw.call(
            "index listing", lambda: {name: dict(self._db[name].index_information()) for name in names}
        )

    def ensure(self) -> list[indexes.Finding]:
        """Create the tool's own missing indexes; never touch one on a key or name the app uses.

        Returns the conflicts found (indexes that stop the app from building its own), which
        are logged as warnings: the sync itself still works.
        """
        planned = indexes.plan(self._existing())

        def create() -> None:
            # One createIndexes command per collection; nothing when every index exists.
            for collection, needs in planned.create.items():
                self._db[collection].create_indexes(
                    [IndexModel(list(n.key), **indexes.create_options(n)) for n in needs]
                )

        if planned.create:
            self._gw.call("index creation", create)
        conflicts = [f for f in planned.findings if f.level == "error"]
        for conflict in conflicts:
            log.warning("MongoDB index %s: %s; fix: %s", conflict.subject, conflict.detail, conflict.hint)
        return conflicts

    def findings(self) -> list[indexes.Finding]:
        """Every index the sync relies on, and every index that blocks one of the app's."""
        return indexes.plan(self._existing()).findings
