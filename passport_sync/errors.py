"""The exception tree of passport-sync, grouped by what the caller should do.

Adapters translate driver errors (pymysql, pymongo) into these classes at the edge; nothing
above the adapters catches a driver exception. The CLI maps each class to an exit code in
one place (``passport_sync.cli``). Messages never contain passwords or patient identities.
"""

from __future__ import annotations


class PassportSyncError(Exception):
    """Base class of every error this package raises on purpose."""

    hint: str = ""

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        if hint:
            self.hint = hint


class ConfigError(PassportSyncError):
    """The configuration is invalid; nothing was read or written."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid configuration:\n" + "\n".join(f"  - {p}" for p in problems))


class UsageError(PassportSyncError):
    """A command was called with arguments that cannot work (unknown hospital, bad date)."""


class RetriableError(PassportSyncError):
    """A transient failure: the same call may succeed if tried again."""


class SourceUnavailable(RetriableError):
    """The hospital's OpenMRS database cannot be reached right now."""


class SinkUnavailable(RetriableError):
    """The Patient Passport MongoDB cannot be reached right now."""


class FatalError(PassportSyncError):
    """A failure that retrying will not fix (wrong password, missing table, bad schema)."""


class SourceError(FatalError):
    """The OpenMRS database answered, but not in a way we can sync from."""


class SinkError(FatalError):
    """MongoDB refused a write for a reason retrying will not fix."""


class LockHeld(PassportSyncError):
    """Another run holds the lease lock of this hospital."""


class NothingMatched(PassportSyncError):
    """A national ID matched no patient in OpenMRS nor in Patient Passport."""
