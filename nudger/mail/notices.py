"""Short automatic notices to a person, at most one per address per reason per day (a flow step).

The NoticeLog row is written in the caller's transaction, so the limit holds even when two workers
process mail from the same person at once (the unique key decides).
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from nudger.mail.compose import Composer, Recipient, compose_notice
from nudger.mail.message import Outgoing
from nudger.mail.tokens import TokenKind
from nudger.store.models import NoticeLog, Person
from nudger.store.queries import insert_ignore


async def notice_once(
    session: AsyncSession,
    composer: Composer,
    person: Person,
    reason: str,
    now: datetime,
    *,
    until: datetime | None = None,
    other: str = "",
) -> list[Outgoing]:
    """The notice mail, or [] when this person already had one for this reason today."""
    if person.id is None:
        return []
    day = now.date().isoformat()
    if not await insert_ignore(session, NoticeLog, [{"address": person.email, "reason": reason, "day": day}]):
        return []
    mail = compose_notice(
        composer,
        outbox_key=f"notice:{person.id}:{reason}:{day}",
        recipient=Recipient(person.id, person.email, person.name),
        reason=reason,
        reply_token=composer.keys.token(TokenKind.UNSUBSCRIBE, person.id),
        now=now,
        until=until,
        other=other,
    )
    return [mail]
