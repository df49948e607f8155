"""The listen flow: process one stored inbound message (parse → classify → trim → route → act).

Runs in a job keyed by the inbound row; the row's status makes a second run a no-op, and the
unique `inbound_id` on replies and posts makes a concurrent second run fail harmlessly.
Nothing here raises out to the worker for bad input: every message ends with a verdict and reason.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, time

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from nudger.config import Programme
from nudger.conversations.circles import post_to_circle
from nudger.inbound.classify import Kind, Verdict, classify
from nudger.inbound.parse import ParsedMessage, parse_message
from nudger.inbound.route import find_tokens
from nudger.inbound.trim import trim_reply
from nudger.mail.compose import Composer
from nudger.mail.message import Outgoing
from nudger.mail.outbox import add_to_outbox, score_bounce
from nudger.mail.tokens import Token, TokenKind
from nudger.programmes.commands import Command, CommandName, parse_command, split_sharing_marker
from nudger.programmes.roster import set_status
from nudger.queue import Queue
from nudger.store.db import SessionMaker, transaction
from nudger.store.models import (
    Audit,
    Inbound,
    InboundStatus,
    Member,
    Nudge,
    NudgeStatus,
    Outbox,
    OutboxStatus,
    Person,
    PersonStatus,
    Reply,
    Round,
    Sharing,
)

log = logging.getLogger(__name__)

MAX_REPLY_CHARS = 20_000
QUARANTINE = frozenset(
    {
        Kind.READ_RECEIPT,
        Kind.LOOP,
        Kind.LIST,
        Kind.SPAM,
        Kind.FORWARD,
        Kind.ENCRYPTED,
        Kind.MALFORMED,
        Kind.NO_SENDER,
    }
)


@dataclass(frozen=True)
class IngestDeps:
    composer: Composer
    programmes: Mapping[str, Programme]


@dataclass
class Outcome:
    verdict: str
    reason: str
    person_id: int | None = None
    mails: list[Outgoing] = field(default_factory=list)


async def process_inbound(
    sessions: SessionMaker, deps: IngestDeps, queue: Queue, inbound_id: int, now: datetime
) -> Outcome | None:
    """Process a stored message once. Returns None when it was already processed (or is missing)."""
    try:
        async with transaction(sessions) as session:
            row = await session.get(Inbound, inbound_id)
            if row is None or row.status != InboundStatus.RECEIVED:
                return None
            outcome = await _decide(session, deps, row, now)
            queued = await add_to_outbox(session, outcome.mails, now)
            row.status = InboundStatus.PROCESSED
            row.verdict = outcome.verdict
            row.reason = outcome.reason[:1000]
            row.person_id = outcome.person_id
            row.processed_at = now
    except IntegrityError:
        log.info("inbound=%s was processed concurrently; nothing to do", inbound_id)
        return None
    except Exception as exc:
        log.exception("inbound=%s failed", inbound_id)
        async with transaction(sessions) as session:
            await session.exec(
                update(Inbound)
                .where(col(Inbound.id) == inbound_id)
                .where(col(Inbound.status) == InboundStatus.RECEIVED)
                .values(
                    status=InboundStatus.FAILED, verdict="error", reason=type(exc).__name__, processed_at=now
                )
            )
        return Outcome("error", type(exc).__name__)
    await queue.send_mail(queued)
    log.info("inbound=%s verdict=%s reason=%s", inbound_id, outcome.verdict, outcome.reason)
    return outcome


def _addresses(msg: ParsedMessage) -> list[str]:
    return [*msg.delivered_to, *msg.to, *msg.cc]


async def _decide(session: AsyncSession, deps: IngestDeps, row: Inbound, now: datetime) -> Outcome:
    msg = parse_message(row.raw)
    verdict = classify(msg, deps.composer.identity.own_addresses(), today=now.date())
    tokens = find_tokens(_addresses(msg), deps.composer.identity, deps.composer.keys)
    if verdict.kind == Kind.BOUNCE:
        return await _bounce(session, msg, verdict, tokens, now)
    if verdict.kind == Kind.COMPLAINT:
        return await _complaint(session, msg, verdict, tokens, now)
    if verdict.kind == Kind.AUTO_REPLY:
        return await _auto_reply(session, msg, verdict, now)
    if verdict.kind in QUARANTINE:
        return Outcome(str(verdict.kind), verdict.reason)
    return await _reply(session, deps, row, msg, tokens, now)


async def _person_by_email(session: AsyncSession, email: str) -> Person | None:
    return (await session.exec(select(Person).where(col(Person.email) == email.lower()))).first()


async def _bounce(
    session: AsyncSession, msg: ParsedMessage, verdict: Verdict, tokens: list[Token], now: datetime
) -> Outcome:
    person: Person | None = None
    for token in tokens:
        if token.kind == TokenKind.BOUNCE:
            person = await session.get(Person, token.id)
            break
    if person is None:
        for address in verdict.bounce_recipients:
            person = await _person_by_email(session, address)
            if person is not None:
                break
    if person is None or person.id is None:
        return Outcome("bounce", f"unattributed bounce: {verdict.reason}")
    await score_bounce(session, person.id, hard=verdict.hard_bounce, now=now, detail=verdict.reason)
    if verdict.hard_bounce:
        last = (
            await session.exec(
                select(Outbox)
                .where(col(Outbox.person_id) == person.id, col(Outbox.status) == OutboxStatus.SENT)
                .order_by(col(Outbox.sent_at).desc())
                .limit(1)
            )
        ).first()
        if last is not None:
            last.status = OutboxStatus.BOUNCED
            last.last_error = verdict.reason[:1000]
    kind = "hard" if verdict.hard_bounce else "soft"
    return Outcome("bounce", f"{kind} bounce: {verdict.reason}", person.id)


async def _complaint(
    session: AsyncSession, msg: ParsedMessage, verdict: Verdict, tokens: list[Token], now: datetime
) -> Outcome:
    person: Person | None = None
    for token in tokens:
        if token.kind == TokenKind.UNSUBSCRIBE:
            person = await session.get(Person, token.id)
    if person is None and msg.sender is not None:
        person = await _person_by_email(session, msg.sender.key)
    if person is None:
        return Outcome("complaint", f"unattributed: {verdict.reason}")
    await set_status(session, person.email, PersonStatus.LEFT, now, how=f"complaint: {verdict.reason}"[:200])
    return Outcome("complaint", verdict.reason, person.id)


async def _auto_reply(session: AsyncSession, msg: ParsedMessage, verdict: Verdict, now: datetime) -> Outcome:
    person = await _person_by_email(session, msg.sender.key) if msg.sender else None
    if person is None:
        return Outcome("auto_reply", verdict.reason)
    if verdict.hard_bounce and person.id is not None:  # "this mailbox is no longer in use"
        await score_bounce(session, person.id, hard=True, now=now, detail=verdict.reason)
        return Outcome("auto_reply", verdict.reason, person.id)
    if verdict.return_date is not None:
        until = datetime.combine(verdict.return_date, time(0), tzinfo=UTC)
        if until > now:
            person.paused_until = until
            session.add(
                Audit(person_id=person.id, action="away", detail=f"until {verdict.return_date}", at=now)
            )
            return Outcome("auto_reply", f"{verdict.reason}; away until {verdict.return_date}", person.id)
    return Outcome("auto_reply", verdict.reason, person.id)


async def _reply(
    session: AsyncSession,
    deps: IngestDeps,
    row: Inbound,
    msg: ParsedMessage,
    tokens: list[Token],
    now: datetime,
) -> Outcome:
    for token in tokens:
        if token.kind == TokenKind.UNSUBSCRIBE:
            person = await session.get(Person, token.id)
            if person is not None:
                await set_status(
                    session, person.email, PersonStatus.LEFT, now, how="email: unsubscribe address"
                )
                return Outcome("command", "stop (unsubscribe address)", person.id)
        if token.kind == TokenKind.NUDGE:
            nudge = await session.get(Nudge, token.id)
            if nudge is not None:
                return await _nudge_reply(session, deps, row, msg, nudge, now)
        if token.kind == TokenKind.MEMBER:
            member = await session.get(Member, token.id)
            if member is not None:
                return await _circle_post(session, deps, row, msg, member, now)
    nudge = await _nudge_by_thread(session, msg)
    if nudge is not None:
        return await _nudge_reply(session, deps, row, msg, nudge, now)
    return Outcome("unrouted", "no valid reply address and no matching nudge in the thread")


async def _nudge_by_thread(session: AsyncSession, msg: ParsedMessage) -> Nudge | None:
    """Fallback when the token was lost: the sender's own nudge named in In-Reply-To/References."""
    if msg.sender is None:
        return None
    ids = [*msg.in_reply_to, *msg.references][:10]
    if not ids:
        return None
    rows = await session.exec(
        select(Nudge)
        .join(Person, col(Person.id) == col(Nudge.person_id))
        .where(col(Nudge.message_id).in_(ids), col(Person.email) == msg.sender.key)
    )
    found = rows.all()
    return found[0] if len(found) == 1 else None


