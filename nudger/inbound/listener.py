"""SMTP in: the aiosmtpd handler and server. 250 only after the raw message is committed.

Replies: 550 5.1.1 for recipients we don't serve (no backscatter), 552 over the size limit
(aiosmtpd enforces `data_size_limit`), 451 4.3.0 when the message could not be stored (the sending
MTA retries later), 250 once stored. Processing happens afterwards in a job.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from functools import partial
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from nudger.inbound.accept import Position, store_raw
from nudger.inbound.route import accepts_recipient
from nudger.mail.message import Identity, Keys
from nudger.queue import Queue
from nudger.store.db import SessionMaker, transaction

log = logging.getLogger(__name__)

MAX_RECIPIENTS = 20


class InboundHandler:
    """aiosmtpd handler: decide at RCPT, store at DATA."""

    def __init__(
        self,
        sessions: SessionMaker,
        identity: Identity,
        keys: Keys,
        queue: Queue,
        now: Callable[[], datetime],
    ) -> None:
        self._sessions = sessions
        self._identity = identity
        self._keys = keys
        self._queue = queue
        self._now = now

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if len(envelope.rcpt_tos) >= MAX_RECIPIENTS:
            return "452 4.5.3 Too many recipients"
        if not accepts_recipient(address, self._identity, self._keys):
            return "550 5.1.1 No such recipient here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        if not isinstance(raw, bytes):
            return "554 5.6.0 No message content"
        try:
            async with transaction(self._sessions) as db:
                inbound_id = await store_raw(db, raw, Position("smtp"), self._now())
        except Exception:
            log.exception("could not store an inbound message; answering 451")
            return "451 4.3.0 Could not store the message, please try again later"
        if inbound_id is not None:
            try:
                await self._queue.process_inbound([inbound_id])
            except Exception:
                log.warning("stored inbound=%s but could not enqueue it; the sweeper will", inbound_id)
        else:
            log.info("duplicate inbound message ignored")
        return "250 2.0.0 Stored"


def smtp_factory(handler: InboundHandler, *, max_bytes: int, hostname: str) -> Callable[[], SMTP]:
    return partial(
        SMTP,
        handler,
        data_size_limit=max_bytes,
        hostname=hostname,
        ident="nudger",
        decode_data=False,
        enable_SMTPUTF8=True,
        timeout=60,
    )


async def start_listener(
    handler: InboundHandler, host: str, port: int, *, max_bytes: int, hostname: str = "nudger"
) -> asyncio.Server:
    """Start serving SMTP on host:port in the running loop; the caller closes the server."""
    loop = asyncio.get_running_loop()
    factory: Callable[[], Any] = smtp_factory(handler, max_bytes=max_bytes, hostname=hostname)
    return await loop.create_server(factory, host=host, port=port)
