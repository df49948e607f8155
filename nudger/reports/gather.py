"""Read a report's counts from the database (async; aggregate queries only, then the pure `build_report`).

Every query is a COUNT … GROUP BY, a handful of small rows (the questions, the notes, the list of
periods, team pairs), or a stream read in batches into fixed-size counters (minutes to the first
follow-up, the themes of shared answers), so memory stays flat however large the roster. A report costs
a fixed number of queries, whatever the period's length.

The period is a week, a month or a date range (`periods.Span`): the rounds of the ISO weeks whose
Monday falls in it; time-stamped facts by the span's own window. Per week below, read "per span".

What is counted (for programme P and period W):

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
- answerers (months and ranges): distinct people with an answered nudge in W.
- cuts: per combination of roster values (team, location), distinct people asked / who answered.
- circles: per circle of W, its members, posting members, posts and first post (see `conversation`).
- connections: pairs of members of one circle of W from different (current) teams, in a circle with a
  post; new when no earlier circle (any programme, an earlier week) with a post held both.
- themes: the text of W's *shared* answers (sharing peers or L&D; never private), by person; the same
  for the span before W, for the change.
- quote candidates: up to `MAX_QUOTE_CANDIDATES` shared answers of W whose author allowed quoting.
- notes: notes filed under W's label or under one of its weeks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, Subquery, and_, case, exists, func, literal, or_
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Result
from sqlalchemy.ext.asyncio import AsyncResult
from sqlalchemy.orm import Mapped, aliased
from sqlalchemy.sql.base import Executable
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from nudger.reports.conversation import CircleCounts, ConnectionCounts, QuestionCounts
from nudger.reports.cuts import Cell
from nudger.reports.metrics import (
    TREND_PERIODS,
    Participation,
    ReportData,
    Sections,
    build_report,
)
from nudger.reports.periods import Span, earlier_spans, parse_span
from nudger.reports.themes import ThemeCounter, ThemeCounts
from nudger.store.models import (
    Audit,
    Circle,
    Enrolment,
    Member,
    Note,
    Nudge,
    NudgeStatus,
    Outbox,
    OutboxStatus,
    Person,
    PersonStatus,
    Post,
    Reply,
    Round,
    Sharing,
)

OPTOUT_ACTION = "optout"
CUT_COLUMNS: tuple[str, ...] = ("team", "location")
"""The roster columns a report cuts by, in order (any plain text column of Person works)."""
ROSTER_COLUMNS: tuple[str, ...] = ("team", "location", "timezone")
"""Columns that may be cut by: each person has exactly one value (names and addresses never)."""
MAX_QUOTE_CANDIDATES = 60
STREAM_BATCH = 10_000

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


def _answered() -> ColumnElement[bool]:
    return or_(col(Nudge.replied_at).is_not(None), col(Nudge.status) == NudgeStatus.REPLIED)


def _asked() -> ColumnElement[bool]:
    return or_(col(Nudge.sent_at).is_not(None), col(Nudge.status) == NudgeStatus.SENT, _answered())


async def _nudges(
    session: AsyncSession, programme_key: str, periods: Sequence[str]
) -> tuple[dict[str, int], dict[str, int]]:
    """(asked, answered) per week."""
    answered, asked = _answered(), _asked()
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


async def _core(session: AsyncSession, stmt: Executable) -> Result[*tuple[Any, ...]]:
    """Run a Core statement on the session's connection (SQLModel's `exec` is for ORM selects)."""
    return await (await session.connection()).execute(stmt)


async def _stream(session: AsyncSession, stmt: Executable) -> AsyncResult[*tuple[Any, ...]]:
    """Stream a Core statement in batches (`yield_per`), so memory stays flat."""
    return await (await session.connection()).stream(stmt)


def _span_of(weeks: Mapping[str, str]) -> ColumnElement[str | None]:
    """A SQL expression naming the span that holds a round's week (NULL for none)."""
    by_span: dict[str, list[str]] = {}
    for week, label in weeks.items():
        by_span.setdefault(label, []).append(week)
    return case(*((col(Round.period).in_(ws), label) for label, ws in by_span.items()))


