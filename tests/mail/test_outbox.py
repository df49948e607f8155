"""The outbox against a real SMTP server (aiosmtpd on a free port): states, retries, idempotence."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from email import message_from_bytes

import pytest
from sqlmodel import select

from nudger.config import SmtpConfig
from nudger.errors import PermanentSendError, TransientSendError
from nudger.mail.message import Outgoing, build_message
from nudger.mail.outbox import BOUNCE_THRESHOLD, Outcome, add_to_outbox, deliver, deliver_many, stale_work
from nudger.mail.smtp import SmtpTransport, classify_smtp_reply
from nudger.store.db import SessionMaker, transaction
from nudger.store.models import Outbox, OutboxStatus, Person, PersonStatus
from tests.fixtures import SmtpServer

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def transport(server: SmtpServer) -> SmtpTransport:
    from nudger.config import Secret

    return SmtpTransport(SmtpConfig(host="127.0.0.1", port=server.port, connections=2), Secret(""))


def mail(key: str, to: str, person_id: int | None = None, expires: datetime | None = None) -> Outgoing:
    raw = build_message(
        from_name="nudger",
        from_address="nudger@corp.test",
        to_name="",
        to_address=to,
        subject="Hello",
        text="Hi",
        html=None,
        message_id=f"<{key}@corp.test>",
        date=NOW,
    )
    return Outgoing(
        key, "nudge", to, "bounces@reply.corp.test", f"<{key}@corp.test>", raw, person_id, expires
    )


async def add_person(sessions: SessionMaker, email: str, status: PersonStatus = PersonStatus.ACTIVE) -> int:
    async with transaction(sessions) as session:
        person = Person(email=email, name="P", status=status, created_at=NOW)
        session.add(person)
        await session.flush()
        assert person.id is not None
        return person.id


async def queue_one(sessions: SessionMaker, m: Outgoing) -> int:
    async with transaction(sessions) as session:
        [(outbox_id, _)] = await add_to_outbox(session, [m], NOW)
    return outbox_id


async def row(sessions: SessionMaker, outbox_id: int) -> Outbox:
    async with sessions() as session:
        found = await session.get(Outbox, outbox_id)
        assert found is not None
        return found


async def test_delivers_once_even_when_run_twice(sessions: SessionMaker, smtp_server: SmtpServer) -> None:
    t = transport(smtp_server)
    outbox_id = await queue_one(sessions, mail("a1", "a@corp.test"))
    first = await deliver(sessions, t, outbox_id, NOW)
    second = await deliver(sessions, t, outbox_id, NOW)
    await t.close()
    assert first.outcome == Outcome.SENT
    assert second.outcome == Outcome.NOTHING_TO_DO
    assert len(smtp_server.handler.received) == 1
    got = smtp_server.handler.received[0]
    assert got.rcpt_tos == ["a@corp.test"]
    assert got.mail_from == "bounces@reply.corp.test"
    assert message_from_bytes(got.raw)["Message-ID"] == "<a1@corp.test>"
    stored = await row(sessions, outbox_id)
    assert (stored.status, stored.attempts, stored.sent_at) == (OutboxStatus.SENT, 1, NOW)


async def test_same_key_is_queued_once(sessions: SessionMaker) -> None:
    async with transaction(sessions) as session:
        first = await add_to_outbox(session, [mail("k", "a@corp.test")], NOW)
        again = await add_to_outbox(session, [mail("k", "a@corp.test")], NOW)
    assert len(first) == 1
    assert again == []


async def test_not_due_rows_wait(sessions: SessionMaker, smtp_server: SmtpServer) -> None:
    async with transaction(sessions) as session:
        [(outbox_id, _when)] = await add_to_outbox(
            session, [mail("later", "a@corp.test")], NOW, send_at=NOW + timedelta(hours=2)
        )
    result = await deliver(sessions, transport(smtp_server), outbox_id, NOW)
    assert result.outcome == Outcome.NOT_DUE
    assert result.retry_in == timedelta(hours=2)
    assert smtp_server.handler.received == []


@pytest.mark.parametrize(
    "reply", ["421 4.7.0 Try again later", "450 4.2.1 Mailbox busy", "451 4.3.0 Local error"]
)
async def test_transient_reply_is_retried_with_backoff_and_same_message_id(
    sessions: SessionMaker, smtp_server: SmtpServer, reply: str
) -> None:
    smtp_server.handler.data_replies["b@corp.test"] = [reply]
    t = transport(smtp_server)
    outbox_id = await queue_one(sessions, mail("b1", "b@corp.test"))
    first = await deliver(sessions, t, outbox_id, NOW)
    assert first.outcome == Outcome.RETRY
    assert first.retry_in is not None
    assert first.retry_in > timedelta(0)
    pending = await row(sessions, outbox_id)
    assert pending.status == OutboxStatus.PENDING
    assert pending.next_attempt_at == NOW + first.retry_in
    assert reply.split()[0] in pending.last_error
    later = NOW + first.retry_in
    second = await deliver(sessions, t, outbox_id, later)
    await t.close()
    assert second.outcome == Outcome.SENT
    assert [message_from_bytes(r.raw)["Message-ID"] for r in smtp_server.handler.received] == [
        "<b1@corp.test>"
    ]


async def test_transient_failures_give_up_when_the_question_expires(
    sessions: SessionMaker, smtp_server: SmtpServer
) -> None:
    smtp_server.handler.data_replies["c@corp.test"] = ["451 4.3.0 busy"] * 3
    outbox_id = await queue_one(sessions, mail("c1", "c@corp.test", expires=NOW + timedelta(seconds=30)))
    result = await deliver(sessions, transport(smtp_server), outbox_id, NOW)
    assert result.outcome == Outcome.FAILED
    assert (await row(sessions, outbox_id)).status == OutboxStatus.FAILED


async def test_unknown_recipient_bounces_and_scores_the_person(
    sessions: SessionMaker, smtp_server: SmtpServer
) -> None:
    person_id = await add_person(sessions, "gone@corp.test")
    smtp_server.handler.rcpt_replies["gone@corp.test"] = "550 5.1.1 <gone@corp.test>: user unknown"
    t = transport(smtp_server)
    outbox_id = await queue_one(sessions, mail("g1", "gone@corp.test", person_id))
    result = await deliver(sessions, t, outbox_id, NOW)
    assert result.outcome == Outcome.BOUNCED
    assert (await row(sessions, outbox_id)).status == OutboxStatus.BOUNCED
    # one hard bounce suppresses: the next mail to them is not even attempted
    later = await queue_one(sessions, mail("g2", "gone@corp.test", person_id))
    assert (await deliver(sessions, t, later, NOW)).outcome == Outcome.SKIPPED
    await t.close()
    async with sessions() as session:
        person = await session.get(Person, person_id)
    assert person is not None
    assert person.bounce_score == BOUNCE_THRESHOLD
    assert person.status == PersonStatus.SUPPRESSED


async def test_policy_rejection_fails_without_blaming_the_recipient(
    sessions: SessionMaker, smtp_server: SmtpServer
) -> None:
    person_id = await add_person(sessions, "dmarc@corp.test")
    smtp_server.handler.data_replies["dmarc@corp.test"] = ["550 5.7.26 Unauthenticated email is not accepted"]
    outbox_id = await queue_one(sessions, mail("d1", "dmarc@corp.test", person_id))
    result = await deliver(sessions, transport(smtp_server), outbox_id, NOW)
    assert result.outcome == Outcome.FAILED
    async with sessions() as session:
        person = await session.get(Person, person_id)
    assert person is not None
    assert (person.status, person.bounce_score) == (PersonStatus.ACTIVE, 0)


async def test_connection_refused_is_transient(sessions: SessionMaker) -> None:
    from nudger.config import Secret
    from tests.services import free_port

    t = SmtpTransport(SmtpConfig(host="127.0.0.1", port=free_port(), timeout_seconds=2), Secret(""))
    outbox_id = await queue_one(sessions, mail("e1", "e@corp.test"))
    result = await deliver(sessions, t, outbox_id, NOW)
    assert result.outcome == Outcome.RETRY
    assert "Connect" in result.detail or "refused" in result.detail.lower()


async def test_left_or_paused_people_are_skipped_not_sent(
    sessions: SessionMaker, smtp_server: SmtpServer
) -> None:
    left = await add_person(sessions, "left@corp.test", PersonStatus.LEFT)
    paused = await add_person(sessions, "paused@corp.test", PersonStatus.PAUSED)
    t = transport(smtp_server)
    for key, address, pid in (("l1", "left@corp.test", left), ("p1", "paused@corp.test", paused)):
        outbox_id = await queue_one(sessions, mail(key, address, pid))
        result = await deliver(sessions, t, outbox_id, NOW)
        assert result.outcome == Outcome.SKIPPED
        assert (await row(sessions, outbox_id)).status == OutboxStatus.SKIPPED
    assert smtp_server.handler.received == []


async def test_sweeper_finds_lost_and_stuck_rows(sessions: SessionMaker) -> None:
    lost = await queue_one(sessions, mail("lost", "x@corp.test"))
    stuck = await queue_one(sessions, mail("stuck", "y@corp.test"))
    async with transaction(sessions) as session:
        r = await session.get(Outbox, stuck)
        assert r is not None
        r.status, r.claimed_at = OutboxStatus.SENDING, NOW - timedelta(hours=1)
    async with transaction(sessions) as session:
        found = dict(await stale_work(session, NOW))
    assert set(found) == {lost, stuck}
    async with sessions() as session:
        statuses = (await session.exec(select(Outbox.status).where(Outbox.id == stuck))).all()
    assert statuses == [OutboxStatus.PENDING]


async def test_one_sweep_hands_back_a_large_round_whose_jobs_were_lost(sessions: SessionMaker) -> None:
    # Redis emptied in the middle of a big round: the next pass must not trickle it out 1 000 a minute
    async with transaction(sessions) as session:
        queued = await add_to_outbox(session, [mail(f"r{i}", f"p{i}@corp.test") for i in range(2500)], NOW)
    async with transaction(sessions) as session:
        found = await stale_work(session, NOW + timedelta(minutes=1))
    assert sorted(i for i, _ in found) == sorted(i for i, _ in queued)


@pytest.mark.parametrize(
    ("code", "message", "at_recipient", "kind", "recipient_specific"),
    [
        (421, "4.7.0 throttled", False, TransientSendError, None),
        (452, "4.2.2 mailbox full", True, TransientSendError, None),
        (535, "5.7.8 authentication failed", False, TransientSendError, None),  # our setup: retry, alert
        (550, "5.1.1 user unknown", True, PermanentSendError, True),
        (550, "5.1.1 user unknown", False, PermanentSendError, True),
        (550, "5.7.26 DMARC policy", False, PermanentSendError, False),
        (554, "5.7.1 relay denied", True, PermanentSendError, False),
        (550, "no such user", True, PermanentSendError, True),
        (550, "Message rejected as spam", False, PermanentSendError, False),  # after DATA: not their fault
        (553, "Sender address rejected", False, PermanentSendError, False),  # at MAIL FROM
    ],
)
def test_smtp_replies_are_classified(
    code: int, message: str, at_recipient: bool, kind: type[Exception], recipient_specific: bool | None
) -> None:
    error = classify_smtp_reply(code, message, at_recipient=at_recipient)
    assert isinstance(error, kind)
    if isinstance(error, PermanentSendError):
        assert error.recipient_specific is recipient_specific


async def test_a_pause_with_an_end_date_is_over_once_it_has_passed(
    sessions: SessionMaker, smtp_server: SmtpServer
) -> None:
    person_id = await add_person(sessions, "back@corp.test", PersonStatus.PAUSED)
    async with transaction(sessions) as session:
        p = await session.get(Person, person_id)
        assert p is not None
        p.paused_until = NOW + timedelta(days=7)
    t = transport(smtp_server)
    during = await queue_one(sessions, mail("during", "back@corp.test", person_id))
    assert (await deliver(sessions, t, during, NOW)).outcome == Outcome.SKIPPED
    after = await queue_one(sessions, mail("after", "back@corp.test", person_id))
    assert (await deliver(sessions, t, after, NOW + timedelta(days=8))).outcome == Outcome.SENT
    await t.close()


# ------------------------------------------------------------------------------------ batches


async def test_a_batch_sends_each_row_once_and_gives_every_row_its_own_outcome(
    sessions: SessionMaker, smtp_server: SmtpServer
) -> None:
    paused = await add_person(sessions, "paused@corp.test", PersonStatus.PAUSED)
    gone = await add_person(sessions, "gone@corp.test")
    smtp_server.handler.rcpt_replies["gone@corp.test"] = "550 5.1.1 user unknown"
    smtp_server.handler.data_replies["busy@corp.test"] = ["451 4.3.0 busy"]
    ok = [await queue_one(sessions, mail(f"ok{i}", f"ok{i}@corp.test")) for i in range(6)]
    skipped = await queue_one(sessions, mail("pz", "paused@corp.test", paused))
    bounced = await queue_one(sessions, mail("gz", "gone@corp.test", gone))
    busy = await queue_one(sessions, mail("bz", "busy@corp.test"))
    async with transaction(sessions) as session:
        [(later, _)] = await add_to_outbox(
            session, [mail("lz", "later@corp.test")], NOW, send_at=NOW + timedelta(hours=1)
        )
    ids = [*ok, skipped, bounced, busy, later, 999_999]
    t = transport(smtp_server)
    first = await deliver_many(sessions, t, ids, NOW, concurrency=3)
    again = await deliver_many(sessions, t, ids, NOW, concurrency=3)  # a job run twice
    await t.close()
    assert {i: first[i].outcome for i in ids} == {
        **{i: Outcome.SENT for i in ok},
        skipped: Outcome.SKIPPED,
        bounced: Outcome.BOUNCED,
        busy: Outcome.RETRY,
        later: Outcome.NOT_DUE,
        999_999: Outcome.NOTHING_TO_DO,
    }
    assert first[later].retry_in == timedelta(hours=1)
    assert {again[i].outcome for i in [*ok, skipped, bounced]} == {Outcome.NOTHING_TO_DO}
    assert sorted(r.rcpt_tos[0] for r in smtp_server.handler.received) == [
        f"ok{i}@corp.test" for i in range(6)
    ]
    assert [((r := await row(sessions, i)).status, r.sent_at) for i in ok] == [(OutboxStatus.SENT, NOW)] * 6
    assert (await row(sessions, busy)).status == OutboxStatus.PENDING


async def test_rows_a_batch_runs_out_of_time_for_go_back_unsent_and_uncounted(
    sessions: SessionMaker, smtp_server: SmtpServer
) -> None:
    ids = [await queue_one(sessions, mail(f"t{i}", f"t{i}@corp.test")) for i in range(4)]
    t = transport(smtp_server)
    result = await deliver_many(sessions, t, ids, NOW, budget=timedelta(seconds=-1))
    assert {r.outcome for r in result.values()} == {Outcome.NOT_DUE}
    assert {r.retry_in for r in result.values()} == {timedelta(0)}
    assert smtp_server.handler.received == []
    assert [((s := await row(sessions, i)).status, s.attempts) for i in ids] == [
        (OutboxStatus.PENDING, 0)
    ] * 4
    retried = await deliver_many(sessions, t, ids, NOW)
    await t.close()
    assert {r.outcome for r in retried.values()} == {Outcome.SENT}
    assert len(smtp_server.handler.received) == 4


#: a SQLite trigger that makes "mark as sent" fail, as a database that went away would
_REFUSE_SENT = (
    "CREATE TRIGGER refuse_sent BEFORE UPDATE ON outbox WHEN NEW.status = 'sent' "
    "BEGIN SELECT RAISE(ABORT, 'the disk is away'); END"
)


async def test_when_sent_mail_cannot_be_recorded_the_batch_stops_sending(
    sessions: SessionMaker, smtp_server: SmtpServer
) -> None:
    """Mail sent but not recorded is sent again later: the batch must not add to it."""
    from sqlalchemy import text

    ids = [await queue_one(sessions, mail(f"w{i}", f"w{i}@corp.test")) for i in range(40)]
    async with transaction(sessions) as session:
        await session.exec(text(_REFUSE_SENT))  # type: ignore[call-overload]

    class SlowTransport:
        """The real SMTP server, a little slower than the write-back's period."""

        def __init__(self) -> None:
            self.inner = transport(smtp_server)

        async def send(self, envelope_from: str, to_addr: str, raw: bytes) -> str:
            await asyncio.sleep(0.01)
            return await self.inner.send(envelope_from, to_addr, raw)

        async def close(self) -> None:
            await self.inner.close()

    t = SlowTransport()
    with pytest.raises(Exception, match="the disk is away"):
        await deliver_many(sessions, t, ids, NOW, concurrency=1)
    await asyncio.sleep(0.6)  # long enough for the other 30-odd sends, were anything still sending
    await t.close()
    sent = len(smtp_server.handler.received)
    assert 0 < sent < 10  # it stopped within a write-back or two, not after all 40
