"""Schedule maths (pure): when each person is asked, in their own timezone.

A programme asks at most once per ISO week; the round for a week is identified by that week
("2026-W48"), the same for everybody. Its nominal day comes from the cadence (every week, every
other week, the n-th weekday of the month, or a cron expression) and its start and end dates. Each
person is then asked on that day at the programme's local time *in their timezone* (DST-correct),
moved to their next working day if it is a non-working day or a holiday (programme-wide or for their
location), plus a few minutes of deterministic jitter. `now` is always an argument.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from nudger.config import Programme, Question
from nudger.programmes.cron import parse_cron

#: plan a round this long before its first send
PLAN_AHEAD = timedelta(hours=36)
#: a person whose send time passed longer ago than this is not asked this round (no stale nudges)
LATE_LIMIT = timedelta(hours=12)
#: a holiday may push someone's nudge later, but never closer than this to the round's close
MIN_TIME_TO_ANSWER = timedelta(hours=24)
_MAX_SHIFT_DAYS = 14


@dataclass(frozen=True)
class Slot:
    person_id: int
    timezone: str
    location: str = ""


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


def _cadence_day(programme: Programme, monday: date) -> tuple[date, time] | None:
    sched = programme.schedule
    if sched.cron:
        cron = parse_cron(sched.cron)
        for offset in range(7):
            day = monday + timedelta(days=offset)
            if cron.matches_day(day) and cron.times():
                return day, cron.times()[0]
        return None
    day = monday + timedelta(days=sched.weekday_index)
    at = time(*sched.hour_minute)
    if sched.every == "2 weeks":
        anchor = programme.starts or date(2024, 1, 1)
        anchor_monday = anchor - timedelta(days=anchor.weekday())
        if ((monday - anchor_monday).days // 7) % 2:
            return None
    elif sched.every == "month" and (day.day - 1) // 7 + 1 != sched.week_of_month:
        return None
    return day, at


def nominal_day(programme: Programme, period: str) -> tuple[date, time] | None:
    """The programme's day and local time in this ISO week, or None if it does not ask that week."""
    found = _cadence_day(programme, week_start(period))
    if found is None:
        return None
    day, _ = found
    if (programme.starts and day < programme.starts) or (programme.ends and day > programme.ends):
        return None
    return found


def is_day_off(programme: Programme, day: date, location: str = "") -> bool:
    if day.weekday() not in programme.working_day_indexes:
        return True
    if day in programme.holidays:
        return True
    return day in programme.holidays_by_location.get(location, ())


def next_working_day(programme: Programme, day: date, location: str = "") -> date | None:
    """`day` itself if it is a working day for this location, else the next one (None if none soon)."""
    for offset in range(_MAX_SHIFT_DAYS):
        candidate = day + timedelta(days=offset)
        if not is_day_off(programme, candidate, location):
            return candidate
    return None


def jitter(person_id: int, period: str, minutes: int) -> timedelta:
    """A few minutes, the same for a person and round every time it is computed."""
    if minutes <= 0:
        return timedelta(0)
    digest = hashlib.sha256(f"{person_id}:{period}".encode()).digest()
    return timedelta(seconds=int.from_bytes(digest[:4], "big") % (minutes * 60))


def local_due(programme: Programme, period: str, timezone: str, location: str = "") -> datetime | None:
    """The UTC instant this person is asked in this round (before jitter), or None if not this round."""
    found = nominal_day(programme, period)
    if found is None:
        return None
    day, at = found
    working = next_working_day(programme, day, location)
    if working is None:
        return None
    return datetime.combine(working, at, tzinfo=ZoneInfo(timezone)).astimezone(UTC)


def round_window(programme: Programme, period: str) -> tuple[datetime, datetime] | None:
    """Earliest nominal send anywhere on Earth (UTC+14) → latest (UTC-12) + reply window."""
    found = nominal_day(programme, period)
    if found is None:
        return None
    day, at = found
    opens = datetime.combine(day, at, tzinfo=ZoneInfo("Etc/GMT-14")).astimezone(UTC)
    last = datetime.combine(day, at, tzinfo=ZoneInfo("Etc/GMT+12")).astimezone(UTC)
    return opens, last + timedelta(hours=programme.reply_window_hours)


