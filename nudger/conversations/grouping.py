"""Grouping people into peer circles (pure, deterministic for a seed).

``form_circles`` forms the circles (``form_circles_with_stats`` also returns their ``grouping_stats``
without reading the history twice); ``grouping_stats`` measures any grouping against the rules;
``best_circle_for`` picks the circle a late answer should join.

Rules
-----
* Circles hold 3-5 people (``MIN_SIZE``..``MAX_SIZE``); their number follows ``circle_count`` so sizes
  stay as close to the target as possible. Everyone is placed when there are at least three people;
  fewer than three → no circles at all (never a circle of one or two).
* Everything else is a weighted objective, minimised over the partition. For a circle::

      cost = Σ over its pairs  ( repeat       · [the pair met in `history`]
                                + avoid        · [either one listed the other as "don't group me with"]
                                + same_team    · [both are in the same team]
                                − shared_theme · [their answers share a theme] )
           + tz_gap · (hours by which the circle's common working time falls short of overlap_hours)

  The total cost is the sum over circles. ``Weights`` holds the weights; the defaults rank the rules
  avoid (1000) ≫ repeat (100) ≫ tz_gap (2 per missing hour) > same_team (1 per pair) and leave theme
  mixing off (0). A positive ``shared_theme`` brings together people whose answers share a theme; a
  negative one spreads them.
* Working hours are 09:00-17:00 local. A circle's common working time is the overlap of all its
  members' working days (8 h minus the arc spanned by their start times in UTC); it should be at least
  ``overlap_hours``. UTC offsets are taken at ``at`` (pass the round's `now`; the default is a fixed
  reference moment, so results never depend on the clock). An unknown timezone counts as UTC.

How (linear in people and history; never all pairs)
---------------------------------------------------
1. Ids are mapped to 0..n-1 in a canonical order (input order does not matter); history becomes a set
   of ``lo * n + hi`` integer keys (pairs with someone absent collapse into at most n + 1 unused keys).
2. Timezone bands: people are placed on the 24 h circle by the UTC time their working day starts, and
   the circle is cut into arcs whose span leaves ``overlap_hours`` in common, choosing the cut that
   forces the fewest teammates together, then the fewest arcs (bands with fewer than three people
   join their nearest neighbour). Any circle drawn from one band meets the working-hours rule. No
   bands when ``tz_gap`` or ``overlap_hours`` is 0: then teams mix across the whole roster.
3. In each band, people are dealt like cards, team by team (teams in an order shuffled by the seed),
   round-robin across the band's circles: a team's members land in different circles whenever the band
   has at least as many circles as the team has members there, and at most one apart otherwise.
   A team with more people in a band than the band has circles ("crowded") must double up there: its
   pairs are priced but not chased, so working hours win over team mixing at the default weights.
4. Local repair, heaviest circles first: a circle that breaks a rule (a repeat, an avoid, teammates who
   need not be together, a working-hours shortfall) tries swapping a member with, or moving a member
   into the circle of, a few teammates of that member in the band, people in the band, people whose
   working day is within reach, and anyone. A change is kept only if it lowers the total cost. The work
   is bounded (4 circle pricings per person plus 100 000), so the time stays linear when rules conflict.
5. Theme mixing (``shared_theme`` ≠ 0) then tries random swaps within bands (4 per person, at most
   100 000), kept when they lower the total cost.
6. Small rosters (up to 60 people) try every person as a partner, restart with fresh shuffles, and, if
   repeats or avoids remain, try other circle sizes, kept only if they break fewer of those.
"""

from __future__ import annotations

import math
import random
from bisect import bisect_left, bisect_right
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from itertools import compress, pairwise, repeat
from operator import attrgetter, eq, itemgetter
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

MIN_SIZE = 3
MAX_SIZE = 5
WORK_START_MINUTE = 9 * 60  # 09:00 local
WORK_MINUTES = 8 * 60  # until 17:00 local
DAY_MINUTES = 24 * 60
REFERENCE_MOMENT = datetime(2024, 1, 15, 12, 0, tzinfo=UTC)  # offsets when the caller gives no `at`

