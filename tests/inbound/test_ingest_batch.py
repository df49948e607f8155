"""Processing stored mail in batches (`process_inbound_many`): the same outcomes as one by one, one
message's failure confined to it, memory bounded by chunks, and a second run a no-op."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import pytest
from sqlmodel import select

from nudger.inbound import ingest as ingest_module
from nudger.inbound.accept import Position, store_raw, store_raw_many
from nudger.inbound.ingest import Outcome, process_inbound, process_inbound_many, process_received
from nudger.store.db import transaction
from nudger.store.models import Enrolment, Inbound, InboundStatus, Nudge, NudgeStatus, Sharing
from tests.inbound.test_ingest import NOW, World, email, nudge_address, replies


async def store(w: World, raws: Sequence[bytes]) -> list[int]:
    ids: list[int] = []
    async with transaction(w.sessions) as session:
        for raw in raws:
            inbound_id = await store_raw(session, raw, Position("smtp"), NOW)
            assert inbound_id is not None
            ids.append(inbound_id)
    return ids


async def rows(w: World) -> dict[int, Inbound]:
    async with w.sessions() as session:
        return {r.id or 0: r for r in (await session.exec(select(Inbound))).all()}


def mixed(w: World) -> list[bytes]:
    """An answer, a stranger using Ana's address, an unrouted note, an auto-reply and a help request."""
    to = nudge_address(w)
    return [
        email("I learned to write the ask first.\n\nOn Tue, Ana wrote:\n> What did you learn?", to=to),
        email("Not Ana here.", to=to, sender="Mallory <mallory@evil.test>"),
        email("Hello?", to="nobody@reply.corp.test", sender="Ben Ode <ben@corp.test>"),
        email("I am out of the office.", to=to, headers={"Auto-Submitted": "auto-replied"}),
        email("help", to=to, subject="Re: help"),
    ]


async def test_a_batch_ends_as_one_by_one_would(world: World) -> None:
    ids = await store(world, mixed(world))
    outcomes = await process_inbound_many(world.sessions, world.deps, world.queue, ids, NOW)
    verdicts = {i: o.verdict for i, o in outcomes.items() if o is not None}
    assert list(verdicts.values()) == ["reply", "quarantine", "unrouted", "auto_reply", "command"]
    stored = await rows(world)
    assert {i: stored[i].verdict for i in ids} == verdicts
    assert all(stored[i].status == InboundStatus.PROCESSED for i in ids)
    assert [r.text for r in await replies(world)] == ["I learned to write the ask first."]
    # the stranger's use is told to the owner, help is answered: two notices, enqueued once, at the end
    assert len(world.queue.sends) == 2


async def test_the_same_batch_one_at_a_time_gives_the_same_verdicts(world: World) -> None:
    ids = await store(world, mixed(world))
    one_by_one = [await process_inbound(world.sessions, world.deps, world.queue, i, NOW) for i in ids]
    assert [o.verdict for o in one_by_one if o is not None] == [
        "reply",
        "quarantine",
        "unrouted",
        "auto_reply",
        "command",
    ]


async def test_a_second_run_and_unknown_ids_change_nothing(world: World) -> None:
    ids = await store(world, mixed(world)[:1])
    first = await process_inbound_many(world.sessions, world.deps, world.queue, [*ids, *ids, 99_999], NOW)
    assert [o.verdict if o else None for o in first.values()] == ["reply", None]
    again = await process_inbound_many(world.sessions, world.deps, world.queue, ids, NOW)
    assert again == {ids[0]: None}
    assert len(await replies(world)) == 1


async def test_an_answer_and_then_private_in_one_batch_keep_the_answer_private(world: World) -> None:
    to = nudge_address(world)
    ids = await store(world, [email("My answer.", to=to), email("private", to=to, subject="Re: private")])
    outcomes = await process_inbound_many(world.sessions, world.deps, world.queue, ids, NOW)
    assert [o.verdict for o in outcomes.values() if o] == ["reply", "command"]
    [reply] = await replies(world)
    assert (reply.text, reply.sharing) == ("My answer.", Sharing.PRIVATE)


