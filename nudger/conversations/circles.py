"""The connect flow: when a round's reply window closes, form circles and introduce their members;
when a member writes to their circle, relay the post to the others.

Idempotent: a round is grouped once (its `grouped_at` is set in the same transaction that creates
its circles, and circles are unique per (round, number)); relays are outbox rows keyed by post and
recipient.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from nudger.config import Programme
from nudger.conversations.grouping import MAX_SIZE, MIN_SIZE, Candidate, form_circles
from nudger.mail.compose import (
    Composer,
    Recipient,
    Reflection,
    circle_subject,
    compose_circle_nudge,
    compose_intro,
    compose_relay,
    first_name,
)
from nudger.mail.message import Outgoing
from nudger.mail.notices import notice_once
from nudger.mail.outbox import add_to_outbox
from nudger.programmes.silence import tally_round
from nudger.queue import Queue
from nudger.store.db import SessionMaker, transaction
from nudger.store.models import Circle, Member, Nudge, Person, PersonStatus, Post, Reply, Round, Sharing

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Answer:
    person: Person
    reply: Reply


async def _latest_answers(session: AsyncSession, round_id: int) -> list[Answer]:
    """Each person's *latest* reply in this round (a "private" sent after a shared answer wins)."""
    rows = await session.exec(
        select(Person, Reply)
        .join(Nudge, col(Nudge.person_id) == col(Person.id))
        .join(Reply, col(Reply.nudge_id) == col(Nudge.id))
        .where(col(Nudge.round_id) == round_id)
        .where(col(Person.status).in_([PersonStatus.ACTIVE, PersonStatus.PAUSED]))
        .order_by(col(Reply.id))
    )
    latest: dict[int, Answer] = {}
    for person, reply in rows.all():
        if person.id is not None:
            latest[person.id] = Answer(person, reply)
    return list(latest.values())


def open_until(circle_created: datetime, programme: Programme | None) -> datetime:
    """When a circle's conversation closes (its reply addresses expire then)."""
    return circle_created + timedelta(days=programme.circle_days if programme else 14)


async def close_rounds(
    sessions: SessionMaker,
    programmes: Mapping[str, Programme],
    composer: Composer,
    queue: Queue,
    now: datetime,
) -> int:
    """Group every closed, ungrouped round; send each member an intro. Returns circles formed."""
    async with sessions() as session:
        due = (
            await session.exec(
                select(Round.id)
                .where(col(Round.closes_at) <= now)
                .where(col(Round.grouped_at).is_(None))
                .order_by(col(Round.id))
            )
        ).all()
    formed = 0
    for round_id in due:
        assert round_id is not None
        formed += await _group_round(sessions, round_id, programmes, composer, queue, now)
    return formed


async def _group_round(
    sessions: SessionMaker,
    round_id: int,
    programmes: Mapping[str, Programme],
    composer: Composer,
    queue: Queue,
    now: datetime,
) -> int:
    async with transaction(sessions) as session:
        rnd = await session.get(Round, round_id, with_for_update=True)
        if rnd is None or rnd.grouped_at is not None:
            return 0
        rnd.grouped_at = now
        programme = programmes.get(rnd.programme)
        latest = await _latest_answers(session, round_id)
        answers = [a for a in latest if a.reply.sharing == Sharing.PEERS]
        by_person: dict[int | str, Answer] = {a.person.id or 0: a for a in answers}
        kept = await _kept_together(session, rnd, set(by_person))
        placed = {p for group in kept for p in group}
        history = await recent_pairs(session, rnd, programme.no_repeat_rounds if programme else 6)
        ids = await _avoid_ids(session, [a.person for a in answers])
        groups = kept + form_circles(
            [_candidate(a.person, ids) for a in answers if a.person.id not in placed],
            target=programme.circle_size if programme else 4,
            seed=round_id,
            history=history,
            at=now,
        )
        name = programme.name if programme else rnd.programme
        question = programme.general_wording(rnd.question) if programme else rnd.question
        mails: list[Outgoing] = await tally_round(session, rnd, programme, composer, now) if programme else []
        for number, group in enumerate(groups, start=1):
            mails += await _create_circle(
                session, rnd, number, [by_person[p] for p in group], name, question, composer, now, programme
            )
        for answer in latest:  # nobody is dropped silently: the ones not placed are told why, kindly
            if answer.reply.sharing != Sharing.PEERS:
                mails += await notice_once(session, composer, answer.person, "private_answer", now)
            elif not groups:
                mails += await notice_once(session, composer, answer.person, "too_few", now)
        queued = await add_to_outbox(session, mails, now)
    await queue.send_mail(queued)
    log.info("round %s grouped: %s circles from %s answers", round_id, len(groups), len(answers))
    return len(groups)


