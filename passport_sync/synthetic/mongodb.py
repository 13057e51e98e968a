"""The embedded MongoDB (SecantusDB, the ``demo`` extra): one start-up for the demo, the tests and
the benchmark. Production configurations never load it."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pymongo
from pymongo.errors import PyMongoError

from passport_sync.errors import SinkError, UsageError
from passport_sync.synthetic.processes import stop

_READY_SECONDS = 60


@contextmanager
def embedded_server(folder: Path, *, separate_process: bool = False) -> Iterator[str]:
    """An embedded MongoDB keeping its data in ``folder``; yields its URI (no database).

    ``separate_process`` runs it as its own process (``secantusd-py``, log in ``<folder>.log``):
    the benchmark's figures then hold neither its CPU nor its memory.
    """
    if separate_process:
        with _server_process(folder) as uri:
            yield uri
        return
    try:
        from secantus import SecantusDBServer
    except ImportError:
        raise UsageError(
            "the embedded MongoDB of the demo needs the secantusdb package, which is not installed",
            hint="pip install 'passport-sync[demo]', or pass --mongodb-uri mongodb://HOST:PORT/DATABASE",
        ) from None
    try:
        server = SecantusDBServer(storage_path=str(folder), port=0)
        server.start()
    except Exception as exc:  # noqa: BLE001 - the storage engine raises its own exception types
        raise SinkError(
            f"cannot start the embedded MongoDB on {folder}: {exc.__class__.__name__}: {exc}",
            hint="is another passport-sync command using the demo's data (this folder) right now?",
        ) from None
    try:
        yield str(server.uri).rstrip("/")
    finally:
        server.stop()


def server_command(folder: Path, port: int = 0) -> list[str]:
    """The command line serving ``folder`` in its own process (installed beside this Python)."""
    daemon = Path(sys.executable).with_name("secantusd-py")
    return [str(daemon), "--host", "127.0.0.1", "--port", str(port), "--storage-path", str(folder)]


@contextmanager
def _server_process(folder: Path) -> Iterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    uri = f"mongodb://127.0.0.1:{port}"
    with open(folder.parent / f"{folder.name}.log", "wb") as log:
        process = subprocess.Popen(server_command(folder, port), stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + _READY_SECONDS
            while not answers(uri):
                if time.monotonic() > deadline or process.poll() is not None:
                    raise SinkError(f"the embedded MongoDB on {folder} does not answer", hint=f"see {log.name}")
                time.sleep(0.3)
            yield uri
        finally:
            stop(process)


def answers(uri: str) -> bool:
    """Whether a MongoDB server answers at ``uri`` within a second."""
    client: pymongo.MongoClient[dict[str, object]] = pymongo.MongoClient(uri, serverSelectionTimeoutMS=1000)
    try:
        client.admin.command("ping")
        return True
    except PyMongoError:
        return False
    finally:
        client.close()
