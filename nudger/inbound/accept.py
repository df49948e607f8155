"""Accepting mail: store the raw bytes first, deduplicated, before anything else looks at them.

Both inbound paths (the SMTP listener and the IMAP poller) call `store_raw`; processing happens
later, in a job, from the stored row. A message already stored (same Message-ID, same bytes, or the
same IMAP position) is a duplicate and is not stored again.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.header import decode_header, make_header
from email.parser import BytesHeaderParser
from email.policy import compat32

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from nudger.store.models import Inbound, InboundStatus
from nudger.store.queries import insert_ignore

HEADER_SNIFF_BYTES = 256 * 1024
STALE_PROCESSING = timedelta(minutes=10)
_MSGID_RE = re.compile(r"<[^<>\s]{1,900}>")
_CONTROL_RE = re.compile(r"[\x00\ud800-\udfff]")


@dataclass(frozen=True)
class Position:
    """Where a message came from: SMTP, or an IMAP mailbox position."""

    source: str
    mailbox: str | None = None
    uidvalidity: int | None = None
    uid: int | None = None


def clean(value: str, limit: int) -> str:
    """Strip NULs and lone surrogates (PostgreSQL text rejects them) and cap the length."""
    return _CONTROL_RE.sub("", value)[:limit]


def _decode(value: str | None) -> str:
    if not value:
        return ""
    try:
        return str(make_header(decode_header(value)))
    except (ValueError, LookupError, UnicodeError):
        return str(value)


@dataclass(frozen=True)
class Sniffed:
    message_id: str
    sha256: str
    from_addr: str
    subject: str


def sniff(raw: bytes) -> Sniffed:
    """The few header facts the store needs, cheaply and without raising."""
    digest = hashlib.sha256(raw).hexdigest()
    try:
        headers = BytesHeaderParser(policy=compat32).parsebytes(raw[:HEADER_SNIFF_BYTES])
        mid_header = str(headers.get("Message-ID", "") or "")
        from_header = _decode(str(headers.get("From", "") or ""))
        subject = _decode(str(headers.get("Subject", "") or ""))
    except Exception:
        mid_header, from_header, subject = "", "", ""
    m = _MSGID_RE.search(mid_header)
    message_id = m.group(0) if m else f"<{digest}@sha256.nudger.invalid>"
    return Sniffed(clean(message_id, 1000), digest, clean(from_header, 320), clean(subject, 1000))


async def store_raw(session: AsyncSession, raw: bytes, position: Position, now: datetime) -> int | None:
    """Store a message; return its new row id, or None if it was already stored."""
    facts = sniff(raw)
    ids = await insert_ignore(
        session,
        Inbound,
        [
            {
                "source": position.source,
                "mailbox": position.mailbox,
                "uidvalidity": position.uidvalidity,
                "uid": position.uid,
                "message_id": facts.message_id,
                "sha256": facts.sha256,
                "raw": raw,
                "size": len(raw),
                "from_addr": facts.from_addr,
                "subject": facts.subject,
                "received_at": now,
                "status": InboundStatus.RECEIVED,
                "verdict": "",
                "reason": "",
            }
        ],
    )
    return ids[0] if ids else None


async def stale_inbound(session: AsyncSession, older_than: datetime, *, limit: int = 1000) -> list[int]:
    """Stored messages still waiting for processing (their job was lost), and messages whose
    processing was claimed but never finished (a worker died): handed back and enqueued again."""
    await session.exec(
        update(Inbound)
        .where(col(Inbound.status) == InboundStatus.PROCESSING)
        .where(col(Inbound.processed_at) < older_than - STALE_PROCESSING)
        .values(status=InboundStatus.RECEIVED, processed_at=None)
    )
    rows = await session.exec(
        select(Inbound.id)
        .where(col(Inbound.status) == InboundStatus.RECEIVED)
        .where(col(Inbound.received_at) < older_than)
        .order_by(col(Inbound.id))
        .limit(limit)
    )
    return [int(i) for i in rows.all() if i is not None]