def _candidate(person: Person, ids: dict[str, int] | None = None) -> Candidate:
    avoid = frozenset(ids[e] for e in _avoid_emails(person) if ids and e in ids)
    return Candidate(person.id or 0, person.team, person.timezone, avoid=avoid)


def _avoid_emails(person: Person) -> list[str]:
    return [e.strip().lower() for e in person.avoid.split(",") if e.strip()]


async def _avoid_ids(session: AsyncSession, people: Sequence[Person]) -> dict[str, int]:
    """The ids of everyone named in these people's "don't group me with" lists."""
    emails = sorted({e for p in people for e in _avoid_emails(p)})
    if not emails:
        return {}
    rows = await session.exec(select(Person.email, Person.id).where(col(Person.email).in_(emails)))
    return {email: int(pid) for email, pid in rows.all() if pid is not None}


async def recent_pairs(session: AsyncSession, rnd: Round, rounds: int) -> list[tuple[int, int]]:
    """Every pair of people who shared a circle in this programme's last `rounds` grouped rounds."""
    if rounds <= 0:
        return []
    recent = (
        select(Round.id)
        .where(col(Round.programme) == rnd.programme, col(Round.period) < rnd.period)
        .where(col(Round.grouped_at).is_not(None))
        .order_by(col(Round.period).desc())
        .limit(rounds)
    )
    rows = await session.exec(
        select(Member.circle_id, Member.person_id)
        .join(Circle, col(Circle.id) == col(Member.circle_id))
        .where(col(Circle.round_id).in_(recent))
        .order_by(col(Member.circle_id))
    )
    circles: dict[int, list[int]] = {}
    for circle_id, person_id in rows.all():
        circles.setdefault(circle_id, []).append(person_id)
    return [(a, b) for members in circles.values() for i, a in enumerate(members) for b in members[i + 1 :]]


async def _kept_together(
    session: AsyncSession, rnd: Round, answered: set[int | str]
) -> list[list[int | str]]:
    """Circles of this programme's previous round where a majority voted "keep us together": their
    members who answered this round stay together (if at least three did)."""
    previous = await session.exec(
        select(Round.id)
        .where(col(Round.programme) == rnd.programme, col(Round.period) < rnd.period)
        .where(col(Round.grouped_at).is_not(None))
        .order_by(col(Round.period).desc())
        .limit(1)
    )
    previous_id = previous.first()
    if previous_id is None:
        return []
    rows = await session.exec(
        select(Member.circle_id, Member.person_id, Member.keep_vote)
        .join(Circle, col(Circle.id) == col(Member.circle_id))
        .where(col(Circle.round_id) == previous_id)
    )
    circles: dict[int, list[tuple[int, bool]]] = {}
    for circle_id, person_id, vote in rows.all():
        circles.setdefault(circle_id, []).append((person_id, vote))
    kept: list[list[int | str]] = []
    for members in circles.values():
        if sum(vote for _, vote in members) * 2 > len(members):
            staying: list[int | str] = [p for p, _ in members if p in answered]
            if MIN_SIZE <= len(staying) <= MAX_SIZE:
                kept.append(staying)
    return kept


