"""Circles: everyone placed once, sizes 3..5, deterministic per seed, teammates spread apart."""

from __future__ import annotations

from collections import Counter

import pytest

from nudger.conversations.grouping import MAX_SIZE, MIN_SIZE, Candidate, form_circles

TEAMS = ("Sales", "Ops", "Finance", "Support", "Legal", "IT", "HR")


def people(n: int, teams: int = 3) -> list[Candidate]:
    return [Candidate(person_id=1000 + i, team=TEAMS[i % teams]) for i in range(n)]


@pytest.mark.parametrize("target", [3, 4, 5])
@pytest.mark.parametrize("n", range(61))
def test_everyone_is_placed_once_in_a_circle_of_three_to_five(n: int, target: int) -> None:
    candidates = people(n)
    circles = form_circles(candidates, target=target, seed=7)
    if n < MIN_SIZE:
        assert circles == []
        return
    placed = [pid for circle in circles for pid in circle]
    assert sorted(placed) == sorted(c.person_id for c in candidates)
    assert all(MIN_SIZE <= len(circle) <= MAX_SIZE for circle in circles), [len(c) for c in circles]


@pytest.mark.parametrize("target", [3, 4, 5])
def test_circles_are_close_to_the_target_size(target: int) -> None:
    circles = form_circles(people(60), target=target, seed=1)
    assert len(circles) == 60 // target
    assert {len(c) for c in circles} == {target}


def test_same_seed_same_circles_and_input_order_does_not_matter() -> None:
    candidates = people(20, teams=4)
    first = form_circles(candidates, target=4, seed=42)
    assert form_circles(candidates, target=4, seed=42) == first
    assert form_circles(list(reversed(candidates)), target=4, seed=42) == first


def test_different_seeds_give_different_circles() -> None:
    candidates = people(20, teams=4)
    groupings = {
        tuple(sorted(tuple(sorted(c)) for c in form_circles(candidates, target=4, seed=seed)))
        for seed in range(5)
    }
    assert len(groupings) == 5


def test_teammates_are_never_together_when_the_numbers_allow() -> None:
    # 4 teams of 5 people, target 4 → 5 circles of 4: each circle can hold one person per team
    candidates = [Candidate(person_id=10 * t + i, team=TEAMS[t]) for t in range(4) for i in range(5)]
    team_of = {c.person_id: c.team for c in candidates}
    for seed in range(20):
        circles = form_circles(candidates, target=4, seed=seed)
        assert len(circles) == 5
        for circle in circles:
            teams = [team_of[pid] for pid in circle]
            assert len(teams) == len(set(teams)), (seed, circle, teams)


@pytest.mark.parametrize(
    "sizes",
    [
        {"Sales": 10, "Ops": 2, "Legal": 2},
        {"Sales": 12, "Ops": 3},
        {"Sales": 17, "Ops": 1, "IT": 1, "HR": 1},
        {"Sales": 30},
        {"Sales": 9, "Ops": 8, "IT": 4},
    ],
)
def test_a_dominant_team_is_spread_as_evenly_as_possible(sizes: dict[str, int]) -> None:
    candidates = [
        Candidate(person_id=1000 * t + i, team=team)
        for t, (team, size) in enumerate(sizes.items())
        for i in range(size)
    ]
    team_of = {c.person_id: c.team for c in candidates}
    for seed in range(10):
        circles = form_circles(candidates, target=4, seed=seed)
        for team in sizes:
            per_circle = [Counter(team_of[pid] for pid in circle)[team] for circle in circles]
            assert max(per_circle) - min(per_circle) <= 1, (team, per_circle)
