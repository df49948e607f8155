"""The consent flow on a real database: invitations queued once per text version, imports that invite
instead of pre-consenting, and pauses that end at the start of the person's own day."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
from sqlmodel import col, select

from nudger.mail.compose import Composer
from nudger.mail.templating import make_environment
from nudger.mail.tokens import TokenKind
from nudger.programmes.consent import import_invited, invite_people, pause_end
from nudger.programmes.roster import RosterRow, upsert_people
from nudger.queue import RecordingQueue
from nudger.store.db import SessionMaker, transaction
from nudger.store.models import Audit, Enrolment, Outbox, Person, PersonStatus
from tests.fixtures import identity, keys, make_settings

NOW = datetime(2026, 3, 3, 9, 0, tzinfo=UTC)
NAMES = {"weekly": "Weekly reflection"}


@pytest.mark.parametrize(
    ("now", "timezone", "days", "ends"),
    [
        # Paris moves to summer time on 29 March: the pause still ends at local midnight
        (
            datetime(2026, 3, 3, 9, 0, tzinfo=UTC),
            "Europe/Paris",
            28,
            datetime(2026, 3, 30, 22, 0, tzinfo=UTC),
        ),
        # and back to winter time on 25 October
        (
            datetime(2026, 10, 10, 9, 0, tzinfo=UTC),
            "Europe/Paris",
            28,
            datetime(2026, 11, 6, 23, 0, tzinfo=UTC),
        ),
        # New York's spring change (8 March), late in the local evening: the local date counts
        (
            datetime(2026, 3, 4, 3, 0, tzinfo=UTC),
            "America/New_York",
            7,
            datetime(2026, 3, 10, 4, 0, tzinfo=UTC),
        ),
        (
            datetime(2026, 3, 3, 20, 0, tzinfo=UTC),
            "Asia/Kolkata",
            1,
            datetime(2026, 3, 4, 18, 30, tzinfo=UTC),
        ),
        (datetime(2026, 3, 3, 9, 0, tzinfo=UTC), "Not/AZone", 28, datetime(2026, 3, 31, 0, 0, tzinfo=UTC)),
    ],
)
def test_a_pause_ends_at_the_start_of_the_persons_day(
    now: datetime, timezone: str, days: int, ends: datetime
) -> None:
    assert pause_end(now, timezone, days) == ends


# ----------------------------------------------------------------------------------------- imports


def row(line: int, name: str, team: str = "Eng") -> RosterRow:
    return RosterRow(line, f"{name}@corp.test", name.title(), team, "Europe/Paris")


async def people(sessions: SessionMaker) -> dict[str, Person]:
    async with sessions() as session:
        return {p.email.split("@")[0]: p for p in (await session.exec(select(Person))).all()}


async def actions(sessions: SessionMaker, person_id: int | None) -> list[str]:
    async with sessions() as session:
        rows = await session.exec(select(Audit.action).where(col(Audit.person_id) == person_id))
        return list(rows.all())


async def test_an_invite_import_invites_new_people_and_leaves_others_alone(sessions: SessionMaker) -> None:
    programmes = make_settings().programmes
    async with transaction(sessions) as session:
        await upsert_people(session, [row(2, "ana")], programmes, NOW, consent_how="import:hr.csv")
    async with transaction(sessions) as session:
        result, invited = await import_invited(
            session, [row(2, "ana"), row(3, "ben")], programmes, NOW, source="staff.csv"
        )
    assert (result.created, result.updated, invited) == (1, 1, 1)
    found = await people(sessions)
    ana, ben = found["ana"], found["ben"]
    assert (ana.status, ana.consent_how) == (PersonStatus.ACTIVE, "import:hr.csv")
    assert (ben.status, ben.consent_at, ben.consent_how, ben.consent_text_version) == (
        PersonStatus.INVITED,
        None,
        "",
        "",
    )
    assert await actions(sessions, ben.id) == ["invited"]  # never a consent they did not give
    async with sessions() as session:
        enrolled = (await session.exec(select(Enrolment).where(col(Enrolment.person_id) == ben.id))).all()
    assert [e.programme for e in enrolled] == ["weekly"]  # enrolled, but not asked until they join


# ----------------------------------------------------------------------------------------- invitations


async def invite_world(sessions: SessionMaker) -> None:
    async with transaction(sessions) as session:
        await import_invited(
            session, [row(2, "ana"), row(3, "ben"), row(4, "cy")], make_settings().programmes, NOW, source="x"
        )
        await upsert_people(session, [row(5, "dee")], make_settings().programmes, NOW, consent_how="import:x")


def composer(base_url: str = "https://nudger.corp.test") -> Composer:
    return Composer(make_environment(), replace(identity(), base_url=base_url), keys())


async def outbox(sessions: SessionMaker) -> list[Outbox]:
    async with sessions() as session:
        return list((await session.exec(select(Outbox).order_by(col(Outbox.id)))).all())


async def test_invitations_are_queued_once(sessions: SessionMaker) -> None:
    await invite_world(sessions)
    queue = RecordingQueue()
    first = await invite_people(sessions, composer(), queue, NAMES, NOW)
    assert (first.queued, first.already) == (3, 0)
    rows = await outbox(sessions)
    assert [r.to_addr for r in rows] == ["ana@corp.test", "ben@corp.test", "cy@corp.test"]
    assert {r.kind for r in rows} == {"invite"}
    assert rows[0].key == f"invite:{rows[0].person_id}:v1"
    assert [i for i, _ in queue.sends] == [r.id for r in rows]
    again = await invite_people(sessions, composer(), queue, NAMES, NOW)
    assert (again.queued, again.already) == (0, 3)
    assert len(await outbox(sessions)) == 3
    assert len(queue.sends) == 3


async def test_a_new_text_version_invites_those_still_not_in(sessions: SessionMaker) -> None:
    await invite_world(sessions)
    await invite_people(sessions, composer(), RecordingQueue(), NAMES, NOW)
    async with transaction(sessions) as session:
        ana = (await session.exec(select(Person).where(col(Person.email) == "ana@corp.test"))).one()
        ana.status = PersonStatus.ACTIVE
    result = await invite_people(sessions, composer(), RecordingQueue(), NAMES, NOW, text_version="v2")
    assert result.queued == 2
    assert [r.key.rsplit(":", 1)[1] for r in await outbox(sessions)] == ["v1", "v1", "v1", "v2", "v2"]


async def test_named_people_who_are_not_invited_are_reported_not_mailed(sessions: SessionMaker) -> None:
    await invite_world(sessions)
    result = await invite_people(
        sessions,
        composer(),
        RecordingQueue(),
        NAMES,
        NOW,
        emails=["BEN@corp.test", "dee@corp.test", "zed@corp.test"],
    )
    assert result.queued == 1
    assert result.not_invited == [("dee@corp.test", "active"), ("zed@corp.test", "unknown")]
    assert [r.to_addr for r in await outbox(sessions)] == ["ben@corp.test"]


def parsed(raw: bytes) -> EmailMessage:
    msg = message_from_bytes(raw, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


async def test_the_invitation_names_the_programme_and_answers_to_an_invite_token(
    sessions: SessionMaker,
) -> None:
    await invite_world(sessions)
    await invite_people(sessions, composer(), RecordingQueue(), NAMES, NOW, emails=["ana@corp.test"])
    [mail] = await outbox(sessions)
    msg = parsed(mail.raw)
    assert msg["Subject"] == "Invitation: Weekly reflection (reply yes to join)"
    token = keys().token(TokenKind.INVITE, mail.person_id or 0)
    assert msg["Reply-To"] == identity().reply_address(token)
    text = msg.get_body(("plain",))
    assert text is not None
    assert f"https://nudger.corp.test/join/{token}" in text.get_content()
