"""Processing stored mail (parse → classify → trim → route → act) against a real SQLite database."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime

import pytest
from sqlmodel import select

from nudger.inbound.accept import Position, store_raw
from nudger.inbound.ingest import IngestDeps, process_inbound
from nudger.mail.compose import Composer
from nudger.mail.message import make_message_id
from nudger.mail.tokens import TokenKind
from nudger.queue import RecordingQueue
from nudger.store.db import SessionMaker, transaction
from nudger.store.models import (
    Audit,
    Circle,
    Enrolment,
    Inbound,
    InboundStatus,
    Member,
    Nudge,
    NudgeStatus,
    Outbox,
    Person,
    PersonStatus,
    Post,
    Reply,
    Round,
    Sharing,
)
from tests.fixtures import identity, keys, make_settings

NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
QUESTION = "What did you learn this week?"


@dataclass
class World:
    sessions: SessionMaker
    deps: IngestDeps
    queue: RecordingQueue
    ana: int
    ben: int
    nudge: int
    nudge_message_id: str


@pytest.fixture
async def world(sessions: SessionMaker, env: object) -> World:
    async with transaction(sessions) as session:
        ana = Person(email="ana@corp.test", name="Ana Silva", team="Eng", created_at=NOW)
        ben = Person(email="ben@corp.test", name="Ben Ode", team="Sales", created_at=NOW)
        session.add_all([ana, ben])
        await session.flush()
        rnd = Round(
            programme="weekly",
            period="2026-W49",
            seq=1,
            question=QUESTION,
            opens_at=NOW - timedelta(days=1),
            closes_at=NOW + timedelta(days=2),
        )
        session.add(rnd)
        await session.flush()
        mid = make_message_id(f"nudge:{rnd.id}:{ana.id}", identity().message_domain, keys().signing)
        nudge = Nudge(
            round_id=rnd.id or 0, person_id=ana.id or 0, due_at=NOW, status=NudgeStatus.SENT, message_id=mid
        )
        session.add(nudge)
        session.add(Enrolment(person_id=ana.id or 0, programme="weekly", joined_at=NOW))
        await session.flush()
        ids = (ana.id or 0, ben.id or 0, nudge.id or 0)
    settings = make_settings()
    deps = IngestDeps(Composer(env, identity(), keys()), {p.key: p for p in settings.programmes})  # type: ignore[arg-type]
    return World(sessions, deps, RecordingQueue(), ids[0], ids[1], ids[2], mid)


def email(
    body: str,
    *,
    to: str,
    sender: str = "Ana Silva <ana@corp.test>",
    subject: str = "Re: What did you learn?",
    headers: dict[str, str] | None = None,
    message_id: str | None = None,
) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = format_datetime(NOW)
    msg["Message-ID"] = message_id or f"<{abs(hash((body, to, sender)))}@mail.corp.test>"
    for key, value in (headers or {}).items():
        msg[key] = value
    msg.set_content(body)
    return msg.as_bytes()


def nudge_address(w: World) -> str:
    return identity().reply_address(keys().token(TokenKind.NUDGE, w.nudge))


async def ingest(w: World, raw: bytes) -> Inbound:
    async with transaction(w.sessions) as session:
        inbound_id = await store_raw(session, raw, Position("smtp"), NOW)
    assert inbound_id is not None
    await process_inbound(w.sessions, w.deps, w.queue, inbound_id, NOW)
    async with w.sessions() as session:
        row = await session.get(Inbound, inbound_id)
    assert row is not None
    assert row.status == InboundStatus.PROCESSED
    return row


async def replies(w: World) -> list[Reply]:
    async with w.sessions() as session:
        return list((await session.exec(select(Reply))).all())


async def person(w: World, person_id: int) -> Person:
    async with w.sessions() as session:
        found = await session.get(Person, person_id)
    assert found is not None
    return found


async def test_a_reply_is_trimmed_stored_and_marks_the_nudge_answered(world: World) -> None:
    body = (
        "I learned to ask for help sooner.\n\nOn Tue, 1 Dec 2026, nudger <nudger@corp.test> wrote:\n> "
        + QUESTION
    )
    row = await ingest(world, email(body, to=nudge_address(world)))
    assert (row.verdict, row.person_id) == ("reply", world.ana)
    [reply] = await replies(world)
    assert reply.text == "I learned to ask for help sooner."
    assert QUESTION in reply.elided
    assert reply.sharing == Sharing.PEERS
    async with world.sessions() as session:
        nudge = await session.get(Nudge, world.nudge)
    assert nudge is not None
    assert (nudge.status, nudge.replied_at) == (NudgeStatus.REPLIED, NOW)


async def test_processing_twice_stores_one_reply(world: World) -> None:
    row = await ingest(world, email("Once only.", to=nudge_address(world)))
    again = await process_inbound(world.sessions, world.deps, world.queue, row.id or 0, NOW)
    assert again is None
    assert len(await replies(world)) == 1


async def test_a_token_used_by_someone_else_is_quarantined(world: World) -> None:
    row = await ingest(
        world, email("I am not Ana.", to=nudge_address(world), sender="Mallory <mallory@evil.test>")
    )
    assert row.verdict == "quarantine"
    assert "does not own" in row.reason
    assert await replies(world) == []


async def test_upper_cased_address_still_routes(world: World) -> None:
    row = await ingest(world, email("Shouting works too.", to=nudge_address(world).upper()))
    assert row.verdict == "reply"


async def test_a_forged_token_does_not_route(world: World) -> None:
    forged = "reply+" + "a" * 32 + "@reply.corp.test"
    row = await ingest(world, email("Hello?", to=forged))
    assert row.verdict == "unrouted"
    assert await replies(world) == []


async def test_lost_token_falls_back_to_the_senders_own_nudge_in_the_thread(world: World) -> None:
    raw = email(
        "Replying to nudger's plain address.",
        to="nudger@corp.test",
        headers={"In-Reply-To": world.nudge_message_id, "References": world.nudge_message_id},
    )
    row = await ingest(world, raw)
    assert row.verdict == "reply"
    # but a stranger quoting Ana's nudge id gets nowhere
    raw = email(
        "Me too.",
        to="nudger@corp.test",
        sender="ben@corp.test",
        headers={"In-Reply-To": world.nudge_message_id},
    )
    assert (await ingest(world, raw)).verdict == "unrouted"


async def test_stop_opts_the_person_out_and_is_not_an_answer(world: World) -> None:
    row = await ingest(world, email("STOP\n\n> " + QUESTION, to=nudge_address(world)))
    assert row.verdict == "command"
    assert await replies(world) == []
    assert (await person(world, world.ana)).status == PersonStatus.LEFT
    async with world.sessions() as session:
        actions = (await session.exec(select(Audit.action).where(Audit.person_id == world.ana))).all()
        enrolment = (await session.exec(select(Enrolment).where(Enrolment.person_id == world.ana))).one()
    assert "optout" in actions
    assert enrolment.left_at == NOW


async def test_private_marker_keeps_the_answer_from_peers(world: World) -> None:
    await ingest(world, email("private\nA tough week, honestly.", to=nudge_address(world)))
    [reply] = await replies(world)
    assert reply.sharing == Sharing.PRIVATE
    assert reply.text == "A tough week, honestly."


async def test_pause_for_two_weeks(world: World) -> None:
    row = await ingest(world, email("pause for 2 weeks", to=nudge_address(world)))
    assert row.verdict == "command"
    ana = await person(world, world.ana)
    assert ana.status == PersonStatus.PAUSED
    assert ana.paused_until is not None
    assert ana.paused_until.date() == NOW.date() + timedelta(weeks=2)


async def test_an_out_of_office_pauses_until_the_return_date(world: World) -> None:
    raw = email(
        "I am out of the office until 14 December 2026 with limited access to email.",
        to=nudge_address(world),
        subject="Automatic reply: What did you learn?",
        headers={"Auto-Submitted": "auto-replied"},
    )
    row = await ingest(world, raw)
    assert row.verdict == "auto_reply"
    assert await replies(world) == []
    ana = await person(world, world.ana)
    assert ana.paused_until is not None
    assert ana.paused_until.date() == date(2026, 12, 14)
    assert world.queue.sends == []  # never answer a machine


def dsn(to: str, status: str, action: str = "failed") -> bytes:
    return (
        "From: MAILER-DAEMON@mx.corp.test\r\nTo: "
        + to
        + "\r\nSubject: Undelivered Mail Returned to Sender\r\n"
        "Message-ID: <dsn-" + status + "@mx.corp.test>\r\nDate: Wed, 02 Dec 2026 09:00:00 +0000\r\n"
        "MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=B\r\n\r\n"
        "--B\r\nContent-Type: text/plain\r\n\r\nFailed.\r\n"
        "--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.corp.test\r\n\r\nFinal-Recipient: rfc822; someone-else@corp.test\r\n"
        f"Action: {action}\r\nStatus: {status}\r\n\r\n--B--\r\n"
    ).encode()


@pytest.mark.parametrize(
    ("status", "score", "after"), [("5.1.1", 4, PersonStatus.SUPPRESSED), ("4.4.7", 1, PersonStatus.ACTIVE)]
)
async def test_bounces_are_attributed_by_verp_and_scored(
    world: World, status: str, score: int, after: PersonStatus
) -> None:
    verp = identity().bounce_address(keys().token(TokenKind.BOUNCE, world.ana))
    row = await ingest(world, dsn(verp, status))
    assert (row.verdict, row.person_id) == ("bounce", world.ana)
    ana = await person(world, world.ana)
    assert (ana.bounce_score, ana.status) == (score, after)
    assert world.queue.sends == []


async def test_a_bounce_without_our_signed_address_changes_nobody(world: World) -> None:
    """A forged DSN naming a colleague as Final-Recipient must not suppress them (§7 case 32)."""
    row = await ingest(world, dsn("bounces@reply.corp.test", "5.1.1").replace(b"someone-else", b"ana"))
    assert row.verdict == "bounce"
    assert "unattributed" in row.reason
    ana = await person(world, world.ana)
    assert (ana.bounce_score, ana.status) == (0, PersonStatus.ACTIVE)


async def test_unsubscribe_address_opts_out(world: World) -> None:
    address = identity().reply_address(keys().token(TokenKind.UNSUBSCRIBE, world.ana))
    row = await ingest(world, email("unsubscribe", to=address, subject="unsubscribe"))
    assert row.verdict in ("command", "complaint")
    assert (await person(world, world.ana)).status == PersonStatus.LEFT


async def test_a_circle_post_is_relayed_to_the_others_only(world: World) -> None:
    async with transaction(world.sessions) as session:
        cid = Circle(
            round_id=1, number=1, root_message_id="<root@corp.test>", subject="Your circle", created_at=NOW
        )
        session.add(cid)
        await session.flush()
        ana_m = Member(circle_id=cid.id or 0, person_id=world.ana)
        ben_m = Member(circle_id=cid.id or 0, person_id=world.ben)
        session.add_all([ana_m, ben_m])
        await session.flush()
        ana_member = ana_m.id or 0
    address = identity().reply_address(keys().token(TokenKind.MEMBER, ana_member))
    row = await ingest(world, email("Ben, let's talk on Friday.\n\n> earlier text", to=address))
    assert row.verdict == "post"
    async with world.sessions() as session:
        posts = (await session.exec(select(Post))).all()
        out = (await session.exec(select(Outbox))).all()
    assert [p.text for p in posts] == ["Ben, let's talk on Friday."]
    assert [o.to_addr for o in out] == ["ben@corp.test"]
    assert len(world.queue.sends) == 1
