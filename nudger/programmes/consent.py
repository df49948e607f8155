"""Consent: the ways in (invitation with double opt-in) and the ways out (leave, pause, resume) (flow).

Every change is audited (who, what, when, how) and every consent records its channel and the text
version the person saw (GDPR Art. 7(1)); withdrawing is as easy as giving (Art. 7(3)). The functions
here act on one person inside the caller's transaction, are safe to call twice (the second call
changes nothing and says `ALREADY`), and never lift a suppression: bounces and complaints are for an
admin to clear.

Invitations: `invite_people` queues one invite email per person with status `invited`, keyed
`invite:{person_id}:{text_version}`, so re-running never re-sends; a new text version invites those
who still have not answered once more.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from nudger.config import Programme
from nudger.mail.compose import CONSENT_TEXT_VERSION, Composer, Recipient, compose_invite
from nudger.mail.outbox import add_to_outbox
from nudger.programmes.commands import DEFAULT_PAUSE_DAYS
from nudger.programmes.roster import RosterRow, UpsertResult, normalise_email, set_status, upsert_people
from nudger.queue import Queue
from nudger.store.db import SessionMaker, transaction
from nudger.store.models import Audit, Enrolment, Outbox, Person, PersonStatus

log = logging.getLogger(__name__)

INVITE_BATCH = 500
#: people who are in (or on a break): joining again changes nothing
_IN = frozenset({PersonStatus.ACTIVE, PersonStatus.PAUSED})


class Change(StrEnum):
    DONE = "done"  # the person's status changed
    ALREADY = "already"  # nothing to do: it already was so
    REFUSED = "refused"  # not from their current status (e.g. suppressed, or not yet joined)


# ----------------------------------------------------------------------------------------- ways out


async def leave(session: AsyncSession, person: Person, now: datetime, *, how: str) -> Change:
    """Opt out (status `left`, enrolments closed). A suppressed address stays suppressed, but the
    withdrawal is still recorded once, so lifting the suppression later cannot undo it silently."""
    if person.status == PersonStatus.LEFT:
        return Change.ALREADY
    if person.status == PersonStatus.SUPPRESSED:
        if not await _last_audit_is(session, person, "optout"):
            session.add(Audit(person_id=person.id, action="optout", detail=f"{how} (suppressed)", at=now))
        return Change.ALREADY
    await set_status(session, person.email, PersonStatus.LEFT, now, how=how)
    return Change.DONE


async def _last_audit_is(session: AsyncSession, person: Person, action: str) -> bool:
    last = (
        await session.exec(
            select(Audit.action)
            .where(col(Audit.person_id) == person.id)
            .order_by(col(Audit.at).desc(), col(Audit.id).desc())
            .limit(1)
        )
    ).first()
    return last == action


def pause_end(now: datetime, timezone: str, days: int = DEFAULT_PAUSE_DAYS) -> datetime:
    """When a pause of `days` starting now ends: the start of that day in the person's timezone."""
    zone = _zone(timezone)
    day: date = now.astimezone(zone).date() + timedelta(days=days)
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(now.tzinfo)


def _zone(timezone: str) -> ZoneInfo:
    try:
        return ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


async def pause(
    session: AsyncSession, person: Person, now: datetime, *, how: str, days: int = DEFAULT_PAUSE_DAYS
) -> Change:
    """Pause for `days` (from a participant only: pausing is no way in)."""
    if person.status not in _IN:
        return Change.REFUSED
    until = pause_end(now, person.timezone, days)
    if person.status == PersonStatus.PAUSED and person.paused_until == until:
        return Change.ALREADY
    await set_status(session, person.email, PersonStatus.PAUSED, now, how=how, paused_until=until)
    return Change.DONE


async def resume(
    session: AsyncSession,
    person: Person,
    now: datetime,
    *,
    how: str,
    text_version: str = CONSENT_TEXT_VERSION,
) -> Change:
    """End a pause; or come back after leaving, which is consent given again (recorded afresh).

    Never from `invited` (that is what joining is for) nor from `suppressed`.
    """
    if person.status == PersonStatus.ACTIVE:
        return Change.ALREADY
    if person.status == PersonStatus.PAUSED:
        await set_status(session, person.email, PersonStatus.ACTIVE, now, how=how)
        return Change.DONE
    if person.status == PersonStatus.LEFT:
        await _activate(session, person, now, how=how, text_version=text_version)
        return Change.DONE
    return Change.REFUSED


# ----------------------------------------------------------------------------------------- ways in


async def join(
    session: AsyncSession,
    person: Person,
    now: datetime,
    *,
    how: str,
    text_version: str = CONSENT_TEXT_VERSION,
) -> Change:
    """Say yes to an invitation: `invited` (or `left`, answering an old invitation) → `active`, with
    the consent recorded (when, how, which text)."""
    if person.status in _IN:
        return Change.ALREADY
    if person.status not in (PersonStatus.INVITED, PersonStatus.LEFT):
        return Change.REFUSED
    await _activate(session, person, now, how=how, text_version=text_version)
    return Change.DONE


