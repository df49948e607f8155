"""`nudger demo`: the whole loop on one machine, with real parts and a clock we move by hand.

It starts a private Redis, an SMTP sink that saves every email as .eml, and nudger's own SMTP
listener; enrols a dozen people in four timezones; sends a round through the real arq worker; has
people reply over SMTP (quoted history, signatures, an out-of-office, a bounce, a "stop", a private
answer); closes the round into circles; relays a follow-up; and writes the L&D report.
"""

from __future__ import annotations

import json
import secrets as pysecrets
import time as wallclock
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from email import message_from_bytes
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from pathlib import Path
from typing import Any

import aiosmtplib
from rich.console import Console
from rich.table import Table
from sqlalchemy import func
from sqlmodel import col, select

from nudger.app import Services, open_services
from nudger.clock import ManualClock
from nudger.config import Secret, Secrets, Settings, parse_settings
from nudger.embedded import SinkHandler, SunkMessage, free_port, local_redis, smtp_sink
from nudger.inbound.listener import InboundHandler, start_listener
from nudger.programmes.roster import RosterRow, upsert_people
from nudger.programmes.schedule import period_of
from nudger.reports.send import build_report_files
from nudger.store.db import transaction
from nudger.store.models import Circle, Inbound, Outbox, OutboxStatus, Post, Reply
from nudger.worker import build_worker

DOMAIN = "acme.example"
LD_ADDRESS = f"learning@{DOMAIN}"
PROGRAMME = "weekly-reflection"

STAFF = [
    ("ana.silva", "Ana Silva", "Engineering", "America/Sao_Paulo"),
    ("bruno.costa", "Bruno Costa", "Sales", "America/Sao_Paulo"),
    ("carla.mendes", "Carla Mendes", "Support", "America/Sao_Paulo"),
    ("dieter.braun", "Dieter Braun", "Engineering", "Europe/Berlin"),
    ("eva.schmidt", "Eva Schmidt", "Finance", "Europe/Berlin"),
    ("felix.wagner", "Felix Wagner", "Support", "Europe/Berlin"),
    ("grace.okafor", "Grace Okafor", "Sales", "Europe/London"),
    ("harry.lewis", "Harry Lewis", "Finance", "Europe/London"),
    ("isha.patel", "Isha Patel", "Engineering", "Asia/Kolkata"),
    ("jay.rao", "Jay Rao", "Support", "Asia/Kolkata"),
    ("kavya.iyer", "Kavya Iyer", "Sales", "Asia/Kolkata"),
    ("lena.nair", "Lena Nair", "Finance", "Asia/Kolkata"),
]


def demo_settings(redis_url: str, sink_port: int, db_path: Path) -> Settings:
    return parse_settings(
        {
            "service": {
                "name": "nudger",
                "from_address": f"nudger@{DOMAIN}",
                "from_name": "nudger",
                "reply_domain": f"reply.{DOMAIN}",
                "signing_secret_env": "NUDGER_DEMO_SECRET",
            },
            "database": {"url": f"sqlite+aiosqlite:///{db_path}"},
            "redis": {"url": redis_url},
            "smtp": {"host": "127.0.0.1", "port": sink_port, "tls": "none", "connections": 4},
            "report": {"recipients": [LD_ADDRESS], "anonymity_threshold": 5},
            "programme": [
                {
                    "key": PROGRAMME,
                    "name": "Weekly reflection",
                    "schedule": {"weekday": "tue", "time": "10:00"},
                    "reply_window_hours": 72,
                    "circle_size": 4,
                    "questions": [
                        {
                            "text": "What did you learn this week that a colleague in another team might find useful?",
                            "theme": "share",
                        },
                    ],
                }
            ],
        },
        source="demo settings",
    )


def demo_start(today: datetime) -> datetime:
    """Tuesday 13:30 UTC of next week: 10:00 has passed in all four timezones, none by over 12 hours."""
    monday = (today + timedelta(days=7 - today.weekday())).date()
    return datetime.combine(monday + timedelta(days=1), time(13, 30), tzinfo=UTC)


# ----------------------------------------------------------------------------- what people write


@dataclass(frozen=True)
class Nudged:
    email: str
    name: str
    reply_to: str
    envelope_from: str
    message_id: str
    subject: str
    question: str


def _nudged(message: SunkMessage) -> Nudged:
    msg = message_from_bytes(message.raw)
    name, email = parseaddr(str(msg["To"]))
    subject = str(msg["Subject"])
    return Nudged(
        email,
        name,
        parseaddr(str(msg["Reply-To"]))[1],
        message.mail_from,
        str(msg["Message-ID"]),
        subject,
        subject.split(": ", 1)[-1],
    )


