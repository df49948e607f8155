"""The listener's group commit (`GroupStore`): concurrent messages share a transaction, each caller
learns its own row (or None for a duplicate), and a failure stays with the message that caused it."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest
from sqlmodel import select

from nudger.inbound import listener as listener_module
from nudger.inbound.accept import Position, store_raw_each
from nudger.inbound.listener import GroupStore
from nudger.store.db import SessionMaker
from nudger.store.models import Inbound

NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


def raw(n: int) -> bytes:
    return (
        f"From: a{n}@corp.test\r\nMessage-ID: <m{n}@corp.test>\r\nSubject: {n}\r\n\r\nBody {n}\r\n".encode()
    )


async def stored(sessions: SessionMaker) -> dict[str, int]:
    async with sessions() as session:
        return {r.message_id: r.id or 0 for r in (await session.exec(select(Inbound))).all()}


async def test_concurrent_messages_are_stored_together_and_each_learns_its_row(
    sessions: SessionMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    groups: list[int] = []
    each = store_raw_each

    async def counting(db: object, messages: Sequence[tuple[bytes, Position]], now: datetime) -> object:
        groups.append(len(messages))
        return await each(db, messages, now)  # type: ignore[arg-type]

    monkeypatch.setattr(listener_module, "store_raw_each", counting)
    store = GroupStore(sessions, lambda: NOW)
    ids = await asyncio.gather(*(store.store(raw(n)) for n in range(5)), store.store(raw(0)))
    rows = await stored(sessions)
    assert ids[:5] == [rows[f"<m{n}@corp.test>"] for n in range(5)]
    assert ids[5] is None  # the same message twice in one group: stored once
    assert groups == [6]  # all arrived before the writer ran: one transaction
    assert await store.store(raw(3)) is None  # already stored


async def test_a_message_that_cannot_be_stored_fails_alone(
    sessions: SessionMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    each = store_raw_each

    async def picky(db: object, messages: Sequence[tuple[bytes, Position]], now: datetime) -> object:
        if any(m == raw(2) for m, _ in messages):
            raise ValueError("cannot store this one")
        return await each(db, messages, now)  # type: ignore[arg-type]

    monkeypatch.setattr(listener_module, "store_raw_each", picky)
    store = GroupStore(sessions, lambda: NOW)
    results = await asyncio.gather(*(store.store(raw(n)) for n in range(4)), return_exceptions=True)
    assert isinstance(results[2], ValueError)
    assert all(isinstance(r, int) for i, r in enumerate(results) if i != 2)
    assert sorted(await stored(sessions)) == ["<m0@corp.test>", "<m1@corp.test>", "<m3@corp.test>"]
