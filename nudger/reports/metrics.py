"""Report figures for one programme and one period (pure: data in, data out, `now` passed in).

A period is an ISO week, ``"YYYY-Www"`` (e.g. ``"2026-W48"``); its window runs from Monday 00:00 UTC
to the next Monday 00:00 UTC (`iso_week_bounds`).

The anonymity rule (applied by `shown`, which every renderer must go through):

- The threshold is the configured ``report.anonymity_threshold`` (default 5); values under the floor
  of 3 are raised to 3 (`effective_threshold`), so a mistaken setting can never weaken the rule.
- A period is *suppressed* when fewer people answered than the threshold (`Participation.respondents`:
  distinct people, for a month or range that holds several rounds). Exactly the threshold is enough.
- In a suppressed period the figures that describe the people who answered are withheld:
  ``answered``, ``answer_rate``, ``circles`` and ``posts`` (circles and posts are made only of people
  who answered, so they would hint at the number). Renderers show them as "fewer than N" / "withheld"
  and the JSON gives ``null`` with their names in a ``withheld`` list.
- Figures about the whole programme stay visible: people by status, nudges asked, bounces and
  opt-outs. They are totals over everyone, not cuts, so nothing withheld can be got back from them
  by subtraction.
- The rule is applied to each period on its own, so trend entries are withheld independently.
- There is no free text from participants in an F1 report; the "you said, we did" notes are written
  by L&D and are shown as they are (HTML-escaped by the template).

The F6 sections go through the same rule in `build_report`, before a renderer sees them: cuts by roster
column and per-question rows with complementary suppression (`cuts`), conversation health and
connections (`conversation`), themes and key phrases (`themes`), consented highlights (`quotes`). In a
suppressed period all of them are withheld.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime
from typing import Any

from nudger.reports.conversation import (
    CircleCounts,
    ConnectionCounts,
    Connections,
    Health,
    QuestionCounts,
    Questions,
    connections,
    health,
    questions,
)
from nudger.reports.cuts import Cell, CutTable, suppress_cuts
from nudger.reports.periods import Span, parse_span
from nudger.reports.quotes import pick_highlights
from nudger.reports.rules import (
    ANONYMITY_FLOOR,
    effective_threshold,
    is_suppressed,
    iso_week_bounds,
    parse_period,
    period_of,
)
from nudger.reports.themes import ThemeCounts, Themes, shown_themes

__all__ = [
    "ANONYMITY_FLOOR",
    "TREND_PERIODS",
    "WITHHOLDABLE",
    "Participation",
    "ReportData",
    "Sections",
    "Shown",
    "build_report",
    "effective_threshold",
    "is_suppressed",
    "iso_week_bounds",
    "parse_period",
    "period_of",
    "select_trend",
    "shown",
]

TREND_PERIODS = 6
WITHHOLDABLE: tuple[str, ...] = ("answered", "answer_rate", "circles", "posts")
"""The figures withheld in a suppressed period, in display order."""


@dataclass(frozen=True)
class Participation:
    """Counts for one programme and one period. All are totals; none is withheld here (see `shown`).

    enrolled: people in the programme now (enrolment not ended and status not "left");
    active / paused: of those, taking part / pausing now (enrolled − active − paused = invited or
    suppressed addresses); left: people whose enrolment ended or who left.
    asked: nudges sent in the period's round(s); answered: of those, nudges with a reply.
    circles: peer circles formed from the period's round(s); posts: posts relayed in them.
    bounces: nudge emails that bounced in the period's week; opt_outs: people who opted out then.
    """

    enrolled: int
    active: int
    paused: int
    left: int
    asked: int
    answered: int
    circles: int
    posts: int
    bounces: int
    opt_outs: int
    #: distinct people who answered, when a period holds several rounds (None: one round, = answered)
    answerers: int | None = None

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "answerers" and value is None:
                continue
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"Participation.{f.name} must be a count (>= 0), got {value!r}")
        if self.answered > self.asked:
            raise ValueError(f"Participation: answered ({self.answered}) exceeds asked ({self.asked})")
        if self.answerers is not None and self.answerers > self.answered:
            raise ValueError(
                f"Participation: answerers ({self.answerers}) exceeds answered ({self.answered})"
            )

    @property
    def respondents(self) -> int:
        """People who answered: the count the anonymity rule is applied to."""
        return self.answered if self.answerers is None else self.answerers

    @property
    def answer_rate(self) -> float | None:
        """answered / asked, or None when nobody was asked."""
        if self.asked == 0:
            return None
        return self.answered / self.asked


@dataclass(frozen=True)
class Shown:
    """The figures a report may show. Withheld ones are None and named in `withheld`.

    `answer_rate` is also None when nobody was asked; `withheld` tells the two apart.
    """

    enrolled: int
    active: int
    paused: int
    left: int
    asked: int
    answered: int | None
    answer_rate: float | None
    circles: int | None
    posts: int | None
    bounces: int
    opt_outs: int
    withheld: tuple[str, ...]

    @property
    def suppressed(self) -> bool:
        return bool(self.withheld)


def shown(p: Participation, threshold: int) -> Shown:
    """Apply the anonymity rule (module docstring) to one period's counts."""
    hide = is_suppressed(p.respondents, threshold)
    return Shown(
        enrolled=p.enrolled,
        active=p.active,
        paused=p.paused,
        left=p.left,
        asked=p.asked,
        answered=None if hide else p.answered,
        answer_rate=None if hide else p.answer_rate,
        circles=None if hide else p.circles,
        posts=None if hide else p.posts,
        bounces=p.bounces,
        opt_outs=p.opt_outs,
        withheld=WITHHOLDABLE if hide else (),
    )


