"""The ask flow: plan due rounds, write one nudge + one outbox row per person, hand them to the queue.

Safe to run any number of times: rounds are unique per (programme, period), nudges per (round,
person), outbox rows per key. Changing the config never re-sends what was already sent.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, func, or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from nudger.config import Programme
from nudger.mail.compose import Composer, Recipient, compose_nudge
from nudger.mail.outbox import add_to_outbox
from nudger.programmes.schedule import PlannedSend, RoundPlan, Slot, periods_to_plan, plan_round
from nudger.queue import Queue
from nudger.store.db import SessionMaker, transaction
from nudger.store.models import Enrolment, Nudge, NudgeStatus, Person, PersonStatus, Round
from nudger.store.queries import insert_ignore

log = logging.getLogger(__name__)
BATCH = 500


@dataclass(frozen=True)
class PlannedNudge:
    programme: str
    period: str
    question: str
    email: str
    name: str
    timezone: str
    due_at: datetime


async def _eligible(
    session: AsyncSession,
    programme: str,
    round_id: int | None,
    now: datetime,
    *,
    after_id: int = 0,
    limit: int | None = None,
) -> list[Person]:
    """Enrolled, reachable people who have no nudge in this round yet, by id after `after_id`."""
    stmt = (
        select(Person)
        .join(Enrolment, col(Enrolment.person_id) == col(Person.id))
        .where(col(Enrolment.programme) == programme)
        .where(col(Enrolment.left_at).is_(None))
        .where(
            or_(
                col(Person.status) == PersonStatus.ACTIVE,
                and_(col(Person.status) == PersonStatus.PAUSED, col(Person.paused_until) < now),
            )
        )
        .where(or_(col(Person.paused_until).is_(None), col(Person.paused_until) < now))
        .where(col(Person.id) > after_id)
        .order_by(col(Person.id))
        .limit(limit)
    )
    if round_id is not None:
        already = select(Nudge.person_id).where(col(Nudge.round_id) == round_id)
        stmt = stmt.where(col(Person.id).not_in(already))
    return list((await session.exec(stmt)).all())


async def _round_seq(session: AsyncSession, programme: str, period: str) -> int:
    earlier = await session.exec(
        select(func.count())
        .select_from(Round)
        .where(col(Round.programme) == programme, col(Round.period) < period)
    )
    return int(earlier.one()) + 1


async def preview(
    sessions: SessionMaker, programmes: Sequence[Programme], now: datetime
) -> list[PlannedNudge]:
    """What `plan_due` would send now, without writing anything (for `nudger plan --dry-run`)."""
    out: list[PlannedNudge] = []
    async with sessions() as session:
        for prog in programmes:
            for period in periods_to_plan(prog, now):
                existing = (
                    await session.exec(
                        select(Round).where(Round.programme == prog.key, Round.period == period)
                    )
                ).first()
                people = await _eligible(session, prog.key, existing.id if existing else None, now)
                seq = existing.seq if existing else await _round_seq(session, prog.key, period)
                plan = plan_round(prog, period, seq, [Slot(p.id or 0, p.timezone) for p in people], now)
                question = existing.question if existing else plan.question
                by_id = {p.id: p for p in people}
                for send in plan.sends:
                    p = by_id[send.person_id]
                    out.append(
                        PlannedNudge(prog.key, period, question, p.email, p.name, p.timezone, send.due_at)
                    )
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
    found = await session.exec(
        select(Round).where(Round.programme == plan.programme, Round.period == plan.period)
    )
    return found.one()


async def plan_due(
    sessions: SessionMaker,
    programmes: Sequence[Programme],
    composer: Composer,
    queue: Queue,
    now: datetime,
) -> int:
    """Create rounds, nudges and outbox rows that are due; enqueue delivery. Returns nudges created."""
    created = 0
    for prog in programmes:
        for period in periods_to_plan(prog, now):
            created += await _plan_period(sessions, prog, period, composer, queue, now)
    return created


async def _plan_period(
    sessions: SessionMaker,
    prog: Programme,
    period: str,
    composer: Composer,
    queue: Queue,
    now: datetime,
) -> int:
    created = 0
    after_id = 0
    while True:
        async with transaction(sessions) as session:
            existing = (
                await session.exec(select(Round).where(Round.programme == prog.key, Round.period == period))
            ).first()
            seq = existing.seq if existing else await _round_seq(session, prog.key, period)
            people = await _eligible(
                session, prog.key, existing.id if existing else None, now, after_id=after_id, limit=BATCH
            )
            plan = plan_round(prog, period, seq, [Slot(p.id or 0, p.timezone) for p in people], now)
            rnd = existing or await _get_round(session, plan)
            assert rnd.id is not None
            by_id = {p.id: p for p in people}
            sends = await _write_nudges(session, rnd, prog, plan.sends, by_id, composer, now)
        for item in sends:
            await queue.send_mail([item])
        created += len(sends)
        if len(people) < BATCH:
            break
        after_id = people[-1].id or 0
    if created:
        log.info("planned %s nudges for %s %s", created, prog.key, period)
    return created


async def _write_nudges(
    session: AsyncSession,
    rnd: Round,
    prog: Programme,
    sends: Sequence[PlannedSend],
    people: dict[int | None, Person],
    composer: Composer,
    now: datetime,
) -> list[tuple[int, datetime]]:
    assert rnd.id is not None
    queued: list[tuple[int, datetime]] = []
    for send in sends:
        person = people[send.person_id]
        key = f"nudge:{rnd.id}:{send.person_id}"
        message_id = composer.message_id(key)
        ids = await insert_ignore(
            session,
            Nudge,
            [
                {
                    "round_id": rnd.id,
                    "person_id": send.person_id,
                    "due_at": send.due_at,
                    "status": NudgeStatus.PLANNED,
                    "message_id": message_id,
                }
            ],
        )
        if not ids:
            continue
        try:
            mail = compose_nudge(
                composer,
                nudge_id=ids[0],
                outbox_key=key,
                recipient=Recipient(send.person_id, person.email, person.name),
                programme_name=prog.name,
                programme_key=prog.key,
                question=rnd.question,
                due_at=send.due_at,
                closes_at=rnd.closes_at,
                timezone=person.timezone,
            )
        except (ValueError, UnicodeError) as exc:  # one unsendable person must not stop the round
            log.error("cannot compose the nudge for person=%s: %s", send.person_id, exc)
            await session.exec(
                update(Nudge).where(col(Nudge.id) == ids[0]).values(status=NudgeStatus.SKIPPED)
            )
            continue
        queued += await add_to_outbox(session, [mail], now, send_at=send.due_at)
    return queued
