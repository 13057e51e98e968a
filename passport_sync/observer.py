"""Progress reporting seen from the core: a protocol, so the core never imports Rich or Typer."""

from __future__ import annotations

from typing import Protocol

from passport_sync.models import HospitalReport


class SyncObserver(Protocol):
    def hospital_started(self, hospital_id: str, hospital_name: str) -> None: ...

    def batch_done(self, report: HospitalReport, phase: str) -> None: ...

    def hospital_done(self, report: HospitalReport) -> None: ...


class NullObserver:
    """The default: observes nothing. Non-UI callers can leave it as is."""

    def hospital_started(self, hospital_id: str, hospital_name: str) -> None:
        return None

    def batch_done(self, report: HospitalReport, phase: str) -> None:
        return None

    def hospital_done(self, report: HospitalReport) -> None:
        return None
