"""The IMAP poll flow: fetch new messages, store them raw, advance the cursor, enqueue processing.

The cursor (UIDVALIDITY, last UID) is advanced in the same transaction that stores the batch, so a
crash re-fetches at most one batch, and the unique keys on stored mail make that harmless. A changed
UIDVALIDITY resets the cursor and resyncs the whole mailbox (duplicates are dropped by Message-ID /
SHA-256). A message deleted between SEARCH and FETCH is skipped; the cursor still moves past it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from nudger.inbound.accept import Position, store_raw
from nudger.inbound.imap import ImapMailbox
from nudger.queue import Queue
from nudger.store.db import SessionMaker, transaction
from nudger.store.models import ImapCursor
from nudger.store.queries import insert_ignore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PollResult:
    mailbox: str
    fetched: int
    stored: int
    resynced: bool


async def _cursor(session: AsyncSession, account: str, mailbox: str, now: datetime) -> ImapCursor:
    await insert_ignore(
        session,
        ImapCursor,
        [{"account": account, "mailbox": mailbox, "uidvalidity": 0, "last_uid": 0, "updated_at": now}],
    )
    found = await session.exec(
        select(ImapCursor).where(ImapCursor.account == account, ImapCursor.mailbox == mailbox)
    )
    return found.one()


async def poll_mailbox(
    sessions: SessionMaker,
    client: ImapMailbox,
    account: str,
    mailbox: str,
    queue: Queue,
    now: Callable[[], datetime],
    *,
    batch_size: int = 200,
    processed_mailbox: str = "",
) -> PollResult:
    """One pass over `mailbox` with a connected client (blocking calls run in a thread)."""
    state = await asyncio.to_thread(client.select, mailbox)
    resynced = False
    async with transaction(sessions) as session:
        cursor = await _cursor(session, account, mailbox, now())
        if cursor.uidvalidity != state.uidvalidity:
            if cursor.uidvalidity:
                log.warning(
                    "UIDVALIDITY of %s changed (%s → %s): resyncing",
                    mailbox,
                    cursor.uidvalidity,
                    state.uidvalidity,
                )
                resynced = True
            cursor.uidvalidity = state.uidvalidity
            cursor.last_uid = 0
            cursor.updated_at = now()
        last_uid = cursor.last_uid
    uids = await asyncio.to_thread(client.uids_after, last_uid)
    fetched = stored = 0
    for start in range(0, len(uids), batch_size):
        batch = uids[start : start + batch_size]
        messages = await asyncio.to_thread(client.fetch, batch)
        fetched += len(messages)
        new_ids: list[int] = []
        async with transaction(sessions) as session:
            for message in messages:
                position = Position("imap", f"{account}/{mailbox}", state.uidvalidity, message.uid)
                inbound_id = await store_raw(session, message.raw, position, now())
                if inbound_id is not None:
                    new_ids.append(inbound_id)
            cursor = await _cursor(session, account, mailbox, now())
            cursor.last_uid = max(cursor.last_uid, batch[-1])
            cursor.updated_at = now()
        stored += len(new_ids)
        await queue.process_inbound(new_ids)
        if processed_mailbox:
            await asyncio.to_thread(client.move, [m.uid for m in messages], processed_mailbox)
    if fetched:
        log.info("polled %s: fetched %s, stored %s new", mailbox, fetched, stored)
    return PollResult(mailbox, fetched, stored, resynced)
