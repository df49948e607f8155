"""The whole loop on real parts: arq worker (burst) on a real Redis, Dovecot IMAP, the SMTP listener,
an aiosmtpd sink, and the database (SQLite, and PostgreSQL in the slow run).

ask → nudges land in the sink → replies arrive through IMAP *and* the listener → stored and routed →
the round closes into circles → a member's follow-up is relayed → the report's numbers are right.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.message import EmailMessage, Message
from email.utils import format_datetime, make_msgid, parseaddr

import aiosmtplib
import pytest
from redis.asyncio import Redis
from sqlmodel import col, func, select

from nudger.app import Services, open_services
from nudger.clock import ManualClock
from nudger.config import Secret, Secrets, Settings
from nudger.inbound.listener import InboundHandler, start_listener
from nudger.programmes.roster import RosterRow, upsert_people
from nudger.reports.send import build_report_files
from nudger.store.db import transaction
from nudger.store.models import Circle, ImapCursor, Inbound, Nudge, NudgeStatus, Post, Reply
from nudger.worker import build_worker
from tests.fixtures import DOMAIN, SIGNING_KEY, Received, SmtpServer, make_settings
from tests.services import LD_USER, DovecotServer, free_port, imap_append

pytestmark = pytest.mark.slow

START = datetime(2026, 12, 1, 13, 30, tzinfo=UTC)  # a Tuesday: 10:00 has passed in every zone below
PEOPLE = [
    ("ana", "Engineering", "Europe/Berlin"),
    ("ben", "Sales", "Europe/London"),
    ("chi", "Support", "Asia/Kolkata"),
    ("dan", "Engineering", "Europe/London"),
    ("eve", "Sales", "Asia/Kolkata"),
    ("fay", "Support", "Europe/Berlin"),
]
QUOTE = "\n\nOn Tue, 1 Dec 2026 at 10:00, nudger <nudger@corp.test> wrote:\n> What did you learn this week?\n"


@dataclass
class Loop:
    services: Services
    settings: Settings
    secrets: Secrets
    clock: ManualClock
    sink: SmtpServer
    listener_port: int
    mailbox: str
    dovecot: DovecotServer

    async def drain(self, *jobs: str) -> None:
        """Enqueue jobs, then let a real arq worker in burst mode run everything queued."""
        assert self.services.redis is not None
        for job in jobs:
            await self.services.redis.enqueue_job(job)
        worker = build_worker(
            self.settings,
            self.secrets,
            burst=True,
            crons=False,
            clock=self.clock,
            handle_signals=False,
            poll_delay=0.01,
        )
        try:
            await asyncio.wait_for(worker.main(), 60)
        finally:
            await worker.close()

    def sent_to(self, address: str) -> list[Message]:
        return [message_from_bytes(r.raw) for r in self.sink.handler.received if r.rcpt_tos == [address]]


@pytest.fixture
async def loop(
    db_url: str, redis_url: str, dovecot: DovecotServer, fresh_mailbox: str, smtp_server: SmtpServer
) -> AsyncIterator[Loop]:
    redis = Redis.from_url(redis_url)
    await redis.flushdb()
    await redis.aclose()
    settings = make_settings(
        database={"url": db_url},
        redis={"url": redis_url},
        smtp={"host": "127.0.0.1", "port": smtp_server.port, "tls": "none"},
        inbound={
            "imap": {
                "host": dovecot.host,
                "port": dovecot.port,
                "tls": "none",
                "username": LD_USER,
                "password_env": "IMAP_PW",
                "mailboxes": [fresh_mailbox],
            }
        },
    )
    secrets = Secrets(Secret(SIGNING_KEY), Secret(""), Secret(dovecot.users[LD_USER]))
    clock = ManualClock(START)
    async with open_services(settings, secrets, clock=clock) as services:
        async with transaction(services.sessions) as session:
            rows = [
                RosterRow(n, f"{name}@{DOMAIN}", name.title(), team, tz)
                for n, (name, team, tz) in enumerate(PEOPLE)
            ]
            await upsert_people(session, rows, settings.programmes, START, consent_how="test")
        handler = InboundHandler(
            services.sessions, services.identity, services.keys, services.queue, clock.now
        )
        port = free_port()
        server = await start_listener(handler, "127.0.0.1", port, max_bytes=1_000_000)
        try:
            yield Loop(services, settings, secrets, clock, smtp_server, port, fresh_mailbox, dovecot)
        finally:
            server.close()
            await server.wait_closed()
            await handler.aclose()


def reply_to(original: Message, sender: str, body: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"{sender.title()} <{sender}@{DOMAIN}>"
    msg["To"] = str(original["Reply-To"])
    msg["Subject"] = f"Re: {original['Subject']}"
    msg["Date"] = format_datetime(START)
    msg["Message-ID"] = make_msgid(domain=DOMAIN)
    msg["In-Reply-To"] = str(original["Message-ID"])
    msg["References"] = str(original["Message-ID"])
    msg.set_content(body)
    return msg.as_bytes()


async def smtp_deliver(port: int, rcpt: str, raw: bytes) -> None:
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=port, local_hostname="mx.test") as client:
        await client.sendmail(f"someone@{DOMAIN}", [rcpt], raw)


async def count(loop: Loop, model: type, *where: object) -> int:
    async with loop.services.sessions() as session:
        stmt = select(func.count()).select_from(model)
        for clause in where:
            stmt = stmt.where(clause)  # type: ignore[arg-type]
        return int((await session.exec(stmt)).one())


def body_text(message: Message) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload.decode(part.get_content_charset() or "utf-8")
    raise AssertionError("no text part")


async def test_the_whole_loop_through_imap_and_the_listener(loop: Loop) -> None:
    # ASK: the planner and the sender run in the real worker; every person gets one nudge.
    await loop.drain("plan")
    nudges = {p: loop.sent_to(f"{p}@{DOMAIN}") for p, _, _ in PEOPLE}
    assert {p: len(m) for p, m in nudges.items()} == {p: 1 for p, _, _ in PEOPLE}
    first = nudges["ana"][0]
    assert first["Auto-Submitted"] == "auto-generated"
    assert str(first["Reply-To"]).startswith("reply+")
    assert "List-Unsubscribe" in first
    await loop.drain("plan")  # planning again changes nothing
    assert len(loop.sink.handler.received) == len(PEOPLE)

    # LISTEN: three replies through Dovecot, three through the SMTP listener.
    answers = {
        name: f"{name.title()} learned something worth sharing #{i}." for i, (name, _, _) in enumerate(PEOPLE)
    }
    for name in ("ana", "ben", "chi"):
        raw = reply_to(nudges[name][0], f"{name}", answers[name] + QUOTE)
        await asyncio.to_thread(imap_append, loop.dovecot, LD_USER, raw, loop.mailbox)
    for name in ("dan", "eve", "fay"):
        original = nudges[name][0]
        await smtp_deliver(
            loop.listener_port,
            parseaddr(str(original["Reply-To"]))[1],
            reply_to(original, name, answers[name] + QUOTE),
        )
    await loop.drain("poll")
    await loop.drain("poll")  # polling again stores nothing twice
    async with loop.services.sessions() as session:
        replies = {r.person_id: r.text for r in (await session.exec(select(Reply))).all()}
        cursor = (await session.exec(select(ImapCursor))).one()
    assert sorted(replies.values()) == sorted(answers.values())  # quoted history trimmed away
    assert cursor.last_uid == 3
    assert await count(loop, Inbound) == 6
    assert await count(loop, Nudge, col(Nudge.status) == NudgeStatus.REPLIED) == 6

    # CONNECT: after the window closes, 6 answers make 2 circles of 3 with introductions.
    loop.clock.advance(timedelta(days=4))
    before = len(loop.sink.handler.received)
    await loop.drain("connect")
    await loop.drain("connect")  # grouping again changes nothing
    intros: list[Received] = loop.sink.handler.received[before:]
    assert await count(loop, Circle) == 2
    assert len(intros) == 6
    ana_intro = next(message_from_bytes(r.raw) for r in intros if r.rcpt_tos == [f"ana@{DOMAIN}"])
    text = body_text(ana_intro)
    async with loop.services.sessions() as session:
        circle = (
            await session.exec(
                select(Circle).where(col(Circle.root_message_id) == str(ana_intro["References"]))
            )
        ).one()
    assert circle.root_message_id in str(ana_intro["References"])
    circle_mates = [r for r in intros if message_from_bytes(r.raw)["References"] == ana_intro["References"]]
    assert len(circle_mates) == 3
    others = [r.rcpt_tos[0].split("@")[0] for r in circle_mates if r.rcpt_tos != [f"ana@{DOMAIN}"]]
    for other in others:
        assert answers[other] in text
        assert f"{other}@{DOMAIN}" not in text  # names, never addresses

    # A member answers the circle: the post is relayed to the other two, threaded, as "Ana via nudger".
    before = len(loop.sink.handler.received)
    follow = reply_to(ana_intro, "ana", "Thanks both! Could we swap notes next week?" + QUOTE)
    await smtp_deliver(loop.listener_port, parseaddr(str(ana_intro["Reply-To"]))[1], follow)
    await loop.drain()
    relays = [message_from_bytes(r.raw) for r in loop.sink.handler.received[before:]]
    assert sorted(parseaddr(str(m["To"]))[1].split("@")[0] for m in relays) == sorted(others)
    for relay in relays:
        assert parseaddr(str(relay["From"])) == ("Ana via nudger", f"nudger@{DOMAIN}")
        assert circle.root_message_id in str(relay["References"])
        assert relay["Auto-Submitted"] is None
        assert "Could we swap notes next week?" in body_text(relay)
        assert "> What did you learn this week?" not in body_text(relay)  # quoted history trimmed
    assert await count(loop, Post) == 1

    # REPORT: not before the circles have had a week to talk; then sent once, with the right numbers.
    loop.clock.advance(timedelta(days=1))
    await loop.drain("report")
    assert loop.sent_to(f"ld@{DOMAIN}") == []
    loop.clock.advance(timedelta(days=7))
    await loop.drain("report")
    await loop.drain("report")
    reports = loop.sent_to(f"ld@{DOMAIN}")
    assert len(reports) == 1
    files = await build_report_files(
        loop.services.sessions, loop.settings.programmes[0], "2026-W49", 3, loop.clock.now()
    )
    figures = json.loads(files["json"])["participation"]
    assert {k: figures[k] for k in ("asked", "answered", "circles", "posts")} == {
        "asked": 6,
        "answered": 6,
        "circles": 2,
        "posts": 1,
    }
    report_text = body_text(reports[0])
    assert files["text"].strip().splitlines()[0] in report_text  # the email is that same report


async def test_the_sweeper_recovers_work_whose_job_was_lost(loop: Loop) -> None:
    """Redis lost its jobs (or nobody enqueued them): the sweeper rebuilds the queue from the database."""
    from nudger.inbound.accept import Position, store_raw
    from nudger.programmes.nudges import plan_due
    from nudger.queue import RecordingQueue

    s = loop.services
    # plan without enqueueing anything, as if Redis had been emptied after the commit
    await plan_due(s.sessions, loop.settings.programmes, s.composer, RecordingQueue(), START)
    nudge = loop.sent_to(f"ana@{DOMAIN}")
    assert nudge == []
    loop.clock.advance(timedelta(minutes=5))
    await loop.drain("sweep")
    await loop.drain()
    assert {r.rcpt_tos[0] for r in loop.sink.handler.received} == {f"{p}@{DOMAIN}" for p, _, _ in PEOPLE}
    # a stored reply that was never processed is picked up too
    original = loop.sent_to(f"ana@{DOMAIN}")[0]
    async with transaction(s.sessions) as session:
        await store_raw(
            session, reply_to(original, "ana", "Recovered answer."), Position("smtp"), loop.clock.now()
        )
    loop.clock.advance(timedelta(minutes=5))
    await loop.drain("sweep")
    async with s.sessions() as session:
        texts = (await session.exec(select(Reply.text))).all()
    assert texts == ["Recovered answer."]


async def test_a_private_answer_never_reaches_a_peer(loop: Loop) -> None:
    """Through the real listener, worker and sink: the private answer is stored, never relayed."""
    await loop.drain("plan")
    secret = "Something only L&D may know about my week."
    for name, _, _ in PEOPLE:
        original = loop.sent_to(f"{name}@{DOMAIN}")[0]
        body = f"private\n{secret}" if name == "ana" else f"{name.title()} shares a thought."
        await smtp_deliver(
            loop.listener_port, parseaddr(str(original["Reply-To"]))[1], reply_to(original, name, body)
        )
    await loop.drain()
    loop.clock.advance(timedelta(days=4))
    await loop.drain("connect")
    intros = [
        message_from_bytes(r.raw)
        for r in loop.sink.handler.received
        if "circle:" in str(message_from_bytes(r.raw)["Subject"])
    ]
    assert len(intros) == len(PEOPLE) - 1  # everyone but Ana is in a circle
    assert all(parseaddr(str(m["To"]))[1] != f"ana@{DOMAIN}" for m in intros)
    for received in loop.sink.handler.received:
        assert secret.encode() not in received.raw.replace(b"=\r\n", b"")  # in no email at all
    async with loop.services.sessions() as session:
        stored = (await session.exec(select(Reply.text).where(col(Reply.sharing) == "private"))).all()
    assert stored == [secret]
