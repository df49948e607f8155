"""Circles: everyone placed once, sizes 3..5, deterministic per seed, teammates spread apart; no
repeats, avoid lists respected, shared working hours, the objective's weights, stats, late joiners."""

from __future__ import annotations

import dataclasses
import itertools
import math
import random
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime

import pytest

from nudger.conversations.grouping import (
    MAX_SIZE,
    MIN_SIZE,
    REFERENCE_MOMENT,
    Candidate,
    PersonId,
    Weights,
    best_circle_for,
    form_circles,
    form_circles_with_stats,
    grouping_stats,
    utc_offset_minutes,
    working_overlap_minutes,
)

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


# ------------------------------------------------------------------------------------ the F5 objective

ZONES = (  # 20 timezones, as in ../shared/tools/grouping_check.py
    "Europe/London",
    "Europe/Berlin",
    "Europe/Madrid",
    "Europe/Warsaw",
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Los_Angeles",
    "America/Sao_Paulo",
    "Asia/Kolkata",
    "Asia/Singapore",
    "Asia/Tokyo",
    "Australia/Sydney",
    "Africa/Johannesburg",
    "Europe/Helsinki",
    "Asia/Dubai",
    "America/Toronto",
    "Europe/Paris",
    "Asia/Shanghai",
    "Pacific/Auckland",
)


def pairs_of(circles: Sequence[Sequence[PersonId]]) -> set[frozenset[PersonId]]:
    return {frozenset(p) for circle in circles for p in itertools.combinations(circle, 2)}


def history_of(circles: Sequence[Sequence[PersonId]]) -> list[tuple[PersonId, PersonId]]:
    return [(a, b) for circle in circles for a, b in itertools.combinations(circle, 2)]


