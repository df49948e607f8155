"""Replies to an invitation (an INVITE token in the reply address), processed against real SQLite.

"yes" in English, German, French or Spanish from the invitation's owner joins (consent recorded,
how="invite:reply", one welcome notice); "stop" declines; anything else is kept as `invite_reply` and
is never an answer; a stranger's "yes" joins nobody.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

import pytest
from sqlmodel import col, select

from nudger.inbound.accept import Position, store_raw
from nudger.inbound.inbox import list_messages
from nudger.inbound.ingest import IngestDeps, process_inbound
from nudger.mail.compose import Composer
from nudger.mail.templating import make_environment
from nudger.mail.tokens import TokenKind
from nudger.queue import RecordingQueue
from nudger.store.db import SessionMaker, transaction
from nudger.store.models import Audit, Inbound, InboundStatus, Outbox, Person, PersonStatus, Reply
from tests.fixtures import identity, keys, make_settings

NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


@dataclass
class Invited:
    sessions: SessionMaker
    deps: IngestDeps
    person_id: int

    @property
    def address(self) -> str:
        return identity().reply_address(keys().token(TokenKind.INVITE, self.person_id))

    async def person(self) -> Person:
        async with self.sessions() as session:
            found = await session.get(Person, self.person_id)
        assert found is not None
        return found


@pytest.fixture
async def invited(sessions: SessionMaker) -> Invited:
    async with transaction(sessions) as session:
        ana = Person(email="ana@corp.test", name="Ana Silva", status=PersonStatus.INVITED, created_at=NOW)
        session.add(ana)
        await session.flush()
        ana_id = ana.id or 0
    composer = Composer(make_environment(), identity(), keys())
    deps = IngestDeps(composer, {p.key: p for p in make_settings().programmes})
    return Invited(sessions, deps, ana_id)


def reply(body: str, *, to: str, sender: str = "Ana Silva <ana@corp.test>", subject: str = "") -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject or "Re: Invitation: Weekly reflection (reply yes to join)"
    msg["Date"] = format_datetime(NOW)
    msg["Message-ID"] = make_msgid(domain="mail.corp.test")
    msg.set_content(body)
    return msg.as_bytes()


async def ingest(w: Invited, raw: bytes) -> Inbound:
    async with transaction(w.sessions) as session:
        inbound_id = await store_raw(session, raw, Position("smtp"), NOW)
    assert inbound_id is not None
    await process_inbound(w.sessions, w.deps, RecordingQueue(), inbound_id, NOW)
    async with w.sessions() as session:
        row = await session.get(Inbound, inbound_id)
    assert row is not None
    assert row.status == InboundStatus.PROCESSED
    return row


async def notices(w: Invited) -> list[str]:
    async with w.sessions() as session:
        return list((await session.exec(select(Outbox.key).where(col(Outbox.kind) == "notice"))).all())


QUOTE = "\n\nOn Tue, 1 Dec 2026, nudger <nudger@corp.test> wrote:\n> You're invited to Weekly reflection\n"


@pytest.mark.parametrize(
    "body",
    [
        "yes",
        "Yes please!",
        "Yes, count me in 👍\n\nAna",
        "I'm in.",
        "Ja, gerne!",
        "Ich bin dabei",
        "Oui, avec plaisir",
        "D'accord !",
        "Sí, me apunto",
        "si",
    ],
)
async def test_yes_joins_and_records_consent(invited: Invited, body: str) -> None:
    row = await ingest(invited, reply(body + QUOTE, to=invited.address))
    assert (row.verdict, row.person_id) == ("command", invited.person_id)
    person = await invited.person()
    assert (person.status, person.consent_at, person.consent_how, person.consent_text_version) == (
        PersonStatus.ACTIVE,
        NOW,
        "invite:reply",
        "v1",
    )
    assert await notices(invited) == [f"notice:{invited.person_id}:join:{NOW.date()}"]


async def test_yes_twice_changes_nothing_more(invited: Invited) -> None:
    await ingest(invited, reply("yes", to=invited.address))
    row = await ingest(invited, reply("Yes!", to=invited.address))
    assert (row.verdict, row.reason) == ("command", "join (already)")
    async with invited.sessions() as session:
        audits = (
            await session.exec(select(Audit.action).where(col(Audit.person_id) == invited.person_id))
        ).all()
    assert list(audits) == ["consent"]
    assert len(await notices(invited)) == 1


@pytest.mark.parametrize(
    "body",
    [
        "Who will see my answers?",
        "No thanks",
        "Yes, but first tell me who reads the answers and how long you keep them.",
        "ok",
        "Maybe later",
    ],
)
async def test_anything_else_is_kept_but_never_an_answer(invited: Invited, body: str) -> None:
    row = await ingest(invited, reply(body, to=invited.address))
    assert (row.verdict, row.person_id) == ("invite_reply", invited.person_id)
    assert (await invited.person()).status == PersonStatus.INVITED
    async with invited.sessions() as session:
        assert (await session.exec(select(Reply))).all() == []
    assert await notices(invited) == []


async def test_stop_declines(invited: Invited) -> None:
    row = await ingest(invited, reply("stop", to=invited.address))
    assert row.verdict == "command"
    person = await invited.person()
    assert (person.status, person.consent_at) == (PersonStatus.LEFT, None)


async def test_a_strangers_yes_joins_nobody(invited: Invited) -> None:
    row = await ingest(invited, reply("yes", to=invited.address, sender="Mallory <mallory@evil.test>"))
    assert row.verdict == "quarantine"
    assert (await invited.person()).status == PersonStatus.INVITED


async def test_an_empty_reply_saying_yes_in_the_subject_joins(invited: Invited) -> None:
    await ingest(invited, reply("", to=invited.address, subject="Re: yes"))
    assert (await invited.person()).status == PersonStatus.ACTIVE


async def test_a_suppressed_address_cannot_join_by_reply(invited: Invited) -> None:
    async with transaction(invited.sessions) as session:
        person = await session.get(Person, invited.person_id)
        assert person is not None
        person.status = PersonStatus.SUPPRESSED
    row = await ingest(invited, reply("yes", to=invited.address))
    assert row.reason == "join refused: the person is suppressed"
    assert (await invited.person()).status == PersonStatus.SUPPRESSED


async def test_a_question_from_an_invitee_is_listed_for_an_operator(invited: Invited) -> None:
    await ingest(invited, reply("Who will see my answers?", to=invited.address))
    [row] = await list_messages(invited.sessions)
    assert row.verdict == "invite_reply"
