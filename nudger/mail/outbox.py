"""The outbox flow: every email is a row first; delivery claims the row, sends, records the outcome.

States: pending → sending → sent | failed | bounced | skipped. A row is claimed with a
compare-and-set on its status (works on SQLite and PostgreSQL), so two workers never both send it.
A crash while `sending` leaves the row for the sweeper, which puts it back to `pending` after a
grace period: a duplicate is possible then (same Message-ID), a loss is not.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from nudger.errors import PermanentSendError, TransientSendError
from nudger.mail.message import Outgoing
from nudger.mail.smtp import Transport
from nudger.store.db import SessionMaker, transaction
from nudger.store.models import (
    Audit,
    Nudge,
    NudgeStatus,
    Outbox,
    OutboxKind,
    OutboxStatus,
    Person,
    PersonStatus,
)
from nudger.store.queries import insert_ignore

log = logging.getLogger(__name__)

BACKOFF_MINUTES = (1, 5, 15, 30, 60, 120)
MAX_ATTEMPTS = 8
#: a hard bounce (5.1.x: no such mailbox) suppresses at once; soft ones (4.x.x, mailbox full) add up
BOUNCE_THRESHOLD = 4
HARD_BOUNCE_SCORE = BOUNCE_THRESHOLD
SOFT_BOUNCE_SCORE = 1
STALE_SENDING = timedelta(minutes=10)


def backoff(attempts: int) -> timedelta:
    """Delay before the next try after `attempts` tries (1-based)."""
    return timedelta(minutes=BACKOFF_MINUTES[min(max(attempts, 1), len(BACKOFF_MINUTES)) - 1])


async def add_to_outbox(
    session: AsyncSession, mails: Sequence[Outgoing], now: datetime, send_at: datetime | None = None
) -> list[tuple[int, datetime]]:
    """Insert rows for these mails (skipping keys already there); return (id, when) of the new ones."""
    when = send_at or now
    rows = [
        {
            "key": m.key,
            "kind": m.kind,
            "person_id": m.person_id,
            "to_addr": m.to_addr,
            "envelope_from": m.envelope_from,
            "message_id": m.message_id,
            "nudge_id": m.nudge_id,
            "raw": m.raw,
            "status": OutboxStatus.PENDING,
            "attempts": 0,
            "next_attempt_at": when,
            "expires_at": m.expires_at,
            "last_error": "",
            "created_at": now,
        }
        for m in mails
    ]
    ids = await insert_ignore(session, Outbox, rows)
    return [(i, when) for i in ids]


class Outcome(StrEnum):
    SENT = "sent"
    RETRY = "retry"
    FAILED = "failed"
    BOUNCED = "bounced"
    SKIPPED = "skipped"
    NOT_DUE = "not_due"
    NOTHING_TO_DO = "nothing_to_do"


@dataclass(frozen=True)
class Delivery:
    outcome: Outcome
    retry_in: timedelta | None = None
    detail: str = ""


async def _claim(session: AsyncSession, outbox_id: int, now: datetime) -> bool:
    result = await session.exec(
        update(Outbox)
        .where(col(Outbox.id) == outbox_id)
        .where(col(Outbox.status) == OutboxStatus.PENDING)
        .where(col(Outbox.next_attempt_at) <= now)
        .values(status=OutboxStatus.SENDING, attempts=col(Outbox.attempts) + 1, claimed_at=now)
    )
    return bool(result.rowcount)


async def _answered(session: AsyncSession, row: Outbox) -> bool:
    if row.kind != OutboxKind.REMINDER or row.nudge_id is None:
        return False
    nudge = await session.get(Nudge, row.nudge_id)
    return nudge is not None and nudge.status in (NudgeStatus.REPLIED, NudgeStatus.SKIPPED)


def _blocked_reason(person: Person | None, kind: str, now: datetime) -> str:
    if person is None:
        return ""
    if person.status in (PersonStatus.SUPPRESSED, PersonStatus.LEFT):
        return f"person {person.status}"
    if kind == OutboxKind.INVITE and person.status != PersonStatus.INVITED:
        return "already joined"
    # a pause with an end date is over once that date has passed
    paused = person.paused_until > now if person.paused_until else person.status == PersonStatus.PAUSED
    if kind in (OutboxKind.NUDGE, OutboxKind.REMINDER) and paused:
        return "person paused"
    return ""


async def deliver(sessions: SessionMaker, transport: Transport, outbox_id: int, now: datetime) -> Delivery:
    """Send one outbox row if it is due and unsent. Safe to call any number of times."""
    async with transaction(sessions) as session:
        if not await _claim(session, outbox_id, now):
            row = await session.get(Outbox, outbox_id)
            if row is not None and row.status == OutboxStatus.PENDING:
                return Delivery(Outcome.NOT_DUE, retry_in=max(row.next_attempt_at - now, timedelta(0)))
            return Delivery(Outcome.NOTHING_TO_DO, detail=row.status if row else "missing")
        row = await session.get(Outbox, outbox_id)
        assert row is not None
        person = await session.get(Person, row.person_id) if row.person_id else None
        blocked = _blocked_reason(person, row.kind, now)
        if not blocked and row.expires_at is not None and row.expires_at <= now:
            blocked = "expired before it could be sent"
        if not blocked and await _answered(session, row):
            blocked = "answered before the reminder went out"
        if blocked:
            row.status = OutboxStatus.SKIPPED
            row.last_error = blocked
            await _mark_nudge(session, row, NudgeStatus.SKIPPED, now)
            return Delivery(Outcome.SKIPPED, detail=blocked)
        envelope_from, to_addr, raw, attempts = row.envelope_from, row.to_addr, row.raw, row.attempts

    try:
        response = await transport.send(envelope_from, to_addr, raw)
    except TransientSendError as exc:
        return await _record_transient(sessions, outbox_id, attempts, str(exc), now)
    except PermanentSendError as exc:
        return await _record_permanent(sessions, outbox_id, exc, now)

    async with transaction(sessions) as session:
        row = await session.get(Outbox, outbox_id)
        assert row is not None
        row.status = OutboxStatus.SENT
        row.sent_at = now
        row.last_error = ""
        await _mark_nudge(session, row, NudgeStatus.SENT, now)
    log.info("sent outbox=%s kind=%s", outbox_id, row.kind)
    return Delivery(Outcome.SENT, detail=response[:200])


async def _mark_nudge(session: AsyncSession, row: Outbox, status: NudgeStatus, now: datetime) -> None:
    """The nudge itself (not its reminder) moves from planned to sent / skipped / expired."""
    if row.kind != OutboxKind.NUDGE or row.nudge_id is None:
        return
    values: dict[str, object] = {"status": status}
    if status == NudgeStatus.SENT:
        values["sent_at"] = now
    await session.exec(
        update(Nudge)
        .where(col(Nudge.id) == row.nudge_id)
        .where(col(Nudge.status) == NudgeStatus.PLANNED)
        .values(**values)
    )


async def _record_transient(
    sessions: SessionMaker, outbox_id: int, attempts: int, error: str, now: datetime
) -> Delivery:
    delay = backoff(attempts)
    async with transaction(sessions) as session:
        row = await session.get(Outbox, outbox_id)
        assert row is not None
        row.last_error = error[:1000]
        out_of_time = row.expires_at is not None and now + delay >= row.expires_at
        if attempts >= MAX_ATTEMPTS or out_of_time:
            row.status = OutboxStatus.FAILED
            await _mark_nudge(session, row, NudgeStatus.EXPIRED, now)
            log.warning("giving up outbox=%s after %s attempts: %s", outbox_id, attempts, error)
            return Delivery(Outcome.FAILED, detail=error)
        row.status = OutboxStatus.PENDING
        row.next_attempt_at = now + delay
    log.info("retrying outbox=%s in %s: %s", outbox_id, delay, error)
    return Delivery(Outcome.RETRY, retry_in=delay, detail=error)


async def _record_permanent(
    sessions: SessionMaker, outbox_id: int, exc: PermanentSendError, now: datetime
) -> Delivery:
    async with transaction(sessions) as session:
        row = await session.get(Outbox, outbox_id)
        assert row is not None
        row.last_error = str(exc)[:1000]
        if exc.recipient_specific and row.person_id is not None:
            row.status = OutboxStatus.BOUNCED
            await score_bounce(session, row.person_id, hard=True, now=now, detail=str(exc))
            return Delivery(Outcome.BOUNCED, detail=str(exc))
        row.status = OutboxStatus.FAILED
    log.error("permanent failure (not the recipient's fault) outbox=%s: %s", outbox_id, exc)
    return Delivery(Outcome.FAILED, detail=str(exc))


async def score_bounce(
    session: AsyncSession, person_id: int, *, hard: bool, now: datetime, detail: str
) -> None:
    """Add to a person's bounce score (reset after 30 quiet days); suppress them at the threshold."""
    person = await session.get(Person, person_id)
    if person is None:
        return
    if person.bounce_last_at is None or now - person.bounce_last_at > timedelta(days=30):
        person.bounce_score = 0
    person.bounce_score += HARD_BOUNCE_SCORE if hard else SOFT_BOUNCE_SCORE
    person.bounce_last_at = now
    if person.bounce_score >= BOUNCE_THRESHOLD and person.status != PersonStatus.SUPPRESSED:
        person.status = PersonStatus.SUPPRESSED
        session.add(
            Audit(person_id=person_id, action="suppressed", detail=f"bounces: {detail}"[:1000], at=now)
        )


async def stale_work(
    session: AsyncSession, now: datetime, *, limit: int = 1000
) -> list[tuple[int, datetime]]:
    """Rows a lost job left behind: due `pending` rows, and `sending` rows claimed long ago (reset)."""
    await session.exec(
        update(Outbox)
        .where(col(Outbox.status) == OutboxStatus.SENDING)
        .where(col(Outbox.claimed_at) < now - STALE_SENDING)
        .values(status=OutboxStatus.PENDING)
    )
    rows = await session.exec(
        select(Outbox.id, Outbox.next_attempt_at)
        .where(col(Outbox.status) == OutboxStatus.PENDING)
        .where(col(Outbox.next_attempt_at) <= now)
        .order_by(col(Outbox.next_attempt_at))
        .limit(limit)
    )
    return [(int(i), when) for i, when in rows.all() if i is not None]
