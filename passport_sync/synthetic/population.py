"""The people of a synthetic country: unique 16-digit national IDs, the hospitals each visits, and
whether Patient Passport knows them. Deterministic for a given seed."""

from __future__ import annotations

import random
from dataclasses import dataclass

SEED = 20251106
GIVEN = ("Aline", "Jean", "Marie", "Eric", "Grace", "Patrick", "Claudine", "Emmanuel", "Diane", "Olivier")
FAMILY = ("Uwase", "Habimana", "Mukamana", "Niyonzima", "Ingabire", "Nshimiyimana", "Uwimana", "Mugisha")

UNREGISTERED_SHARE = 0.10
SECOND_HOSPITAL_SHARE = 0.15


@dataclass(frozen=True, slots=True)
class Population:
    """The people of the synthetic country: national IDs, and whether Patient Passport knows them."""

    national_ids: tuple[str, ...]
    registered: tuple[bool, ...]
    seed: int

    def visitors(self, index: int, hospitals: int) -> list[int]:
        """Person numbers with a record at hospital ``index``: their home one, sometimes a second."""
        rng = random.Random(f"{self.seed}:visits")
        found = []
        for person in range(len(self.national_ids)):
            second = rng.random() < SECOND_HOSPITAL_SHARE and hospitals > 1
            if person % hospitals == index or (second and (person + 1) % hospitals == index):
                found.append(person)
        return found


def make_population(patients: int, seed: int = SEED) -> Population:
    """``patients`` people with unique 16-digit national IDs; ~10% unknown to Patient Passport."""
    rng = random.Random(f"{seed}:people")
    ids: list[str] = []
    seen: set[str] = set()
    while len(ids) < patients:
        # 1, birth year, sex (7 or 8), serial, issue count, check digits: 16 digits.
        year, sex, serial = rng.randint(1940, 2020), rng.choice("78"), rng.randrange(10**7)
        nid = f"1{year}{sex}{serial:07d}{rng.randrange(10)}{rng.randrange(100):02d}"
        if nid not in seen:
            seen.add(nid)
            ids.append(nid)
    registered = tuple(rng.random() >= UNREGISTERED_SHARE for _ in ids)
    return Population(tuple(ids), registered, seed)