def _owner_mismatch(msg: ParsedMessage, person: Person) -> bool:
    return msg.sender is None or msg.sender.key != person.email.lower()


async def _nudge_reply(
    session: AsyncSession, deps: IngestDeps, row: Inbound, msg: ParsedMessage, nudge: Nudge, now: datetime
) -> Outcome:
    person = await session.get(Person, nudge.person_id)
    rnd = await session.get(Round, nudge.round_id)
    assert person is not None
    assert rnd is not None
    if _owner_mismatch(msg, person):
        return Outcome("quarantine", "sender does not own this reply address", person.id)
    trimmed = trim_reply(msg.text, question=rnd.question)
    command = parse_command(trimmed.visible, msg.subject, today=now.date())
    if command is not None:
        return await _apply_command(session, person, nudge, command, now)
    marker, text = split_sharing_marker(trimmed.visible, msg.subject)
    text = text.strip()[:MAX_REPLY_CHARS]
    if not text:
        return Outcome("empty", "no new text after trimming", person.id)
    sharing = (
        Sharing.PRIVATE
        if marker == CommandName.PRIVATE
        else (Sharing.PEERS if marker == CommandName.SHARE else Sharing(person.sharing))
    )
    session.add(
        Reply(
            nudge_id=nudge.id or 0,
            person_id=person.id or 0,
            inbound_id=row.id or 0,
            text=text,
            elided=trimmed.elided[:MAX_REPLY_CHARS],
            sharing=sharing,
            created_at=now,
        )
    )
    if nudge.status != NudgeStatus.REPLIED:
        nudge.status = NudgeStatus.REPLIED
        nudge.replied_at = now
    late = " (after the round was grouped)" if rnd.grouped_at is not None else ""
    return Outcome("reply", f"answer to round {rnd.programme} {rnd.period}, {sharing}{late}", person.id)


