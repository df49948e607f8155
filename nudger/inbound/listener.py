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

from nudger.inbound.accept import Position, store_raw_each
from nudger.inbound.route import accepts_recipient
from nudger.mail.message import Identity, Keys
from nudger.queue import Queue
from nudger.store.db import SessionMaker, transaction

log = logging.getLogger(__name__)

MAX_RECIPIENTS = 20
#: at most this many messages share one transaction (group commit)
GROUP_MAX = 100


class GroupStore:
    """Stores the messages of concurrent SMTP sessions together: one transaction (one commit) for
    whatever arrived while the previous one was being written, each caller waiting for the commit
    that holds its message. One writer at a time per listener, so its sessions never queue on the
    database's write lock.

    Should a group's transaction fail, its messages are stored again one per transaction, so that
    only a message that cannot be stored itself is refused (451) - or all of them, when the
    database is away.
    """

    def __init__(self, sessions: SessionMaker, now: Callable[[], datetime]) -> None:
        self._sessions = sessions
        self._now = now
        self._waiting: list[tuple[bytes, asyncio.Future[int | None]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def store(self, raw: bytes) -> int | None:
        """Store one message; its new row id, or None if it was a duplicate. Raises if not stored."""
        done: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        self._waiting.append((raw, done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write())
        return await asyncio.shield(done)  # a caller that goes away does not cancel the others' commit

    async def _write(self) -> None:
        while self._waiting:
            group, self._waiting = self._waiting[:GROUP_MAX], self._waiting[GROUP_MAX:]
            try:
                await self._write_group(group)
            finally:  # never leave a session waiting, whatever happened
                for _, done in group:
                    _settle(done, exc=RuntimeError("the message was not stored"))

    async def _write_group(self, group: list[tuple[bytes, asyncio.Future[int | None]]]) -> None:
        try:
            ids = await self._insert([raw for raw, _ in group])
        except Exception as exc:
            if len(group) == 1:
                _settle(group[0][1], exc=exc)
                return
            for raw, done in group:  # one by one: a failure stays with its own message
                try:
                    [inbound_id] = await self._insert([raw])
                except Exception as single:
                    _settle(done, exc=single)
                else:
                    _settle(done, inbound_id)
            return
        for (_, done), inbound_id in zip(group, ids, strict=True):
            _settle(done, inbound_id)

    async def _insert(self, raws: list[bytes]) -> list[int | None]:
        async with transaction(self._sessions) as db:
            return await store_raw_each(db, [(raw, Position("smtp")) for raw in raws], self._now())


def _settle(
    done: asyncio.Future[int | None], result: int | None = None, *, exc: BaseException | None = None
) -> None:
    if done.done():
        return
    if exc is not None:
        done.set_exception(exc)
    else:
        done.set_result(result)


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
        self._store = GroupStore(sessions, now)

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
            inbound_id = await self._store.store(raw)
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
