"""Accepting mail: store the raw bytes first, deduplicated, before anything else looks at them.

Both inbound paths (the SMTP listener and the IMAP poller) call `store_raw`; processing happens
later, in a job, from the stored row. A message already stored (same Message-ID, same bytes, or the
same IMAP position) is a duplicate and is not stored again.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.header import decode_header, make_header
from email.parser import BytesHeaderParser
from email.policy import compat32
from functools import cache
from typing import Any

from sqlalchemy import Connection, Executable, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from nudger.inbound.parse import first_fields
from nudger.store.models import Inbound, InboundStatus
from nudger.store.queries import table_of

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


_BLANK_LINE = re.compile(rb"\r\r|\n\r|\n\n")  # a line ending right after another (\r\n\r\n too)


def header_block(raw: bytes) -> bytes:
    """The header lines of `raw`, up to its first empty line: what a header parser reads of it (the
    body would only be read through, line by line, to be thrown away)."""
    if raw[:1] in (b"\r", b"\n"):
        return b""
    m = _BLANK_LINE.search(raw)
    return raw if m is None else raw[: m.start() + 1]


_SNIFFED = frozenset({"message-id", "from", "subject"})


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
        block = header_block(raw[:HEADER_SNIFF_BYTES])
        fields = first_fields(block, _SNIFFED)
        if fields is None:  # not a plain block: the parser
            headers = BytesHeaderParser(policy=compat32).parsebytes(block)
            fields = {name: str(headers.get(name, "") or "") for name in _SNIFFED}
        mid_header = fields.get("message-id", "")
        from_header = _decode(fields.get("from", ""))
        subject = _decode(fields.get("subject", ""))
    except Exception:
        mid_header, from_header, subject = "", "", ""
    m = _MSGID_RE.search(mid_header)
    message_id = m.group(0) if m else f"<{digest}@sha256.nudger.invalid>"
    return Sniffed(clean(message_id, 1000), digest, clean(from_header, 320), clean(subject, 1000))


#: rows per INSERT statement (14 parameters each: well under every driver's limit)
STORE_ROWS_PER_STATEMENT = 500


def _inbound_row(raw: bytes, position: Position, now: datetime) -> dict[str, Any]:
    facts = sniff(raw)
    return {
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


async def store_raw(session: AsyncSession, raw: bytes, position: Position, now: datetime) -> int | None:
    """Store a message; return its new row id, or None if it was already stored."""
    return (await store_raw_each(session, [(raw, position)], now))[0]


async def store_raw_many(
    session: AsyncSession, messages: Sequence[tuple[bytes, Position]], now: datetime
) -> list[int]:
    """Store messages, skipping those already stored (or repeated in `messages`); the ids of the new
    rows, in the order of `messages`."""
    return [i for i in await store_raw_each(session, messages, now) if i is not None]


async def store_raw_each(
    session: AsyncSession, messages: Sequence[tuple[bytes, Position]], now: datetime
) -> list[int | None]:
    """Store messages (one INSERT per STORE_ROWS_PER_STATEMENT rows); for each, its new row id, or
    None when it was already stored (or came earlier in `messages`)."""
    return await store_raw_on(await session.connection(), messages, now)


async def store_raw_on(
    connection: AsyncConnection, messages: Sequence[tuple[bytes, Position]], now: datetime
) -> list[int | None]:
    """`store_raw_each` on a connection (the SMTP listener's own): the caller owns the transaction."""
    stmt = _insert_statement(connection.dialect.name)
    ids: list[int | None] = []
    for rows in _row_chunks(messages, now):
        result = await connection.execute(stmt, rows)  # batched VALUES, cached SQL
        ids.extend(_new_ids(rows, result.all()))
    return ids


def store_raw_each_sync(
    connection: Connection, messages: Sequence[tuple[bytes, Position]], now: datetime
) -> list[int | None]:
    """`store_raw_each` on a synchronous connection (the SMTP listener's SQLite writer thread): the
    same statement, rows and answer; the caller owns the transaction."""
    stmt = _insert_statement(connection.dialect.name)
    ids: list[int | None] = []
    for rows in _row_chunks(messages, now):
        ids.extend(_new_ids(rows, connection.execute(stmt, rows).all()))
    return ids


@cache
def _insert_statement(dialect: str) -> Executable:
    table = table_of(Inbound)
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    return insert(table).on_conflict_do_nothing().returning(table.c.id, table.c.sha256)


def _row_chunks(messages: Sequence[tuple[bytes, Position]], now: datetime) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(messages), STORE_ROWS_PER_STATEMENT):
        yield [_inbound_row(raw, pos, now) for raw, pos in messages[start : start + STORE_ROWS_PER_STATEMENT]]


def _new_ids(rows: list[dict[str, Any]], returned: Sequence[Any]) -> Iterator[int | None]:
    """Each row's new id, in order, from what RETURNING gave back (only the rows inserted)."""
    new = {str(sha): int(i) for i, sha in returned}
    return (new.pop(row["sha256"], None) for row in rows)  # pop: a repeated message counts once


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
