"""Conversation health, new connections and question effectiveness (pure: counts in, shown figures out).

Definitions (for the circles formed from the period's rounds):

- a *follow-up* is a post relayed in a circle (the answers in the intro mail are not follow-ups);
- *share with a follow-up*: circles with at least one post / circles formed;
- *share where everyone posted*: circles in which every member posted at least once / circles formed;
- *time to first follow-up*: from the circle's intro to its first post; the median is over circles
  with a post (it is read from a histogram of whole minutes, so memory stays flat);
- *posts per circle*: posts / circles formed.
- *connections*: two members of one circle from different teams *talked* when their circle had at
  least one follow-up. A pair is *new* when the two never talked in an earlier period; two teams
  *connected for the first time* when no pair across them ever talked before.
- *question effectiveness*: per round (question) of the period, answer rate and follow-up depth (posts
  per circle).

Anonymity: every figure here describes people who answered, so all of it is withheld in a
suppressed period. Team pairs are named only when both teams are shown in the team cut (each has at
least the threshold of answers); the others are only counted. Question rows go through the same
suppression as roster cuts (`cuts.suppress_cuts` with one column), so a small round is never the
remainder of the total.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from nudger.reports.cuts import Cell, suppress_cuts


@dataclass(frozen=True)
class CircleCounts:
    """Raw circle figures for one period."""

    circles: int = 0
    with_follow_up: int = 0
    all_posted: int = 0
    posts: int = 0
    #: minutes from intro to first post → circles (only circles with a post)
    first_follow_up_minutes: Mapping[int, int] = field(default_factory=dict)


def median_minutes(histogram: Mapping[int, int]) -> float | None:
    """The median of a {value: count} histogram (the mean of the two middle values for an even count)."""
    total = sum(histogram.values())
    if total == 0:
        return None
    lo_rank, hi_rank = (total - 1) // 2, total // 2
    lo = hi = None
    seen = 0
    for value in sorted(histogram):
        seen += histogram[value]
        if lo is None and seen > lo_rank:
            lo = value
        if seen > hi_rank:
            hi = value
            break
    assert lo is not None
    assert hi is not None
    return (lo + hi) / 2


@dataclass(frozen=True)
class Health:
    circles: int
    follow_up_share: float | None
    all_posted_share: float | None
    median_first_follow_up: timedelta | None
    posts_per_circle: float | None


def health(c: CircleCounts) -> Health:
    median = median_minutes(c.first_follow_up_minutes)
    share = (lambda n: n / c.circles) if c.circles else (lambda n: None)
    return Health(
        circles=c.circles,
        follow_up_share=share(c.with_follow_up),
        all_posted_share=share(c.all_posted),
        median_first_follow_up=None if median is None else timedelta(minutes=median),
        posts_per_circle=share(c.posts),
    )


@dataclass(frozen=True)
class ConnectionCounts:
    """new_pairs: cross-team pairs that talked this period and never before; team_links_now /
    team_links_before: pairs of teams (sorted) with a talking pair across them, this period / before."""

    new_pairs: int = 0
    team_links_now: frozenset[tuple[str, str]] = frozenset()
    team_links_before: frozenset[tuple[str, str]] = frozenset()


@dataclass(frozen=True)
class Connections:
    new_pairs: int
    #: teams connected for the first time, both shown in the team cut
    new_team_links: tuple[tuple[str, str], ...]
    #: first-time links that involve a team too small to name
    other_new_team_links: int


def connections(c: ConnectionCounts, nameable_teams: Iterable[str]) -> Connections:
    names = set(nameable_teams)
    new = sorted(c.team_links_now - c.team_links_before)
    named = tuple(p for p in new if p[0] in names and p[1] in names)
    return Connections(c.new_pairs, named, len(new) - len(named))


@dataclass(frozen=True)
class QuestionCounts:
    """One round of the period: its week, question and figures (people asked / answered = nudges)."""

    week: str
    question: str
    asked: int
    answered: int
    circles: int
    posts: int


@dataclass(frozen=True)
class QuestionRow:
    week: str
    question: str
    asked: int
    answered: int
    answer_rate: float | None
    posts_per_circle: float | None


@dataclass(frozen=True)
class Questions:
    rows: tuple[QuestionRow, ...]
    withheld: int


def questions(rounds: Sequence[QuestionCounts], threshold: int, *, total_shown: bool) -> Questions:
    """Per-question figures, rows under the threshold (or that would be the remainder) withheld."""
    atoms: dict[tuple[str, ...], Cell] = {(q.week,): Cell(q.asked, q.answered) for q in rounds}
    (table,) = suppress_cuts(atoms, ["week"], threshold, total_shown=total_shown)
    shown = {r.value for r in table.rows}
    rows = tuple(
        QuestionRow(
            week=q.week,
            question=q.question,
            asked=q.asked,
            answered=q.answered,
            answer_rate=q.answered / q.asked if q.asked else None,
            posts_per_circle=q.posts / q.circles if q.circles else None,
        )
        for q in sorted(rounds, key=lambda q: q.week)
        if q.week in shown
    )
    return Questions(rows, len(rounds) - len(rows))
