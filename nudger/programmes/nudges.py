"""The ask flow: plan due rounds, write one nudge + one outbox row per person, hand them to the queue;
queue the one reminder for those who have not answered.

Safe to run any number of times: rounds are unique per (programme, period), nudges per (round,
person), outbox rows per key. Changing the config never re-sends what was already sent.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, or_, update
from sqlalchemy import select as sa_select
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from nudger.config import Programme
from nudger.mail.compose import CONSENT_TEXT_VERSION, Composer, Recipient, compose_nudge, compose_reminder
from nudger.mail.message import Outgoing
from nudger.mail.outbox import add_to_outbox
from nudger.programmes.follow_up import personal_question
from nudger.programmes.schedule import (
    PlannedSend,
    RoundPlan,
    Slot,
    choose_question,
    local_iso,
    next_working_day,
    period_of,
    periods_between,
    periods_to_plan,
    plan_round,
    round_window,
    week_start,
)
from nudger.queue import Queue
from nudger.store.db import SessionMaker, transaction
from nudger.store.models import Enrolment, Nudge, NudgeStatus, Outbox, Person, PersonStatus, Reply, Round
from nudger.store.queries import core, insert_ignore, insert_ignore_returning, refresh_statistics

log = logging.getLogger(__name__)
BATCH = 200
#: chunks between two refreshes of the nudge table's statistics while a round is planned (PostgreSQL)
ANALYZE_EVERY = 25
#: never remind in the last hours before the question closes
REMINDER_CUTOFF = timedelta(hours=6)


@dataclass(frozen=True)
class PlannedEmail:
    """One email `plan --dry-run` expects to send (the contract of `plan --json`)."""

    person: str
    name: str
    programme: str
    period: str
    question: str
    kind: str
    send_at: datetime
    timezone: str

    def as_json(self) -> dict[str, str]:
        return {
            "person": self.person,
            "name": self.name,
            "programme": self.programme,
            "period": self.period,
            "question": self.question,
            "kind": self.kind,
            "send_at_utc": self.send_at.astimezone(UTC).isoformat(),
            "send_at_local": local_iso(self.send_at, self.timezone),
        }


@dataclass(frozen=True, slots=True)
class Eligible:
    """What planning needs of a person (plain values: a round for 100 000 people loads no ORM objects)."""

    id: int
    email: str
    name: str
    timezone: str
    location: str


#: the person's columns an `Eligible` is made of, in its fields' order
_ELIGIBLE_COLUMNS = (
    col(Person.id),
    col(Person.email),
    col(Person.name),
    col(Person.timezone),
    col(Person.location),
)


async def _eligible(
    session: AsyncSession,
    programme: str,
    round_id: int | None,
    now: datetime,
    *,
    after_id: int = 0,
    limit: int | None = None,
) -> list[Eligible]:
    """Enrolled, reachable, not dormant people who have no nudge in this round yet, by id.

    The status test goes through coalesce() so that SQLite walks people by primary key from
    `after_id` and stops at `limit`: with the status index it gathered and sorted everyone after
    `after_id` for every chunk (8 ms a chunk at 5 000 people left, a quadratic round at 100 000).
    """
    status = func.coalesce(col(Person.status), "")
    stmt = (
        sa_select(*_ELIGIBLE_COLUMNS)
        .join(Enrolment, col(Enrolment.person_id) == col(Person.id))
        .where(col(Enrolment.programme) == programme)
        .where(col(Enrolment.left_at).is_(None))
        .where(col(Enrolment.dormant_since).is_(None))
        .where(
            or_(
                status == PersonStatus.ACTIVE,
                and_(status == PersonStatus.PAUSED, col(Person.paused_until) < now),
            )
        )
        .where(or_(col(Person.paused_until).is_(None), col(Person.paused_until) < now))
        .where(col(Person.id) > after_id)
        .order_by(col(Person.id))
        .limit(limit)
    )
    if round_id is not None:
        # NOT EXISTS on the (round, person) unique index: one probe per person, whatever the round's size
        already = select(Nudge.id).where(
            col(Nudge.round_id) == round_id, col(Nudge.person_id) == col(Person.id)
        )
        stmt = stmt.where(~already.exists())
    return [Eligible(*tuple(row)) for row in (await core(session, stmt)).all()]


async def _history(session: AsyncSession, programme: str, before: str) -> list[str]:
    rows = await session.exec(
        select(Round.question)
        .where(col(Round.programme) == programme, col(Round.period) < before)
        .order_by(col(Round.period))
    )
    return list(rows.all())


async def _round_seq(session: AsyncSession, programme: str, period: str) -> int:
    earlier = await session.exec(
        select(func.count())
        .select_from(Round)
        .where(col(Round.programme) == programme, col(Round.period) < period)
    )
    return int(earlier.one()) + 1


async def _days_taken(
    session: AsyncSession, people: Sequence[Eligible], around: datetime
) -> dict[int, set[date]]:
    """Local dates on which each person already has a nudge (any programme), near `around`."""
    ids = [p.id for p in people]
    zones = {p.id: p.timezone for p in people}
    rows = await session.exec(
        select(Nudge.person_id, Nudge.due_at)
        .where(col(Nudge.person_id).in_(ids))
        .where(col(Nudge.due_at) >= around - timedelta(days=3))
        .where(col(Nudge.due_at) <= around + timedelta(days=17))
    )
    taken: dict[int, set[date]] = defaultdict(set)
    for person_id, due in rows.all():
        taken[person_id].add(due.astimezone(ZoneInfo(zones.get(person_id, "UTC"))).date())
    return taken


def _one_a_day(
    prog: Programme,
    sends: Sequence[PlannedSend],
    people: dict[int, Eligible],
    taken: dict[int, set[date]],
    closes_at: datetime,
) -> list[PlannedSend]:
    """At most one nudge per person per local day across programmes: later ones move to the next
    working day (same local time), or wait for the next round if that is too close to the close."""
    out: list[PlannedSend] = []
    for send in sends:
        person = people[send.person_id]
        zone = ZoneInfo(person.timezone)
        local = send.due_at.astimezone(zone)
        day: date | None = local.date()
        busy = taken.get(send.person_id, set())
        while day is not None and day in busy:
            day = next_working_day(prog, day + timedelta(days=1), person.location)
        if day is None:
            continue
        due = datetime.combine(day, local.timetz().replace(tzinfo=None), tzinfo=zone).astimezone(UTC)
        if due + timedelta(hours=24) > closes_at:
            continue
        busy.add(day)
        out.append(replace(send, due_at=due))
    return out


async def _plan(
    session: AsyncSession,
    prog: Programme,
    period: str,
    existing: Round | None,
    people: Sequence[Eligible],
    now: datetime,
) -> RoundPlan | None:
    seq = existing.seq if existing else await _round_seq(session, prog.key, period)
    history = await _history(session, prog.key, period)
    slots = [Slot(p.id, p.timezone, p.location) for p in people]
    plan = plan_round(prog, period, seq, slots, now, history)
    if plan is None:
        return None
    if existing is not None:
        plan = replace(plan, question=existing.question, theme=existing.theme)
    by_id = {p.id: p for p in people}
    if plan.sends:
        taken = await _days_taken(session, people, plan.opens_at)
        plan = replace(plan, sends=tuple(_one_a_day(prog, plan.sends, by_id, taken, plan.closes_at)))
    return plan


async def plan_due(
    sessions: SessionMaker,
    programmes: Sequence[Programme],
    composer: Composer,
    queue: Queue,
    now: datetime,
) -> int:
    """Create rounds, nudges and outbox rows that are due; queue reminders; enqueue delivery."""
    created = 0
    for prog in programmes:
        for period in periods_to_plan(prog, now):
            created += await _plan_period(sessions, prog, period, composer, queue, now)
        if prog.reminder is not None:
            await plan_reminders(sessions, prog, composer, queue, now)
    return created


async def _existing_round(session: AsyncSession, programme: str, period: str) -> Round | None:
    found = await session.exec(select(Round).where(Round.programme == programme, Round.period == period))
    return found.first()


async def _plan_period(
    sessions: SessionMaker, prog: Programme, period: str, composer: Composer, queue: Queue, now: datetime
) -> int:
    """The round's nudges, a chunk at a time: each chunk's nudge rows in one short transaction, its
    emails composed with no transaction open (the send batches' claims and write-backs, which need
    SQLite's one write lock, go on meanwhile), its outbox rows in a second one. Nudges a crash left
    between the two are mailed first, by the next run."""
    async with transaction(sessions) as session:
        await refresh_statistics(session, Person, Enrolment, Nudge)
    created = await _mail_orphans(sessions, prog, period, composer, queue, now)
    after_id = 0
    chunks = 0
    while True:
        async with transaction(sessions) as session:
            chunks += 1
            if chunks % ANALYZE_EVERY == 0:  # the round's own nudges are most of the table now
                await refresh_statistics(session, Nudge)
            existing = await _existing_round(session, prog.key, period)
            people = await _eligible(
                session, prog.key, existing.id if existing else None, now, after_id=after_id, limit=BATCH
            )
            plan = await _plan(session, prog, period, existing, people, now)
            if plan is None:
                return created
            rnd = existing or await _get_round(session, plan)
            by_id = {p.id: p for p in people}
            fresh = await _insert_nudges(session, rnd, plan.sends, by_id, composer)
        created += await _mail_nudges(sessions, rnd, prog, fresh, composer, queue, now)
        if len(people) < BATCH:
            break
        after_id = people[-1].id
    if created:
        log.info("planned %s nudges for %s %s", created, prog.key, period)
    return created


@dataclass(frozen=True, slots=True)
class _NewNudge:
    id: int
    person: Eligible
    due_at: datetime


async def _mail_orphans(
    sessions: SessionMaker, prog: Programme, period: str, composer: Composer, queue: Queue, now: datetime
) -> int:
    """Planned nudges of this round without an email (a run stopped between writing a chunk's nudges
    and its outbox rows): composed and queued now. Racing another run is harmless: outbox keys are
    unique, so each email is queued once."""
    created = 0
    after_id = 0
    while True:
        async with transaction(sessions) as session:
            rnd = await _existing_round(session, prog.key, period)
            if rnd is None or rnd.id is None:
                return created
            orphans = await _orphans(session, rnd.id, after_id)
            if not orphans:
                break
        created += await _mail_nudges(sessions, rnd, prog, orphans, composer, queue, now)
        after_id = orphans[-1].id
    if created:
        log.warning("mailed %s nudges of %s %s that an interrupted run had left", created, prog.key, period)
    return created


async def _orphans(session: AsyncSession, round_id: int, after_id: int) -> list[_NewNudge]:
    mailed = sa_select(col(Outbox.id)).where(col(Outbox.nudge_id) == col(Nudge.id))
    rows = await core(
        session,
        sa_select(col(Nudge.id), col(Nudge.due_at), *_ELIGIBLE_COLUMNS)
        .join(Person, col(Person.id) == col(Nudge.person_id))
        .where(col(Nudge.round_id) == round_id, col(Nudge.status) == NudgeStatus.PLANNED)
        .where(col(Nudge.id) > after_id)
        .where(~mailed.exists())
        .order_by(col(Nudge.id))
        .limit(BATCH),
    )
    out: list[_NewNudge] = []
    for row in rows.all():
        nudge_id, due_at, *person = tuple(row)
        out.append(_NewNudge(nudge_id, Eligible(*person), due_at))
    return out


async def _get_round(session: AsyncSession, plan: RoundPlan) -> Round:
    await insert_ignore(
        session,
        Round,
        [
            {
                "programme": plan.programme,
                "period": plan.period,
                "seq": plan.seq,
                "question": plan.question,
                "theme": plan.theme,
                "opens_at": plan.opens_at,
                "closes_at": plan.closes_at,
            }
        ],
    )
    found = await _existing_round(session, plan.programme, plan.period)
    assert found is not None
    return found


async def _insert_nudges(
    session: AsyncSession,
    rnd: Round,
    sends: Sequence[PlannedSend],
    people: dict[int, Eligible],
    composer: Composer,
) -> list[_NewNudge]:
    """One nudge row per send, in bulk; the new ones (people who already have one are skipped)."""
    by_person = {send.person_id: send for send in sends}
    inserted = await insert_ignore_returning(
        session,
        Nudge,
        [
            {
                "round_id": rnd.id,
                "person_id": send.person_id,
                "due_at": send.due_at,
                "status": NudgeStatus.PLANNED,
                "message_id": composer.message_id(_nudge_key(rnd, send.person_id)),
            }
            for send in sends
        ],
        "id",
        "person_id",
    )
    return [
        _NewNudge(nudge_id, people[person_id], by_person[person_id].due_at)
        for nudge_id, person_id in sorted(inserted)
    ]


#: nudges composed between two turns of the event loop: composing is pure CPU, and a chunk of 200
#: in one go would leave the SMTP connections' replies waiting for tens of milliseconds
COMPOSE_BETWEEN_TURNS = 10


async def _mail_nudges(
    sessions: SessionMaker,
    rnd: Round,
    prog: Programme,
    nudges: Sequence[_NewNudge],
    composer: Composer,
    queue: Queue,
    now: datetime,
) -> int:
    """Compose each nudge's email (outside any transaction), put them in the outbox and queue them;
    how many were queued."""
    async with sessions() as session:
        earlier = await _earlier_answers(session, prog, rnd, [n.person.id for n in nudges])
    question = prog.question(rnd.question)
    subject = prog.general_wording(rnd.question)
    mails: list[Outgoing] = []
    times: list[datetime] = []
    unsendable: list[int] = []
    for i, nudge in enumerate(nudges):
        if i and i % COMPOSE_BETWEEN_TURNS == 0:
            await asyncio.sleep(0)
        person = nudge.person
        try:
            mails.append(
                compose_nudge(
                    composer,
                    nudge_id=nudge.id,
                    outbox_key=_nudge_key(rnd, person.id),
                    recipient=Recipient(person.id, person.email, person.name),
                    programme_name=prog.name,
                    programme_key=prog.key,
                    question=personal_question(question, earlier.get(person.id))
                    if question
                    else rnd.question,
                    subject_question=subject,
                    due_at=nudge.due_at,
                    closes_at=rnd.closes_at,
                    timezone=person.timezone,
                )
            )
            times.append(nudge.due_at)
        except (ValueError, UnicodeError) as exc:  # one unsendable person must not stop the round
            log.error("cannot compose the nudge for person=%s: %s", person.id, exc)
            unsendable.append(nudge.id)
    async with transaction(sessions) as session:
        if unsendable:
            await session.exec(
                update(Nudge).where(col(Nudge.id).in_(unsendable)).values(status=NudgeStatus.SKIPPED)
            )
        sends = await add_to_outbox(session, mails, now, send_at=times)
    await queue.send_mail(sends)
    return len(sends)


def _nudge_key(rnd: Round, person_id: int) -> str:
    return f"nudge:{rnd.id}:{person_id}"


async def _earlier_answers(
    session: AsyncSession, prog: Programme, rnd: Round, person_ids: Sequence[int]
) -> dict[int, str]:
    """For a follow-up question: each person's answer to the round `follows_up_weeks` earlier."""
    question = prog.question(rnd.question)
    if question is None or not question.follows_up_weeks or not person_ids:
        return {}
    earlier = period_of(week_start(rnd.period) - timedelta(weeks=question.follows_up_weeks))
    rows = await session.exec(
        select(Reply.person_id, Reply.text)
        .join(Nudge, col(Nudge.id) == col(Reply.nudge_id))
        .join(Round, col(Round.id) == col(Nudge.round_id))
        .where(col(Round.programme) == prog.key, col(Round.period) == earlier)
        .where(col(Reply.person_id).in_(person_ids))
        .order_by(col(Reply.id))
    )
    return {person_id: text for person_id, text in rows.all()}  # the latest answer wins


def _reminder_query(prog: Programme, now: datetime) -> Any:
    assert prog.reminder is not None
    return (
        select(Nudge, Person, Round)
        .join(Person, col(Person.id) == col(Nudge.person_id))
        .join(Round, col(Round.id) == col(Nudge.round_id))
        .where(col(Round.programme) == prog.key)
        .where(col(Nudge.status) == NudgeStatus.SENT)
        .where(col(Nudge.reminded_at).is_(None))
        .where(col(Round.closes_at) > now + REMINDER_CUTOFF)
        .where(col(Person.status) == PersonStatus.ACTIVE)
        .order_by(col(Nudge.id))
    )


async def plan_reminders(
    sessions: SessionMaker, prog: Programme, composer: Composer, queue: Queue, now: datetime
) -> int:
    """The one reminder, to people who were asked at least `after_hours` ago and have not answered."""
    if prog.reminder is None:
        return 0
    after = timedelta(hours=prog.reminder.after_hours)
    total = 0
    while True:  # in chunks: a round for 100 000 people has that many reminders to queue at once
        async with transaction(sessions) as session:
            rows = (
                await session.exec(
                    _reminder_query(prog, now).where(col(Nudge.sent_at) <= now - after).limit(BATCH)
                )
            ).all()
            mails = []
            for nudge, person, rnd in rows:
                mails.append(
                    compose_reminder(
                        composer,
                        nudge_id=nudge.id or 0,
                        nudge_message_id=nudge.message_id,
                        outbox_key=f"reminder:{nudge.id}",
                        recipient=Recipient(person.id or 0, person.email, person.name),
                        programme_name=prog.name,
                        programme_key=prog.key,
                        question=prog.general_wording(rnd.question),
                        now=now,
                        closes_at=rnd.closes_at,
                        timezone=person.timezone,
                    )
                )
                nudge.reminded_at = now
            queued = await add_to_outbox(session, mails, now)
        await queue.send_mail(queued)
        total += len(queued)
        if len(rows) < BATCH:
            return total


# ------------------------------------------------------------------------------------------- preview


async def preview(
    sessions: SessionMaker,
    programmes: Sequence[Programme],
    now: datetime,
    start: datetime | None = None,
    end: datetime | None = None,
) -> list[PlannedEmail]:
    """What would be sent in [start, end) (default: what is due now), writing nothing."""
    start = start or now
    end = end or (now + timedelta(hours=36))
    out: list[PlannedEmail] = []
    async with sessions() as session:
        for prog in programmes:
            out += await _preview_nudges(session, prog, now, start, end)
            out += await _preview_reminders(session, prog, start, end)
            out += await _preview_check_ins(session, prog, start, end)
        if start <= now < end:
            out += await _preview_invites(session, now)
    return sorted(out, key=lambda e: (e.send_at, e.person))


async def _preview_check_ins(
    session: AsyncSession, prog: Programme, start: datetime, end: datetime
) -> list[PlannedEmail]:
    """ "Still interested?" emails due when a round closes in the window, if the person stays silent."""
    if prog.ghost_after <= 0:
        return []
    rows = await session.exec(
        select(Person, Round)
        .join(Nudge, col(Nudge.person_id) == col(Person.id))
        .join(Round, col(Round.id) == col(Nudge.round_id))
        .join(
            Enrolment, (col(Enrolment.person_id) == col(Person.id)) & (col(Enrolment.programme) == prog.key)
        )
        .where(col(Round.programme) == prog.key)
        .where(col(Round.grouped_at).is_(None))
        .where(col(Round.closes_at) >= start, col(Round.closes_at) < end)
        .where(col(Nudge.status) == NudgeStatus.SENT)
        .where(col(Enrolment.dormant_since).is_(None))
        .where(col(Enrolment.silent_rounds) >= prog.ghost_after - 1)
    )
    return [
        PlannedEmail(p.email, p.name, prog.key, rnd.period, "", "check_in", rnd.closes_at, p.timezone)
        for p, rnd in rows.all()
    ]


async def _preview_invites(session: AsyncSession, now: datetime) -> list[PlannedEmail]:
    """Invited people whose invitation has not been queued yet (`nudger people invite` sends them)."""
    invited = (await session.exec(select(Person).where(col(Person.status) == PersonStatus.INVITED))).all()
    if not invited:
        return []
    keys = {f"invite:{p.id}:{CONSENT_TEXT_VERSION}": p for p in invited}
    queued = set((await session.exec(select(Outbox.key).where(col(Outbox.key).in_(list(keys))))).all())
    return [
        PlannedEmail(p.email, p.name, "", "", "", "invite", now, p.timezone)
        for key, p in keys.items()
        if key not in queued
    ]


async def _preview_nudges(
    session: AsyncSession, prog: Programme, now: datetime, start: datetime, end: datetime
) -> list[PlannedEmail]:
    out: list[PlannedEmail] = []
    simulated: list[str] = []
    for period in periods_between(prog, start, end):
        window = round_window(prog, period)
        if window is None or window[1] <= now:
            continue
        existing = await _existing_round(session, prog.key, period)
        people = await _eligible(session, prog.key, existing.id if existing else None, max(now, start))
        plan = await _plan(session, prog, period, existing, people, max(now, start))
        if plan is None:
            continue
        if existing is None and simulated:  # later simulated rounds continue the rotation
            history = [*await _history(session, prog.key, period), *simulated]
            q = choose_question(prog, history)
            plan = replace(plan, question=q.text, theme=q.theme)
        simulated.append(plan.question)
        by_id = {p.id: p for p in people}
        for send in plan.sends:
            if start <= send.due_at < end:
                p = by_id[send.person_id]
                out.append(
                    PlannedEmail(
                        p.email, p.name, prog.key, period, plan.question, "nudge", send.due_at, p.timezone
                    )
                )
    return out


async def _preview_reminders(
    session: AsyncSession, prog: Programme, start: datetime, end: datetime
) -> list[PlannedEmail]:
    if prog.reminder is None:
        return []
    after = timedelta(hours=prog.reminder.after_hours)
    rows = await session.exec(_reminder_query(prog, start))
    out: list[PlannedEmail] = []
    for nudge, person, rnd in rows.all():
        when = max(nudge.sent_at + after, start) if nudge.sent_at else None
        if when is not None and when < end and when < rnd.closes_at - REMINDER_CUTOFF:
            out.append(
                PlannedEmail(
                    person.email,
                    person.name,
                    prog.key,
                    rnd.period,
                    rnd.question,
                    "reminder",
                    when,
                    person.timezone,
                )
            )
    return out