async def _answerers(session: AsyncSession, programme_key: str, weeks: Mapping[str, str]) -> dict[str, int]:
    """Distinct people with an answered nudge, per span."""
    span = _span_of(weeks)
    stmt = (
        select(span, func.count(func.distinct(Nudge.person_id)))
        .select_from(Nudge)
        .join(Round, col(Round.id) == col(Nudge.round_id))
        .where(Round.programme == programme_key, col(Round.period).in_(list(weeks)), _answered())
        .group_by(span)
    )
    return _by_period((await session.exec(stmt)).all())


async def _cut_atoms(
    session: AsyncSession, programme_key: str, weeks: Sequence[str], columns: Sequence[str]
) -> dict[tuple[str, ...], Cell]:
    """Distinct people asked / who answered, per combination of roster values."""
    keys = [getattr(Person, c) for c in columns]
    answered_person = case((_answered(), col(Nudge.person_id)))
    stmt = (
        sa_select(
            *keys,
            func.count(func.distinct(Nudge.person_id)),
            func.count(func.distinct(answered_person)),
        )
        .select_from(Nudge)
        .join(Round, col(Round.id) == col(Nudge.round_id))
        .join(Person, col(Person.id) == col(Nudge.person_id))
        .where(col(Round.programme) == programme_key, col(Round.period).in_(weeks), _asked())
        .group_by(*keys)
    )
    out: dict[tuple[str, ...], Cell] = {}
    for row in (await _core(session, stmt)).all():
        *values, asked, answered = tuple(row)
        out[tuple(str(v or "") for v in values)] = Cell(int(asked), int(answered))
    return out


def _posts_per_circle() -> Subquery:
    return (
        sa_select(
            col(Post.circle_id).label("circle_id"),
            func.count().label("posts"),
            func.count(func.distinct(Post.member_id)).label("posters"),
            func.min(Post.created_at).label("first_at"),
        )
        .group_by(col(Post.circle_id))
        .subquery()
    )