def _reply(
    nudged: Nudged,
    body: str,
    when: datetime,
    *,
    subject: str | None = None,
    headers: dict[str, str] | None = None,
    sender: str | None = None,
) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"{nudged.name} <{sender or nudged.email}>"
    msg["To"] = nudged.reply_to
    msg["Subject"] = subject or f"Re: {nudged.subject}"
    msg["Date"] = format_datetime(when)
    msg["Message-ID"] = make_msgid(domain=DOMAIN)
    msg["In-Reply-To"] = nudged.message_id
    msg["References"] = nudged.message_id
    for key, value in (headers or {}).items():
        msg[key] = value
    msg.set_content(body)
    return msg.as_bytes()


def _quoted(nudged: Nudged, when: datetime) -> str:
    return "\n".join(
        [
            f"On {format_datetime(when - timedelta(hours=3))}, nudger <nudger@{DOMAIN}> wrote:",
            f"> Hi {nudged.name.split()[0]},",
            ">",
            f"> {nudged.question}",
            ">",
            "> Just hit reply and write a few lines.",
        ]
    )


ANSWERS = {
    "ana.silva": "Pairing with Support on bug triage halved our back-and-forth. Happy to show anyone how we set it up.",
    "bruno.costa": "A customer told me our onboarding emails were the reason they stayed. Marketing should hear that!",
    "dieter.braun": "Writing the design doc before the spike saved us a week.\n\nThe trick: one page, three options, "
    "a clear recommendation.",
    "eva.schmidt": "Our month-end close got faster once we shared the checklist in one place. "
    "Other teams could use the same idea for releases.",
    "grace.okafor": 'I learned to ask "what would make this a yes?" in negotiations. It changed two deals.',
    "isha.patel": "Reading support tickets for an hour taught me more about our product than a month of specs.",
    "jay.rao": "Recording a 2-minute video instead of writing a long answer got customers unstuck faster.",
}


def _script(nudged: Nudged, when: datetime) -> list[tuple[str, bytes]]:
    """What this person sends back: (label, raw message)."""
    local = nudged.email.split("@")[0]
    first = nudged.name.split()[0]
    if local in ("ana.silva", "eva.schmidt", "jay.rao"):
        body = f"{ANSWERS[local]}\n\n{_quoted(nudged, when)}\n"
        return [("answer with quoted history", _reply(nudged, body, when))]
    if local in ("bruno.costa", "isha.patel"):
        body = f"{ANSWERS[local]}\n\n-- \n{nudged.name}\n{local.split('.')[1].title()} & Co, +1 555 0100\n"
        return [("answer with a signature", _reply(nudged, body, when))]
    if local in ("dieter.braun", "grace.okafor"):
        body = (
            f"{ANSWERS[local]}\n\nSent from my iPhone\n\n-----Original Message-----\n"
            f"From: nudger <nudger@{DOMAIN}>\nSent: Tuesday 10:00\nTo: {nudged.name}\n"
            f"Subject: {nudged.subject}\n\nHi {first}, {nudged.question}\n"
        )
        return [("answer from Outlook/iPhone", _reply(nudged, body, when))]
    if local == "harry.lewis":
        body = (
            f"private\nHonestly I struggled this week with the new budget tool and felt out of my depth.\n\n"
            f"{_quoted(nudged, when)}\n"
        )
        return [("private answer", _reply(nudged, body, when))]
    if local == "felix.wagner":
        body = "Ich bin bis zum 14. Dezember nicht im Büro. I am out of the office until 14 December."
        headers = {"Auto-Submitted": "auto-replied", "X-Auto-Response-Suppress": "All"}
        return [
            (
                "out-of-office auto-reply",
                _reply(
                    nudged, body, when, subject=f"Automatische Antwort: {nudged.subject}", headers=headers
                ),
            )
        ]
    if local == "kavya.iyer":
        return [("stop", _reply(nudged, "stop\n\n" + _quoted(nudged, when), when))]
    if local == "lena.nair":
        return [("bounce (mailbox gone)", _bounce(nudged, when))]
    return []  # carla.mendes stays silent


def _bounce(nudged: Nudged, when: datetime) -> bytes:
    boundary = "dsn-boundary-1"
    text = (
        f"From: Mail Delivery System <MAILER-DAEMON@mx.{DOMAIN}>\r\nTo: {nudged.envelope_from}\r\n"
        f"Subject: Undelivered Mail Returned to Sender\r\nDate: {format_datetime(when)}\r\n"
        f"Message-ID: {make_msgid(domain='mx.' + DOMAIN)}\r\nAuto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n"
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"\r\n\r\n'
        f"--{boundary}\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n\r\n"
        f"--{boundary}\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.{DOMAIN}\r\n\r\n"
        f"Final-Recipient: rfc822; {nudged.email}\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        f"Diagnostic-Code: smtp; 550 5.1.1 <{nudged.email}>: Recipient address rejected: User unknown\r\n\r\n"
        f"--{boundary}\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: {nudged.message_id}\r\n"
        f"Subject: {nudged.subject}\r\n\r\n--{boundary}--\r\n"
    )
    return text.encode("utf-8")


