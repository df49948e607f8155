"""The operator's view of inbound mail (a flow): list what was held, show one, retry or release it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlmodel import col, select

from nudger.inspect import InspectionContext, inspect_message
from nudger.queue import Queue
from nudger.store.db import SessionMaker, transaction
from nudger.store.models import Inbound, InboundStatus

HELD_VERDICTS = (
    "quarantine",
    "held",
    "unrouted",
    "malformed",
    "forward",
    "spam",
    "list",
    "encrypted",
    "error",
    "invite_reply",  # an invitee wrote something other than "yes" (often a question for L&D)
)


@dataclass(frozen=True)
class InboxRow:
    id: int
    received_at: datetime
    source: str
    from_addr: str
    subject: str
    status: str
    verdict: str
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "received_at": self.received_at.isoformat()}


def _row(r: Inbound) -> InboxRow:
    return InboxRow(r.id or 0, r.received_at, r.source, r.from_addr, r.subject, r.status, r.verdict, r.reason)


async def list_messages(
    sessions: SessionMaker, *, held_only: bool = True, verdict: str | None = None, limit: int = 50
) -> list[InboxRow]:
    """Newest first; by default only what needs an operator (held verdicts and failures)."""
    stmt = select(Inbound).order_by(col(Inbound.id).desc()).limit(limit)
    if verdict:
        stmt = stmt.where(col(Inbound.verdict) == verdict)
    elif held_only:
        stmt = stmt.where(
            (col(Inbound.verdict).in_(HELD_VERDICTS)) | (col(Inbound.status) == InboundStatus.FAILED)
        )
    async with sessions() as session:
        return [_row(r) for r in (await session.exec(stmt)).all()]


async def show_message(
    sessions: SessionMaker, inbound_id: int, ctx: InspectionContext, *, today: date
) -> dict[str, Any] | None:
    async with sessions() as session:
        row = await session.get(Inbound, inbound_id)
    if row is None:
        return None
    return {
        **_row(row).as_dict(),
        "message_id": row.message_id,
        "size": row.size,
        "imap": {"mailbox": row.mailbox, "uidvalidity": row.uidvalidity, "uid": row.uid} if row.uid else None,
        "released": row.released,
        "reading": inspect_message(row.raw, ctx, today=today),
    }


#: verdicts whose effects are rows of their own: processing such a message again would do nothing
DONE_VERDICTS = ("reply", "post")


async def requeue(sessions: SessionMaker, queue: Queue, inbound_id: int, *, release: bool) -> str:
    """Put a message back to `received` (optionally released from holds) and enqueue it.

    Returns "" when queued, else why not ("missing", or it already became an answer or a post).
    """
    async with transaction(sessions) as session:
        row = await session.get(Inbound, inbound_id)
        if row is None:
            return "missing"
        if row.verdict in DONE_VERDICTS:
            return f"already processed as a {row.verdict}"
        row.status = InboundStatus.RECEIVED
        row.verdict, row.reason, row.processed_at = "", "", None
        row.released = row.released or release
    await queue.process_inbound([inbound_id])
    return ""
