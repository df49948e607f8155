"""Report periods: an ISO week, a calendar month, or a date range (pure).

Accepted spellings (`parse_span`):

- ``"2026-W48"``: the ISO week, Monday 00:00 UTC to the next Monday;
- ``"2026-11"``: the calendar month, the 1st 00:00 UTC to the 1st of the next month;
- ``"2026-11-01..2026-11-30"``: a range of whole days, both ends included.

Rounds are asked once per ISO week and are stored with their week (``Round.period``). A span holds
the rounds of the ISO weeks whose *Monday* falls inside it (`Span.weeks`), so every round belongs to
exactly one month, and a week is never split. Time-stamped facts (bounces, opt-outs, posts) are
counted by the span's own window, [start, end).

The trend of a span is made of earlier spans of the same kind and length (`Span.containing` finds the
one that holds a given day), so a monthly report trends by month and a 30-day range by 30 days.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal

from nudger.reports.rules import parse_period

Kind = Literal["week", "month", "range"]

_MONTH_RE = re.compile(r"(\d{4})-(\d{2})")
_RANGE_RE = re.compile(r"(\d{4}-\d{2}-\d{2})\.\.(\d{4}-\d{2}-\d{2})")
MAX_RANGE_DAYS = 366
_MONTHS: tuple[str, ...] = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
)
_MONTHS += ("October", "November", "December")


def _midnight(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=UTC)


def _add_months(year: int, month: int, k: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + k
    return index // 12, index % 12 + 1


@dataclass(frozen=True)
class Span:
    """A report period: its label as written (``"2026-W48"``, ``"2026-11"``, ``"2026-11-01..2026-11-30"``),
    its kind and its first and last day (inclusive)."""

    label: str
    kind: Kind
    first: date
    last: date

    @property
    def start(self) -> datetime:
        return _midnight(self.first)

    @property
    def end(self) -> datetime:
        """The instant just after the span (exclusive)."""
        return _midnight(self.last + timedelta(days=1))

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    @property
    def noun(self) -> str:
        """ "week", "month" or "period", for sentences like "this week"."""
        return {"week": "week", "month": "month", "range": "period"}[self.kind]

    def weeks(self) -> list[str]:
        """The ISO weeks whose Monday falls inside the span, oldest first."""
        monday = self.first + timedelta(days=(7 - self.first.weekday()) % 7)
        out: list[str] = []
        while monday <= self.last:
            iso = monday.isocalendar()
            out.append(f"{iso.year:04d}-W{iso.week:02d}")
            monday += timedelta(days=7)
        return out

    def shift(self, k: int) -> Span:
        """The span `k` steps later (earlier for negative `k`), of the same kind and length."""
        if self.kind == "week":
            monday = self.first + timedelta(days=7 * k)
            iso = monday.isocalendar()
            return week_span(f"{iso.year:04d}-W{iso.week:02d}")
        if self.kind == "month":
            year, month = _add_months(self.first.year, self.first.month, k)
            return month_span(year, month)
        step = timedelta(days=self.days * k)
        return range_span(self.first + step, self.last + step)

    def containing(self, day: date) -> Span:
        """The span of this kind (and, for ranges, this length and alignment) that holds `day`."""
        if self.kind == "week":
            iso = day.isocalendar()
            return week_span(f"{iso.year:04d}-W{iso.week:02d}")
        if self.kind == "month":
            return month_span(day.year, day.month)
        return self.shift((day - self.first).days // self.days)

    def human(self) -> str:
        """``"week 48, 23–29 Nov 2026"``, ``"November 2026"`` or ``"1–30 Nov 2026"``."""
        if self.kind == "month":
            return f"{_MONTHS[self.first.month - 1]} {self.first.year}"
        a, b = self.first, self.last
        if a.year != b.year:
            text = f"{a.day} {a:%b} {a.year} – {b.day} {b:%b} {b.year}"
        elif a.month != b.month:
            text = f"{a.day} {a:%b} – {b.day} {b:%b} {b.year}"
        elif a == b:
            text = f"{b.day} {b:%b} {b.year}"
        else:
            text = f"{a.day}–{b.day} {b:%b} {b.year}"
        if self.kind == "week":
            _, week = parse_period(self.label)
            return f"week {week}, {text}"
        return text

    def short(self, home_year: int) -> str:
        """A compact label for charts: ``"Week 47"``, ``"Oct"``, ``"2–8 Nov"``."""
        if self.kind == "week":
            year, week = parse_period(self.label)
            return f"Week {week}" if year == home_year else f"Week {week}, {year}"
        if self.kind == "month":
            name = f"{self.first:%b}"
            return name if self.first.year == home_year else f"{name} {self.first.year}"
        return f"{self.first.day} {self.first:%b} – {self.last.day} {self.last:%b}"


def week_span(label: str) -> Span:
    year, week = parse_period(label)
    monday = date.fromisocalendar(year, week, 1)
    return Span(f"{year:04d}-W{week:02d}", "week", monday, monday + timedelta(days=6))


def month_span(year: int, month: int) -> Span:
    ny, nm = _add_months(year, month, 1)
    return Span(f"{year:04d}-{month:02d}", "month", date(year, month, 1), date(ny, nm, 1) - timedelta(days=1))


def range_span(first: date, last: date) -> Span:
    return Span(f"{first.isoformat()}..{last.isoformat()}", "range", first, last)


def parse_span(text: str) -> Span:
    """Read a period (module docstring); ValueError with a readable message for anything else."""
    text = text.strip()
    if "W" in text:
        return week_span(text)
    m = _MONTH_RE.fullmatch(text)
    if m:
        year, month = int(m.group(1)), int(m.group(2))
        if not 1 <= month <= 12:
            raise ValueError(f'not a period "{text}" (a month is YYYY-MM, e.g. 2026-11; a week 2026-W48)')
        return month_span(year, month)
    m = _RANGE_RE.fullmatch(text)
    if m:
        try:
            first, last = date.fromisoformat(m.group(1)), date.fromisoformat(m.group(2))
        except ValueError:
            raise ValueError(f'not a date range "{text}" (a day does not exist)') from None
        if last < first:
            raise ValueError(f'date range "{text}" ends before it starts')
        if (last - first).days + 1 > MAX_RANGE_DAYS:
            raise ValueError(f'date range "{text}" is longer than {MAX_RANGE_DAYS} days')
        return range_span(first, last)
    raise ValueError(
        f'not a period "{text}" (a week 2026-W48, a month 2026-11, or a range 2026-11-01..2026-11-30)'
    )


def earlier_spans(span: Span, round_weeks: list[str], limit: int) -> list[Span]:
    """Up to `limit` spans before `span` (same kind) that hold a round, oldest first."""
    seen: dict[str, Span] = {}
    for week in round_weeks:
        monday = week_span(week).first
        if monday >= span.first:
            continue
        s = span.containing(monday)
        if s.first < span.first:
            seen[s.label] = s
    ordered = sorted(seen.values(), key=lambda s: s.first)
    return ordered[-limit:] if limit > 0 else []