async def _apply_command(
    session: AsyncSession, person: Person, nudge: Nudge | None, command: Command, now: datetime
) -> Outcome:
    name = command.name
    if name == CommandName.STOP:
        await set_status(session, person.email, PersonStatus.LEFT, now, how="email: stop")
    elif name == CommandName.PAUSE:
        until = datetime.combine(command.until, time(0), tzinfo=UTC) if command.until else None
        await set_status(
            session, person.email, PersonStatus.PAUSED, now, how="email: pause", paused_until=until
        )
    elif name == CommandName.RESUME:
        await set_status(session, person.email, PersonStatus.ACTIVE, now, how="email: resume")
    elif name == CommandName.SKIP and nudge is not None:
        nudge.status = NudgeStatus.SKIPPED
    elif name in (CommandName.PRIVATE, CommandName.SHARE):
        person.sharing = Sharing.PRIVATE if name == CommandName.PRIVATE else Sharing.PEERS
        session.add(Audit(person_id=person.id, action=f"sharing-{person.sharing}", detail="email", at=now))
    detail = f" until {command.until}" if command.until else ""
    return Outcome("command", f"{name}{detail}", person.id)


async def _circle_post(
    session: AsyncSession, deps: IngestDeps, row: Inbound, msg: ParsedMessage, member: Member, now: datetime
) -> Outcome:
    person = await session.get(Person, member.person_id)
    assert person is not None
    if _owner_mismatch(msg, person):
        return Outcome("quarantine", "sender does not own this circle address", person.id)
    trimmed = trim_reply(msg.text)
    command = parse_command(trimmed.visible, msg.subject, today=now.date())
    if command is not None:
        return await _apply_command(session, person, None, command, now)
    text = trimmed.visible.strip()[:MAX_REPLY_CHARS]
    if not text:
        return Outcome("empty", "no new text after trimming", person.id)
    mails = await post_to_circle(
        session,
        member,
        person,
        row.id or 0,
        text,
        trimmed.elided[:MAX_REPLY_CHARS],
        deps.composer,
        now,
    )
    return Outcome("post", f"circle {member.circle_id}: relayed to {len(mails)}", person.id, mails)
