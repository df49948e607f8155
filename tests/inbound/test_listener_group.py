"""The listener's group commit (`GroupStore`): concurrent messages share a transaction, each caller
learns its own row (or None for a duplicate), and a failure stays with the message that caused it.
On SQLite and (slow) PostgreSQL, through the writer `group_writer` picks for each."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlmodel import select

from nudger.inbound import listener as listener_module
from nudger.inbound.accept import STORE_ROWS_PER_STATEMENT
from nudger.inbound.listener import ConnectionWriter, GroupStore, SqliteWriter, Writer, group_writer
from nudger.store.db import SessionMaker, make_engine, make_sessionmaker, migrate
from nudger.store.models import Inbound

NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


def raw(n: int) -> bytes:
    return (
        f"From: a{n}@corp.test\r\nMessage-ID: <m{n}@corp.test>\r\nSubject: {n}\r\n\r\nBody {n}\r\n".encode()
    )


async def stored(sessions: SessionMaker) -> dict[str, int]:
    async with sessions() as session:
        return {r.message_id: r.id or 0 for r in (await session.exec(select(Inbound))).all()}


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[SessionMaker]:
    """Sessions on a migrated database: a SQLite file, and (slow) PostgreSQL."""
    engine = make_engine(db_url)
    await migrate(engine)
    yield make_sessionmaker(engine)
    await engine.dispose()


@pytest.fixture
async def writer(db: SessionMaker) -> AsyncIterator[Writer]:
    write = group_writer(db, lambda: NOW)
    yield write
    await write.aclose()


def counting(writer: Writer, groups: list[int]) -> Callable[[list[bytes]], Awaitable[list[int | None]]]:
    """`writer`, noting the size of each group it is given."""

    async def write(raws: list[bytes]) -> list[int | None]:
        groups.append(len(raws))
        return await writer(raws)

    return write


async def test_each_database_gets_its_writer(db: SessionMaker, writer: Writer) -> None:
    sqlite = "sqlite" in str(db.kw["bind"].url)
    assert isinstance(writer, SqliteWriter if sqlite else ConnectionWriter)


async def test_concurrent_messages_are_stored_together_and_each_learns_its_row(
    db: SessionMaker, writer: Writer
) -> None:
    groups: list[int] = []
    store = GroupStore(counting(writer, groups))
    ids = await asyncio.gather(*(store.store(raw(n)) for n in range(5)), store.store(raw(0)))
    rows = await stored(db)
    assert ids[:5] == [rows[f"<m{n}@corp.test>"] for n in range(5)]
    assert ids[5] is None  # the same message twice in one group: stored once
    assert groups == [6]  # all arrived before the writer ran: one transaction
    assert await store.store(raw(3)) is None  # already stored


async def test_a_message_that_cannot_be_stored_fails_alone(db: SessionMaker, writer: Writer) -> None:
    async def picky(raws: list[bytes]) -> list[int | None]:
        if raw(2) in raws:
            raise ValueError("cannot store this one")
        return await writer(raws)

    store = GroupStore(picky)
    results = await asyncio.gather(*(store.store(raw(n)) for n in range(4)), return_exceptions=True)
    assert isinstance(results[2], ValueError)
    assert all(isinstance(r, int) for i, r in enumerate(results) if i != 2)
    assert sorted(await stored(db)) == ["<m0@corp.test>", "<m1@corp.test>", "<m3@corp.test>"]


async def test_more_than_a_group_goes_into_several_commits(db: SessionMaker, writer: Writer) -> None:
    groups: list[int] = []
    store = GroupStore(counting(writer, groups))
    ids = await asyncio.gather(*(store.store(raw(n)) for n in range(250)))
    assert sorted(groups, reverse=True)[:2] == [100, 100]
    assert sum(groups) == 250
    assert sorted(i for i in ids if i is not None) == sorted((await stored(db)).values())
    assert len(set(ids)) == 250


async def test_the_sqlite_writer_waits_for_the_write_lock_and_answers_after_its_commit(
    sessions: SessionMaker,
) -> None:
    writer = group_writer(sessions, lambda: NOW)
    assert isinstance(writer, SqliteWriter)
    store = GroupStore(writer)
    try:
        async with sessions() as other, other.begin():
            await other.exec(text("DELETE FROM inbound"))  # type: ignore[call-overload]
            await other.flush()  # the other writer now holds SQLite's write lock
            storing = asyncio.create_task(store.store(raw(1)))
            await asyncio.sleep(0.3)
            assert not storing.done()  # no answer while its commit cannot happen
        inbound_id = await storing
        assert (await stored(sessions)) == {"<m1@corp.test>": inbound_id}
    finally:
        await writer.aclose()


async def test_the_sqlite_writer_stores_the_row_the_async_engine_would(
    sessions: SessionMaker, tmp_path: object
) -> None:
    from nudger.inbound.accept import Position, store_raw_each

    message = (
        b"From: =?utf-8?q?Ren=C3=A9e?= <renee@corp.test>\r\nSubject: =?utf-8?q?R=C3=A9ponse?=\r\n"
        b"Message-ID: <same@corp.test>\r\n\r\nBonjour\r\n"
    )
    writer = group_writer(sessions, lambda: NOW)
    try:
        [by_thread] = await writer([message])
    finally:
        await writer.aclose()
    other = make_engine(f"sqlite+aiosqlite:///{tmp_path}/other.db")
    await migrate(other)
    async with make_sessionmaker(other)() as session, session.begin():
        [by_engine] = await store_raw_each(session, [(message, Position("smtp"))], NOW)
    async with sessions() as a, make_sessionmaker(other)() as b:
        ours = (await a.exec(select(Inbound).where(Inbound.id == by_thread))).one()
        theirs = (await b.exec(select(Inbound).where(Inbound.id == by_engine))).one()
    await other.dispose()
    assert ours.model_dump(exclude={"id"}) == theirs.model_dump(exclude={"id"})
    assert (ours.from_addr, ours.subject, ours.raw) == ("Renée <renee@corp.test>", "Réponse", message)


async def test_the_sqlite_writer_fails_when_the_database_is_away(tmp_path: object) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path}/db.sqlite")
    sessions = make_sessionmaker(engine)
    writer = group_writer(sessions, lambda: NOW)
    await engine.dispose()  # never migrated: no inbound table
    try:
        with pytest.raises(Exception, match="inbound"):
            await GroupStore(writer).store(raw(1))
    finally:
        await writer.aclose()


async def test_the_sqlite_wal_is_checkpointed_while_only_the_listener_writes(
    sessions: SessionMaker, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(listener_module, "CHECKPOINT_COMMITS", 20)
    writer = group_writer(sessions, lambda: NOW)
    store = GroupStore(writer)
    body = b"x" * 4000 + b"\r\n"
    try:
        for n in range(300):  # one message per commit
            await store.store(raw(n) + body)
    finally:
        await writer.aclose()
    wal = sqlite_url.split("///", 1)[1] + "-wal"
    assert len(await stored(sessions)) == 300
    # ~14 pages of WAL per commit here: 17 MB unchecked; reused from its start after each checkpoint
    assert await asyncio.to_thread(os.path.getsize, wal) < 3_000_000


@pytest.mark.parametrize("db_url", [pytest.param("postgres", marks=pytest.mark.slow)], indirect=True)
async def test_the_postgres_writer_replaces_a_connection_that_died_while_idle(
    db: SessionMaker, writer: Writer
) -> None:
    assert isinstance(writer, ConnectionWriter)
    [first] = await writer([raw(1)])

    async def kill_other_connections() -> None:  # as a server restart or an idle timeout would
        async with db() as admin:
            await admin.exec(
                text(  # type: ignore[call-overload]
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )

    await kill_other_connections()
    [second] = await writer([raw(2)])  # its kept connection is dead: stored at once on a new one
    await kill_other_connections()
    [third] = await writer([raw(3)])
    assert await stored(db) == {"<m1@corp.test>": first, "<m2@corp.test>": second, "<m3@corp.test>": third}
    with pytest.raises(ValueError, match="one statement"):  # a group is committed as one INSERT
        await writer([raw(n) for n in range(10, 10 + STORE_ROWS_PER_STATEMENT + 1)])
