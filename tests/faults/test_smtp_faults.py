"""The relay misbehaves: a scripted aiosmtpd answers 421/450/451, 550 5.1.1, 550 5.7.26, or drops the
connection after DATA. The real arq worker sends (in-process, nudger's clock driven by the test; when
nudger's clock moves on, the jobs arq deferred are moved on with it)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlmodel import col, select

from nudger.app import Services, open_services
from nudger.clock import ManualClock
from nudger.config import Settings, parse_settings
from nudger.mail.outbox import backoff
from nudger.store.models import Nudge, NudgeStatus, Outbox, OutboxStatus, Person, PersonStatus
from nudger.worker import build_worker
from tests.faults.conftest import (
    START,
    RedisProcess,
    arq_redis,
    eventually,
    fault_settings,
    plan_round,
    report,
    secrets,
)
from tests.fixtures import DOMAIN
from tests.services import HOST, free_port

pytestmark = pytest.mark.slow

_MESSAGE_ID = re.compile(rb"^message-id:[ \t]*(<[^>\r\n]*>)", re.IGNORECASE | re.MULTILINE)
QUEUE = "arq:queue"


def addr(name: str) -> str:
    return f"{name}@{DOMAIN}"


@dataclass
class Attempt:
    rcpt: str
    message_id: str
    reply: str


@dataclass
class RelayScript:
    """Per recipient: a RCPT reply, a list of DATA replies to give in turn, or connections to drop
    after the message was received (the client never sees the 250)."""

    rcpt: dict[str, str] = field(default_factory=dict)
    data: dict[str, list[str]] = field(default_factory=dict)
    drop: Counter[str] = field(default_factory=Counter)
    attempts: list[Attempt] = field(default_factory=list)
    delivered: list[Attempt] = field(default_factory=list)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        reply = self.rcpt.get(address.lower())
        if reply:
            self.attempts.append(Attempt(address.lower(), "", reply))
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        rcpt = envelope.rcpt_tos[0].lower()
        raw = envelope.original_content or b""
        found = _MESSAGE_ID.search(raw.split(b"\r\n\r\n", 1)[0])
        message_id = found.group(1).decode() if found else ""
        script = self.data.get(rcpt)
        if script:
            reply = script.pop(0)
            self.attempts.append(Attempt(rcpt, message_id, reply))
            return reply
        self.delivered.append(Attempt(rcpt, message_id, "250"))
        if self.drop[rcpt] > 0:
            self.drop[rcpt] -= 1
            self.attempts.append(Attempt(rcpt, message_id, "(connection dropped after DATA)"))
            assert isinstance(server.transport, asyncio.Transport)
            server.transport.abort()
            return "250 2.0.0 OK (never heard)"
        self.attempts.append(Attempt(rcpt, message_id, "250"))
        return "250 2.0.0 OK"

    def tries(self, rcpt: str) -> list[Attempt]:
        return [a for a in self.attempts if a.rcpt == rcpt]


@dataclass
class Relay:
    settings: Settings
    services: Services
    clock: ManualClock
    script: RelayScript
    redis_url: str

    async def run_until_idle(self) -> None:
        """The real worker, until no job is due (deferred ones wait for nudger's clock to move on)."""
        worker = build_worker(
            self.settings, secrets(), clock=self.clock, crons=False, handle_signals=False, poll_delay=0.01
        )
        task = asyncio.create_task(worker.main())
        try:
            async with arq_redis(self.redis_url) as redis:

                async def idle() -> bool:
                    assert not task.done(), task
                    return int(await redis.zcount(QUEUE, "-inf", time.time() * 1000)) == 0

                assert await eventually(idle, 60, interval=0.05)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await worker.close()

    async def advance_to_next_attempt(self) -> bool:
        """Move nudger's clock to the next retry; arq's deferred jobs become due with it."""
        async with self.services.sessions() as session:
            nxt = (
                await session.exec(
                    select(Outbox.next_attempt_at)
                    .where(col(Outbox.status) == OutboxStatus.PENDING)
                    .order_by(col(Outbox.next_attempt_at))
                )
            ).first()
        if nxt is None:
            return False
        self.clock.set(max(nxt, self.clock.now()))
        async with arq_redis(self.redis_url) as redis:
            now_ms = time.time() * 1000
            for job, score in await redis.zrange(QUEUE, 0, -1, withscores=True):
                if score > now_ms:
                    await redis.zadd(QUEUE, {job: now_ms})
        return True

    async def row(self, name: str) -> Outbox:
        async with self.services.sessions() as session:
            return (await session.exec(select(Outbox).where(col(Outbox.to_addr) == addr(name)))).one()

    async def person(self, name: str) -> Person:
        async with self.services.sessions() as session:
            return (await session.exec(select(Person).where(col(Person.email) == addr(name)))).one()

    async def nudge(self, name: str) -> Nudge:
        row = await self.row(name)
        async with self.services.sessions() as session:
            found = await session.get(Nudge, row.nudge_id)
            assert found is not None
            return found


@contextlib.asynccontextmanager
async def relay_with(
    script: RelayScript, db_url: str, redis: RedisProcess, names: list[str]
) -> AsyncIterator[Relay]:
    port = free_port()
    server = await asyncio.get_running_loop().create_server(
        partial(SMTP, script, hostname="relay.test"), host=HOST, port=port
    )
    try:
        raw_settings = fault_settings(db_url, redis.url, port)
        await plan_round(raw_settings, [addr(n) for n in names])
        settings = parse_settings(raw_settings, "fault settings")
        clock = ManualClock(START)
        async with open_services(settings, secrets(), clock=clock) as services:
            yield Relay(settings, services, clock, script, redis.url)
    finally:
        server.close()
        await server.wait_closed()


async def test_relay_faults_retry_suppress_alert_and_never_lose(
    pg_url: str, redis_proc: RedisProcess, caplog: pytest.LogCaptureFixture
) -> None:
    script = RelayScript(
        rcpt={addr("unknown"): "550 5.1.1 <unknown@corp.test>: Recipient address rejected: User unknown"},
        data={
            addr("throttled"): [
                "421 4.7.0 Too many messages, slow down",
                "450 4.2.1 Mailbox busy, try again later",
                "451 4.3.0 Local error in processing",
            ],
            addr("policy"): ["550 5.7.26 Unauthenticated email is not accepted due to DMARC policy"],
            addr("stuck"): ["451 4.3.0 Local error in processing"] * 20,
        },
        drop=Counter({addr("dropped"): 1}),
    )
    names = ["fine", "throttled", "unknown", "policy", "dropped", "stuck"]
    caplog.set_level(logging.INFO, logger="nudger")
    async with relay_with(script, pg_url, redis_proc, names) as relay:
        schedule: list[timedelta] = []
        await relay.run_until_idle()
        while await relay.advance_to_next_attempt():
            await relay.run_until_idle()
            throttled = await relay.row("throttled")
            if throttled.status == OutboxStatus.PENDING:
                schedule.append(throttled.next_attempt_at - relay.clock.now())
        rows = {n: await relay.row(n) for n in names}
        people = {n: await relay.person(n) for n in names}
        stuck_nudge = await relay.nudge("stuck")

    delivered = Counter(a.rcpt for a in script.delivered)
    for name in names:
        tries = script.tries(addr(name))
        ids = {a.message_id for a in tries if a.message_id}
        report(
            {
                "fine": "48 control",
                "throttled": "48 SMTP 4xx",
                "unknown": "49 SMTP 550 5.1.1",
                "policy": "49 SMTP 550 5.7.26",
                "dropped": "50 connection dropped after DATA",
                "stuck": "48 SMTP 451 forever",
            }[name],
            "; ".join(" ".join(a.reply.split()[:2]) if a.reply[:1].isdigit() else a.reply for a in tries),
            attempts=rows[name].attempts,
            outbox=rows[name].status,
            person=people[name].status,
            received=delivered[addr(name)],
            duplicated=max(delivered[addr(name)] - 1, 0),
            lost=int(delivered[addr(name)] == 0 and rows[name].status == OutboxStatus.SENT),
            message_ids=len(ids),
        )
        assert len(ids) <= 1, f"{name}: every attempt carries the row's one Message-ID"
        if ids:
            assert ids == {rows[name].message_id}

    # 421 / 450 / 451: retried with growing backoff, delivered once on the fourth try
    assert [a.reply[:3] for a in script.tries(addr("throttled"))] == ["421", "450", "451", "250"]
    assert (rows["throttled"].status, rows["throttled"].attempts) == (OutboxStatus.SENT, 4)
    assert schedule[:2] == [backoff(2), backoff(3)]
    assert delivered[addr("throttled")] == 1
    # 550 5.1.1: the recipient is gone: bounced, suppressed, never retried
    assert (rows["unknown"].status, rows["unknown"].attempts) == (OutboxStatus.BOUNCED, 1)
    assert people["unknown"].status == PersonStatus.SUPPRESSED
    # 550 5.7.x: our mail or set-up is refused: failed, the person untouched, an error for the operator
    assert (rows["policy"].status, rows["policy"].attempts) == (OutboxStatus.FAILED, 1)
    assert people["policy"].status == PersonStatus.ACTIVE
    assert any(
        r.levelno >= logging.ERROR and "5.7.26" in r.getMessage() and "not the recipient" in r.getMessage()
        for r in caplog.records
    )
    # dropped after DATA: retried; the duplicate is accepted, a loss is not
    assert rows["dropped"].status == OutboxStatus.SENT
    assert delivered[addr("dropped")] == 2
    # 451 for ever: the row gives up (failed) and the nudge is marked expired, not retried for ever
    assert rows["stuck"].status == OutboxStatus.FAILED
    assert stuck_nudge.status == NudgeStatus.EXPIRED
    assert delivered[addr("stuck")] == 0
    assert (rows["fine"].status, delivered[addr("fine")]) == (OutboxStatus.SENT, 1)
