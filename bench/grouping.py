"""Grouping benchmark: `nudger.conversations.grouping` on a generated organisation, on one core.

    python bench/grouping.py [--people 100000] [--seed 1] [--rounds 5] [--history random|own] [--json FILE]

The organisation is built like ../shared/tools/grouping_check.py: 300 teams of skewed sizes (weight
1/rank^0.8), 20 timezones (each team spread over three), one person in 200 with a "don't group me
with" entry, and `--rounds` earlier rounds of circles of four as history: random shuffles (`random`,
as the checker does) or our own earlier groupings (`own`: each round is formed with the history so far,
so earlier partners sit in the same timezone bands — a harder case).

Prints the time of form_circles and of grouping_stats; form_circles against its ceiling, a naive random
shuffle of the same people into fours measured in the same run (people/s of each; the ratio is
nudger's over the shuffle's, so 1.0 would be grouping as cheap as not looking at anyone); peak memory
(ru_maxrss of the process, and how much grouping added to it), circles by size, repeat pairs, circles
with two people from one team, avoid violations, people not placed, and circles whose common working
time is below the rule.
``--json FILE`` writes the same figures as one object (``"bench": "grouping"``, ``"speed": {...}``) for
bench/run_all.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import resource
import sys
import time
from itertools import combinations
from pathlib import Path

from nudger.conversations.grouping import Candidate, PersonId, form_circles, grouping_stats

TIMEZONES = (
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
TEAMS = 300

Pair = tuple[PersonId, PersonId]


def organisation(people: int, seed: int) -> list[Candidate]:
    rng = random.Random(seed)
    weights = [1.0 / (t + 1) ** 0.8 for t in range(TEAMS)]
    team_of = rng.choices(range(TEAMS), weights=weights, k=people)
    candidates = [
        Candidate(f"p{i}", f"t{t}", TIMEZONES[(t * 7 + rng.randrange(3)) % len(TIMEZONES)])
        for i, t in enumerate(team_of)
    ]
    for i in rng.sample(range(people), max(1, people // 200)):
        candidates[i] = dataclasses.replace(candidates[i], avoid=frozenset({f"p{rng.randrange(people)}"}))
    return candidates


def pairs_in(circles: list[list[PersonId]]) -> list[Pair]:
    return [pair for circle in circles for pair in combinations(circle, 2)]


def random_history(candidates: list[Candidate], rounds: int, seed: int) -> list[Pair]:
    rng = random.Random(seed + 1)
    ids = [c.person_id for c in candidates]
    history: list[Pair] = []
    for _ in range(rounds):
        rng.shuffle(ids)
        history += pairs_in([ids[k : k + 4] for k in range(0, len(ids) - 3, 4)])
    return history


def own_history(candidates: list[Candidate], rounds: int, seed: int) -> list[Pair]:
    history: list[Pair] = []
    for r in range(rounds):
        history += pairs_in(form_circles(candidates, seed=seed * 1000 + r, history=history))
    return history


def naive(candidates: list[Candidate], seed: int) -> list[list[PersonId]]:
    ids = [c.person_id for c in candidates]
    random.Random(seed).shuffle(ids)
    return [ids[i : i + 4] for i in range(0, len(ids), 4)]


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=5, help="earlier rounds in the history")
    parser.add_argument("--history", choices=("random", "own"), default="random")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    candidates = organisation(args.people, args.seed)
    make_history = random_history if args.history == "random" else own_history
    history = make_history(candidates, args.rounds, args.seed)
    setup_seconds = time.perf_counter() - started

    t0 = time.perf_counter()
    naive(candidates, args.seed)
    naive_seconds = time.perf_counter() - t0

    before_mb = peak_mb()
    t0 = time.perf_counter()
    circles = form_circles(candidates, target=4, seed=args.seed, history=history)
    form_seconds = time.perf_counter() - t0
    grouping_peak_mb = peak_mb()
    t0 = time.perf_counter()
    stats = grouping_stats(circles, candidates, history)
    stats_seconds = time.perf_counter() - t0

    speed = {
        "unit": "people/s",
        "nudger": round(args.people / form_seconds) if form_seconds else None,
        "ceiling": round(args.people / naive_seconds) if naive_seconds else None,
        "ratio": round(naive_seconds / form_seconds, 4) if form_seconds else None,
        "ceiling_is": "a random shuffle of the same people into fours",
    }
    figures: dict[str, object] = {
        "bench": "grouping",
        "people": args.people,
        "history": args.history,
        "history_pairs": len(history),
        "setup_seconds": round(setup_seconds, 2),
        "form_seconds": round(form_seconds, 3),
        "stats_seconds": round(stats_seconds, 3),
        "naive_shuffle_seconds": round(naive_seconds, 3),
        "times_naive": round(form_seconds / naive_seconds, 1) if naive_seconds else None,
        "peak_mb": round(peak_mb()),
        "grouping_added_mb": round(grouping_peak_mb - before_mb),
        "circles": stats["circles"],
        "sizes": stats["sizes"],
        "repeat_pairs": stats["repeat_pairs"],
        "same_team_circles": stats["same_team_circles"],
        "same_team_circles_pct": stats["same_team_circles_pct"],
        "avoid_violations": stats["avoid_violations"],
        "not_placed": stats["not_placed"],
        "circles_below_overlap": stats["circles_below_overlap"],
        "min_overlap_hours": stats["min_overlap_hours"],
    }
    width = max(map(len, figures))
    for key, value in figures.items():
        if key != "bench":
            print(f"{key:<{width}}  {value}")
    print(
        f"{'speed':<{width}}  {speed['nudger']} people/s, ceiling {speed['ceiling']} people/s "
        f"({speed['ceiling_is']}): ratio {speed['ratio']}"
    )
    if args.json:
        figures["speed"] = speed
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
