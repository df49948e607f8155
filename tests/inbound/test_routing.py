"""Routing security, notices and holds (RELIABILITY.md §2 and §7), with their side effects."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from email import message_from_bytes

import pytest
from sqlmodel import col, select

from nudger.inbound.inbox import list_messages, requeue
from nudger.inbound.ingest import process_inbound
from nudger.mail.tokens import TokenKind
from nudger.store.models import Audit, Enrolment, Inbound, NoticeLog, Outbox, Person, PersonStatus, Reply
from tests.fixtures import identity, keys
from tests.inbound.test_ingest import NOW, World, email, ingest, nudge_address, person, replies

AUTHSERV = "mx.corp.test"


async def outbox(w: World) -> list[Outbox]:
    async with w.sessions() as session:
        return list((await session.exec(select(Outbox).order_by(col(Outbox.id)))).all())


def notice_text(row: Outbox) -> str:
    msg = message_from_bytes(row.raw)
    part = next(p for p in msg.walk() if p.get_content_type() == "text/plain")
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode()


@pytest.mark.parametrize(
    ("body", "reason", "words"),
    [
        ("stop", "stop", "You've left"),
        ("pause until 4 January 2027", "pause", "paused until Monday 04 January 2027"),
        ("skip", "skip", "skipped this question"),
        ("help", "help", "pause for 2 weeks"),
        ("hilfe", "help", "resume"),
    ],
)
async def test_commands_are_confirmed_by_a_short_automatic_notice(
    world: World, body: str, reason: str, words: str
) -> None:
    row = await ingest(world, email(body, to=nudge_address(world)))
    assert row.verdict == "command"
    [notice] = await outbox(world)
    assert (notice.kind, notice.to_addr) == ("notice", "ana@corp.test")
    msg = message_from_bytes(notice.raw)
    assert msg["Auto-Submitted"] == "auto-replied"
    assert words in notice_text(notice)
    assert len(world.queue.sends) == 1


async def test_at_most_one_notice_per_address_per_reason_per_day(world: World) -> None:
    for n in range(3):
        await ingest(world, email("help", to=nudge_address(world), message_id=f"<help-{n}@mail.corp.test>"))
    assert len(await outbox(world)) == 1
    async with world.sessions() as session:
        logged = (await session.exec(select(NoticeLog))).all()
    assert [(n.address, n.reason, n.day) for n in logged] == [
        ("ana@corp.test", "help", NOW.date().isoformat())
    ]


async def test_someone_else_using_a_reply_address_is_quarantined_and_the_owner_told(world: World) -> None:
    row = await ingest(
        world, email("Forwarded and answered.", to=nudge_address(world), sender="boss@corp.test")
    )
    assert row.verdict == "quarantine"
    assert await replies(world) == []
    [notice] = await outbox(world)
    assert notice.to_addr == "ana@corp.test"  # the owner, never the stranger
    assert "boss@corp.test" in notice_text(notice)


async def test_an_empty_reply_is_not_an_answer_and_gets_help(world: World) -> None:
    row = await ingest(
        world,
        email(
            "\n\nOn Tue, 1 Dec 2026 at 10:00, nudger <nudger@corp.test> wrote:\n"
            "> What did you learn this week?",
            to=nudge_address(world),
        ),
    )
    assert row.verdict == "empty"
    assert await replies(world) == []
    [notice] = await outbox(world)
    assert "couldn't find an answer" in notice_text(notice)


async def test_an_expired_reply_address_gets_a_polite_closed_notice(world: World) -> None:
    expired = keys().token(TokenKind.NUDGE, world.nudge, NOW.date() - timedelta(days=1))
    row = await ingest(world, email("Late, sorry!", to=identity().reply_address(expired)))
    assert row.verdict == "closed"
    assert await replies(world) == []
    [notice] = await outbox(world)
    assert "has closed" in notice_text(notice)


async def test_machines_never_get_notices(world: World) -> None:
    raw = email("help", to=nudge_address(world), headers={"Auto-Submitted": "auto-replied"})
    assert (await ingest(world, raw)).verdict == "auto_reply"
    raw = email(
        "help", to=nudge_address(world), headers={"List-Id": "<team.lists.corp.test>"}, message_id="<l@x>"
    )
    assert (await ingest(world, raw)).verdict == "list"
    assert await outbox(world) == []


def arf(to: str) -> bytes:
    return (
        "From: staff@feedback.corp.test\r\nTo: " + to + "\r\nSubject: complaint\r\nMessage-ID: <arf-1@x>\r\n"
        "Date: Wed, 02 Dec 2026 09:00:00 +0000\r\nMIME-Version: 1.0\r\n"
        "Content-Type: multipart/report; report-type=feedback-report; boundary=F\r\n\r\n"
        "--F\r\nContent-Type: text/plain\r\n\r\nThis is an abuse report.\r\n"
        "--F\r\nContent-Type: message/feedback-report\r\n\r\n"
        "Feedback-Type: abuse\r\nUser-Agent: test/1\r\nVersion: 1\r\n"
        "--F\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        "From: nudger@corp.test\r\nTo: ana@corp.test\r\n\r\n--F--\r\n"
    ).encode()


async def test_a_complaint_suppresses_at_once_and_is_never_answered(world: World) -> None:
    verp = identity().bounce_address(keys().token(TokenKind.BOUNCE, world.ana))
    row = await ingest(world, arf(verp))
    assert (row.verdict, row.person_id) == ("complaint", world.ana)
    assert (await person(world, world.ana)).status == PersonStatus.SUPPRESSED
    async with world.sessions() as session:
        actions = (await session.exec(select(Audit.action).where(Audit.person_id == world.ana))).all()
    assert "suppressed" in actions
    assert await outbox(world) == []


def with_auth(header: str) -> dict[str, str]:
    return {"Authentication-Results": header}


async def test_dmarc_fail_from_our_boundary_is_held_then_can_be_released(world: World) -> None:
    world.deps = replace(world.deps, authserv_id=AUTHSERV)
    raw = email("My answer.", to=nudge_address(world), headers=with_auth(f"{AUTHSERV}; spf=fail; dmarc=fail"))
    row = await ingest(world, raw)
    assert row.verdict == "held"
    assert await replies(world) == []
    held = await list_messages(world.sessions)
    assert [h.id for h in held] == [row.id]
    assert await requeue(world.sessions, world.queue, row.id or 0, release=True) == ""
    await process_inbound(world.sessions, world.deps, world.queue, row.id or 0, NOW)
    assert [r.text for r in await replies(world)] == ["My answer."]
    assert (
        await requeue(world.sessions, world.queue, row.id or 0, release=False)
        == "already processed as a reply"
    )


async def test_forged_authentication_results_from_elsewhere_are_ignored(world: World) -> None:
    world.deps = replace(world.deps, authserv_id=AUTHSERV)
    raw = email("My answer.", to=nudge_address(world), headers=with_auth("mx.evil.test; dmarc=fail"))
    assert (await ingest(world, raw)).verdict == "reply"


async def test_token_without_plus_and_via_delivered_to_still_routes(world: World) -> None:
    token = keys().token(TokenKind.NUDGE, world.nudge)
    raw = email("Plus sign eaten by the MTA.", to=f"reply{token}@reply.corp.test")
    assert (await ingest(world, raw)).verdict == "reply"
    raw = email(
        "Rewritten To.",
        to="learning@corp.test",
        headers={"Delivered-To": nudge_address(world)},
        message_id="<d@x>",
    )
    assert (await ingest(world, raw)).verdict == "reply"


async def test_cc_to_other_staff_adds_nobody(world: World) -> None:
    raw = email(
        "Answer with colleagues in Cc.", to=nudge_address(world), headers={"Cc": "ben@corp.test, x@corp.test"}
    )
    row = await ingest(world, raw)
    assert row.verdict == "reply"
    assert await outbox(world) == []


async def test_inbox_list_shows_held_messages_with_reasons(world: World) -> None:
    await ingest(world, email("Who am I?", to="someone@corp.test"))
    await ingest(world, email("Real answer.", to=nudge_address(world), message_id="<ok@x>"))
    held = await list_messages(world.sessions)
    assert [(h.verdict, h.from_addr) for h in held] == [("unrouted", "Ana Silva <ana@corp.test>")]
    assert held[0].reason
    everything = await list_messages(world.sessions, held_only=False)
    assert len(everything) == 2
    async with world.sessions() as session:
        assert len((await session.exec(select(Inbound))).all()) == 2


async def test_private_after_an_answer_keeps_that_answer_from_peers(world: World) -> None:
    await ingest(world, email("Something I'd rather not share, actually.", to=nudge_address(world)))
    await ingest(world, email("private", to=nudge_address(world), message_id="<private@x>"))
    [reply] = await replies(world)
    assert reply.sharing == "private"


async def test_resume_never_lifts_a_suppression(world: World) -> None:
    async with world.sessions() as session:
        ana = await session.get(Person, world.ana)
        assert ana is not None
        ana.status = PersonStatus.SUPPRESSED
        session.add(ana)
        await session.commit()
    row = await ingest(world, email("resume", to=nudge_address(world)))
    assert "refused" in row.reason
    assert (await person(world, world.ana)).status == PersonStatus.SUPPRESSED


async def test_resume_after_stop_rejoins_the_programme(world: World) -> None:
    await ingest(world, email("stop", to=nudge_address(world)))
    await ingest(world, email("resume", to=nudge_address(world), message_id="<resume@x>"))
    assert (await person(world, world.ana)).status == PersonStatus.ACTIVE
    async with world.sessions() as session:
        enrolment = (await session.exec(select(Enrolment).where(Enrolment.person_id == world.ana))).one()
    assert enrolment.left_at is None


async def test_any_answer_wakes_a_dormant_person(world: World) -> None:
    async with world.sessions() as session:
        enrolment = (await session.exec(select(Enrolment).where(Enrolment.person_id == world.ana))).one()
        enrolment.dormant_since, enrolment.silent_rounds = NOW, 3
        session.add(enrolment)
        await session.commit()
    assert (await ingest(world, email("Yes, still here!", to=nudge_address(world)))).verdict == "reply"
    async with world.sessions() as session:
        enrolment = (await session.exec(select(Enrolment).where(Enrolment.person_id == world.ana))).one()
    assert (enrolment.dormant_since, enrolment.silent_rounds) == (None, 0)


async def test_quote_ok_records_consent_to_be_quoted_and_leaves_the_answer_clean(world: World) -> None:
    await ingest(
        world, email("Pairing sessions changed how I review code.\n\nquote ok", to=nudge_address(world))
    )
    async with world.sessions() as session:
        [reply] = (await session.exec(select(Reply))).all()
    assert (reply.text, reply.quote_ok) == ("Pairing sessions changed how I review code.", True)
