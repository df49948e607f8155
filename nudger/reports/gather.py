"""Read a report's counts from the database (async; aggregate queries only, then the pure `build_report`).

Every query is a COUNT … GROUP BY or a handful of small rows (the question, the notes, the list of
periods), so memory stays flat however large the roster. A report costs a fixed number of queries:
one for the periods, one for people by status, one each for nudges, circles, posts, bounces and
opt-outs across the report's period and its trend, one for the question and one for the notes.

What is counted (for programme P and ISO week W):

- people by status, now: P's enrolments joined to their person. "left" = enrolment ended or person
  status left; "paused" = status paused with no end date or one still ahead of `now` (a pause that has
  run out counts as active); "active" = status active; "enrolled" = every enrolment not left (so it also
  holds invited and suppressed people).
- asked / answered: nudges of P's round(s) for W that were sent (`sent_at` set, or status sent or
  replied) / that have a reply (`replied_at` set or status replied).
- circles / posts: circles of those rounds, and posts in them.
- bounces: outbox rows with status bounced that carry the Message-ID of one of P's nudges, counted in
  the week the email was sent (created, if it never was).
- opt-outs: people enrolled in P (ever) with an audit row "optout" inside W's UTC window.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, and_, case, func, or_
from sqlalchemy.orm import Mapped
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from nudger.reports.metrics import (
    TREND_PERIODS,
    Participation,
    ReportData,
    build_report,
    iso_week_bounds,
    parse_period,
)
from nudger.store.models import (
    Audit,
    Circle,
    Enrolment,
    Note,
    Nudge,
    NudgeStatus,
    Outbox,
    OutboxStatus,
    Person,
    PersonStatus,
    Post,
    Round,
)

OPTOUT_ACTION = "optout"

_Time = ColumnElement[datetime] | Mapped[datetime]


async def periods_with_rounds(session: AsyncSession, programme_key: str) -> list[str]:
    """The periods in which the programme has a round, sorted (oldest first)."""
    stmt = select(Round.period).where(Round.programme == programme_key).distinct().order_by(Round.period)
    return list((await session.exec(stmt)).all())


async def _people(session: AsyncSession, programme_key: str, now: datetime) -> dict[str, int]:
    left = or_(col(Enrolment.left_at).is_not(None), col(Person.status) == PersonStatus.LEFT)
    paused = and_(
        col(Person.status) == PersonStatus.PAUSED,
        or_(col(Person.paused_until).is_(None), col(Person.paused_until) > now),
    )
    active = col(Person.status).in_([PersonStatus.ACTIVE, PersonStatus.PAUSED])
    bucket = case((left, "left"), (paused, "paused"), (active, "active"), else_="other")
    stmt = (
        select(bucket, func.count())
        .select_from(Enrolment)
        .join(Person, col(Person.id) == col(Enrolment.person_id))
        .where(Enrolment.programme == programme_key)
        .group_by(bucket)
    )
    counts = {str(name): int(n) for name, n in (await session.exec(stmt)).all()}
    counts["enrolled"] = sum(n for name, n in counts.items() if name != "left")
    return counts


def _by_period(rows: Sequence[tuple[str | None, int]]) -> dict[str, int]:
    return {str(period): int(n) for period, n in rows if period is not None}


async def _nudges(
    session: AsyncSession, programme_key: str, periods: Sequence[str]
) -> tuple[dict[str, int], dict[str, int]]:
    """(asked, answered) per period."""
    answered = or_(col(Nudge.replied_at).is_not(None), col(Nudge.status) == NudgeStatus.REPLIED)
    asked = or_(col(Nudge.sent_at).is_not(None), col(Nudge.status) == NudgeStatus.SENT, answered)
    stmt = (
        select(Round.period, func.count(), func.count(case((answered, 1))))
        .select_from(Nudge)
        .join(Round, col(Round.id) == col(Nudge.round_id))
        .where(Round.programme == programme_key, col(Round.period).in_(periods), asked)
        .group_by(Round.period)
    )
    rows = (await session.exec(stmt)).all()
    return {p: int(n) for p, n, _ in rows}, {p: int(r) for p, _, r in rows}


async def _circles(session: AsyncSession, programme_key: str, periods: Sequence[str]) -> dict[str, int]:
    stmt = (
        select(Round.period, func.count())
        .select_from(Circle)
        .join(Round, col(Round.id) == col(Circle.round_id))
        .where(Round.programme == programme_key, col(Round.period).in_(periods))
        .group_by(Round.period)
    )
    return _by_period((await session.exec(stmt)).all())


async def _posts(session: AsyncSession, programme_key: str, periods: Sequence[str]) -> dict[str, int]:
    stmt = (
        select(Round.period, func.count())
        .select_from(Post)
        .join(Circle, col(Circle.id) == col(Post.circle_id))
        .join(Round, col(Round.id) == col(Circle.round_id))
        .where(Round.programme == programme_key, col(Round.period).in_(periods))
        .group_by(Round.period)
    )
    return _by_period((await session.exec(stmt)).all())


def _week_of(when: _Time, windows: Mapping[str, tuple[datetime, datetime]]) -> ColumnElement[str | None]:
    """A SQL expression naming the period whose window holds `when` (NULL for none)."""
    return case(*((and_(when >= start, when < end), period) for period, (start, end) in windows.items()))


def _span(windows: Mapping[str, tuple[datetime, datetime]]) -> tuple[datetime, datetime]:
    return min(s for s, _ in windows.values()), max(e for _, e in windows.values())


async def _bounces(
    session: AsyncSession, programme_key: str, windows: Mapping[str, tuple[datetime, datetime]]
) -> dict[str, int]:
    when: _Time = func.coalesce(col(Outbox.sent_at), col(Outbox.created_at))
    week = _week_of(when, windows)
    lo, hi = _span(windows)
    stmt = (
        select(week, func.count())
        .select_from(Outbox)
        .join(Nudge, col(Nudge.message_id) == col(Outbox.message_id))
        .join(Round, col(Round.id) == col(Nudge.round_id))
        .where(
            Round.programme == programme_key,
            Outbox.status == OutboxStatus.BOUNCED,
            Nudge.message_id != "",
            when >= lo,
            when < hi,
        )
        .group_by(week)
    )
    return _by_period((await session.exec(stmt)).all())


async def _opt_outs(
    session: AsyncSession, programme_key: str, windows: Mapping[str, tuple[datetime, datetime]]
) -> dict[str, int]:
    when: _Time = col(Audit.at)
    week = _week_of(when, windows)
    lo, hi = _span(windows)
    enrolled = select(Enrolment.person_id).where(Enrolment.programme == programme_key)
    stmt = (
        select(week, func.count(func.distinct(Audit.person_id)))
        .where(
            Audit.action == OPTOUT_ACTION,
            col(Audit.person_id).in_(enrolled),
            when >= lo,
            when < hi,
        )
        .group_by(week)
    )
    return _by_period((await session.exec(stmt)).all())


async def _question(session: AsyncSession, programme_key: str, period: str) -> str | None:
    stmt = (
        select(Round.question)
        .where(Round.programme == programme_key, Round.period == period)
        .order_by(col(Round.seq))
        .limit(1)
    )
    return (await session.exec(stmt)).first()


async def _notes(session: AsyncSession, programme_key: str, period: str) -> list[str]:
    stmt = (
        select(Note.text)
        .where(Note.programme == programme_key, Note.period == period)
        .order_by(col(Note.created_at), col(Note.id))
    )
    return list((await session.exec(stmt)).all())


async def gather_report(
    session: AsyncSession,
    *,
    programme_key: str,
    programme_name: str,
    period: str,
    now: datetime,
    threshold: int,
) -> ReportData:
    """Count everything the report for `period` needs (and up to 6 earlier periods for the trend)."""
    parse_period(period)
    earlier = [p for p in await periods_with_rounds(session, programme_key) if p < period][-TREND_PERIODS:]
    periods = [*earlier, period]
    windows = {p: iso_week_bounds(p) for p in periods}

    people = await _people(session, programme_key, now)
    asked, answered = await _nudges(session, programme_key, periods)
    circles = await _circles(session, programme_key, periods)
    posts = await _posts(session, programme_key, periods)
    bounces = await _bounces(session, programme_key, windows)
    opt_outs = await _opt_outs(session, programme_key, windows)

    def participation(p: str) -> Participation:
        return Participation(
            enrolled=people.get("enrolled", 0),
            active=people.get("active", 0),
            paused=people.get("paused", 0),
            left=people.get("left", 0),
            asked=asked.get(p, 0),
            answered=answered.get(p, 0),
            circles=circles.get(p, 0),
            posts=posts.get(p, 0),
            bounces=bounces.get(p, 0),
            opt_outs=opt_outs.get(p, 0),
        )

    return build_report(
        programme_key=programme_key,
        programme_name=programme_name,
        period=period,
        question=await _question(session, programme_key, period),
        participation=participation(period),
        history=[(p, participation(p)) for p in earlier],
        notes=await _notes(session, programme_key, period),
        now=now,
        threshold=threshold,
    )