@dataclass(frozen=True)
class ReportData:
    """Everything a report shows, before formatting. Renderers read figures through `figures()`.

    trend: earlier periods, oldest first, at most `TREND_PERIODS`. Their Participation carries the
    same people-by-status snapshot as the report's period (status is only known for now); only the
    per-period figures of a trend entry are meaningful.
    """

    programme_key: str
    programme_name: str
    period: str
    generated_at: datetime
    question: str | None
    participation: Participation
    trend: tuple[tuple[str, Participation], ...]
    notes: tuple[str, ...]
    threshold: int
    suppressed: bool
    cuts: tuple[CutTable, ...] = ()
    health: Health | None = None
    connections: Connections | None = None
    questions: Questions | None = None
    themes: Themes | None = None
    highlights: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        parse_span(self.period)
        if self.generated_at.utcoffset() is None:
            raise ValueError("ReportData.generated_at must be timezone-aware")
        if self.threshold < ANONYMITY_FLOOR:
            raise ValueError(f"ReportData.threshold must be at least {ANONYMITY_FLOOR}")
        if self.suppressed != is_suppressed(self.participation.respondents, self.threshold):
            raise ValueError("ReportData.suppressed disagrees with the anonymity rule")
        if self.suppressed and (
            any(t.rows for t in self.cuts) or self.health or self.connections or self.highlights
        ):
            raise ValueError("ReportData: a suppressed period shows no cut, health, connection or quote")

    @property
    def span(self) -> Span:
        return parse_span(self.period)

    def figures(self) -> Shown:
        """This period's figures with the anonymity rule applied."""
        return shown(self.participation, self.threshold)

    def trend_figures(self) -> tuple[tuple[str, Shown], ...]:
        """The trend's figures, each period withheld on its own."""
        return tuple((period, shown(p, self.threshold)) for period, p in self.trend)


def select_trend(
    period: str, history: Iterable[tuple[str, Participation]], limit: int = TREND_PERIODS
) -> tuple[tuple[str, Participation], ...]:
    """The `limit` periods just before `period`, oldest first (later or duplicate periods dropped)."""
    first = parse_span(period).first
    earlier: dict[str, tuple[date, Participation]] = {}
    for p, data in history:
        start = parse_span(p).first
        if start < first:
            earlier[p] = (start, data)
    ordered = sorted(earlier.items(), key=lambda item: item[1][0])
    return tuple((p, data) for p, (_, data) in ordered[-limit:]) if limit > 0 else ()


def build_report(
    *,
    programme_key: str,
    programme_name: str,
    period: str,
    question: str | None,
    participation: Participation,
    history: Sequence[tuple[str, Participation]],
    notes: Sequence[str],
    now: datetime,
    threshold: int,
    sections: Sections | None = None,
) -> ReportData:
    """Assemble a report: floor the threshold, pick the trend, decide suppression, tidy the notes, and
    put every F6 section through the anonymity rule."""
    if now.utcoffset() is None:
        raise ValueError("build_report needs an aware `now`")
    limit = effective_threshold(threshold)
    suppressed = is_suppressed(participation.respondents, limit)
    shown_sections = (sections or Sections()).shown(limit, suppressed=suppressed)
    return ReportData(
        programme_key=programme_key,
        programme_name=programme_name,
        period=period,
        generated_at=now.astimezone(UTC),
        question=(question or "").strip() or None,
        participation=participation,
        trend=select_trend(period, history),
        notes=tuple(n.strip() for n in notes if n.strip()),
        threshold=limit,
        suppressed=suppressed,
        **shown_sections,
    )


@dataclass(frozen=True)
class Sections:
    """The raw F6 figures of a period, before the anonymity rule (see `shown`)."""

    cut_columns: tuple[str, ...] = ()
    cut_atoms: Mapping[tuple[str, ...], Cell] = field(default_factory=dict)
    circles: CircleCounts | None = None
    connections: ConnectionCounts | None = None
    questions: tuple[QuestionCounts, ...] = ()
    themes: ThemeCounts | None = None
    themes_before: ThemeCounts | None = None
    quote_candidates: tuple[str, ...] = ()

    def shown(self, threshold: int, *, suppressed: bool) -> dict[str, Any]:
        """ReportData's section fields, each through the rule (nothing but counts in a suppressed period)."""
        cuts = (
            tuple(suppress_cuts(self.cut_atoms, self.cut_columns, threshold, total_shown=not suppressed))
            if self.cut_columns
            else ()
        )
        team_cut = next((t for t in cuts if t.column == "team"), None)
        nameable = [r.value for r in team_cut.rows] if team_cut else []
        themes = None if self.themes is None else shown_themes(self.themes, self.themes_before, threshold)
        main = [t.name for t in themes.themes[:3]] if themes else []
        return {
            "cuts": cuts,
            "health": None if suppressed or self.circles is None else health(self.circles),
            "connections": None
            if suppressed or self.connections is None
            else connections(self.connections, nameable),
            "questions": questions(self.questions, threshold, total_shown=not suppressed)
            if self.questions
            else None,
            "themes": themes,
            "highlights": () if suppressed else pick_highlights(self.quote_candidates, main),
        }
