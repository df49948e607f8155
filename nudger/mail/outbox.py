"""The outbox flow: every email is a row first; delivery claims the row, sends, records the outcome.

States: pending → sending → sent | failed | bounced | skipped. A row is claimed with a
compare-and-set on its status (works on SQLite and PostgreSQL), so two workers never both send it.
A crash while `sending` leaves the row for the sweeper, which puts it back to `pending` after a
grace period: a duplicate is possible then (same Message-ID), a loss is not.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import select as sa_select
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
from nudger.store.queries import core, id_in, insert_ignore_returning

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
    session: AsyncSession,
    mails: Sequence[Outgoing],
    now: datetime,
    send_at: datetime | Sequence[datetime] | None = None,
) -> list[tuple[int, datetime]]:
    """Insert rows for these mails (skipping keys already there); return (id, when) of the new ones.

    `send_at` is one time for all, or one per mail (a round's nudges each go at the person's own
    local time); by default now.
    """
    if isinstance(send_at, Sequence):
        times = list(send_at)
        assert len(times) == len(mails), "one send time per mail"
    else:
        times = [send_at or now] * len(mails)
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
        for m, when in zip(mails, times, strict=True)
    ]
    inserted = await insert_ignore_returning(session, Outbox, rows, "id", "next_attempt_at")
    return sorted((int(i), when) for i, when in inserted)


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


def _blocked_reason(status: str | None, paused_until: datetime | None, kind: str, now: datetime) -> str:
    """Why a row must not go out now (its person left, bounced, paused, or already joined)."""
    if status is None:
        return ""
    if status in (PersonStatus.SUPPRESSED, PersonStatus.LEFT):
        return f"person {status}"
    if kind == OutboxKind.INVITE and status != PersonStatus.INVITED:
        return "already joined"
    # a pause with an end date is over once that date has passed
    paused = paused_until > now if paused_until else status == PersonStatus.PAUSED
    if kind in (OutboxKind.NUDGE, OutboxKind.REMINDER) and paused:
        return "person paused"
    return ""


@dataclass(frozen=True)
class _Claimed:
    id: int
    kind: str
    nudge_id: int | None
    envelope_from: str
    to_addr: str
    raw: bytes
    attempts: int


#: a batch stops starting new sends after this long and hands the rest back (a slow relay must not
#: let a job run into its timeout with rows claimed)
BATCH_BUDGET = timedelta(seconds=60)
#: how often a batch writes back what it has sent: the most a worker killed mid-batch re-sends
RECORD_EVERY = timedelta(milliseconds=25)


async def deliver(sessions: SessionMaker, transport: Transport, outbox_id: int, now: datetime) -> Delivery:
    """Send one outbox row if it is due and unsent. Safe to call any number of times."""
    return (await deliver_many(sessions, transport, [outbox_id], now))[outbox_id]


async def deliver_many(
    sessions: SessionMaker,
    transport: Transport,
    outbox_ids: Sequence[int],
    now: datetime,
    *,
    concurrency: int = 1,
    budget: timedelta = BATCH_BUDGET,
) -> dict[int, Delivery]:
    """Send the due, unsent rows among `outbox_ids`, `concurrency` at a time; one outcome per id.

    A few short transactions whatever the batch size: claim (compare-and-set) and skip the blocked;
    then, while the sends go on, what was sent is written back every RECORD_EVERY (so a worker
    killed mid-batch re-sends at most that much; claimed rows it never tried are not duplicates);
    then failures. Safe to call any number of times, from any number of workers. Rows the budget
    did not reach go back to `pending` (NOT_DUE, retry now).
    """
    out: dict[int, Delivery] = {}
    async with transaction(sessions) as session:
        rows = await _claim_many(session, outbox_ids, now, out)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + budget.total_seconds()
    todo = iter(rows)
    sent: list[_Claimed] = []
    failed: list[tuple[_Claimed, Exception]] = []
    unreached: list[_Claimed] = []
    senders_done = asyncio.Event()

    async def sender() -> None:
        for row in todo:
            # out of time, or the write-back failed (the database is away): send nothing more that
            # could not be recorded
            if loop.time() > deadline or recording.done():
                unreached.append(row)
                continue
            try:
                response = await transport.send(row.envelope_from, row.to_addr, row.raw)
            except (TransientSendError, PermanentSendError) as exc:
                failed.append((row, exc))
                continue
            out[row.id] = Delivery(Outcome.SENT, detail=response[:200])
            sent.append(row)

    async def recorder() -> None:
        while True:
            finished = senders_done.is_set()
            if sent:
                batch = sent[:]
                del sent[: len(batch)]
                async with transaction(sessions) as session:
                    await _record_sent(session, batch, now)
                for row in batch:
                    log.info("sent outbox=%s kind=%s", row.id, row.kind)
            if finished:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(senders_done.wait(), RECORD_EVERY.total_seconds())

    recording = asyncio.create_task(recorder())
    try:
        await asyncio.gather(*(sender() for _ in range(max(1, min(concurrency, len(rows))))))
    finally:
        senders_done.set()
        await recording  # the last write-back; raises if writing back failed
    if unreached:
        async with transaction(sessions) as session:
            await _hand_back(session, unreached)
    for row in unreached:
        out[row.id] = Delivery(Outcome.NOT_DUE, retry_in=timedelta(0), detail="batch out of time")
    for row, exc in failed:
        if isinstance(exc, TransientSendError):
            out[row.id] = await _record_transient(sessions, row.id, row.attempts, str(exc), now)
        else:
            assert isinstance(exc, PermanentSendError)
            out[row.id] = await _record_permanent(sessions, row.id, exc, now)
    return out


async def _claim_many(
    session: AsyncSession, ids: Sequence[int], now: datetime, out: dict[int, Delivery]
) -> list[_Claimed]:
    """Claim the due pending rows, skip those that must not go, say why for the rest (into `out`)."""
    claimed = set(
        (
            await session.exec(
                update(Outbox)
                .where(id_in(session, col(Outbox.id), ids))
                .where(col(Outbox.status) == OutboxStatus.PENDING)
                .where(col(Outbox.next_attempt_at) <= now)
                .values(status=OutboxStatus.SENDING, attempts=col(Outbox.attempts) + 1, claimed_at=now)
                .returning(col(Outbox.id))
                .execution_options(**_BULK)
            )
        )
        .scalars()
        .all()
    )
    if len(claimed) < len(set(ids)):
        others = await session.exec(
            select(Outbox.id, Outbox.status, Outbox.next_attempt_at).where(
                id_in(session, col(Outbox.id), [i for i in ids if i not in claimed])
            )
        )
        for other_id, status, when in others.all():
            assert other_id is not None
            if status == OutboxStatus.PENDING:
                out[other_id] = Delivery(Outcome.NOT_DUE, retry_in=max(when - now, timedelta(0)))
            else:
                out[other_id] = Delivery(Outcome.NOTHING_TO_DO, detail=status)
        for missing in set(ids) - claimed - set(out):
            out[missing] = Delivery(Outcome.NOTHING_TO_DO, detail="missing")
    if not claimed:
        return []
    found = await core(
        session,
        sa_select(
            col(Outbox.id),
            col(Outbox.kind),
            col(Outbox.nudge_id),
            col(Outbox.envelope_from),
            col(Outbox.to_addr),
            col(Outbox.raw),
            col(Outbox.attempts),
            col(Outbox.expires_at),
            col(Person.status),
            col(Person.paused_until),
            col(Nudge.status),
        )
        .select_from(Outbox)
        .outerjoin(Person, col(Person.id) == col(Outbox.person_id))
        .outerjoin(Nudge, col(Nudge.id) == col(Outbox.nudge_id))
        .where(id_in(session, col(Outbox.id), claimed))
        .order_by(col(Outbox.id)),
    )
    rows: list[_Claimed] = []
    blocked: dict[str, list[_Claimed]] = {}
    for record in found.all():
        i, kind, nudge_id, env_from, to, raw, attempts, expires, status, paused, nudge_status = tuple(record)
        assert i is not None
        row = _Claimed(i, kind, nudge_id, env_from, to, raw, attempts)
        reason = _blocked_reason(status, paused, kind, now)
        if not reason and expires is not None and expires <= now:
            reason = "expired before it could be sent"
        if not reason and kind == OutboxKind.REMINDER and nudge_status in _ANSWERED:
            reason = "answered before the reminder went out"
        if reason:
            blocked.setdefault(reason, []).append(row)
            out[i] = Delivery(Outcome.SKIPPED, detail=reason)
        else:
            rows.append(row)
    for reason, skipped in blocked.items():
        await session.exec(
            update(Outbox)
            .where(id_in(session, col(Outbox.id), [r.id for r in skipped]))
            .values(status=OutboxStatus.SKIPPED, last_error=reason)
            .execution_options(**_BULK)
        )
        await _mark_nudges(session, [(r.kind, r.nudge_id) for r in skipped], NudgeStatus.SKIPPED, now)
    return rows


_ANSWERED = (NudgeStatus.REPLIED, NudgeStatus.SKIPPED)
#: bulk UPDATEs by id: no loaded objects to keep in step, so skip the ORM's per-statement evaluator
_BULK: dict[str, Any] = {"synchronize_session": False}


async def _record_sent(session: AsyncSession, rows: Sequence[_Claimed], now: datetime) -> None:
    if not rows:
        return
    await session.exec(
        update(Outbox)
        .where(id_in(session, col(Outbox.id), [r.id for r in rows]))
        .values(status=OutboxStatus.SENT, sent_at=now, last_error="")
        .execution_options(**_BULK)
    )
    await _mark_nudges(session, [(r.kind, r.nudge_id) for r in rows], NudgeStatus.SENT, now)


async def _hand_back(session: AsyncSession, rows: Sequence[_Claimed]) -> None:
    """Claimed rows this batch never tried: pending again, their attempt not counted."""
    if rows:
        await session.exec(
            update(Outbox)
            .where(id_in(session, col(Outbox.id), [r.id for r in rows]))
            .where(col(Outbox.status) == OutboxStatus.SENDING)
            .values(status=OutboxStatus.PENDING, attempts=col(Outbox.attempts) - 1)
            .execution_options(**_BULK)
        )


async def _mark_nudges(
    session: AsyncSession, rows: Iterable[tuple[str, int | None]], status: NudgeStatus, now: datetime
) -> None:
    """For (kind, nudge id) of outbox rows: the nudges themselves (not their reminders) move from
    planned to sent / skipped / expired."""
    ids = [nudge_id for kind, nudge_id in rows if kind == OutboxKind.NUDGE and nudge_id is not None]
    if not ids:
        return
    values: dict[str, object] = {"status": status}
    if status == NudgeStatus.SENT:
        values["sent_at"] = now
    await session.exec(
        update(Nudge)
        .where(id_in(session, col(Nudge.id), ids))
        .where(col(Nudge.status) == NudgeStatus.PLANNED)
        .values(**values)
        .execution_options(**_BULK)
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
            await _mark_nudges(session, [(row.kind, row.nudge_id)], NudgeStatus.EXPIRED, now)
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


#: rows the sweeper hands back per pass (once a minute): a round of 100 000 whose jobs Redis lost is
#: queued again within five passes, in send batches
STALE_PER_PASS = 20_000


async def stale_work(
    session: AsyncSession, now: datetime, *, limit: int = STALE_PER_PASS
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