async def _create_circle(
    session: AsyncSession,
    rnd: Round,
    number: int,
    answers: Sequence[Answer],
    programme_name: str,
    question: str,
    composer: Composer,
    now: datetime,
    programme: Programme | None = None,
) -> list[Outgoing]:
    root = composer.message_id(f"circle:{rnd.id}:{number}")
    subject = circle_subject(programme_name, question)
    circle = Circle(
        round_id=rnd.id or 0, number=number, root_message_id=root, subject=subject, created_at=now
    )
    session.add(circle)
    await session.flush()
    members = [
        Member(circle_id=circle.id or 0, person_id=a.person.id or 0, reply_id=a.reply.id) for a in answers
    ]
    session.add_all(members)
    await session.flush()
    reflections = {
        a.person.id: Reflection(first_name(a.person.name, "A colleague"), a.person.team, a.reply.text)
        for a in answers
    }
    mails = []
    for member, answer in zip(members, answers, strict=True):
        person = answer.person
        mails.append(
            compose_intro(
                composer,
                outbox_key=f"intro:{circle.id}:{member.id}",
                member_id=member.id or 0,
                recipient=Recipient(person.id or 0, person.email, person.name),
                subject=subject,
                root_message_id=root,
                question=question,
                programme_name=programme_name,
                others=[reflections[a.person.id] for a in answers if a is not answer],
                own=reflections[person.id],
                now=now,
                open_until=open_until(now, programme),
            )
        )
    return mails


async def post_to_circle(
    session: AsyncSession,
    member: Member,
    author: Person,
    inbound_id: int,
    text: str,
    elided: str,
    composer: Composer,
    now: datetime,
    programme: Programme | None = None,
) -> list[Outgoing]:
    """Store a member's post and compose its relay to every other member (never back to the author)."""
    circle = await session.get(Circle, member.circle_id)
    assert circle is not None
    assert circle.id is not None
    post = Post(
        circle_id=circle.id,
        member_id=member.id or 0,
        inbound_id=inbound_id,
        text=text,
        elided=elided,
        message_id=composer.message_id(f"post:{inbound_id}"),
        created_at=now,
    )
    session.add(post)
    await session.flush()
    rows = await session.exec(
        select(Member, Person)
        .join(Person, col(Person.id) == col(Member.person_id))
        .where(col(Member.circle_id) == circle.id)
        .where(col(Member.id) != member.id)
        .where(col(Person.status).in_([PersonStatus.ACTIVE, PersonStatus.PAUSED]))
    )
    mails = []
    for other, person in rows.all():
        mails.append(
            compose_relay(
                composer,
                outbox_key=f"relay:{post.id}:{other.id}",
                member_id=other.id or 0,
                recipient=Recipient(person.id or 0, person.email, person.name),
                author_name=first_name(author.name, "A colleague"),
                subject=circle.subject,
                text_body=text,
                references=thread(composer, circle, other.id or 0),
                now=now,
                open_until=open_until(circle.created_at, programme),
            )
        )
    return mails


def thread(composer: Composer, circle: Circle, member_id: int) -> list[str]:
    """References for mail to a member in a circle's thread: the circle's root, then the introduction
    *they* received (Gmail threads a message only if it references one already in their thread)."""
    return [circle.root_message_id, composer.message_id(f"intro:{circle.id}:{member_id}")]


