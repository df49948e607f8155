"""The SMTP listener, spoken to over real SMTP: 250 only once stored; 550/552/451 as promised."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiosmtplib
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import select

from nudger.inbound.listener import InboundHandler, start_listener
from nudger.mail.tokens import TokenKind
from nudger.queue import RecordingQueue
from nudger.store.db import SessionMaker, make_sessionmaker
from nudger.store.models import Inbound, InboundStatus
from tests.fixtures import identity, keys
from tests.services import free_port

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
TOKEN_ADDRESS = identity().reply_address(keys().token(TokenKind.NUDGE, 7))

REPLY = (
    b"From: Ana <ana@corp.test>\r\nTo: " + TOKEN_ADDRESS.encode() + b"\r\nSubject: Re: hello\r\n"
    b"Message-ID: <reply-1@corp.test>\r\nDate: Tue, 01 Dec 2026 12:00:00 +0000\r\n\r\nMy answer.\r\n"
)


@dataclass
class Listener:
    port: int
    queue: RecordingQueue


async def _serve(sessions: SessionMaker, max_bytes: int = 100_000) -> AsyncIterator[Listener]:
    queue = RecordingQueue()
    handler = InboundHandler(sessions, identity(), keys(), queue, lambda: NOW)
    port = free_port()
    server = await start_listener(handler, "127.0.0.1", port, max_bytes=max_bytes)
    try:
        yield Listener(port, queue)
    finally:
        server.close()
        await server.wait_closed()
        await handler.aclose()


@pytest.fixture
async def listener(sessions: SessionMaker) -> AsyncIterator[Listener]:
    async for item in _serve(sessions):
        yield item


async def send(port: int, rcpt: str, raw: bytes) -> tuple[int, str]:
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=port, local_hostname="mx.test", timeout=10) as smtp:
        errors, response = await smtp.sendmail("ana@corp.test", [rcpt], raw)
        return 250 if not errors else 0, response


async def stored(sessions: SessionMaker) -> list[Inbound]:
    async with sessions() as session:
        return list((await session.exec(select(Inbound))).all())


async def test_a_reply_is_stored_raw_then_queued(listener: Listener, sessions: SessionMaker) -> None:
    code, _response = await send(listener.port, TOKEN_ADDRESS, REPLY)
    assert code == 250
    rows = await stored(sessions)
    assert len(rows) == 1
    assert rows[0].raw.replace(b"\r\n", b"\n") == REPLY.replace(b"\r\n", b"\n")
    assert (rows[0].status, rows[0].source, rows[0].message_id) == (
        InboundStatus.RECEIVED,
        "smtp",
        "<reply-1@corp.test>",
    )
    assert listener.queue.processes == [rows[0].id]


async def test_the_same_message_twice_is_stored_once(listener: Listener, sessions: SessionMaker) -> None:
    await send(listener.port, TOKEN_ADDRESS, REPLY)
    await send(listener.port, TOKEN_ADDRESS, REPLY)
    assert len(await stored(sessions)) == 1
    assert len(listener.queue.processes) == 1


@pytest.mark.parametrize(
    "rcpt",
    ["someone@corp.test", "reply+aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@reply.corp.test", "reply@elsewhere.test"],
)
async def test_recipients_we_do_not_serve_get_550(
    listener: Listener, sessions: SessionMaker, rcpt: str
) -> None:
    with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as refused:
        await send(listener.port, rcpt, REPLY)
    assert refused.value.recipients[0].code == 550
    assert await stored(sessions) == []


async def test_upper_cased_token_address_is_accepted(listener: Listener, sessions: SessionMaker) -> None:
    code, _ = await send(listener.port, TOKEN_ADDRESS.upper(), REPLY)
    assert code == 250
    assert len(await stored(sessions)) == 1


async def test_oversized_message_gets_552_and_is_not_stored(sessions: SessionMaker) -> None:
    big = REPLY + b"x" * 200_000 + b"\r\n"
    async for item in _serve(sessions, max_bytes=100_000):
        with pytest.raises(aiosmtplib.SMTPResponseException) as exc:
            await send(item.port, TOKEN_ADDRESS, big)
        assert exc.value.code == 552
    assert await stored(sessions) == []


async def test_database_unavailable_answers_451(tmp_path: Path) -> None:
    broken = make_sessionmaker(create_async_engine(f"sqlite+aiosqlite:///{tmp_path}/missing/dir/x.db"))
    async for item in _serve(broken):
        with pytest.raises(aiosmtplib.SMTPResponseException) as exc:
            await send(item.port, TOKEN_ADDRESS, REPLY)
        assert exc.value.code == 451
        assert item.queue.processes == []
    await asyncio.sleep(0)


async def test_a_reply_waits_while_another_process_holds_the_write_lock(
    listener: Listener, sessions: SessionMaker
) -> None:
    async with sessions() as other, other.begin():
        await other.exec(text("DELETE FROM inbound"))  # type: ignore[call-overload]
        await other.flush()  # this connection now holds SQLite's write lock, as a worker's would
        sending = asyncio.create_task(send(listener.port, TOKEN_ADDRESS, REPLY))
        await asyncio.sleep(0.5)
        assert not sending.done()  # no 250 before the message could be committed
    code, _ = await sending
    assert code == 250
    assert [row.message_id for row in await stored(sessions)] == ["<reply-1@corp.test>"]
