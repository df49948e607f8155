"""The IMAP poll flow: fetch new messages, store them raw, advance the cursor, enqueue processing.

The cursor (UIDVALIDITY, last UID) is advanced in the same transaction that stores the batch, so a
crash re-fetches at most one batch, and the unique keys on stored mail make that harmless. A changed
UIDVALIDITY resets the cursor and resyncs the whole mailbox (duplicates are dropped by Message-ID /
SHA-256). A message deleted between SEARCH and FETCH is skipped; the cursor still moves past it.

Sizes come first (RFC822.SIZE): a message over the size limit (`max_message_bytes`, the same limit at
which the SMTP listener answers 552) is never loaded. Its header block alone is stored, with verdict
"too_large" and its real size, for an operator to see; it is not processed further.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from nudger.config import InboundConfig
from nudger.inbound.accept import Position, store_raw, store_raw_many
from nudger.inbound.imap import FetchedMessage, ImapMailbox
from nudger.queue import Queue
from nudger.store.db import SessionMaker, transaction
from nudger.store.models import ImapCursor, Inbound, InboundStatus
from nudger.store.queries import insert_ignore

log = logging.getLogger(__name__)

DEFAULT_MAX_MESSAGE_BYTES = 10_000_000
TOO_LARGE = "too_large"


def max_message_bytes(inbound: InboundConfig) -> int:
    """The largest message nudger takes in, by either path: the SMTP listener refuses bigger ones
    (552) and the IMAP poller keeps only their headers (verdict "too_large")."""
    return inbound.listener.max_message_bytes if inbound.listener else DEFAULT_MAX_MESSAGE_BYTES


@dataclass(frozen=True)
class PollResult:
    mailbox: str
    fetched: int
    stored: int
    resynced: bool
    too_large: int = 0
    vanished: int = 0  # found by SEARCH, expunged before FETCH


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
    max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
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
    fetched = stored = too_large = vanished = 0
    for start in range(0, len(uids), batch_size):
        batch = uids[start : start + batch_size]
        sizes = await asyncio.to_thread(client.sizes, batch)
        small = [uid for uid in batch if uid in sizes and sizes[uid] <= max_bytes]
        large = [uid for uid in batch if uid in sizes and sizes[uid] > max_bytes]
        messages = await asyncio.to_thread(client.fetch, small)
        heads = await asyncio.to_thread(client.fetch_headers, large)
        fetched += len(messages) + len(heads)
        missing = len(batch) - len(messages) - len(heads)
        if missing:
            log.info("%s: %s message(s) vanished between SEARCH and FETCH; skipped", mailbox, missing)
            vanished += missing
        async with transaction(sessions) as session:
            where = f"{account}/{mailbox}"
            new_ids = await store_raw_many(
                session,
                [(m.raw, Position("imap", where, state.uidvalidity, m.uid)) for m in messages],
                now(),
            )
            for head in heads:
                position = Position("imap", f"{account}/{mailbox}", state.uidvalidity, head.uid)
                if await _store_too_large(session, head, sizes[head.uid], max_bytes, position, now()):
                    too_large += 1
            cursor = await _cursor(session, account, mailbox, now())
            cursor.last_uid = max(cursor.last_uid, batch[-1])
            cursor.updated_at = now()
        stored += len(new_ids)
        await queue.process_inbound(new_ids)
        if processed_mailbox:
            done = [m.uid for m in messages] + [h.uid for h in heads]
            await asyncio.to_thread(client.move, sorted(done), processed_mailbox)
    if fetched:
        log.info("polled %s: fetched %s, stored %s new, %s too large", mailbox, fetched, stored, too_large)
    return PollResult(mailbox, fetched, stored, resynced, too_large, vanished)


async def _store_too_large(
    session: AsyncSession,
    head: FetchedMessage,
    size: int,
    limit: int,
    position: Position,
    now: datetime,
) -> bool:
    """Keep the header block of an oversized message, already decided: "too_large", not processed."""
    inbound_id = await store_raw(session, head.raw, position, now)
    if inbound_id is None:
        return False
    reason = f"{size} bytes, over the limit of {limit}: only the headers were kept"
    await session.exec(
        update(Inbound)
        .where(col(Inbound.id) == inbound_id)
        .values(size=size, status=InboundStatus.PROCESSED, verdict=TOO_LARGE, reason=reason, processed_at=now)
    )
    log.warning(
        "inbound=%s from IMAP %s uid=%s is too large (%s bytes)", inbound_id, position.mailbox, head.uid, size
    )
    return True
