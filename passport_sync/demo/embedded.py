"""The demo's embedded MongoDB (``secantus``, the ``demo`` extra), for the demo command and for
any command whose configuration sets ``mongodb.embedded_data_dir``: the demo's
``hospitals.yaml`` does, so ``status``, ``check``, ``sync-patient`` and ``sync-all`` work on the
demo's data after the demo command ended. The server runs for as long as one command does, on the
folder that keeps its data; production configurations never set the key nor load the server.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from pydantic import SecretStr

from passport_sync.config import Settings
from passport_sync.errors import UsageError
from passport_sync.synthetic.mongodb import embedded_server


def using_uri(settings: Settings, uri: str) -> Settings:
    """``settings`` talking to the MongoDB at ``uri``, with no embedded server to start."""
    mongodb = settings.mongodb.model_copy(update={"uri": SecretStr(uri), "embedded_data_dir": None})
    return settings.model_copy(update={"mongodb": mongodb})


@contextmanager
def embedded_mongodb(settings: Settings) -> Iterator[Settings]:
    """Start the embedded server the configuration asks for; yield the settings that use it
    (same database name as ``mongodb.uri``)."""
    folder = settings.mongodb.embedded_data_dir
    if folder is None:
        yield settings
        return
    if not folder.is_absolute() and settings.source_path is not None:
        folder = settings.source_path.parent / folder
    if not folder.is_dir():
        raise UsageError(
            f"mongodb.embedded_data_dir: {folder} does not exist",
            hint="run `passport-sync demo` first (it creates it), or fix the path",
        )
    with embedded_server(folder) as server_uri:
        yield using_uri(settings, f"{server_uri}/{settings.database_name}")
