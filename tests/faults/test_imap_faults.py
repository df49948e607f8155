"""IMAP on a bad day: Dovecot restarted under an idling poller, a mailbox recreated (new UIDVALIDITY),
a message deleted between SEARCH and FETCH. Counted from the database: stored, duplicated, lost."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlmodel import select

from nudger.config import Secret, TlsMode
from nudger.inbound.imap import ImapAccount, ImapMailbox
from nudger.inbound.poll import PollResult, poll_mailbox
from nudger.queue import RecordingQueue
from nudger.store.db import SessionMaker, make_engine, make_sessionmaker, migrate
from nudger.store.models import ImapCursor, Inbound
from tests.faults.conftest import Children, RedisProcess, eventually, fault_settings, report, write_config
from tests.services import (
    LD_USER,
    DovecotServer,
    _start_dovecot,
    dovecot_server,
    imap_append,
    imap_connect,
    require_dovecot,
    stop_dovecot,
)

pytestmark = pytest.mark.slow

NOW = datetime(2026, 12, 1, 14, 0, tzinfo=UTC)
ACCOUNT = f"{LD_USER}@imap"


def mail(n: int) -> bytes:
    return (
        f"From: Person {n} <p{n}@corp.test>\r\nTo: {LD_USER}\r\nSubject: answer {n}\r\n"
        f"Message-ID: <imap-fault-{n}@corp.test>\r\nDate: Tue, 01 Dec 2026 12:00:00 +0000\r\n\r\n"
        f"Answer {n}.\r\n"
    ).encode()


@contextlib.asynccontextmanager
async def database(url: str) -> AsyncIterator[SessionMaker]:
    engine = make_engine(url)
    await migrate(engine)
    try:
        yield make_sessionmaker(engine)
    finally:
        await engine.dispose()


async def stored(sessions: SessionMaker) -> list[Inbound]:
    async with sessions() as session:
        return list((await session.exec(select(Inbound))).all())


def instance_processes(server: DovecotServer) -> list[int]:
    """Processes of this Dovecot instance (their titles carry its instance_name), master excluded."""
    tag = f"dovecot-nudger-test-{server.dir.name}/".encode()
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            with contextlib.suppress(OSError):
                if tag in (proc / "cmdline").read_bytes():
                    found.append(int(proc.name))
    return found


def restart_dovecot(binary: str, server: DovecotServer) -> int:
    """Stop the server and every process of it, as a restart with shutdown_clients does (here the imap
    processes outlive `dovecot stop`); start it again. Returns how many processes were killed."""
    stop_dovecot(binary, server.dir)
    killed = instance_processes(server)
    for pid in killed:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    assert _start_dovecot(binary, server), f"dovecot did not come back: {server.log.read_text()[-2000:]}"
    return len(killed)


def mailbox_client(server: DovecotServer) -> ImapMailbox:
    account = ImapAccount(server.host, server.port, TlsMode.NONE, LD_USER, Secret(server.users[LD_USER]), 10)
    client = ImapMailbox(account)
    client.connect()
    return client


async def poll(
    sessions: SessionMaker, client: ImapMailbox, mailbox: str, queue: RecordingQueue
) -> PollResult:
    return await poll_mailbox(sessions, client, ACCOUNT, mailbox, queue, lambda: NOW, batch_size=50)


async def test_dovecot_restarted_while_the_poller_idles(
    pg_url: str, redis_proc: RedisProcess, children: Children, tmp_path: Path
) -> None:
    binary = require_dovecot()
    with dovecot_server(binary) as dc:
        settings = fault_settings(
            pg_url,
            redis_proc.url,
            25,
            inbound={
                "imap": {
                    "host": dc.host,
                    "port": dc.port,
                    "tls": "none",
                    "username": LD_USER,
                    "mailboxes": ["INBOX"],
                }
            },
        )
        config = write_config(tmp_path, "poller", settings, imap_password=dc.users[LD_USER])
        async with database(pg_url) as sessions:
            for n in (1, 2):
                imap_append(dc, LD_USER, mail(n))
            poller = children.start("poller", str(config), name="poller")

            def idles() -> int:
                return poller.log.read_text(errors="replace").count("waiting for new mail")

            async def rows(count: int) -> bool:
                assert poller.alive, poller.output()
                return len(await stored(sessions)) >= count

            async def idling(more_than: int) -> bool:
                assert poller.alive, poller.output()
                return idles() > more_than

            assert await eventually(lambda: rows(2), 60), poller.output()
            assert await eventually(lambda: idling(0), 30), poller.output()
            before = idles()
            imap_append(dc, LD_USER, mail(3))  # arrives while it idles: IDLE wakes it up
            assert await eventually(lambda: rows(3), 30), poller.output()
            assert await eventually(lambda: idling(before), 30), poller.output()

            imap_append(dc, LD_USER, mail(4))  # may or may not be fetched before the server goes
            killed = restart_dovecot(binary, dc)
            imap_append(dc, LD_USER, mail(5))
            assert await eventually(lambda: rows(5), 90), poller.output()
            await asyncio.sleep(0.5)  # a little longer: anything stored twice would show now
            final = await stored(sessions)
            async with sessions() as session:
                cursor = (await session.exec(select(ImapCursor))).one()
        poller.stop()
        stop_dovecot(binary, dc.dir)
        for pid in instance_processes(dc):  # what `dovecot stop` leaves behind
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    log = poller.log.read_text(errors="replace")
    by_id = Counter(r.message_id for r in final)
    report(
        "55 Dovecot restarted during IDLE",
        f"Dovecot stopped while the poller idled ({killed} of its processes killed, the poller's "
        "connection with them), then started again; "
        "mail appended before, during IDLE, just before the stop and after the restart",
        stored=len(final),
        duplicated=len(final) - len(by_id),
        lost=5 - len(by_id),
        reconnect_attempts=log.count("IMAP trouble"),
        reconnected=log.count("IMAP reconnected"),
        cursor_last_uid=cursor.last_uid,
    )
    assert sorted(by_id) == sorted(f"<imap-fault-{n}@corp.test>" for n in range(1, 6))
    assert len(final) == 5
    assert cursor.last_uid == 5
    assert log.count("IMAP trouble") >= 1
    assert log.count("IMAP reconnected") == 1


async def test_uidvalidity_change_resyncs_without_duplicates(
    pg_url: str, dovecot: DovecotServer, fresh_mailbox: str
) -> None:
    for n in (1, 2, 3):
        imap_append(dovecot, LD_USER, mail(n), mailbox=fresh_mailbox)
    queue = RecordingQueue()
    client = mailbox_client(dovecot)
    try:
        async with database(pg_url) as sessions:
            first = await poll(sessions, client, fresh_mailbox, queue)
            await asyncio.to_thread(client.select, "INBOX")
            with imap_connect(dovecot) as other:  # the mailbox is deleted and created again
                other.delete_folder(fresh_mailbox)
                other.create_folder(fresh_mailbox)
            for n in (1, 2, 3, 4):  # the same three again (restored from a backup, say) and a new one
                imap_append(dovecot, LD_USER, mail(n), mailbox=fresh_mailbox)
            second = await poll(sessions, client, fresh_mailbox, queue)
            rows = await stored(sessions)
    finally:
        client.close()
    by_id = Counter(r.message_id for r in rows)
    report(
        "54 UIDVALIDITY changed",
        "mailbox deleted and recreated (new UIDVALIDITY) with the 3 stored messages and 1 new one",
        resynced=second.resynced,
        fetched_again=second.fetched,
        stored=len(rows),
        duplicated=len(rows) - len(by_id),
        lost=4 - len(by_id),
        processing_jobs=len(queue.processes),
    )
    assert (first.stored, first.resynced) == (3, False)
    assert (second.resynced, second.fetched, second.stored) == (True, 4, 1)
    assert len(rows) == len(by_id) == 4
    assert len(queue.processes) == 4  # each message is processed once


async def test_a_message_deleted_between_search_and_fetch_is_skipped(
    pg_url: str, dovecot: DovecotServer, fresh_mailbox: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for n in range(1, 6):
        imap_append(dovecot, LD_USER, mail(n), mailbox=fresh_mailbox)

    def expunge(uid: int) -> None:
        with imap_connect(dovecot) as other:  # a person deletes it in their mail client
            other.select_folder(fresh_mailbox)
            other.delete_messages([uid])
            other.uid_expunge([uid])

    search, sizes = ImapMailbox.uids_after, ImapMailbox.sizes

    def search_then_delete(self: ImapMailbox, last_uid: int) -> list[int]:
        found = search(self, last_uid)
        expunge(2)  # after SEARCH, before the size FETCH
        return found

    def sizes_then_delete(self: ImapMailbox, uids: list[int]) -> dict[int, int]:
        found = sizes(self, uids)
        expunge(4)  # after the size FETCH, before the body FETCH
        return found

    monkeypatch.setattr(ImapMailbox, "uids_after", search_then_delete)
    monkeypatch.setattr(ImapMailbox, "sizes", sizes_then_delete)
    queue = RecordingQueue()
    client = mailbox_client(dovecot)
    try:
        async with database(pg_url) as sessions:
            result = await poll(sessions, client, fresh_mailbox, queue)
            monkeypatch.undo()
            again = await poll(sessions, client, fresh_mailbox, queue)
            rows = await stored(sessions)
            async with sessions() as session:
                cursor = (await session.exec(select(ImapCursor))).one()
    finally:
        client.close()
    report(
        "56 message deleted between SEARCH and FETCH",
        "UID 2 expunged after SEARCH, UID 4 after the RFC822.SIZE fetch (of UIDs 1-5)",
        stored=len(rows),
        skipped=result.vanished,
        errors=0,
        cursor_last_uid=cursor.last_uid,
        fetched_on_next_poll=again.fetched,
    )
    assert sorted(r.uid or 0 for r in rows) == [1, 3, 5]
    assert (result.stored, result.vanished) == (3, 2)
    assert cursor.last_uid == 5
    assert (again.fetched, again.stored) == (0, 0)