async def _activate(
    session: AsyncSession, person: Person, now: datetime, *, how: str, text_version: str
) -> None:
    person.status = PersonStatus.ACTIVE
    person.paused_until = None
    person.consent_at = now
    person.consent_how = how[:64]
    person.consent_text_version = text_version
    session.add(Audit(person_id=person.id, action="consent", detail=f"{how} (text {text_version})", at=now))
    await session.exec(
        update(Enrolment)
        .where(col(Enrolment.person_id) == person.id, col(Enrolment.left_at).is_not(None))
        .values(left_at=None, joined_at=now)
    )


async def import_invited(
    session: AsyncSession,
    rows: Sequence[RosterRow],
    programmes: Sequence[Programme],
    now: datetime,
    *,
    source: str,
) -> tuple[UpsertResult, int]:
    """`upsert_people` for an invitation list: people new to the roster are `invited` (enrolled, but
    not asked and with no consent recorded until they say yes); people already on it keep their
    status. Returns the upsert's result and how many were invited."""
    result = await upsert_people(
        session, rows, programmes, now, consent_how=f"invite:{source}", initial_status=PersonStatus.INVITED
    )
    return result, result.created


# ----------------------------------------------------------------------------------------- invitations


@dataclass
class InviteResult:
    queued: int = 0  # new invitation emails in the outbox
    already: int = 0  # invited before with this text: nothing new
    not_invited: list[tuple[str, str]] = field(default_factory=list)  # (email, status or "unknown")


async def invite_people(
    sessions: SessionMaker,
    composer: Composer,
    queue: Queue,
    programme_names: Mapping[str, str],
    now: datetime,
    *,
    emails: Sequence[str] | None = None,
    text_version: str = CONSENT_TEXT_VERSION,
) -> InviteResult:
    """Queue an invitation for each person with status `invited` (all of them, or those named).

    People named who are not `invited` are reported, not mailed. Each batch is one transaction; the
    new outbox rows are handed to the queue after it commits.
    """
    result = InviteResult()
    if emails is not None:
        result.not_invited = await _not_invited(sessions, emails)
    async for batch in _invitees(sessions, emails):
        async with transaction(sessions) as session:
            fresh = await _without_invite(session, batch, text_version)
            mails = [
                compose_invite(
                    composer,
                    outbox_key=invite_key(p.id, text_version),
                    recipient=Recipient(p.id, p.email, p.name),
                    programmes=names,
                    text_version=text_version,
                    now=now,
                )
                for p, names in await _with_programmes(session, fresh, programme_names)
                if p.id is not None
            ]
            queued = await add_to_outbox(session, mails, now)
        await queue.send_mail(queued)
        result.queued += len(queued)
        result.already += len(batch) - len(queued)
    log.info("invitations: %s queued, %s sent before", result.queued, result.already)
    return result


def invite_key(person_id: int | None, text_version: str) -> str:
    return f"invite:{person_id}:{text_version}"


async def _invitees(sessions: SessionMaker, emails: Sequence[str] | None) -> AsyncIterator[list[Person]]:
    """People with status `invited` (only those named, if any), in batches by id (memory stays flat)."""
    wanted = sorted({normalise_email(e) for e in emails}) if emails is not None else None
    after = 0
    while True:
        stmt = select(Person).where(col(Person.status) == PersonStatus.INVITED, col(Person.id) > after)
        if wanted is not None:
            stmt = stmt.where(col(Person.email).in_(wanted))
        async with sessions() as session:
            batch = list((await session.exec(stmt.order_by(col(Person.id)).limit(INVITE_BATCH))).all())
        if not batch:
            return
        yield batch
        after = batch[-1].id or after


async def _not_invited(sessions: SessionMaker, emails: Sequence[str]) -> list[tuple[str, str]]:
    wanted = sorted({normalise_email(e) for e in emails})
    async with sessions() as session:
        found = dict(
            (
                await session.exec(select(Person.email, Person.status).where(col(Person.email).in_(wanted)))
            ).all()
        )
    return [(e, found.get(e, "unknown")) for e in wanted if found.get(e) != PersonStatus.INVITED]


async def _without_invite(session: AsyncSession, people: list[Person], text_version: str) -> list[Person]:
    """Those not yet sent this version of the invitation (so nothing is composed twice)."""
    keys = {invite_key(p.id, text_version): p for p in people}
    sent = set((await session.exec(select(Outbox.key).where(col(Outbox.key).in_(list(keys))))).all())
    return [p for key, p in keys.items() if key not in sent]


async def _with_programmes(
    session: AsyncSession, people: list[Person], names: Mapping[str, str]
) -> list[tuple[Person, list[str]]]:
    """Each person with the names of the programmes they are enrolled in (config order kept)."""
    ids = [p.id for p in people]
    rows = (
        await session.exec(
            select(Enrolment.person_id, Enrolment.programme).where(col(Enrolment.person_id).in_(ids))
        )
    ).all()
    enrolled: dict[int, set[str]] = {}
    for person_id, programme in rows:
        enrolled.setdefault(person_id, set()).add(programme)
    order = list(names)
    return [(p, [names[k] for k in order if k in enrolled.get(p.id or 0, set())]) for p in people]
