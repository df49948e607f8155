"""Privacy operations (flows): export everything about a person, erase a person everywhere, and purge
raw inbound mail after its retention period.

Erasure removes the person's row and every row that holds their words or address (replies, posts,
raw inbound mail, outbox rows to them, notices, tokens' targets, audit rows), blanks the bodies of
circle mail that quoted them, and keeps only a SHA-256 of the address (an Audit row "forgotten") so
a later roster import does not bring them back. Tokens are stateless: with the rows gone, every token
they held resolves to nothing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from nudger.store.models import (
    Audit,
    Enrolment,
    Inbound,
    InboundStatus,
    Member,
    NoticeLog,
    Nudge,
    Outbox,
    Person,
    Post,
    Reply,
    Round,
)

FORGOTTEN = "forgotten"


def address_hash(email: str) -> str:
    return hashlib.sha256(email.strip().lower().encode("utf-8")).hexdigest()


async def forgotten_hashes(session: AsyncSession, emails: list[str]) -> set[str]:
    """Which of these addresses were erased at their owner's request (never re-imported)."""
    hashes = {address_hash(e) for e in emails}
    rows = await session.exec(
        select(Audit.detail).where(col(Audit.action) == FORGOTTEN, col(Audit.detail).in_(list(hashes)))
    )
    return set(rows.all())


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


async def export_person(session: AsyncSession, email: str) -> dict[str, Any] | None:
    """Everything stored about one person, as JSON-ready data (GDPR Art. 15/20)."""
    person = (await session.exec(select(Person).where(col(Person.email) == email.strip().lower()))).first()
    if person is None:
        return None
    pid = person.id
    enrolments = (await session.exec(select(Enrolment).where(col(Enrolment.person_id) == pid))).all()
    nudges = (
        await session.exec(
            select(Nudge, Round)
            .join(Round, col(Round.id) == col(Nudge.round_id))
            .where(col(Nudge.person_id) == pid)
        )
    ).all()
    replies = (await session.exec(select(Reply).where(col(Reply.person_id) == pid))).all()
    posts = (
        await session.exec(
            select(Post)
            .join(Member, col(Member.id) == col(Post.member_id))
            .where(col(Member.person_id) == pid)
        )
    ).all()
    audits = (await session.exec(select(Audit).where(col(Audit.person_id) == pid))).all()
    inbound = (await session.exec(select(Inbound).where(col(Inbound.person_id) == pid))).all()
    outbox = (await session.exec(select(Outbox).where(col(Outbox.person_id) == pid))).all()
    return {
        "schema": "nudger.export/1",
        "person": {
            "email": person.email,
            "name": person.name,
            "team": person.team,
            "location": person.location,
            "tags": person.tags,
            "timezone": person.timezone,
            "status": person.status,
            "paused_until": _iso(person.paused_until),
            "sharing": person.sharing,
            "consent": {
                "at": _iso(person.consent_at),
                "how": person.consent_how,
                "text_version": person.consent_text_version,
            },
            "created_at": _iso(person.created_at),
        },
        "enrolments": [
            {"programme": e.programme, "joined_at": _iso(e.joined_at), "left_at": _iso(e.left_at)}
            for e in enrolments
        ],
        "questions": [
            {
                "programme": r.programme,
                "period": r.period,
                "question": r.question,
                "status": n.status,
                "sent_at": _iso(n.sent_at),
                "replied_at": _iso(n.replied_at),
            }
            for n, r in nudges
        ],
        "answers": [{"text": r.text, "sharing": r.sharing, "at": _iso(r.created_at)} for r in replies],
        "circle_posts": [{"text": p.text, "at": _iso(p.created_at)} for p in posts],
        "emails_received_from_you": [
            {"subject": i.subject, "received_at": _iso(i.received_at), "verdict": i.verdict} for i in inbound
        ],
        "emails_sent_to_you": [
            {"kind": o.kind, "status": o.status, "sent_at": _iso(o.sent_at)} for o in outbox
        ],
        "history": [{"action": a.action, "detail": a.detail, "at": _iso(a.at)} for a in audits],
    }