async def join_late(
    session: AsyncSession,
    rnd: Round,
    person: Person,
    reply: Reply,
    programme: Programme | None,
    composer: Composer,
    now: datetime,
) -> list[Outgoing]:
    """A shareable answer that arrives after grouping joins the round's smallest open circle.

    The newcomer gets an introduction with the others' reflections; the others get the newcomer's
    reflection as a post. Nobody is left alone, and circles never grow past five.
    """
    member_of = await session.exec(
        select(Member.id)
        .join(Circle, col(Circle.id) == col(Member.circle_id))
        .where(col(Circle.round_id) == rnd.id, col(Member.person_id) == person.id)
    )
    if member_of.first() is not None:
        return []
    sizes = await session.exec(
        select(Circle, func.count(col(Member.id)))
        .join(Member, col(Member.circle_id) == col(Circle.id))
        .where(col(Circle.round_id) == rnd.id)
        .group_by(col(Circle.id))
        .order_by(func.count(col(Member.id)), col(Circle.id))
    )
    circle = next(
        (c for c, n in sizes.all() if n < MAX_SIZE and open_until(c.created_at, programme) > now), None
    )
    if circle is None or circle.id is None or person.id is None:
        return []
    member = Member(circle_id=circle.id, person_id=person.id, reply_id=reply.id)
    session.add(member)
    await session.flush()
    others = await session.exec(
        select(Person, Reply)
        .join(Member, col(Member.person_id) == col(Person.id))
        .join(Reply, col(Reply.id) == col(Member.reply_id))
        .where(col(Member.circle_id) == circle.id, col(Member.id) != member.id)
    )
    reflections = [Reflection(first_name(p.name, "A colleague"), p.team, r.text) for p, r in others.all()]
    name = programme.name if programme else rnd.programme
    mails = [
        compose_intro(
            composer,
            outbox_key=f"intro:{circle.id}:{member.id}",
            member_id=member.id or 0,
            recipient=Recipient(person.id, person.email, person.name),
            subject=circle.subject,
            root_message_id=circle.root_message_id,
            question=programme.general_wording(rnd.question) if programme else rnd.question,
            programme_name=name,
            others=reflections,
            own=Reflection(first_name(person.name, "A colleague"), person.team, reply.text),
            now=now,
            open_until=open_until(circle.created_at, programme),
        )
    ]
    mails += await post_to_circle(
        session, member, person, reply.inbound_id, reply.text, "", composer, now, programme
    )
    return mails


#: a circle with no follow-up this long after it formed gets one nudge
QUIET_AFTER = timedelta(days=3)


async def nudge_quiet_circles(
    sessions: SessionMaker,
    programmes: Mapping[str, Programme],
    composer: Composer,
    queue: Queue,
    now: datetime,
) -> int:
    """One "anyone want to pick up X's point?" to each circle that stayed silent; at most once each."""
    async with transaction(sessions) as session:
        posted = select(Post.circle_id)
        quiet = await session.exec(
            select(Circle, Round)
            .join(Round, col(Round.id) == col(Circle.round_id))
            .where(col(Circle.nudged_at).is_(None))
            .where(col(Circle.created_at) <= now - QUIET_AFTER)
            .where(col(Circle.id).not_in(posted))
            .order_by(col(Circle.id))
            .limit(500)
        )
        mails: list[Outgoing] = []
        for circle, rnd in quiet.all():
            programme = programmes.get(rnd.programme)
            if open_until(circle.created_at, programme) <= now:
                circle.nudged_at = now  # closed already: never nudge it
                continue
            circle.nudged_at = now
            mails += await _circle_nudge(session, circle, composer, now, programme)
        queued = await add_to_outbox(session, mails, now)
    await queue.send_mail(queued)
    return len(queued)


async def _circle_nudge(
    session: AsyncSession, circle: Circle, composer: Composer, now: datetime, programme: Programme | None
) -> list[Outgoing]:
    rows = await session.exec(
        select(Member, Person, Reply)
        .join(Person, col(Person.id) == col(Member.person_id))
        .join(Reply, col(Reply.id) == col(Member.reply_id))
        .where(col(Member.circle_id) == circle.id)
        .where(col(Person.status).in_([PersonStatus.ACTIVE, PersonStatus.PAUSED]))
        .order_by(col(Member.id))
    )
    members = list(rows.all())
    if len(members) < 2:
        return []
    _, author, reply = members[(circle.id or 0) % len(members)]  # deterministic: a run twice picks the same
    name = first_name(author.name, "A colleague")
    mails = []
    for member, person, _ in members:
        mails.append(
            compose_circle_nudge(
                composer,
                outbox_key=f"circle_nudge:{circle.id}:{member.id}",
                member_id=member.id or 0,
                recipient=Recipient(person.id or 0, person.email, person.name),
                subject=circle.subject,
                references=thread(composer, circle, member.id or 0),
                point_author="you" if person.id == author.id else name,
                point=reply.text[:600],
                now=now,
                open_until=open_until(circle.created_at, programme),
            )
        )
    return mails