async def test_an_answer_and_then_skip_in_one_batch_end_as_one_by_one(world: World) -> None:
    # the answer's writes wait for the end of the batch; the skip must still come after them
    to = nudge_address(world)
    ids = await store(world, [email("My answer.", to=to), email("skip", to=to, subject="Re: skip")])
    outcomes = await process_inbound_many(world.sessions, world.deps, world.queue, ids, NOW)
    assert [o.verdict for o in outcomes.values() if o] == ["reply", "command"]
    assert [r.text for r in await replies(world)] == ["My answer."]
    async with world.sessions() as session:
        nudge = (await session.exec(select(Nudge))).one()
    assert nudge.status == NudgeStatus.SKIPPED


async def test_later_answers_keep_the_first_answers_time(world: World) -> None:
    to = nudge_address(world)
    first, second = await store(world, [email("First.", to=to), email("Second.", to=to)])
    await process_inbound_many(world.sessions, world.deps, world.queue, [first], NOW)
    later = NOW + timedelta(hours=1)
    ids = await store(world, [email("Third.", to=to)])
    await process_inbound_many(world.sessions, world.deps, world.queue, [second, *ids], later)
    async with world.sessions() as session:
        nudge = (await session.exec(select(Nudge))).one()
    assert (nudge.status, nudge.replied_at) == (NudgeStatus.REPLIED, NOW)
    assert [r.text for r in await replies(world)] == ["First.", "Second.", "Third."]