async def _circle_counts(session: AsyncSession, programme_key: str, weeks: Sequence[str]) -> CircleCounts:
    posts = _posts_per_circle()
    members = (
        sa_select(col(Member.circle_id).label("circle_id"), func.count().label("members"))
        .group_by(col(Member.circle_id))
        .subquery()
    )
    base = (
        sa_select(col(Circle.id))
        .join(Round, col(Round.id) == col(Circle.round_id))
        .where(col(Round.programme) == programme_key, col(Round.period).in_(weeks))
    )
    totals = (
        sa_select(
            func.count(col(Circle.id)),
            func.count(posts.c.circle_id),
            func.count(case((posts.c.posters >= members.c.members, 1))),
            func.coalesce(func.sum(posts.c.posts), 0),
        )
        .select_from(Circle)
        .join(Round, col(Round.id) == col(Circle.round_id))
        .outerjoin(posts, posts.c.circle_id == col(Circle.id))
        .outerjoin(members, members.c.circle_id == col(Circle.id))
        .where(col(Circle.id).in_(base))
    )
    n, with_post, all_posted, post_count = tuple((await _core(session, totals)).one())
    minutes: dict[int, int] = {}
    firsts = (
        sa_select(col(Circle.created_at), posts.c.first_at)
        .select_from(Circle)
        .join(posts, posts.c.circle_id == col(Circle.id))
        .where(col(Circle.id).in_(base))
        .execution_options(yield_per=STREAM_BATCH)
    )
    async for part in (await _stream(session, firsts)).partitions():
        for created, first in part:
            delta = _aware(first) - _aware(created)
            m = max(int(delta.total_seconds() // 60), 0)
            minutes[m] = minutes.get(m, 0) + 1
    return CircleCounts(
        circles=int(n),
        with_follow_up=int(with_post),
        all_posted=int(all_posted),
        posts=int(post_count),
        first_follow_up_minutes=minutes,
    )


def _aware(when: datetime | str) -> datetime:
    """Aggregates (MIN) can come back from SQLite as text; everything is stored in UTC."""
    if isinstance(when, str):
        when = datetime.fromisoformat(when)
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _pairs(
    programme_key: str | None, weeks: Sequence[str] | None, before_week: str | None
) -> tuple[Select[str, str], Any, Any]:
    """Cross-team pairs of members in circles with a post; filtered to P's `weeks`, or (any
    programme) to rounds before `before_week`. Returns the statement and the two member aliases."""
    m1, m2 = aliased(Member), aliased(Member)
    p1, p2 = aliased(Person), aliased(Person)
    talked = exists().where(col(Post.circle_id) == col(Circle.id))
    stmt = (
        sa_select(col(p1.team), col(p2.team))
        .select_from(m1)
        .join(m2, and_(col(m1.circle_id) == col(m2.circle_id), col(m1.person_id) < col(m2.person_id)))
        .join(Circle, col(Circle.id) == col(m1.circle_id))
        .join(Round, col(Round.id) == col(Circle.round_id))
        .join(p1, col(p1.id) == col(m1.person_id))
        .join(p2, col(p2.id) == col(m2.person_id))
        .where(col(p1.team) != col(p2.team), talked)
    )
    if programme_key is not None and weeks is not None:
        stmt = stmt.where(col(Round.programme) == programme_key, col(Round.period).in_(weeks))
    if before_week is not None:
        stmt = stmt.where(col(Round.period) < before_week)
    return stmt, m1, m2


async def _connections(session: AsyncSession, programme_key: str, weeks: Sequence[str]) -> ConnectionCounts:
    if not weeks:
        return ConnectionCounts()
    first = min(weeks)
    now_pairs, m1, m2 = _pairs(programme_key, weeks, None)
    m3, m4 = aliased(Member), aliased(Member)
    c2, r2 = aliased(Circle), aliased(Round)
    earlier = (
        sa_select(literal(1))
        .select_from(m3)
        .join(m4, col(m3.circle_id) == col(m4.circle_id))
        .join(c2, col(c2.id) == col(m3.circle_id))
        .join(r2, col(r2.id) == col(c2.round_id))
        .where(
            col(m3.person_id) == col(m1.person_id),
            col(m4.person_id) == col(m2.person_id),
            col(r2.period) < first,
            exists().where(col(Post.circle_id) == col(c2.id)),
        )
    ).exists()
    new_pairs = now_pairs.where(~earlier).with_only_columns(func.count())
    n = int((await _core(session, new_pairs)).scalar_one())
    links_now = {_link(a, b) for a, b in (await _core(session, now_pairs.distinct())) if a is not None}
    before_pairs, _, _ = _pairs(None, None, first)
    links_before = {_link(a, b) for a, b in (await _core(session, before_pairs.distinct()))}
    return ConnectionCounts(n, frozenset(links_now), frozenset(links_before))


def _link(a: str | None, b: str | None) -> tuple[str, str]:
    x, y = (a or "").strip() or "(not set)", (b or "").strip() or "(not set)"
    return (x, y) if x <= y else (y, x)


async def _questions(session: AsyncSession, programme_key: str, weeks: Sequence[str]) -> dict[str, str]:
    stmt = (
        select(Round.period, Round.question)
        .where(col(Round.programme) == programme_key, col(Round.period).in_(weeks))
        .order_by(col(Round.seq))
    )
    return {str(p): str(q) for p, q in (await session.exec(stmt)).all()}


def _shared_answers(programme_key: str, weeks: Sequence[str]) -> Select[int, str]:
    return (
        sa_select(col(Reply.person_id), col(Reply.text))
        .join(Nudge, col(Nudge.id) == col(Reply.nudge_id))
        .join(Round, col(Round.id) == col(Nudge.round_id))
        .where(
            col(Round.programme) == programme_key,
            col(Round.period).in_(weeks),
            col(Reply.sharing) != Sharing.PRIVATE,
        )
    )


async def _themes(
    session: AsyncSession, programme_key: str, weeks: Sequence[str], *, phrases: bool = True
) -> ThemeCounts:
    counter = ThemeCounter(phrases=phrases)
    if not weeks:
        return counter.counts()
    stmt = (
        _shared_answers(programme_key, weeks)
        .order_by(col(Reply.person_id), col(Reply.id))
        .execution_options(yield_per=STREAM_BATCH)
    )
    async for part in (await _stream(session, stmt)).partitions():  # batch by batch: row by row is slow
        for person_id, text in part:
            counter.add(int(person_id), str(text))
    return counter.counts()


async def _quote_candidates(session: AsyncSession, programme_key: str, weeks: Sequence[str]) -> list[str]:
    stmt = (
        _shared_answers(programme_key, weeks)
        .where(col(Reply.quote_ok).is_(True))
        .order_by(col(Reply.id))
        .limit(MAX_QUOTE_CANDIDATES)
    )
    return [str(text) for _, text in (await _core(session, stmt))]


async def _notes(session: AsyncSession, programme_key: str, span: Span) -> list[str]:
    stmt = (
        select(Note.text)
        .where(Note.programme == programme_key, col(Note.period).in_([span.label, *span.weeks()]))
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
    columns: Sequence[str] = CUT_COLUMNS,
) -> ReportData:
    """Count everything the report for `period` needs (and up to 6 earlier periods for the trend)."""
    span = parse_span(period)
    for c in columns:
        if c not in ROSTER_COLUMNS:
            raise ValueError(f'cannot cut by "{c}" (one of {", ".join(ROSTER_COLUMNS)})')
    earlier = earlier_spans(span, await periods_with_rounds(session, programme_key), TREND_PERIODS)
    spans = [*earlier, span]
    week_span = {w: s.label for s in spans for w in s.weeks()}
    weeks = list(week_span)
    this_weeks = span.weeks()
    windows = {s.label: (s.start, s.end) for s in spans}

    people = await _people(session, programme_key, now)
    asked_w, answered_w = await _nudges(session, programme_key, weeks)
    circles_w = await _circles(session, programme_key, weeks)
    posts_w = await _posts(session, programme_key, weeks)
    bounces = await _bounces(session, programme_key, windows)
    opt_outs = await _opt_outs(session, programme_key, windows)
    answerers = await _answerers(session, programme_key, week_span) if span.kind != "week" else {}

    def per_span(counts: Mapping[str, int]) -> dict[str, int]:
        out: dict[str, int] = {}
        for week, n in counts.items():
            label = week_span.get(week)
            if label is not None:
                out[label] = out.get(label, 0) + n
        return out

    asked, answered = per_span(asked_w), per_span(answered_w)
    circles, posts = per_span(circles_w), per_span(posts_w)

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
            answerers=answerers.get(p, 0) if span.kind != "week" else None,
        )

    questions = await _questions(session, programme_key, this_weeks)
    sections = Sections(
        cut_columns=tuple(columns),
        cut_atoms=await _cut_atoms(session, programme_key, this_weeks, columns),
        circles=await _circle_counts(session, programme_key, this_weeks),
        connections=await _connections(session, programme_key, this_weeks),
        questions=tuple(
            QuestionCounts(
                week=w,
                question=q,
                asked=asked_w.get(w, 0),
                answered=answered_w.get(w, 0),
                circles=circles_w.get(w, 0),
                posts=posts_w.get(w, 0),
            )
            for w, q in questions.items()
        ),
        themes=await _themes(session, programme_key, this_weeks),
        themes_before=await _themes(session, programme_key, span.shift(-1).weeks(), phrases=False),
        quote_candidates=tuple(await _quote_candidates(session, programme_key, this_weeks)),
    )
    first_question = next(iter(questions.values()), None)
    return build_report(
        programme_key=programme_key,
        programme_name=programme_name,
        period=span.label,
        question=first_question if span.kind == "week" else None,
        participation=participation(span.label),
        history=[(s.label, participation(s.label)) for s in earlier],
        notes=await _notes(session, programme_key, span),
        now=now,
        threshold=threshold,
        sections=sections,
    )
