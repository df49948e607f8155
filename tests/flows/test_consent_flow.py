"""Consent end to end on real parts: an invite import, invitations delivered to an aiosmtpd sink, a
"yes" sent back through nudger's real SMTP listener, and a one-click unsubscribe POSTed to the web
endpoint served by a real uvicorn on a free port (the URL taken from the delivered List-Unsubscribe).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from urllib.parse import urlsplit

import aiosmtplib
import httpx
import pytest
import uvicorn
from sqlmodel import col, select

from nudger.clock import ManualClock
from nudger.config import Secret, SmtpConfig
from nudger.inbound.ingest import IngestDeps, process_inbound
from nudger.inbound.listener import InboundHandler, start_listener
from nudger.mail.compose import Composer, Recipient, compose_notice
from nudger.mail.message import Identity
from nudger.mail.outbox import Outcome, add_to_outbox, deliver
from nudger.mail.smtp import SmtpTransport
from nudger.mail.templating import make_environment
from nudger.programmes.consent import import_invited, invite_people
from nudger.programmes.roster import RosterRow
from nudger.queue import RecordingQueue
from nudger.store.db import SessionMaker, transaction
from nudger.store.models import Audit, Inbound, Person, PersonStatus
from nudger.web import create_app
from tests.fixtures import SmtpServer, keys, make_settings, settings_dict
from tests.services import free_ports

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
BASE_URL = "https://nudger.corp.test"
NAMES = {"weekly": "Weekly reflection"}


@dataclass
class World:
    sessions: SessionMaker
    clock: ManualClock
    composer: Composer
    queue: RecordingQueue
    sink: SmtpServer
    transport: SmtpTransport
    listener_port: int
    web_port: int

    @property
    def deps(self) -> IngestDeps:
        return IngestDeps(self.composer, {})

    async def deliver_queued(self) -> None:
        for outbox_id, _when in self.queue.sends:
            await deliver(self.sessions, self.transport, outbox_id, self.clock.now())
        self.queue.sends.clear()

    async def person(self, email: str) -> Person:
        async with self.sessions() as session:
            return (await session.exec(select(Person).where(col(Person.email) == email))).one()

    def received(self, to: str) -> list[EmailMessage]:
        out = []
        for r in self.sink.handler.received:
            msg = message_from_bytes(r.raw, policy=policy.default)
            assert isinstance(msg, EmailMessage)
            if r.rcpt_tos == [to]:
                out.append(msg)
        return out


def identity_with_base_url() -> Identity:
    service = settings_dict()["service"]
    return Identity.from_config(make_settings(service={**service, "base_url": BASE_URL}).service)


@contextlib.asynccontextmanager
async def web_server(sessions: SessionMaker, clock: ManualClock, port: int) -> AsyncIterator[None]:
    """The real web endpoint under uvicorn, in this event loop; stopped gracefully afterwards."""
    app = create_app(sessions, keys(), identity_with_base_url(), clock, programme_names=NAMES)
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="off"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(200):
            if server.started:
                break
            await asyncio.sleep(0.02)
        assert server.started, "uvicorn did not start"
        yield
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


@pytest.fixture
async def world(sessions: SessionMaker, smtp_server: SmtpServer) -> AsyncIterator[World]:
    clock = ManualClock(START)
    composer = Composer(make_environment(), identity_with_base_url(), keys())
    queue = RecordingQueue()
    handler = InboundHandler(sessions, composer.identity, keys(), RecordingQueue(), clock.now)
    listener_port, web_port = free_ports(2)
    listener = await start_listener(handler, "127.0.0.1", listener_port, max_bytes=1_000_000)
    transport = SmtpTransport(SmtpConfig(host="127.0.0.1", port=smtp_server.port, connections=1), Secret(""))
    try:
        async with web_server(sessions, clock, web_port):
            yield World(sessions, clock, composer, queue, smtp_server, transport, listener_port, web_port)
    finally:
        await transport.close()
        listener.close()
        await listener.wait_closed()
        await handler.aclose()


def reply_to(msg: EmailMessage, sender: str, body: str) -> bytes:
    out = EmailMessage()
    out["From"] = sender
    out["To"] = str(msg["Reply-To"])
    out["Subject"] = f"Re: {msg['Subject']}"
    out["Date"] = format_datetime(START)
    out["Message-ID"] = make_msgid(domain="mail.corp.test")
    out["In-Reply-To"] = str(msg["Message-ID"])
    quoted = "\n".join(f"> {line}" for line in (msg.get_body(("plain",)) or msg).get_content().splitlines())
    out.set_content(f"{body}\n\nOn Mon, 2 Mar 2026, nudger <nudger@corp.test> wrote:\n{quoted}\n")
    return out.as_bytes()


async def send_to_listener(w: World, msg: EmailMessage, sender: str, body: str) -> int:
    """Send a reply over SMTP to nudger's listener; return the stored inbound row's id."""
    async with aiosmtplib.SMTP(
        hostname="127.0.0.1", port=w.listener_port, local_hostname="mx.corp.test"
    ) as smtp:
        await smtp.sendmail(sender, [str(msg["Reply-To"])], reply_to(msg, sender, body))
    async with w.sessions() as session:
        row = (await session.exec(select(Inbound).order_by(col(Inbound.id).desc()))).first()
    assert row is not None
    assert row.id is not None
    return row.id


def one_click_url(msg: EmailMessage, port: int) -> str:
    """The HTTPS one-click URL from List-Unsubscribe, pointed at the local server (the proxy's job)."""
    links = [part.strip().strip("<>") for part in str(msg["List-Unsubscribe"]).split(",")]
    https = next(link for link in links if link.startswith("https://"))
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    return f"http://127.0.0.1:{port}{urlsplit(https).path}"


async def test_invite_yes_by_reply_then_one_click_out(world: World) -> None:
    w = world
    # ways in: an import that invites (nobody pre-consented), then the invitations
    async with transaction(w.sessions) as session:
        rows = [
            RosterRow(2, "ana@corp.test", "Ana Lima", "Eng", "Europe/Paris"),
            RosterRow(3, "ben@corp.test", "Ben Ode", "Sales", "America/New_York"),
        ]
        await import_invited(session, rows, make_settings().programmes, w.clock.now(), source="staff.csv")
    result = await invite_people(w.sessions, w.composer, w.queue, NAMES, w.clock.now())
    assert result.queued == 2
    await w.deliver_queued()
    [ana_invite] = w.received("ana@corp.test")
    [ben_invite] = w.received("ben@corp.test")
    assert ana_invite["Subject"] == "Invitation: Weekly reflection (reply yes to join)"

    # ana says yes by replying: through the real listener, then processed
    w.clock.advance(timedelta(hours=3))
    inbound_id = await send_to_listener(w, ana_invite, "Ana Lima <ana@corp.test>", "Yes, count me in!")
    outcome = await process_inbound(w.sessions, w.deps, w.queue, inbound_id, w.clock.now())
    assert outcome is not None
    assert outcome.verdict == "command"
    ana = await w.person("ana@corp.test")
    assert (ana.status, ana.consent_at, ana.consent_how, ana.consent_text_version) == (
        PersonStatus.ACTIVE,
        w.clock.now(),
        "invite:reply",
        "v1",
    )
    await w.deliver_queued()
    [welcome] = [m for m in w.received("ana@corp.test") if m["Subject"] == "Welcome to nudger"]

    # running the invitations again sends nothing new (ben is still invited, but has had this one)
    again = await invite_people(w.sessions, w.composer, w.queue, NAMES, w.clock.now())
    assert (again.queued, again.already) == (0, 1)
    await w.deliver_queued()
    assert len(w.sink.handler.received) == 3

    # ways out: RFC 8058 one-click POSTs to the real web endpoint, from the delivered headers
    async with httpx.AsyncClient(timeout=10) as client:
        url = one_click_url(ben_invite, w.web_port)
        looked = await client.get(url)  # a link scanner: shows the page, unsubscribes nobody
        assert looked.status_code == 200
        assert (await w.person("ben@corp.test")).status == PersonStatus.INVITED
        clicked = await client.post(url, data={"List-Unsubscribe": "One-Click"})
        assert clicked.status_code == 200
        ana_url = one_click_url(welcome, w.web_port)
        clicked = await client.post(ana_url, files={"List-Unsubscribe": (None, "One-Click")})
        assert clicked.status_code == 200
    assert (await w.person("ben@corp.test")).status == PersonStatus.LEFT
    ana = await w.person("ana@corp.test")
    assert ana.status == PersonStatus.LEFT
    async with w.sessions() as session:
        trail = (
            await session.exec(select(Audit.action, Audit.detail).where(col(Audit.person_id) == ana.id))
        ).all()
    assert list(trail) == [
        ("invited", "invite:staff.csv"),
        ("consent", "invite:reply (text v1)"),
        ("optout", "web: one-click"),
    ]

    # and nothing more goes out to her
    async with transaction(w.sessions) as session:
        mail = compose_notice(
            w.composer,
            outbox_key="late",
            recipient=Recipient(ana.id or 0, ana.email, ana.name),
            reason="help",
            reply_token="x" * 32,
            now=w.clock.now(),
        )
        [(late_id, _)] = await add_to_outbox(session, [mail], w.clock.now())
    delivery = await deliver(w.sessions, w.transport, late_id, w.clock.now())
    assert (delivery.outcome, delivery.detail) == (Outcome.SKIPPED, "person left")
    assert len(w.sink.handler.received) == 3