def organisation(
    n: int, seed: int, teams: int = 300, rounds: int = 5
) -> tuple[list[Candidate], list[tuple[PersonId, PersonId]]]:
    """Like the independent checker: skewed team sizes, each team over three of the 20 timezones, a few
    avoid lists, and earlier rounds of random circles of four."""
    rng = random.Random(seed)
    weights = [1 / (t + 1) ** 0.8 for t in range(teams)]
    team_of = rng.choices(range(teams), weights=weights, k=n)
    ids: list[PersonId] = [f"p{i}" for i in range(n)]
    people = [
        Candidate(ids[i], f"t{team_of[i]}", ZONES[(team_of[i] * 7 + rng.randrange(3)) % len(ZONES)])
        for i in range(n)
    ]
    for i in rng.sample(range(n), max(1, n // 200)):
        people[i] = dataclasses.replace(people[i], avoid=frozenset({ids[rng.randrange(n)]}))
    history: list[tuple[PersonId, PersonId]] = []
    for _ in range(rounds):
        rng.shuffle(ids)
        history += history_of([ids[k : k + 4] for k in range(0, n - 3, 4)])
    return people, history


def assert_valid(circles: Sequence[Sequence[PersonId]], candidates: Sequence[Candidate]) -> None:
    placed = [m for circle in circles for m in circle]
    assert Counter(placed) == Counter(c.person_id for c in candidates)
    assert all(MIN_SIZE <= len(circle) <= MAX_SIZE for circle in circles), [len(c) for c in circles]


@pytest.mark.parametrize(("n", "seed"), [(100, 1), (100, 2), (300, 1), (2000, 2), (5000, 3)])
def test_a_realistic_organisation_meets_every_target(n: int, seed: int) -> None:
    people, history = organisation(n, seed)
    circles = form_circles(people, target=4, seed=seed, history=history)
    assert_valid(circles, people)
    stats = grouping_stats(circles, people, history)
    assert stats["not_placed"] == stats["placed_twice"] == stats["bad_size"] == 0
    assert stats["repeat_pairs"] == 0
    assert stats["avoid_violations"] == 0
    if n >= 300:  # a hundred people over 20 timezones may trade some working hours to avoid repeats
        assert stats["circles_below_overlap"] == 0
    assert isinstance(stats["same_team_circles_pct"], float)
    assert stats["same_team_circles_pct"] <= 5.0


def test_six_rounds_in_a_row_never_repeat_a_pair() -> None:
    people, _ = organisation(400, 5, rounds=0)
    history: list[tuple[PersonId, PersonId]] = []
    for round_number in range(6):
        circles = form_circles(people, seed=round_number, history=history)
        assert_valid(circles, people)
        assert not pairs_of(circles) & {frozenset(p) for p in history}, round_number
        history += history_of(circles)


def _partitions(items: list[int]) -> Iterator[list[list[int]]]:
    if not items:
        yield []
        return
    first, rest = items[0], items[1:]
    for k in range(MIN_SIZE - 1, MAX_SIZE):
        for others in itertools.combinations(rest, k):
            remaining = [x for x in rest if x not in others]
            for tail in _partitions(remaining):
                yield [[first, *others], *tail]


def _broken(circles: Sequence[Sequence[PersonId]], forbidden: set[frozenset[PersonId]]) -> int:
    return len(pairs_of(circles) & forbidden)


@pytest.mark.parametrize("case", range(12))
def test_small_rosters_repeat_no_more_pairs_than_the_best_partition(case: int) -> None:
    rng = random.Random(case)
    n = 6 + case % 5
    ids = list(range(n))
    earlier: list[tuple[PersonId, PersonId]] = []
    for _ in range(2 + case % 4):
        rng.shuffle(ids)
        earlier += history_of([ids[k : k + 4] for k in range(0, n - 2, 4)])
    forbidden = {frozenset(p) for p in earlier}
    best = min(_broken(p, forbidden) for p in _partitions(list(range(n))))
    people = [Candidate(i, f"team{i}") for i in range(n)]
    circles = form_circles(people, seed=case, history=earlier)
    assert_valid(circles, people)
    assert _broken(circles, forbidden) == best


def test_twelve_people_form_smaller_circles_when_that_is_the_only_way_to_avoid_repeats() -> None:
    # three earlier circles of four: any three new circles of four repeat a pair, four of three need not
    people = [Candidate(i, f"team{i}") for i in range(12)]
    earlier = history_of([[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]])
    circles = form_circles(people, target=4, seed=0, history=earlier)
    assert_valid(circles, people)
    assert _broken(circles, {frozenset(p) for p in earlier}) == 0
    assert sorted(len(c) for c in circles) == [3, 3, 3, 3]


@pytest.mark.parametrize(
    ("n", "avoid"),
    [
        (6, {0: {1}}),  # one-sided
        (6, {1: {0}, 0: {1}}),  # mutual
        (8, {0: {1, 2, 3}}),  # a long list
        (9, {0: {1}, 2: {3}, 4: {5}, 6: {7}}),
        (12, {i: {(i + 1) % 12, (i + 2) % 12} for i in range(12)}),  # everyone avoids two neighbours
        (7, {0: {99}}),  # someone absent: ignored
    ],
)
def test_avoid_lists_are_respected(n: int, avoid: dict[int, set[int]]) -> None:
    people = [Candidate(i, "same", avoid=frozenset(avoid.get(i, set()))) for i in range(n)]
    forbidden: set[frozenset[PersonId]] = {frozenset((i, j)) for i, others in avoid.items() for j in others}
    for seed in range(5):
        circles = form_circles(people, seed=seed)
        assert_valid(circles, people)
        assert _broken(circles, forbidden) == 0, (seed, circles)
        assert grouping_stats(circles, people)["avoid_violations"] == 0


def test_an_avoid_outweighs_a_repeat() -> None:
    # two circles of three: 0 avoids 1 and 2 and has met 3 and 4, so one of its two partners is a repeat
    people = [Candidate(i, f"team{i}", avoid=frozenset({1, 2}) if i == 0 else frozenset()) for i in range(6)]
    earlier = [(0, 3), (0, 4)]
    circles = form_circles(people, target=3, seed=0, history=earlier)
    assert _broken(circles, {frozenset((0, 1)), frozenset((0, 2))}) == 0
    assert _broken(circles, {frozenset(p) for p in earlier}) == 1


def test_a_roster_with_no_way_out_still_places_everyone() -> None:
    people = [Candidate(i, "same", avoid=frozenset(range(5))) for i in range(5)]
    circles = form_circles(people, history=history_of([list(range(5))]))
    assert circles == [[0, 1, 2, 3, 4]]


@pytest.mark.parametrize(
    ("zones", "overlap_hours"),
    [
        ({"Asia/Tokyo": 8, "America/New_York": 8}, 3),
        ({"Asia/Tokyo": 9, "America/Los_Angeles": 7, "Europe/London": 11}, 3),
        ({"Europe/London": 6, "Europe/Berlin": 6, "Asia/Kolkata": 6}, 4),  # Kolkata is 5.5 h after London
        ({"Australia/Sydney": 5, "Asia/Tokyo": 5, "America/Sao_Paulo": 5}, 6),
    ],
)
def test_circles_share_working_hours_when_the_roster_allows(
    zones: dict[str, int], overlap_hours: int
) -> None:
    people = [
        Candidate(f"{zone}-{i}", f"team{i % 3}", zone) for zone, count in zones.items() for i in range(count)
    ]
    weights = Weights(overlap_hours=overlap_hours)
    for seed in range(5):
        circles = form_circles(people, seed=seed, weights=weights)
        assert_valid(circles, people)
        stats = grouping_stats(circles, people, weights=weights)
        assert stats["circles_below_overlap"] == 0, (seed, circles)
        min_overlap = stats["min_overlap_hours"]
        assert isinstance(min_overlap, float)
        assert min_overlap >= overlap_hours


def test_a_lone_timezone_joins_its_nearest_neighbours() -> None:
    # two people in Auckland cannot form a circle: they join the nearest band, everyone still placed
    people = [Candidate(f"nz{i}", "Ops", "Pacific/Auckland") for i in range(2)]
    people += [Candidate(f"au{i}", f"team{i}", "Australia/Sydney") for i in range(6)]
    people += [Candidate(f"uk{i}", f"team{i}", "Europe/London") for i in range(6)]
    circles = form_circles(people, seed=3)
    assert_valid(circles, people)
    for circle in circles:
        assert not ({m[:2] for m in map(str, circle)} >= {"nz", "uk"}), circle


def test_without_a_time_rule_teams_win_over_timezones() -> None:
    # a team of 8 all in Tokyo, 24 others elsewhere: with tz_gap 0 every circle gets one Tokyo person
    people = [Candidate(f"a{i}", "A", "Asia/Tokyo") for i in range(8)]
    people += [Candidate(f"b{i}", f"team{i}", "America/New_York") for i in range(24)]
    strict = form_circles(people, seed=1)
    relaxed = form_circles(people, seed=1, weights=Weights(tz_gap=0))
    assert grouping_stats(strict, people)["circles_below_overlap"] == 0
    assert grouping_stats(relaxed, people)["same_team_circles"] == 0


def test_themes_mix_by_weight() -> None:
    people = [Candidate(i, f"team{i}", themes=frozenset({f"theme{i % 4}"})) for i in range(40)]

    def shared(weight: float) -> int:
        circles = form_circles(people, seed=2, weights=Weights(shared_theme=weight))
        assert_valid(circles, people)
        theme_pairs = grouping_stats(circles, people)["shared_theme_pairs"]
        assert isinstance(theme_pairs, int)
        return theme_pairs

    assert shared(5.0) > shared(0.0) > shared(-5.0)
    assert shared(-5.0) == 0


@pytest.mark.parametrize(
    "history",
    [
        [(1, 2), (2, 3)],
        ((1, 2), (2, 3)),
        [[1, 2], [2, 3]],
        [(1, 2), (2, 3), (1, 999), (998, 999), (1, 1)],  # absent people and self-pairs are ignored
    ],
)
def test_history_in_any_shape(history: Sequence[Sequence[PersonId]]) -> None:
    people = [Candidate(i, f"team{i}") for i in range(1, 7)]
    circles = form_circles(people, target=3, seed=0, history=history)
    assert_valid(circles, people)
    assert _broken(circles, {frozenset((1, 2)), frozenset((2, 3))}) == 0
    generator = form_circles(people, target=3, seed=0, history=(tuple(p) for p in history))
    assert generator == circles


def test_ids_may_be_strings_or_integers_and_order_does_not_matter() -> None:
    people = [Candidate(i if i % 2 else f"s{i}", TEAMS[i % 5], ZONES[i % 2]) for i in range(30)]
    history = history_of([[people[i].person_id for i in range(k, k + 4)] for k in range(0, 28, 4)])
    first = form_circles(people, seed=9, history=history)
    assert_valid(first, people)
    assert form_circles(list(reversed(people)), seed=9, history=history) == first
    assert form_circles(people, seed=9, history=list(reversed(history))) == first


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: form_circles([Candidate(1, "a"), Candidate(1, "b"), Candidate(2, "c")]), "duplicate"),
        (lambda: form_circles(people(10), target=2), "target"),
        (lambda: form_circles(people(10), target=6), "target"),
        (lambda: Weights(repeat=-1), "repeat"),
        (lambda: Weights(tz_gap=math.nan), "tz_gap"),
        (lambda: Weights(shared_theme=math.inf), "shared_theme"),
        (lambda: Weights(overlap_hours=9), "overlap_hours"),
    ],
)
def test_bad_arguments_are_refused(call: Callable[[], object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()


def test_an_unknown_timezone_counts_as_utc() -> None:
    people = [Candidate(i, f"team{i}", "Mars/Base" if i < 3 else "UTC") for i in range(6)]
    assert_valid(form_circles(people), people)
    assert utc_offset_minutes("Mars/Base") is None


@pytest.mark.parametrize(
    ("zone", "at", "minutes"),
    [
        ("UTC", REFERENCE_MOMENT, 0),
        ("Asia/Kolkata", REFERENCE_MOMENT, 330),
        ("America/New_York", datetime(2025, 1, 15, 12, tzinfo=UTC), -300),
        ("America/New_York", datetime(2025, 7, 15, 12, tzinfo=UTC), -240),  # daylight saving time
        ("Australia/Sydney", datetime(2025, 7, 15, 12, tzinfo=UTC), 600),
        ("Nowhere/Atlantis", REFERENCE_MOMENT, None),
        ("", REFERENCE_MOMENT, None),
        ("../etc/passwd", REFERENCE_MOMENT, None),
    ],
)
def test_utc_offsets(zone: str, at: datetime, minutes: int | None) -> None:
    assert utc_offset_minutes(zone, at) == minutes


@pytest.mark.parametrize(
    ("starts", "overlap"),
    [
        ([540], 480),
        ([540, 540, 540], 480),
        ([480, 540], 420),  # Berlin and London: 7 h together
        ([0, 300], 180),  # 5 h apart: 3 h left
        ([1380, 60], 360),  # across midnight UTC: 2 h apart
        ([0, 720], 0),  # opposite sides of the world
        ([0, 200, 400, 479], 1),
        ([0, 480], 0),
    ],
)
def test_working_overlap(starts: list[int], overlap: int) -> None:
    assert working_overlap_minutes(starts) == overlap


def test_stats_describe_a_grouping() -> None:
    candidates = [
        Candidate("a", "Sales", "Europe/London", avoid=frozenset({"b"})),
        Candidate("b", "Sales", "Europe/London", avoid=frozenset({"a"})),
        Candidate("c", "Ops", "Asia/Tokyo"),
        Candidate("d", "Ops", "Europe/London"),
        Candidate("e", "IT", "Europe/London"),
        Candidate("f", "HR", "Europe/London"),
        Candidate("g", "Legal", "Europe/London"),
        Candidate("h", "Legal", "Europe/London"),  # not placed
    ]
    groups = [["a", "b", "c"], ["d", "e", "f", "g", "zz"], ["a", "x"]]
    history = [("a", "c"), ("c", "a"), ("d", "e"), ("e", "h"), ("d", "d")]
    stats = grouping_stats(groups, candidates, history)
    assert stats == {
        "people": 8,
        "circles": 3,
        "sizes": {"2": 1, "3": 1, "5": 1},
        "bad_size": 1,
        "placed": 7,
        "not_placed": 1,
        "placed_twice": 1,
        "unknown_ids": 2,
        "repeat_pairs": 2,
        "same_team_pairs": 1,
        "same_team_circles": 1,
        "same_team_circles_pct": 33.33,
        "avoid_violations": 1,
        "shared_theme_pairs": 0,
        "min_overlap_hours": 0.0,
        "circles_below_overlap": 1,
        "overlap_hours": 3,
    }
    assert grouping_stats([], [])["min_overlap_hours"] is None


@pytest.mark.parametrize(
    ("circles", "history", "expected"),
    [
        ([["a", "b", "c"], ["d", "e", "f"]], [], 0),  # tie: the first
        ([["a", "b", "c", "d"], ["e", "f", "g"]], [], 1),  # tie: the smaller
        ([["a", "b", "c"], ["d", "e", "f"]], [("new", "b")], 1),  # met someone in the first
        ([["a", "mate", "c"], ["d", "e", "f"]], [], 1),  # a teammate in the first
        ([["a", "b", "c", "d", "e"], ["f", "g", "h"]], [("new", "f")], 1),  # the other is full
        ([["a", "b", "c", "d", "e"]], [], None),
        ([], [], None),
    ],
)
def test_a_late_answer_joins_the_best_circle_with_room(
    circles: list[list[str]], history: list[tuple[str, str]], expected: int | None
) -> None:
    def member(pid: str) -> Candidate:
        return Candidate(pid, "Sales" if pid in ("new", "mate") else f"team-{pid}")

    placed = [[member(pid) for pid in circle] for circle in circles]
    assert best_circle_for(member("new"), placed, history=history) == expected


@pytest.mark.parametrize(
    "case",
    [
        "realistic",
        "themes",
        "fewer than three",
        "one timezone",
        "avoids and repeats",
    ],
)
def test_stats_in_one_pass_equal_grouping_stats(case: str) -> None:
    people, history = organisation(400, 11)
    weights = Weights()
    if case == "themes":
        people = [dataclasses.replace(c, themes=frozenset({f"th{i % 5}"})) for i, c in enumerate(people)]
        weights = Weights(shared_theme=1.0, overlap_hours=4)
    elif case == "fewer than three":
        people = people[:2]
    elif case == "one timezone":
        people = [dataclasses.replace(c, timezone="Asia/Tokyo") for c in people]
    elif case == "avoids and repeats":
        people = [Candidate(i, "same", avoid=frozenset({(i + 1) % 7})) for i in range(7)]
        history = history_of([list(range(7))])
    groups, stats = form_circles_with_stats(people, seed=4, history=history, weights=weights)
    assert groups == form_circles(people, seed=4, history=history, weights=weights)
    assert stats == grouping_stats(groups, people, history, weights=weights)