@dataclass(frozen=True)
class Erased:
    replies: int
    posts: int
    inbound: int
    outbox: int
    blanked: int


async def forget_person(session: AsyncSession, email: str, now: datetime) -> Erased | None:
    """Erase a person everywhere (GDPR Art. 17); keep only a hash of their address."""
    email = email.strip().lower()
    person = (await session.exec(select(Person).where(col(Person.email) == email))).first()
    if person is None or person.id is None:
        return None
    pid = person.id
    member_ids = list((await session.exec(select(Member.id).where(col(Member.person_id) == pid))).all())
    circle_ids = list(
        (await session.exec(select(Member.circle_id).where(col(Member.person_id) == pid))).all()
    )
    reply_ids = list((await session.exec(select(Reply.id).where(col(Reply.person_id) == pid))).all())
    inbound_ids = list(
        (
            await session.exec(
                select(Inbound.id).where(
                    or_(col(Inbound.person_id) == pid, col(Inbound.from_addr).contains(email))
                )
            )
        ).all()
    )
    post_ids = list((await session.exec(select(Post.id).where(col(Post.member_id).in_(member_ids)))).all())
    # circle mail that quoted them (intros list every reflection; relays carry their posts; a quiet
    # circle's nudge may quote them): blank the bodies of what others were sent
    quoting = [col(Outbox.key).like(f"intro:{c}:%") for c in circle_ids]
    quoting += [col(Outbox.key).like(f"circle_nudge:{c}:%") for c in circle_ids]
    quoting += [col(Outbox.key).like(f"relay:{p}:%") for p in post_ids]
    blanked = await session.exec(
        update(Outbox).where(or_(*quoting) if quoting else col(Outbox.id) < 0).values(raw=b"")
    )
    posts = await session.exec(delete(Post).where(col(Post.id).in_(post_ids)))
    await session.exec(update(Member).where(col(Member.reply_id).in_(reply_ids)).values(reply_id=None))
    await session.exec(delete(Member).where(col(Member.person_id) == pid))
    replies = await session.exec(delete(Reply).where(col(Reply.person_id) == pid))
    outbox = await session.exec(delete(Outbox).where(col(Outbox.person_id) == pid))
    await session.exec(delete(Post).where(col(Post.inbound_id).in_(inbound_ids)))
    await session.exec(delete(Reply).where(col(Reply.inbound_id).in_(inbound_ids)))
    inbound = await session.exec(delete(Inbound).where(col(Inbound.id).in_(inbound_ids)))
    await session.exec(delete(Nudge).where(col(Nudge.person_id) == pid))
    await session.exec(delete(Enrolment).where(col(Enrolment.person_id) == pid))
    await session.exec(delete(NoticeLog).where(col(NoticeLog.address) == email))
    await session.exec(delete(Audit).where(col(Audit.person_id) == pid))
    await session.exec(delete(Person).where(col(Person.id) == pid))
    # circles stay (the other members' conversation goes on), without this person
    session.add(Audit(person_id=None, action=FORGOTTEN, detail=address_hash(email), at=now))
    return Erased(
        replies=int(replies.rowcount),
        posts=int(posts.rowcount),
        inbound=int(inbound.rowcount),
        outbox=int(outbox.rowcount),
        blanked=int(blanked.rowcount),
    )


async def purge_raw_mail(session: AsyncSession, now: datetime, retention_days: int) -> int:
    """Blank the raw bytes of processed inbound mail older than the retention period (the extracted
    replies, verdicts and reasons stay). Returns how many messages were purged."""
    result = await session.exec(
        update(Inbound)
        .where(col(Inbound.status) == InboundStatus.PROCESSED)
        .where(col(Inbound.received_at) < now - timedelta(days=retention_days))
        .where(col(Inbound.raw) != b"")
        .values(raw=b"")
    )
    return int(result.rowcount)