SMALL_ROSTER = 60  # up to this many people, every person is tried as a partner, and the search ...
RESTARTS = 12  # ... restarts up to this many times per circle size, keeping the best grouping, ...
PATIENCE = 3  # ... and stops after this many restarts in a row without gain (twice that while a
# repeat or an avoid remains)

THEME_SWAPS = 4  # random swaps tried per person (at most 100 000) when theme mixing is on

PersonId = int | str
History = Iterable[tuple[PersonId, PersonId]] | Iterable[Sequence[PersonId]]  # pairs who met before


@dataclass(frozen=True)
class Candidate:
    """Someone to place: their team, IANA timezone, "don't group me with" list and answer themes."""

    person_id: PersonId
    team: str
    timezone: str = "UTC"
    avoid: frozenset[PersonId] = frozenset()
    themes: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Weights:
    """The objective's weights (see the module docstring). Penalties are per pair, tz_gap per hour."""

    repeat: float = 100.0
    same_team: float = 1.0
    tz_gap: float = 2.0
    shared_theme: float = 0.0
    avoid: float = 1000.0
    overlap_hours: int = 3

    def __post_init__(self) -> None:
        for name in ("repeat", "same_team", "tz_gap", "avoid"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise ValueError(f"{name}: expected a number >= 0, got {value!r}")
        if not (isinstance(self.shared_theme, int | float) and math.isfinite(self.shared_theme)):
            raise ValueError(f"shared_theme: expected a number, got {self.shared_theme!r}")
        if not (isinstance(self.overlap_hours, int) and 0 <= self.overlap_hours <= WORK_MINUTES // 60):
            raise ValueError(f"overlap_hours: expected an integer from 0 to 8, got {self.overlap_hours!r}")


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


@cache
def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


def utc_offset_minutes(timezone: str, at: datetime = REFERENCE_MOMENT) -> int | None:
    """The timezone's UTC offset in minutes at `at` (an aware datetime); None if the name is unknown."""
    zone = _zone(timezone)
    if zone is None:
        return None
    offset = at.astimezone(zone).utcoffset()
    return 0 if offset is None else round(offset.total_seconds() / 60)


def working_overlap_minutes(starts: Iterable[int]) -> int:
    """Common working time of people whose 8-hour days start at these UTC minutes (0..1439)."""
    points = sorted({s % DAY_MINUTES for s in starts})
    if len(points) <= 1:
        return WORK_MINUTES
    widest_gap = max(b - a for a, b in zip(points, [*points[1:], points[0] + DAY_MINUTES], strict=True))
    return max(0, WORK_MINUTES - (DAY_MINUTES - widest_gap))


def _start_minute(timezone: str, at: datetime) -> int:
    return (WORK_START_MINUTE - (utc_offset_minutes(timezone, at) or 0)) % DAY_MINUTES


def _id_key(person_id: PersonId) -> tuple[int, int | str]:
    return (1, person_id) if isinstance(person_id, str) else (0, person_id)


def _canonical(candidates: Iterable[Candidate]) -> list[Candidate]:
    people = list(candidates)
    if len({type(c.person_id) for c in people}) <= 1:
        people.sort(key=attrgetter("person_id"))  # one kind of id: no need to rank kinds
    else:
        people.sort(key=lambda c: _id_key(c.person_id))
    for before, after in pairwise(people):
        if before.person_id == after.person_id:
            raise ValueError(f"duplicate candidate id {after.person_id!r}")
    return people


class _Problem:
    """The people as small integers, with what the objective needs to price a circle."""

    def __init__(
        self,
        people: Sequence[Candidate],
        history: History,
        weights: Weights,
        at: datetime,
    ) -> None:
        self.weights = weights
        self.n = n = len(people)
        index = {c.person_id: i for i, c in enumerate(people)}
        teams = {name: t for t, name in enumerate(sorted({c.team for c in people}))}
        self.team = [teams[c.team] for c in people]
        starts = {name: _start_minute(name, at) for name in {c.timezone for c in people}}
        self.start = [starts[c.timezone] for c in people]
        self.need = weights.overlap_hours * 60
        avoid: dict[int, set[int]] = {}
        for i, c in enumerate(people):
            for other in c.avoid:
                j = index.get(other)
                if j is not None and j != i:
                    avoid.setdefault(i, set()).add(j)
                    avoid.setdefault(j, set()).add(i)
        self.avoid = avoid
        self.themes: list[frozenset[str]] | None = (
            [c.themes for c in people]
            if weights.shared_theme != 0 and any(c.themes for c in people)
            else None
        )
        self.history = _history_keys(history, index, n)
        self.tz_on = weights.tz_gap > 0 and self.need > 0
        # the band each person is in when any circle drawn from it meets the working-hours rule, else -1
        self.clean = [-1] * n

    # ---------------------------------------------------------------------------------- pricing

    def penalty(self, members: Sequence[int]) -> float:
        """What the circle costs before any theme bonus: 0 for a circle that breaks no rule."""
        w = self.weights
        n, team, history, avoid = self.n, self.team, self.history, self.avoid
        cost = 0.0
        for x, a in enumerate(members):
            for b in members[x + 1 :]:
                if (a * n + b if a < b else b * n + a) in history:
                    cost += w.repeat
                if team[a] == team[b]:
                    cost += w.same_team
                if a in avoid and b in avoid[a]:
                    cost += w.avoid
        if self.tz_on:
            clean = self.clean
            band = clean[members[0]]
            if band < 0 or any(clean[m] != band for m in members):
                short = self.need - working_overlap_minutes([self.start[m] for m in members])
                if short > 0:
                    cost += w.tz_gap * short / 60
        return cost

    def hard(self, members: Sequence[int]) -> float:
        """The part of the penalty from repeats and avoids (the rules that outrank circle size)."""
        w, n, history, avoid = self.weights, self.n, self.history, self.avoid
        cost = 0.0
        for x, a in enumerate(members):
            for b in members[x + 1 :]:
                if (a * n + b if a < b else b * n + a) in history:
                    cost += w.repeat
                if a in avoid and b in avoid[a]:
                    cost += w.avoid
        return cost

    def bonus(self, members: Sequence[int]) -> float:
        themes = self.themes
        if themes is None:
            return 0.0
        shared = sum(
            1 for x, a in enumerate(members) for b in members[x + 1 :] if not themes[a].isdisjoint(themes[b])
        )
        return self.weights.shared_theme * shared

    def cost(self, members: Sequence[int]) -> float:
        return (
            self.penalty(members) - self.bonus(members) if self.themes is not None else self.penalty(members)
        )

    # ---------------------------------------------------------------------------------- bands

    def bands(self, target: int) -> list[list[int]]:
        """People split into timezone bands (see the module docstring), each of at least MIN_SIZE."""
        by_start: dict[int, list[int]] = defaultdict(list)
        for i, s in enumerate(self.start):
            by_start[s].append(i)
        values = sorted(by_start)
        if not self.tz_on:
            return [list(range(self.n))]
        teams_at = [Counter(self.team[i] for i in by_start[v]) for v in values]
        arcs = _cover(values, WORK_MINUTES - self.need, teams_at, target)
        arcs = _merge_small(arcs, values, [len(by_start[v]) for v in values])
        bands = [[i for v in arc for i in by_start[values[v]]] for arc in arcs]
        for b, arc in enumerate(arcs):
            if working_overlap_minutes(values[v] for v in arc) >= self.need:
                for i in bands[b]:
                    self.clean[i] = b
        return bands


def _history_keys(
    history: History,
    index: dict[PersonId, int],
    n: int,
) -> set[int]:
    """History pairs among the people present, as `lo * n + hi` integer keys (one pass, no pair objects)."""
    pairs = history if isinstance(history, list | tuple) else list(history)
    if not pairs:
        return set()
    # Someone absent maps to n: a pair with one absent person gets the key low * n + n, one with two
    # gets n * n + n; neither equals a real key (low < high < n), and there are at most n + 1 of them.
    lookup: Callable[[PersonId, int], int] = index.get
    first = map(lookup, map(itemgetter(0), pairs), repeat(n))
    second = map(lookup, map(itemgetter(1), pairs), repeat(n))
    return {(a * n + b if a < b else b * n + a) for a, b in zip(first, second, strict=True)}


def _cover(values: list[int], span: int, teams_at: list[Counter[int]], target: int) -> list[list[int]]:
    """Arcs of the day circle, each spanning at most `span` minutes, covering the sorted start `values`.

    Chooses the cut that forces the fewest teammates together (people beyond one per circle for a team
    in an arc), then the one with the fewest arcs: every arc's crowding is priced once, then a shortest
    path runs around the circle from each possible first cut. Returns arcs as lists of positions in
    `values`; `teams_at[v]` counts the teams whose people start at values[v].
    """
    k = len(values)
    if k <= 1 or span >= DAY_MINUTES:
        return [list(range(k))]
    # crowd[i][length - 1]: crowding of the arc of `length` values starting at position i
    crowd: list[list[int]] = []
    for i in range(k):
        teams: Counter[int] = Counter()
        row: list[int] = []
        for length in range(1, k + 1):
            v = (i + length - 1) % k
            if length > 1 and (values[v] - values[i]) % DAY_MINUTES > span:
                break
            teams.update(teams_at[v])
            circles = max(1, circle_count(sum(teams.values()), target))
            row.append(sum(count - circles for count in teams.values() if count > circles))
        crowd.append(row)
    best: list[list[int]] = []
    best_score: tuple[int, int] | None = None
    for first in range(k):
        # score[j]: best (crowding, arcs) covering positions first .. first + j - 1
        score: list[tuple[int, int] | None] = [(0, 0)] + [None] * k
        back = [0] * (k + 1)
        for j in range(k):
            here = score[j]
            if here is None:
                continue
            row = crowd[(first + j) % k]
            for length in range(1, min(len(row), k - j) + 1):
                candidate = (here[0] + row[length - 1], here[1] + 1)
                there = score[j + length]
                if there is None or candidate < there:
                    score[j + length], back[j + length] = candidate, j
        final = score[k]
        if final is not None and (best_score is None or final < best_score):
            arcs: list[list[int]] = []
            j = k
            while j > 0:
                arcs.append([(first + q) % k for q in range(back[j], j)])
                j = back[j]
            best, best_score = arcs[::-1], final
    return best


def _merge_small(arcs: list[list[int]], values: list[int], weight: list[int]) -> list[list[int]]:
    """Arcs holding fewer than MIN_SIZE people join the neighbour whose edge is nearest in time."""
    arcs = [list(a) for a in arcs]
    while len(arcs) > 1:
        sizes = [sum(weight[v] for v in arc) for arc in arcs]
        small = [x for x, size in enumerate(sizes) if size < MIN_SIZE]
        if not small:
            break
        x = min(small, key=lambda s: (sizes[s], s))
        before, after = (x - 1) % len(arcs), (x + 1) % len(arcs)
        gap_before = (values[arcs[x][0]] - values[arcs[before][-1]]) % DAY_MINUTES
        gap_after = (values[arcs[after][0]] - values[arcs[x][-1]]) % DAY_MINUTES
        if gap_before <= gap_after:
            arcs[before] = arcs[before] + arcs[x]
        else:
            arcs[after] = arcs[x] + arcs[after]
        del arcs[x]
    return arcs


class _Circles:
    """A partition being improved: circles, who is where, and each circle's cost."""

    TRIES = 6  # partners tried per source (teammates in band, band, nearby in time, anyone) per member
    SMALL_BAND = 60  # in a band this small, every member is tried as a partner
    EFFORT = 4  # circle pricings allowed per person (plus 100 000): bounds the repair when rules conflict

    def __init__(self, problem: _Problem, bands: list[list[int]], target: int, rng: random.Random) -> None:
        self.p = p = problem
        n = p.n
        self.bands = bands
        self.circles: list[list[int]] = []
        self.band_of = [0] * n
        self.band_team: dict[tuple[int, int], list[int]] = defaultdict(list)
        self.crowded = [False] * n  # their team has more people in their band than the band has circles
        for b, band in enumerate(bands):
            dealt = _deal(band, p.team, target, rng)
            self.circles += dealt
            for m in band:
                self.band_of[m] = b
                self.band_team[(b, p.team[m])].append(m)
            for t in {p.team[m] for m in band}:
                if len(self.band_team[(b, t)]) > len(dealt):
                    for m in self.band_team[(b, t)]:
                        self.crowded[m] = True
        self.where = [0] * n
        for c, members in enumerate(self.circles):
            for m in members:
                self.where[m] = c
        self.cost = [p.cost(c) for c in self.circles]
        self.priced = 0
        self.budget = self.EFFORT * n + min(100_000, 12 * n * n)  # a few full passes on a small roster
        self.by_time: list[int] = []
        self.window: dict[int, tuple[int, int]] = {}
        if len(bands) > 1:
            self._nearby_windows()

    def _nearby_windows(self) -> None:
        """People ordered by start time, and for each start the circular run of people within reach."""
        p = self.p
        self.by_time = sorted(range(p.n), key=p.start.__getitem__)
        starts = [p.start[i] for i in self.by_time]
        reach = WORK_MINUTES - p.need
        for v in set(starts):
            if not p.tz_on or 2 * reach >= DAY_MINUTES:
                self.window[v] = (0, p.n)
                continue
            low, high = v - reach, v + reach
            if low < 0:
                first = bisect_left(starts, low + DAY_MINUTES)
                self.window[v] = (first, p.n - first + bisect_right(starts, high))
            elif high >= DAY_MINUTES:
                first = bisect_left(starts, low)
                self.window[v] = (first, p.n - first + bisect_right(starts, high - DAY_MINUTES))
            else:
                first = bisect_left(starts, low)
                self.window[v] = (first, bisect_right(starts, high) - first)

    def total(self) -> float:
        return sum(self.cost)

    def _fixable(self, members: Sequence[int]) -> bool:
        """Does the circle break a rule that a swap could mend? (A crowded team's pair cannot be.)"""
        penalty = self.p.penalty(members)
        if penalty <= 1e-9:
            return False
        team, crowded = self.p.team, self.crowded
        stuck = sum(
            1 for x, a in enumerate(members) for b in members[x + 1 :] if team[a] == team[b] and crowded[a]
        )
        return penalty - stuck * self.p.weights.same_team > 1e-9

    def repair(self, rng: random.Random) -> None:
        """Lower the total cost by swaps and moves, heaviest broken rules first, within the budget."""
        queue = sorted(
            (
                c
                for c, cost in enumerate(self.cost)
                if (cost != 0 or self.p.themes is not None) and self._fixable(self.circles[c])
            ),
            key=self.cost.__getitem__,
        )
        queued = set(queue)
        while queue and self.priced < self.budget:
            c = queue.pop()
            queued.discard(c)
            touched = self._improve(c, rng)
            if touched is None:
                continue
            for t in (c, touched):
                if t not in queued and self._fixable(self.circles[t]):
                    queue.append(t)
                    queued.add(t)

    def improve_bonus(self, rng: random.Random, attempts: int) -> None:
        """Theme mixing: random swaps within bands, kept when they lower the total cost."""
        for _ in range(attempts):
            u = rng.randrange(self.p.n)
            band = self.bands[self.band_of[u]]
            w = band[rng.randrange(len(band))]
            if self.where[u] != self.where[w]:
                self._try_swap(u, w)

    def _partners(self, u: int, rng: random.Random) -> Iterable[int]:
        p = self.p
        b = self.band_of[u]
        band = self.bands[b]
        if p.n <= SMALL_ROSTER:
            everyone = list(band)
            rng.shuffle(everyone)
            yield from everyone
            if len(self.bands) > 1:
                others = [m for m in range(p.n) if self.band_of[m] != b]
                rng.shuffle(others)
                yield from others
            return
        if len(band) <= self.SMALL_BAND:
            everyone = list(band)
            rng.shuffle(everyone)
            yield from everyone
        else:
            mates = self.band_team[(b, p.team[u])]
            for _ in range(self.TRIES):
                yield mates[rng.randrange(len(mates))]
            for _ in range(self.TRIES):
                yield band[rng.randrange(len(band))]
        if len(self.bands) > 1:
            first, length = self.window[p.start[u]]
            for _ in range(self.TRIES):
                yield self.by_time[(first + rng.randrange(length)) % p.n]
            for _ in range(self.TRIES):  # a heavier rule may be worth some working hours
                yield rng.randrange(p.n)

    def _improve(self, c: int, rng: random.Random) -> int | None:
        """Try to lower circle c's cost; returns the other circle changed, or None if nothing helped."""
        members = list(self.circles[c])
        rng.shuffle(members)
        for u in members:
            for w in self._partners(u, rng):
                other = self.where[w]
                if other == c:
                    continue
                if self._try_swap(u, w) or self._try_move(u, other):
                    return other
        return None

    def _try_swap(self, u: int, w: int) -> bool:
        p = self.p
        cu, cw = self.where[u], self.where[w]
        new_u = [w if m == u else m for m in self.circles[cu]]
        new_w = [u if m == w else m for m in self.circles[cw]]
        cost_u, cost_w = p.cost(new_u), p.cost(new_w)
        self.priced += 2
        if cost_u + cost_w >= self.cost[cu] + self.cost[cw] - 1e-9:
            return False
        self.circles[cu], self.circles[cw] = new_u, new_w
        self.cost[cu], self.cost[cw] = cost_u, cost_w
        self.where[u], self.where[w] = cw, cu
        return True

    def _try_move(self, u: int, target: int) -> bool:
        p = self.p
        source = self.where[u]
        if len(self.circles[source]) <= MIN_SIZE or len(self.circles[target]) >= MAX_SIZE:
            return False
        new_source = [m for m in self.circles[source] if m != u]
        new_target = [*self.circles[target], u]
        cost_s, cost_t = p.cost(new_source), p.cost(new_target)
        self.priced += 2
        if cost_s + cost_t >= self.cost[source] + self.cost[target] - 1e-9:
            return False
        self.circles[source], self.circles[target] = new_source, new_target
        self.cost[source], self.cost[target] = cost_s, cost_t
        self.where[u] = target
        return True


def _deal(band: list[int], team: list[int], target: int, rng: random.Random) -> list[list[int]]:
    """Deal a band's people into circles, team by team (in random order), round-robin like cards.

    A team occupies consecutive seats, so its members land in different circles while it has no more
    members than there are circles, and otherwise at most one apart per circle.
    """
    count = circle_count(len(band), target)
    by_team: dict[int, list[int]] = defaultdict(list)
    for i in band:
        by_team[team[i]].append(i)
    order = sorted(by_team)
    rng.shuffle(order)
    circles: list[list[int]] = [[] for _ in range(count)]
    slot = rng.randrange(count)
    for t in order:
        members = by_team[t]
        rng.shuffle(members)
        for i in members:
            circles[slot].append(i)
            slot = (slot + 1) % count
    return circles


def form_circles(
    candidates: Iterable[Candidate],
    *,
    target: int = 4,
    seed: int = 0,
    history: History = (),
    weights: Weights = Weights(),
    at: datetime = REFERENCE_MOMENT,
) -> list[list[PersonId]]:
    """Split candidates into circles of MIN_SIZE..MAX_SIZE minimising the documented objective.

    `history` holds pairs of ids who met before (people not among the candidates are ignored);
    `at` is the moment whose UTC offsets count. Same input and seed → same circles, whatever the
    candidates' order. Fewer than MIN_SIZE candidates → []. Raises ValueError on duplicate ids or a
    target outside MIN_SIZE..MAX_SIZE.
    """
    people, _, circles = _solve(candidates, target, seed, history, weights, at)
    return [[people[m].person_id for m in circle] for circle in circles]


def form_circles_with_stats(
    candidates: Iterable[Candidate],
    *,
    target: int = 4,
    seed: int = 0,
    history: History = (),
    weights: Weights = Weights(),
    at: datetime = REFERENCE_MOMENT,
) -> tuple[list[list[PersonId]], dict[str, object]]:
    """`form_circles`, and the `grouping_stats` of its result, reading the history only once."""
    people, problem, circles = _solve(candidates, target, seed, history, weights, at)
    groups = [[people[m].person_id for m in circle] for circle in circles]
    if problem is None:
        return groups, grouping_stats(groups, people, (), weights=weights, at=at)
    return groups, _stats(problem, circles, people)


def _solve(
    candidates: Iterable[Candidate], target: int, seed: int, history: History, weights: Weights, at: datetime
) -> tuple[list[Candidate], _Problem | None, list[list[int]]]:
    if not MIN_SIZE <= target <= MAX_SIZE:
        raise ValueError(f"target: expected {MIN_SIZE}..{MAX_SIZE}, got {target}")
    people = _canonical(candidates)
    if len(people) < MIN_SIZE:
        return people, None, []
    problem = _Problem(people, history, weights, at)
    rng = random.Random(seed)
    bands = problem.bands(target)
    small = len(people) <= SMALL_ROSTER
    # A small roster restarts (until a few restarts in a row bring nothing), and tries other circle
    # sizes while repeats or avoids remain: kept only if they break fewer of those.
    sizes = sorted(range(MIN_SIZE, MAX_SIZE + 1), key=lambda t: (t != target, abs(t - target), t))
    best: _Circles | None = None
    best_key = (math.inf, True, math.inf)
    for size in sizes if small else [target]:
        if best_key[0] <= 0:
            break
        stale = 0
        for _ in range(RESTARTS if small else 1):
            state = _Circles(problem, bands, size, rng)
            state.repair(rng)
            if problem.themes is not None:
                state.improve_bonus(rng, attempts=min(THEME_SWAPS * len(people), 100_000))
            key = (sum(map(problem.hard, state.circles)) if small else 0.0, size != target, state.total())
            stale += 1
            if key < best_key:
                best, best_key, stale = state, key, 0
            if best_key[2] <= 0 and problem.themes is None:
                break  # nothing left to gain
            if stale >= (PATIENCE if best_key[0] <= 0 else 2 * PATIENCE):
                break
    assert best is not None
    return people, problem, [sorted(circle) for circle in best.circles]


def _stats(problem: _Problem, circles: list[list[int]], people: Sequence[Candidate]) -> dict[str, object]:
    """`grouping_stats` for circles that place every candidate once, priced on the integer problem."""
    n, team, history, avoid, start = problem.n, problem.team, problem.history, problem.avoid, problem.start
    themes = [c.themes for c in people]
    sizes: Counter[int] = Counter()
    repeats = same_team_pairs = same_team_circles = avoid_pairs = theme_pairs = below = 0
    min_overlap = WORK_MINUTES
    for circle in circles:
        sizes[len(circle)] += 1
        clash = 0
        for x, a in enumerate(circle):
            for b in circle[x + 1 :]:
                repeats += (a * n + b if a < b else b * n + a) in history
                clash += team[a] == team[b]
                avoid_pairs += a in avoid and b in avoid[a]
                theme_pairs += not themes[a].isdisjoint(themes[b])
        same_team_pairs += clash
        same_team_circles += clash > 0
        overlap = working_overlap_minutes([start[m] for m in circle])
        min_overlap = min(min_overlap, overlap)
        below += overlap < problem.need
    return _report(
        people=n,
        circles=len(circles),
        sizes=sizes,
        placed=n,
        not_placed=0,
        placed_twice=0,
        unknown_ids=0,
        repeat_pairs=repeats,
        same_team_pairs=same_team_pairs,
        same_team_circles=same_team_circles,
        avoid_violations=avoid_pairs,
        shared_theme_pairs=theme_pairs,
        min_overlap=min_overlap,
        circles_below_overlap=below,
        overlap_hours=problem.weights.overlap_hours,
    )


def _report(
    *, people: int, circles: int, sizes: Counter[int], min_overlap: int, **counts: int
) -> dict[str, object]:
    """The stats document (shared by grouping_stats and form_circles_with_stats)."""
    same_team = counts["same_team_circles"]
    return {
        "people": people,
        "circles": circles,
        "sizes": {str(size): sizes[size] for size in sorted(sizes)},
        "bad_size": sum(k for size, k in sizes.items() if not MIN_SIZE <= size <= MAX_SIZE),
        "placed": counts["placed"],
        "not_placed": counts["not_placed"],
        "placed_twice": counts["placed_twice"],
        "unknown_ids": counts["unknown_ids"],
        "repeat_pairs": counts["repeat_pairs"],
        "same_team_pairs": counts["same_team_pairs"],
        "same_team_circles": same_team,
        "same_team_circles_pct": round(100 * same_team / circles, 2) if circles else 0.0,
        "avoid_violations": counts["avoid_violations"],
        "shared_theme_pairs": counts["shared_theme_pairs"],
        "min_overlap_hours": round(min_overlap / 60, 2) if circles else None,
        "circles_below_overlap": counts["circles_below_overlap"],
        "overlap_hours": counts["overlap_hours"],
    }


def best_circle_for(
    newcomer: Candidate,
    circles: Sequence[Sequence[Candidate]],
    *,
    history: History = (),
    weights: Weights = Weights(),
    at: datetime = REFERENCE_MOMENT,
) -> int | None:
    """Where a late answer should go: the index of the circle with room (< MAX_SIZE) that it costs
    least to join (ties → the smallest circle, then the first); None if every circle is full."""
    open_circles = [c for c, circle in enumerate(circles) if len(circle) < MAX_SIZE]
    people = [newcomer, *(m for c in open_circles for m in circles[c])]
    problem = _Problem(people, history, weights, at)
    best: tuple[float, int, int] | None = None
    first = 1
    for c in open_circles:
        members = list(range(first, first + len(circles[c])))
        first += len(members)
        key = (problem.cost([*members, 0]) - problem.cost(members), len(members), c)
        if best is None or key < best:
            best = key
    return None if best is None else best[2]


def grouping_stats(
    groups: Sequence[Sequence[PersonId]],
    candidates: Iterable[Candidate],
    history: History = (),
    *,
    weights: Weights = Weights(),
    at: datetime = REFERENCE_MOMENT,
) -> dict[str, object]:
    """How a grouping fares against the rules: sizes, placement, repeats, teammates, avoids, time.

    Streams `history` once (nothing but the groups is stored). Pairs are unordered: a pair where both
    people avoid each other counts once.
    """
    people = {c.person_id: c for c in candidates}
    where: dict[PersonId, int] = {}
    placed_twice = 0
    for g, group in enumerate(groups):
        for m in group:
            if m in where:
                placed_twice += 1
            else:
                where[m] = g  # someone placed twice counts in their first circle
    pairs = history if isinstance(history, list | tuple) else list(history)
    group_of: Callable[[PersonId, int], int] = where.get
    first = list(map(itemgetter(0), pairs))
    second = list(map(itemgetter(1), pairs))
    together = map(eq, map(group_of, first, repeat(-1)), map(group_of, second, repeat(-2)))
    repeated = {frozenset((first[x], second[x])) for x in compress(range(len(first)), together)}
    repeated = {pair for pair in repeated if len(pair) == 2}
    starts = {tz: _start_minute(tz, at) for tz in {c.timezone for c in people.values()}}
    team_of = {pid: c.team for pid, c in people.items()}
    start_of = {pid: starts[c.timezone] for pid, c in people.items()}
    avoids = {pid: c.avoid for pid, c in people.items() if c.avoid}
    themes = {pid: c.themes for pid, c in people.items() if c.themes}
    same_team_pairs = same_team_circles = avoid_pairs = theme_pairs = below = 0
    min_overlap = WORK_MINUTES
    for group in groups:
        known = [m for m in group if m in team_of]
        teams = [team_of[m] for m in known]
        if len(set(teams)) < len(teams):
            same_team_circles += 1
            same_team_pairs += sum(1 for x, t in enumerate(teams) for u in teams[x + 1 :] if t == u)
        if avoids and any(m in avoids for m in known):
            avoid_pairs += len(
                {frozenset((m, o)) for m in known if m in avoids for o in known if o in avoids[m] and o != m}
            )
        if themes:
            mine = [themes.get(m, frozenset()) for m in known]
            theme_pairs += sum(1 for x, t in enumerate(mine) for u in mine[x + 1 :] if not t.isdisjoint(u))
        overlap = working_overlap_minutes([start_of[m] for m in known])
        min_overlap = min(min_overlap, overlap)
        below += overlap < weights.overlap_hours * 60
    return _report(
        people=len(people),
        circles=len(groups),
        sizes=Counter(len(group) for group in groups),
        placed=sum(1 for m in where if m in people),
        not_placed=sum(1 for m in people if m not in where),
        placed_twice=placed_twice,
        unknown_ids=sum(1 for m in where if m not in people),
        repeat_pairs=len(repeated),
        same_team_pairs=same_team_pairs,
        same_team_circles=same_team_circles,
        avoid_violations=avoid_pairs,
        shared_theme_pairs=theme_pairs,
        min_overlap=min_overlap,
        circles_below_overlap=below,
        overlap_hours=weights.overlap_hours,
    )