async def test_one_failing_message_is_marked_failed_and_the_others_are_processed(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = await store(world, mixed(world))
    poison = ids[2]
    decide = ingest_module._decide

    async def failing(session: object, deps: object, m: ingest_module._Message) -> Outcome:
        if m.inbound_id == poison:
            raise RuntimeError("a bug")
        return await decide(session, deps, m)  # type: ignore[arg-type]

    monkeypatch.setattr(ingest_module, "_decide", failing)
    outcomes = await process_inbound_many(world.sessions, world.deps, world.queue, ids, NOW)
    assert outcomes[poison] == Outcome("error", "RuntimeError")
    stored = await rows(world)
    assert (stored[poison].status, stored[poison].verdict) == (InboundStatus.FAILED, "error")
    others = [i for i in ids if i != poison]
    assert [stored[i].verdict for i in others] == ["reply", "quarantine", "auto_reply", "command"]
    assert len(await replies(world)) == 1  # the rolled-back batch left no duplicate behind
    async with world.sessions() as session:
        nudge = await session.get(Nudge, world.nudge)
    assert nudge is not None
    assert nudge.status == NudgeStatus.REPLIED


async def test_chunks_bound_the_raw_mail_loaded_at_once(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    raws = mixed(world)
    monkeypatch.setattr(ingest_module, "CHUNK_BYTES", max(len(r) for r in raws) + 1)  # one per chunk
    seen: list[int] = []
    read = ingest_module._read_chunk

    async def counting(session: object, deps: object, chunk: Sequence[int], now: object) -> object:
        seen.append(len(chunk))
        return await read(session, deps, chunk, now)  # type: ignore[arg-type]

    monkeypatch.setattr(ingest_module, "_read_chunk", counting)
    ids = await store(world, raws)
    outcomes = await process_inbound_many(world.sessions, world.deps, world.queue, ids, NOW)
    assert seen == [1] * len(raws)
    assert [o.verdict for o in outcomes.values() if o] == [
        "reply",
        "quarantine",
        "unrouted",
        "auto_reply",
        "command",
    ]


def test_chunks_split_by_bytes_and_rows() -> None:
    claimed = [(1, 10), (2, 10), (3, 10), (4, 100), (5, 1)]
    assert list(ingest_module._chunks(claimed, max_bytes=25, max_rows=10)) == [[1, 2], [3], [4], [5]]
    assert list(ingest_module._chunks(claimed, max_bytes=1000, max_rows=2)) == [[1, 2], [3, 4], [5]]
    assert list(ingest_module._chunks([], max_bytes=1, max_rows=1)) == []


async def test_storing_a_batch_skips_what_is_already_stored_or_repeated(world: World) -> None:

    to = nudge_address(world)
    first, second, third = (email(f"Answer {n}.", to=to, message_id=f"<a{n}@corp.test>") for n in (1, 2, 3))
    [kept] = await store(world, [second])
    where = Position("imap", "ld@imap/INBOX", 7, 1)
    async with transaction(world.sessions) as session:
        new = await store_raw_many(
            session,
            [(first, where), (second, Position("smtp")), (third, Position("smtp")), (first, where)],
            NOW,
        )
    stored = await rows(world)
    assert len(new) == 2
    assert new == sorted(new)
    assert [stored[i].message_id for i in new] == ["<a1@corp.test>", "<a3@corp.test>"]
    assert (stored[new[0]].mailbox, stored[new[0]].uidvalidity, stored[new[0]].uid) == ("ld@imap/INBOX", 7, 1)
    assert stored[new[0]].raw == first
    assert kept not in new
    async with transaction(world.sessions) as session:
        assert await store_raw_many(session, [(third, Position("smtp"))], NOW) == []
        assert await store_raw_many(session, [], NOW) == []


async def test_answers_in_a_batch_wake_a_dormant_person_once_committed(world: World) -> None:
    async with transaction(world.sessions) as session:
        enrolment = (await session.exec(select(Enrolment).where(Enrolment.person_id == world.ana))).one()
        enrolment.dormant_since, enrolment.silent_rounds = NOW, 3
    to = nudge_address(world)
    ids = await store(world, [email("First thought.", to=to), email("And a second one.", to=to)])
    outcomes = await process_inbound_many(world.sessions, world.deps, world.queue, ids, NOW)
    assert [o.verdict for o in outcomes.values() if o] == ["reply", "reply"]
    async with world.sessions() as session:
        enrolment = (await session.exec(select(Enrolment).where(Enrolment.person_id == world.ana))).one()
    assert (enrolment.dormant_since, enrolment.silent_rounds) == (None, 0)


async def test_processing_what_is_waiting_takes_the_oldest_received_rows(world: World) -> None:
    ids = await store(world, mixed(world))
    await process_inbound(world.sessions, world.deps, world.queue, ids[1], NOW)  # one already done
    first = await process_received(world.sessions, world.deps, world.queue, NOW, limit=2)
    assert list(first) == [ids[0], ids[2]]
    rest = await process_received(world.sessions, world.deps, world.queue, NOW)
    assert list(rest) == ids[3:]
    assert await process_received(world.sessions, world.deps, world.queue, NOW) == {}
    stored = await rows(world)
    assert all(stored[i].status == InboundStatus.PROCESSED for i in ids)


async def test_a_database_outage_hands_back_the_unfinished_claims(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy.exc import OperationalError

    from nudger.errors import StoreUnavailable

    raws = mixed(world)
    monkeypatch.setattr(ingest_module, "CHUNK_ROWS", 2)
    chunks = 0
    process = ingest_module._process_chunk

    async def failing_second(*args: object) -> object:
        nonlocal chunks
        chunks += 1
        if chunks == 2:
            raise OperationalError("UPDATE", {}, Exception("database is locked"))
        return await process(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(ingest_module, "_process_chunk", failing_second)
    ids = await store(world, raws)
    with pytest.raises(StoreUnavailable):
        await process_inbound_many(world.sessions, world.deps, world.queue, ids, NOW)
    stored = await rows(world)
    assert [stored[i].status for i in ids] == [InboundStatus.PROCESSED] * 2 + [InboundStatus.RECEIVED] * 3
    monkeypatch.setattr(ingest_module, "_process_chunk", process)
    again = await process_inbound_many(world.sessions, world.deps, world.queue, ids, NOW)  # the retry
    assert [o.verdict if o else None for o in again.values()] == [
        None,
        None,
        "unrouted",
        "auto_reply",
        "command",
    ]
