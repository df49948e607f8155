"""Report figures for one programme and one period (pure: data in, data out, `now` passed in).

A period is an ISO week, ``"YYYY-Www"`` (e.g. ``"2026-W48"``); its window runs from Monday 00:00 UTC
to the next Monday 00:00 UTC (`iso_week_bounds`).

The anonymity rule (applied by `shown`, which every renderer must go through):

- The threshold is the configured ``report.anonymity_threshold`` (default 5); values under the floor
  of 3 are raised to 3 (`effective_threshold`), so a mistaken setting can never weaken the rule.
- A period is *suppressed* when fewer people answered than the threshold. Exactly the threshold is
  enough to show it.
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

Later reports (themes, cuts by team, connections) add cuts; each cut must go through the same rule,
including complementary suppression across cuts.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, timedelta

ANONYMITY_FLOOR = 3
TREND_PERIODS = 6
WITHHOLDABLE: tuple[str, ...] = ("answered", "answer_rate", "circles", "posts")
"""The figures withheld in a suppressed period, in display order."""

_PERIOD_RE = re.compile(r"(\d{4})-W(\d{2})")


def parse_period(period: str) -> tuple[int, int]:
    """``"2026-W48"`` → ``(2026, 48)``; ValueError for anything that is not a real ISO week."""
    m = _PERIOD_RE.fullmatch(period)
    if not m:
        raise ValueError(f'not an ISO week "{period}" (expected YYYY-Www, e.g. 2026-W48)')
    year, week = int(m.group(1)), int(m.group(2))
    try:
        date.fromisocalendar(year, week, 1)
    except ValueError:
        raise ValueError(f'not an ISO week "{period}" (year {year} has no week {week})') from None
    return year, week


def iso_week_bounds(period: str) -> tuple[datetime, datetime]:
    """The UTC window of an ISO week: [Monday 00:00, next Monday 00:00)."""
    year, week = parse_period(period)
    monday = date.fromisocalendar(year, week, 1)
    start = datetime(monday.year, monday.month, monday.day, tzinfo=UTC)
    return start, start + timedelta(days=7)


def period_of(when: datetime) -> str:
    """The ISO week a moment falls in, in UTC."""
    if when.utcoffset() is None:
        raise ValueError("period_of needs an aware datetime")
    iso = when.astimezone(UTC).isocalendar()
    return f"{iso.year:04d}-W{iso.week:02d}"


def effective_threshold(threshold: int) -> int:
    """The configured threshold, never below the floor of 3."""
    return max(threshold, ANONYMITY_FLOOR)


def is_suppressed(answered: int, threshold: int) -> bool:
    """True when fewer people answered than the (floored) threshold."""
    return answered < effective_threshold(threshold)


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

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"Participation.{f.name} must be a count (>= 0), got {value!r}")
        if self.answered > self.asked:
            raise ValueError(f"Participation: answered ({self.answered}) exceeds asked ({self.asked})")

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
    hide = is_suppressed(p.answered, threshold)
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

    def __post_init__(self) -> None:
        parse_period(self.period)
        if self.generated_at.utcoffset() is None:
            raise ValueError("ReportData.generated_at must be timezone-aware")
        if self.threshold < ANONYMITY_FLOOR:
            raise ValueError(f"ReportData.threshold must be at least {ANONYMITY_FLOOR}")
        if self.suppressed != is_suppressed(self.participation.answered, self.threshold):
            raise ValueError("ReportData.suppressed disagrees with the anonymity rule")

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
    parse_period(period)
    earlier: dict[str, Participation] = {}
    for p, data in history:
        parse_period(p)
        if p < period:  # zero-padded ISO weeks sort as strings
            earlier[p] = data
    return tuple(sorted(earlier.items())[-limit:]) if limit > 0 else ()


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
) -> ReportData:
    """Assemble a report: floor the threshold, pick the trend, decide suppression, tidy the notes."""
    if now.utcoffset() is None:
        raise ValueError("build_report needs an aware `now`")
    limit = effective_threshold(threshold)
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
        suppressed=is_suppressed(participation.answered, limit),
    )
