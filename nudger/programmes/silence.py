"""The ghost rule (a flow step run when a round closes): people who stay silent stop being asked.

After `ghost_after` unanswered rounds in a row an enrolment becomes dormant: no more nudges, and one
"still interested?" email. Any answer (to it, or to an old nudge) wakes the enrolment up again.
Idempotent per round: it runs in the same transaction that marks the round grouped.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from nudger.config import Programme
from nudger.mail.compose import Composer, Recipient, compose_check_in
from nudger.mail.message import Outgoing
from nudger.store.models import Enrolment, Nudge, NudgeStatus, Person, PersonStatus, Round


def _in_round(round_id: int, *statuses: NudgeStatus) -> Any:
    return (
        select(Nudge.person_id).where(col(Nudge.round_id) == round_id).where(col(Nudge.status).in_(statuses))
    )


async def tally_round(
    session: AsyncSession, rnd: Round, programme: Programme, composer: Composer, now: datetime
) -> list[Outgoing]:
    """Count this round's silences; return the check-in emails for people who just went dormant."""
    assert rnd.id is not None
    mine = update(Enrolment).where(col(Enrolment.programme) == rnd.programme)
    await session.exec(
        mine.where(col(Enrolment.person_id).in_(_in_round(rnd.id, NudgeStatus.REPLIED))).values(
            silent_rounds=0
        )
    )
    await session.exec(
        mine.where(col(Enrolment.person_id).in_(_in_round(rnd.id, NudgeStatus.SENT))).values(
            silent_rounds=col(Enrolment.silent_rounds) + 1
        )
    )
    if programme.ghost_after <= 0:
        return []
    rows = await session.exec(
        select(Enrolment, Person, Nudge)
        .join(Person, col(Person.id) == col(Enrolment.person_id))
        .join(Nudge, (col(Nudge.person_id) == col(Person.id)) & (col(Nudge.round_id) == rnd.id))
        .where(col(Enrolment.programme) == rnd.programme)
        .where(col(Enrolment.silent_rounds) >= programme.ghost_after)
        .where(col(Enrolment.dormant_since).is_(None))
        .where(col(Person.status) == PersonStatus.ACTIVE)
    )
    mails = []
    for enrolment, person, nudge in rows.all():
        enrolment.dormant_since = now
        mails.append(
            compose_check_in(
                composer,
                nudge_id=nudge.id or 0,
                outbox_key=f"check_in:{enrolment.id}:{rnd.id}",
                recipient=Recipient(person.id or 0, person.email, person.name),
                programme_name=programme.name,
                programme_key=programme.key,
                silent_rounds=enrolment.silent_rounds,
                now=now,
            )
        )
    return mails


async def wake(session: AsyncSession, person_id: int, programme: str) -> None:
    """They answered: count their silence from zero and ask them again."""
    await session.exec(
        update(Enrolment)
        .where(col(Enrolment.person_id) == person_id, col(Enrolment.programme) == programme)
        .values(silent_rounds=0, dormant_since=None)
    )