def candidate_periods(now: datetime) -> list[str]:
    """Last, this and next ISO week (wide enough for every timezone)."""
    today = now.astimezone(UTC).date()
    return list(dict.fromkeys(period_of(today + timedelta(days=d)) for d in (-7, -1, 0, 7)))


def periods_to_plan(programme: Programme, now: datetime) -> list[str]:
    """Periods whose round should exist now: it opens within PLAN_AHEAD and has not closed."""
    out: list[str] = []
    for period in candidate_periods(now):
        window = round_window(programme, period)
        if window is not None and window[0] - PLAN_AHEAD <= now < window[1]:
            out.append(period)
    return out


def periods_between(programme: Programme, start: datetime, end: datetime) -> list[str]:
    """Periods with a round whose sends may fall in [start, end) (for `plan --from --until`)."""
    out: list[str] = []
    day = start.astimezone(UTC).date() - timedelta(days=7)
    while day <= end.astimezone(UTC).date() + timedelta(days=7):
        period = period_of(day)
        window = round_window(programme, period)
        if window is not None and window[0] < end and window[1] > start and period not in out:
            out.append(period)
        day += timedelta(days=7)
    return out


def theme_order(questions: Sequence[Question]) -> list[Question]:
    """The bank interleaved by theme (reflect, apply, share, …, reflect, apply, …), bank order kept."""
    by_theme: dict[str, list[Question]] = {}
    for q in questions:
        by_theme.setdefault(q.theme, []).append(q)
    order: list[Question] = []
    queues = list(by_theme.values())
    while any(queues):
        for queue in queues:
            if queue:
                order.append(queue.pop(0))
    return order


def choose_question(programme: Programme, history: Sequence[str]) -> Question:
    """The next question: no repeat until the bank is exhausted, themes varied.

    `history` is the questions of this programme's earlier rounds, oldest first. Editing the bank is
    safe: a question asked within the last len(bank)-1 rounds is not asked again yet.
    """
    order = theme_order(programme.questions)
    texts = [q.text for q in order]
    start = (texts.index(history[-1]) + 1) if history and history[-1] in texts else 0
    recent = set(history[-(len(order) - 1) :]) if len(order) > 1 else set()
    for step in range(len(order)):
        candidate = order[(start + step) % len(order)]
        if candidate.text not in recent:
            return candidate
    return order[start % len(order)]


def due_sends(programme: Programme, period: str, slots: Iterable[Slot], now: datetime) -> list[PlannedSend]:
    """Who is asked in this round and when; skipping people whose time passed too long ago, or whose
    holidays push the nudge too close to the round's close."""
    window = round_window(programme, period)
    if window is None:
        return []
    latest = window[1] - MIN_TIME_TO_ANSWER
    out: list[PlannedSend] = []
    for slot in slots:
        due = local_due(programme, period, slot.timezone, slot.location)
        if due is None or due < now - LATE_LIMIT or due > latest:
            continue
        due += jitter(slot.person_id, period, programme.schedule.jitter_minutes)
        out.append(PlannedSend(slot.person_id, max(due, now)))
    return out


def plan_round(
    programme: Programme,
    period: str,
    seq: int,
    slots: Sequence[Slot],
    now: datetime,
    history: Sequence[str] = (),
) -> RoundPlan | None:
    window = round_window(programme, period)
    if window is None:
        return None
    question = choose_question(programme, history)
    return RoundPlan(
        programme=programme.key,
        period=period,
        seq=seq,
        question=question.text,
        theme=question.theme,
        opens_at=window[0],
        closes_at=window[1],
        sends=tuple(due_sends(programme, period, slots, now)),
    )


def local_iso(when: datetime, timezone: str) -> str:
    """An instant as ISO 8601 with the person's own offset."""
    return when.astimezone(ZoneInfo(timezone)).isoformat()
