"""Schedule maths (pure): when each person is asked, in their own timezone.

A programme asks once per ISO week, on its weekday at its local time. The round for a week is
identified by the ISO week of that local date (e.g. "2026-W48"), the same for everybody. `now` is
always an argument.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from nudger.config import Programme

#: plan a round this long before its first send
PLAN_AHEAD = timedelta(hours=36)
#: a person whose send time passed longer ago than this is not asked this round (no stale nudges)
LATE_LIMIT = timedelta(hours=12)


@dataclass(frozen=True)
class Slot:
    person_id: int
    timezone: str


@dataclass(frozen=True)
class PlannedSend:
    person_id: int
    due_at: datetime


@dataclass(frozen=True)
class RoundPlan:
    programme: str
    period: str
    seq: int
    question: str
    theme: str
    opens_at: datetime
    closes_at: datetime
    sends: tuple[PlannedSend, ...]


def period_of(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def week_start(period: str) -> date:
    """Monday of an ISO week "YYYY-Www"."""
    year, week = period.split("-W")
    return date.fromisocalendar(int(year), int(week), 1)


def period_bounds(period: str) -> tuple[datetime, datetime]:
    """[Monday 00:00 UTC, next Monday 00:00 UTC) of an ISO week."""
    start = datetime.combine(week_start(period), time(0), tzinfo=UTC)
    return start, start + timedelta(days=7)


def local_due(programme: Programme, period: str, timezone: str) -> datetime:
    """The UTC instant of the programme's weekday/time in `timezone`, in ISO week `period`."""
    day = week_start(period) + timedelta(days=programme.schedule.weekday_index)
    hour, minute = programme.schedule.hour_minute
    local = datetime.combine(day, time(hour, minute), tzinfo=ZoneInfo(timezone))
    return local.astimezone(UTC)


def candidate_periods(now: datetime) -> list[str]:
    """This ISO week and the next (wide enough for every timezone)."""
    today = now.astimezone(UTC).date()
    return [period_of(today - timedelta(days=1)), period_of(today), period_of(today + timedelta(days=7))]


def question_for(programme: Programme, seq: int) -> tuple[str, str]:
    q = programme.questions[(seq - 1) % len(programme.questions)]
    return q.text, q.theme


def due_sends(programme: Programme, period: str, slots: Iterable[Slot], now: datetime) -> list[PlannedSend]:
    """Who should be asked in this round, and when; skipping anyone whose time passed too long ago."""
    out: list[PlannedSend] = []
    for slot in slots:
        due = local_due(programme, period, slot.timezone)
        if due < now - LATE_LIMIT:
            continue
        out.append(PlannedSend(slot.person_id, max(due, now)))
    return out


def round_window(programme: Programme, period: str) -> tuple[datetime, datetime]:
    """Earliest send anywhere on Earth (UTC+14) → latest send (UTC-12) + reply window."""
    opens = local_due(programme, period, "Etc/GMT-14")
    last = local_due(programme, period, "Etc/GMT+12")
    return opens, last + timedelta(hours=programme.reply_window_hours)


def periods_to_plan(programme: Programme, now: datetime) -> list[str]:
    """Periods whose round should exist now: it opens within PLAN_AHEAD and has not closed."""
    out: list[str] = []
    for period in dict.fromkeys(candidate_periods(now)):
        opens, closes = round_window(programme, period)
        if opens - PLAN_AHEAD <= now < closes:
            out.append(period)
    return out


def plan_round(
    programme: Programme, period: str, seq: int, slots: Sequence[Slot], now: datetime
) -> RoundPlan:
    question, theme = question_for(programme, seq)
    opens, closes = round_window(programme, period)
    return RoundPlan(
        programme=programme.key,
        period=period,
        seq=seq,
        question=question,
        theme=theme,
        opens_at=opens,
        closes_at=closes,
        sends=tuple(due_sends(programme, period, slots, now)),
    )
