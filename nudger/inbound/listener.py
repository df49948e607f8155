"""SMTP in: the aiosmtpd handler and server. 250 only after the raw message is committed.

Replies: 550 5.1.1 for recipients we don't serve (no backscatter), 552 over the size limit
(aiosmtpd enforces `data_size_limit`), 451 4.3.0 when the message could not be stored (the sending
MTA retries later), 250 once stored. Processing happens afterwards in a job.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from functools import partial
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import URL, Connection, Engine, create_engine, event
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from nudger.inbound.accept import (
    STORE_ROWS_PER_STATEMENT,
    Position,
    store_raw_each,
    store_raw_each_sync,
    store_raw_on,
)
from nudger.inbound.route import accepts_recipient
from nudger.mail.message import Identity, Keys
from nudger.queue import Queue
from nudger.store.db import SessionMaker, sqlite_pragmas, transaction

log = logging.getLogger(__name__)

MAX_RECIPIENTS = 20
#: at most this many messages share one transaction (group commit)
GROUP_MAX = 100
SMTP_POSITION = Position("smtp")


#: one group's writer: the new row id of each message (None for a duplicate); raises if not committed
Write = Callable[[list[bytes]], Awaitable[list[int | None]]]


class GroupStore:
    """Stores the messages of concurrent SMTP sessions together: one transaction (one commit) for
    whatever arrived while the previous one was being written, each caller waiting for the commit
    that holds its message. One writer at a time per listener, so its sessions never queue on the
    database's write lock.

    Should a group's transaction fail, its messages are stored again one per transaction, so that
    only a message that cannot be stored itself is refused (451) - or all of them, when the
    database is away.
    """

    def __init__(self, write: Write) -> None:
        self._insert = write
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


class SessionWriter:
    """SQLite in memory (one connection, shared by the engine's every session): a group in a
    transaction of the application's sessions, as any other unit of work."""

    def __init__(self, sessions: SessionMaker, now: Callable[[], datetime]) -> None:
        self._sessions = sessions
        self._now = now

    async def __call__(self, raws: list[bytes]) -> list[int | None]:
        async with transaction(self._sessions) as db:
            return await store_raw_each(db, _at_smtp(raws), self._now())

    async def aclose(self) -> None:
        pass


class ConnectionWriter:
    """A server database (PostgreSQL): a group in one INSERT statement, in autocommit, on a
    connection the listener keeps (checked out of the engine's pool once).

    A group (at most GROUP_MAX messages) is one INSERT … RETURNING, which PostgreSQL commits whole or
    not at all, so BEGIN and COMMIT would only add two round trips. Measured against a session and
    transaction per group (groups of four): 0.17 → 0.11 ms of CPU per message, 1.2 → 0.85 ms a group;
    the whole listener went from 1.1 to 0.6–0.9 ms of CPU per message. Should anything fail, the
    connection is dropped (a database that went away leaves it broken) and the next group takes a new
    one; a kept connection found dead (it died while idle) is replaced at once and the group tried
    again on the new one. `__call__` returns only once the group is committed.
    """

    def __init__(self, engine: AsyncEngine, now: Callable[[], datetime]) -> None:
        self._engine = engine
        self._now = now
        self._connection: AsyncConnection | None = None

    async def __call__(self, raws: list[bytes]) -> list[int | None]:
        if len(raws) > STORE_ROWS_PER_STATEMENT:
            raise ValueError(f"a group is one statement: at most {STORE_ROWS_PER_STATEMENT} messages")
        kept = self._connection is not None
        try:
            return await self._insert(raws)
        except DBAPIError as exc:
            if not (kept and exc.connection_invalidated):
                raise
        # the kept connection had died while idle (a server restart, an idle timeout on the way): the
        # group once more on a new one rather than a 451 (had the first try committed before the link
        # went, its rows are there: the INSERT skips them, and the sweeper enqueues them)
        return await self._insert(raws)

    async def _insert(self, raws: list[bytes]) -> list[int | None]:
        if self._connection is None:
            connection = await self._engine.connect()
            self._connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
        connection = self._connection
        try:
            return await store_raw_on(connection, _at_smtp(raws), self._now())
        except BaseException:
            self._connection = None
            with contextlib.suppress(Exception):
                await connection.invalidate()  # not back into the pool: it may be broken
            raise

    async def aclose(self) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            await connection.close()


class SqliteWriter:
    """SQLite: a group's INSERT and COMMIT run right on the event loop, on a synchronous connection
    to the same database file (the same statement and rows as the async engine's), which never
    waits: should another process hold SQLite's write lock (or anything else go wrong there), the
    group goes to a thread whose connection waits for the lock as the async engine's do.

    Through aiosqlite the same transaction is about eight round trips between the event loop and
    aiosqlite's thread (checkout, cursor, execute, fetch, close, commit, reset), each a wake-up of
    both and a wait for the GIL; that, not SQLite, was most of the listener's CPU per message and
    of each session's wait for its commit. In WAL mode with synchronous=NORMAL a commit does not
    sync to disk; what does (checkpointing the WAL into the database) is done by the thread, while
    the next group waits, instead of by whichever commit crosses SQLite's threshold on the loop.
    `__call__` returns only once the group is committed.
    """

    def __init__(self, url: URL, now: Callable[[], datetime]) -> None:
        url = url.set(drivername="sqlite")
        self._inline = create_engine(url, connect_args={"timeout": 0})
        event.listen(self._inline, "connect", partial(sqlite_pragmas, busy_ms=0, autocheckpoint=0))
        self._waiting = create_engine(url, connect_args={"timeout": 30})
        event.listen(self._waiting, "connect", partial(sqlite_pragmas, busy_ms=30_000, autocheckpoint=1000))
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nudger-smtp-store")
        self._now = now
        self._commits, self._bytes = 0, 0  # since the last checkpoint
        self._checkpoint: asyncio.Future[None] | None = None
        self._connection: Connection | None = None  # the loop's own, kept (its page cache too)

    async def __call__(self, raws: list[bytes]) -> list[int | None]:
        loop = asyncio.get_running_loop()
        if self._checkpoint is not None:  # no commit meanwhile, so that the WAL starts over after it
            await self._checkpoint
            self._checkpoint = None
        now = self._now()
        try:
            ids = self._write_here(raws, now)
        except OperationalError:  # locked by another writer (or worse): wait in the thread
            ids = await loop.run_in_executor(self._thread, _write_waiting, self._waiting, raws, now)
        self._commits += 1
        self._bytes += sum(map(len, raws))
        if self._commits >= CHECKPOINT_COMMITS or self._bytes >= CHECKPOINT_BYTES:
            self._commits, self._bytes = 0, 0
            self._checkpoint = loop.run_in_executor(self._thread, _checkpoint, self._waiting)
        return ids

    def _write_here(self, raws: list[bytes], now: datetime) -> list[int | None]:
        if self._connection is None:
            self._connection = self._inline.connect()
        try:
            with self._connection.begin():
                return store_raw_each_sync(self._connection, _at_smtp(raws), now)
        except Exception:
            self._connection.close()  # whatever went wrong stays with this connection: a new one next
            self._connection = None
            raise

    async def aclose(self) -> None:
        # a group or checkpoint under way in the thread is finished first
        await asyncio.to_thread(self._thread.shutdown, wait=True)
        if self._connection is not None:
            self._connection.close()
        self._inline.dispose()
        self._waiting.dispose()


#: the listener checkpoints the WAL after this many commits or stored bytes, whichever comes first
#: (SQLite's own threshold is 1 000 pages, 4 MB of WAL; a commit of one message writes ~10 pages)
CHECKPOINT_COMMITS = 100
CHECKPOINT_BYTES = 4 * 1024 * 1024


def _at_smtp(raws: list[bytes]) -> list[tuple[bytes, Position]]:
    return [(raw, SMTP_POSITION) for raw in raws]


def _write_waiting(engine: Engine, raws: list[bytes], now: datetime) -> list[int | None]:
    """A group on the thread's connection, which waits for another writer's lock."""
    with engine.begin() as connection:
        return store_raw_each_sync(connection, _at_smtp(raws), now)


def _checkpoint(engine: Engine) -> None:
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
    except Exception:  # the next one will do; any other connection's commit may checkpoint too
        log.warning("could not checkpoint the SQLite WAL", exc_info=True)


Writer = ConnectionWriter | SqliteWriter | SessionWriter


def group_writer(sessions: SessionMaker, now: Callable[[], datetime]) -> Writer:
    """The writer for the sessions' database: SQLite files get `SqliteWriter`, server databases
    (PostgreSQL) a `ConnectionWriter`, SQLite in memory (private to the engine) a `SessionWriter`."""
    bind = sessions.kw.get("bind")
    if not isinstance(bind, AsyncEngine) or bind.url.database in (None, "", ":memory:"):
        return SessionWriter(sessions, now)
    if bind.dialect.name == "sqlite":
        return SqliteWriter(bind.url, now)
    return ConnectionWriter(bind, now)


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
        self._writer = group_writer(sessions, now)
        self._store = GroupStore(self._writer)

    async def aclose(self) -> None:
        """Release the store's own connection (and thread): after the server is closed."""
        await self._writer.aclose()

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


_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_DOT_ATOM = rf"{_ATEXT}(?:\.{_ATEXT})*"
_PLAIN_PATH = re.compile(rf"<({_DOT_ATOM}@{_DOT_ATOM})>(.*)", re.DOTALL)


class ListenerSMTP(SMTP):
    """aiosmtpd's SMTP with a fast path for the usual MAIL FROM / RCPT TO path, `<local@domain>`
    with plain dot-atoms: the answer aiosmtpd's `_getaddr` gives, without its RFC 5322 parser
    (two parses per message, about a tenth of the listener's CPU). Anything else goes to aiosmtpd."""

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        m = _PLAIN_PATH.fullmatch(arg)
        if m is None or self.local_part_limit:
            return super()._getaddr(arg)
        address, rest = m.groups()
        if rest[:1] in (" ", "\t"):  # folding white space after the path, as the parser skips it
            rest = rest.lstrip()
        if rest[:1] == "(":  # a comment: the parser's business
            return super()._getaddr(arg)
        return address, rest


def smtp_factory(handler: InboundHandler, *, max_bytes: int, hostname: str) -> Callable[[], SMTP]:
    return partial(
        ListenerSMTP,
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