# ----------------------------------------------------------------------------- the run


class Demo:
    def __init__(self, out: Path, console: Console) -> None:
        self.out = out
        self.console = console
        self.started = wallclock.monotonic()
        self.clock = ManualClock(demo_start(datetime.now(UTC)))

    def step(self, text: str) -> None:
        elapsed = wallclock.monotonic() - self.started
        self.console.print(
            f"[dim]{elapsed:5.1f}s[/dim]  [bold]{text}[/bold]  [dim]({self.clock.now():%a %d %b %H:%M} UTC)[/dim]"
        )


async def _enqueue(s: Services, *jobs: str) -> None:
    assert s.redis is not None
    for job in jobs:
        await s.redis.enqueue_job(job)


async def _send_all(port: int, messages: list[tuple[str, str, bytes]]) -> None:
    """Deliver (mail_from, rcpt, raw) to nudger's listener over real SMTP."""
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=port, local_hostname="mx.demo") as client:
        for mail_from, rcpt, raw in messages:
            await client.sendmail(mail_from, [rcpt], raw)


async def run_demo(out: Path, console: Console) -> int:
    demo = Demo(out, console)
    emails = out / "emails"
    secret = pysecrets.token_urlsafe(32)
    secrets = Secrets(Secret(secret), Secret(""), Secret(""))
    async with local_redis(out) as redis_url, smtp_sink(emails) as (sink_port, sink):
        settings = demo_settings(redis_url, sink_port, out / "nudger.db")
        (out / "config.toml").write_text(_toml_note(redis_url, sink_port), encoding="utf-8")
        async with open_services(settings, secrets, clock=demo.clock) as s:
            return await _loop(demo, s, settings, secrets, sink)


def _toml_note(redis_url: str, sink_port: int) -> str:
    return (
        "# The demo builds its settings in code (nudger/demo.py); this note records its endpoints.\n"
        f"# redis = {redis_url!r}\n# smtp sink = 127.0.0.1:{sink_port}\n"
    )


async def _drain(demo: Demo, s: Services, settings: Settings, secrets: Secrets, *jobs: str) -> None:
    await _enqueue(s, *jobs)
    worker = build_worker(
        settings, secrets, burst=True, crons=False, clock=demo.clock, handle_signals=False, poll_delay=0.01
    )
    try:
        await worker.main()
    finally:
        await worker.close()


async def _loop(demo: Demo, s: Services, settings: Settings, secrets: Secrets, sink: SinkHandler) -> int:
    console = demo.console
    now = demo.clock.now
    async with transaction(s.sessions) as session:
        rows = [
            RosterRow(i + 2, f"{local}@{DOMAIN}", name, team, tz)
            for i, (local, name, team, tz) in enumerate(STAFF)
        ]
        await upsert_people(session, rows, settings.programmes, now(), consent_how="import:demo roster")
    demo.step(f"1. ASK     enrolled {len(STAFF)} people in 4 teams and 4 timezones; planning the round")
    await _drain(demo, s, settings, secrets, "plan")
    nudges = [m for m in sink.messages if m.rcpt_tos[0] != LD_ADDRESS]
    console.print(f"          {len(nudges)} nudges delivered through the outbox and arq to the SMTP sink")

    handler = InboundHandler(s.sessions, s.identity, s.keys, s.queue, now)
    port = free_port()
    server = await start_listener(handler, "127.0.0.1", port, max_bytes=10_000_000)
    try:
        demo.clock.advance(timedelta(hours=2))
        demo.step("2. LISTEN  people reply by email to nudger's SMTP listener")
        outgoing: list[tuple[str, str, bytes]] = []
        for message in nudges:
            nudged = _nudged(message)
            for label, raw in _script(nudged, now()):
                rcpt = nudged.envelope_from if label.startswith("bounce") else nudged.reply_to
                sender = "" if label.startswith("bounce") else nudged.email
                outgoing.append((sender, rcpt, raw))
                console.print(f"          {nudged.name:<14} → {label}")
        await _send_all(port, outgoing)
        await _drain(demo, s, settings, secrets)
        verdicts = await _verdicts(s)
        console.print("          verdicts: " + ", ".join(f"{k} {v}" for k, v in sorted(verdicts.items())))

        demo.clock.advance(timedelta(days=4))
        demo.step("3. CONNECT the reply window has closed: forming circles")
        before = len(sink.messages)
        await _drain(demo, s, settings, secrets, "connect")
        after = sink.messages[before:]
        intros = [m for m in after if " circle: " in str(message_from_bytes(m.raw)["Subject"])]
        circles = await _count(s, Circle)
        notes = len(after) - len(intros)
        console.print(
            f"          {circles} circles, {len(intros)} introductions sent; the private answer stays out"
            f" ({notes} kind note{'' if notes == 1 else 's'} to say so)"
        )

        demo.clock.advance(timedelta(hours=5))
        follow = await _follow_up(intros, now())
        if follow is not None:
            demo.step("          a member answers their circle; nudger relays it to the others")
            before = len(sink.messages)
            await _send_all(port, [follow])
            await _drain(demo, s, settings, secrets)
            console.print(
                f"          {len(sink.messages) - before} relays delivered ('Name via nudger', threaded)"
            )
    finally:
        server.close()
        await server.wait_closed()
        await handler.aclose()

    demo.clock.advance(timedelta(days=7))
    demo.step("4. REPORT  a week later, the L&D report")
    await _drain(demo, s, settings, secrets, "report")
    period = period_of(demo_start(datetime.now(UTC)).date())
    files = await build_report_files(s.sessions, settings.programmes[0], period, 5, now())
    (demo.out / "report.html").write_text(files["html"], encoding="utf-8")
    (demo.out / "report.json").write_text(files["json"], encoding="utf-8")
    (demo.out / "report.txt").write_text(files["text"], encoding="utf-8")
    return await _summary(demo, s, sink, json.loads(files["json"]))


