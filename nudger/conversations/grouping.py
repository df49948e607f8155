"""Grouping people into circles (pure, deterministic for a seed).

F1 rule: circles of 3-5 (target size configurable), nobody left out when there are at least three
people, and teammates spread across circles as far as the numbers allow: people are dealt, team by
team (largest first), round-robin across the circles, like cards.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

MIN_SIZE = 3
MAX_SIZE = 5


@dataclass(frozen=True)
class Candidate:
    person_id: int
    team: str


def circle_count(n: int, target: int) -> int:
    """How many circles for n people: as close to `target` as possible, never below MIN_SIZE."""
    if n < MIN_SIZE:
        return 0
    count = math.ceil(n / target)
    while count > 1 and n / count < MIN_SIZE:
        count -= 1
    while n / count > MAX_SIZE:
        count += 1
    return count


def form_circles(candidates: Sequence[Candidate], *, target: int = 4, seed: int = 0) -> list[list[int]]:
    """Split candidates into circles of MIN_SIZE..MAX_SIZE, teammates spread apart. [] if fewer than 3."""
    count = circle_count(len(candidates), target)
    if count == 0:
        return []
    rng = random.Random(seed)
    teams: dict[str, list[int]] = defaultdict(list)
    for c in sorted(candidates, key=lambda c: c.person_id):
        teams[c.team].append(c.person_id)
    order = sorted(teams, key=lambda t: (-len(teams[t]), t))
    circles: list[list[int]] = [[] for _ in range(count)]
    slot = rng.randrange(count)
    for team in order:
        members = teams[team]
        rng.shuffle(members)
        for person_id in members:
            circles[slot].append(person_id)
            slot = (slot + 1) % count
    return circles
