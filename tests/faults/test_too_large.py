"""A 40 MB message: refused at SMTP (552) by the listener, and from IMAP kept as headers only (verdict
too_large) without the message ever being loaded: the poll's peak memory stays far below its size."""

from __future__ import annotations

import base64
import os
import tracemalloc
from datetime import UTC, datetime

import aiosmtplib
import pytest
from sqlmodel import select

from nudger.config import InboundConfig, ListenerConfig
from nudger.inbound.listener import InboundHandler, start_listener
from nudger.inbound.poll import TOO_LARGE, max_message_bytes
from nudger.mail.tokens import TokenKind
from nudger.queue import RecordingQueue
from nudger.store.models import Inbound, InboundStatus
from tests.faults.conftest import report
from tests.faults.test_imap_faults import database, mail, mailbox_client, poll
from tests.fixtures import identity, keys
from tests.services import HOST, LD_USER, DovecotServer, free_port, imap_connect

pytestmark = pytest.mark.slow

NOW = datetime(2026, 12, 1, 14, 0, tzinfo=UTC)
BIG = 40_000_000


def huge_message() -> bytes:
    head = (
        f"From: Ana <ana@corp.test>\r\nTo: {LD_USER}\r\nSubject: the slides (all of them)\r\n"
        "Message-ID: <forty-megabytes@corp.test>\r\nDate: Tue, 01 Dec 2026 12:00:00 +0000\r\n"
        'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b1"\r\n\r\n'
        "--b1\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n"
        '--b1\r\nContent-Type: application/octet-stream; name="slides.bin"\r\n'
        "Content-Transfer-Encoding: base64\r\n\r\n"
    ).encode()
    encoded = base64.encodebytes(os.urandom(BIG * 3 // 4 * 76 // 78)).replace(b"\n", b"\r\n")
    return head + encoded + b"--b1--\r\n"


def test_the_default_limit_is_the_listeners() -> None:
    assert max_message_bytes(InboundConfig()) == 10_000_000
    assert max_message_bytes(InboundConfig(listener=ListenerConfig(max_message_bytes=123_456))) == 123_456


async def test_a_40_mb_message_is_refused_at_smtp_with_552(pg_url: str) -> None:
    limit = max_message_bytes(InboundConfig())
    raw = huge_message()
    async with database(pg_url) as sessions:
        handler = InboundHandler(sessions, identity(), keys(), RecordingQueue(), lambda: NOW)
        port = free_port()
        server = await start_listener(handler, HOST, port, max_bytes=limit)
        try:
            rcpt = identity().reply_address(keys().token(TokenKind.NUDGE, 7))
            async with aiosmtplib.SMTP(
                hostname=HOST, port=port, local_hostname="mx.test", timeout=60
            ) as smtp:
                with pytest.raises(aiosmtplib.SMTPResponseException) as refused:
                    await smtp.sendmail("ana@corp.test", [rcpt], raw)
        finally:
            server.close()
            await server.wait_closed()
            await handler.aclose()
        async with sessions() as session:
            rows = (await session.exec(select(Inbound))).all()
    report(
        "17 40 MB message over SMTP",
        f"{len(raw)} bytes sent to the listener (limit {limit})",
        reply=refused.value.code,
        stored=len(rows),
    )
    assert refused.value.code == 552
    assert rows == []


async def test_a_40_mb_message_from_imap_is_kept_as_headers_only(
    pg_url: str, dovecot: DovecotServer, fresh_mailbox: str
) -> None:
    limit = max_message_bytes(InboundConfig())
    raw = huge_message()
    size = len(raw)
    with imap_connect(dovecot, timeout=120) as other:
        other.append(fresh_mailbox, mail(1))
        other.append(fresh_mailbox, raw)
        other.append(fresh_mailbox, mail(3))
    del raw
    queue = RecordingQueue()
    client = mailbox_client(dovecot)
    try:
        async with database(pg_url) as sessions:
            tracemalloc.start()
            try:
                result = await poll(sessions, client, fresh_mailbox, queue)
                _current, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
            async with sessions() as session:
                rows = {r.uid: r for r in (await session.exec(select(Inbound))).all()}
    finally:
        client.close()
    big = rows[2]
    report(
        "17 40 MB message over IMAP",
        f"a {size}-byte message between two small ones (limit {limit})",
        stored=len(rows),
        too_large=result.too_large,
        kept_bytes=len(big.raw),
        peak_memory_bytes=peak,
        processing_jobs=len(queue.processes),
    )
    assert (result.fetched, result.stored, result.too_large) == (3, 2, 1)
    assert (big.verdict, big.status, big.size) == (TOO_LARGE, InboundStatus.PROCESSED, size)
    assert big.message_id == "<forty-megabytes@corp.test>"
    assert big.raw.startswith(b"From: Ana")
    assert b"slides.bin" not in big.raw  # the header block only
    assert "only the headers" in big.reason
    assert peak < limit // 2  # neither the 40 MB nor anything near the limit was held in memory
    assert sorted(queue.processes) == sorted(rows[uid].id or 0 for uid in (1, 3))  # not the large one