async def _verdicts(s: Services) -> dict[str, int]:
    async with s.sessions() as session:
        rows = await session.exec(select(Inbound.verdict, func.count()).group_by(col(Inbound.verdict)))
        return {str(v): int(n) for v, n in rows.all()}


async def _count(s: Services, model: Any) -> int:
    async with s.sessions() as session:
        return int((await session.exec(select(func.count()).select_from(model))).one())


async def _follow_up(intros: list[SunkMessage], when: datetime) -> tuple[str, str, bytes] | None:
    """Ana answers her circle's introduction."""
    for message in intros:
        msg = message_from_bytes(message.raw)
        name, email = parseaddr(str(msg["To"]))
        if not email.startswith("ana."):
            continue
        nudged = Nudged(
            email,
            name,
            parseaddr(str(msg["Reply-To"]))[1],
            "",
            str(msg["Message-ID"]),
            str(msg["Subject"]),
            "",
        )
        body = (
            "Great to read these! Dieter, could you share that one-page design doc template? "
            "Eva, I'd love 15 minutes on your checklist.\n\n"
            f"On {format_datetime(when)}, nudger <nudger@{DOMAIN}> wrote:\n> Here is what the others wrote.\n"
        )
        return email, nudged.reply_to, _reply(nudged, body, when)
    return None


async def _summary(demo: Demo, s: Services, sink: SinkHandler, report: dict[str, Any]) -> int:
    async with s.sessions() as session:
        sent = int(
            (
                await session.exec(
                    select(func.count())
                    .select_from(Outbox)
                    .where(col(Outbox.status).in_([OutboxStatus.SENT, OutboxStatus.BOUNCED]))
                )
            ).one()
        )
        pending = int(
            (
                await session.exec(
                    select(func.count())
                    .select_from(Outbox)
                    .where(col(Outbox.status).in_(["pending", "sending"]))
                )
            ).one()
        )
    replies, posts = await _count(s, Reply), await _count(s, Post)
    table = Table(title="nudger demo", show_header=False)
    table.add_column(no_wrap=True)
    table.add_column(overflow="fold")
    for label, value in [
        ("emails sent (outbox → SMTP)", sent),
        ("answers stored", replies),
        ("circles formed", await _count(s, Circle)),
        ("circle posts relayed", posts),
        (
            "report: asked / answered",
            f"{report['participation']['asked']} / {report['participation']['answered']}",
        ),
        ("every email", f"{demo.out / 'emails'}/*.eml ({len(sink.messages)} files)"),
        ("the L&D report", f"{demo.out / 'report.html'} (+ .json, .txt)"),
        ("the database", f"{demo.out / 'nudger.db'}"),
    ]:
        table.add_row(label, str(value))
    demo.console.print(table)
    elapsed = wallclock.monotonic() - demo.started
    ok = pending == 0 and replies > 0 and posts > 0
    demo.console.print(f"{'done' if ok else 'INCOMPLETE'} in {elapsed:.1f}s")
    return 0 if ok else 1
