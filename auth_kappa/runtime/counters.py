"""What every runtime counts per reading: accepted, duplicates, late and quarantined;
conflicts (resends with another value) are quarantined too, and also counted apart."""

from __future__ import annotations

from dataclasses import dataclass

from auth_kappa.topology.processor import StepResult


@dataclass
class Counters:
    accepted: int = 0
    duplicates: int = 0
    late: int = 0
    quarantined: int = 0
    conflicts: int = 0

    def add(self, r: StepResult) -> None:
        self.accepted += r.accepted
        self.duplicates += r.duplicates
        self.late += len(r.late)
        self.quarantined += len(r.rejects)
        self.conflicts += r.conflicts
